#include "executor.hpp"
#include "planner.hpp"
#include "support/fake_runner.hpp"
#include "support/topology_fixture.hpp"

#include "util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace flotilla;
using flotilla::test::topo;

namespace {

AddonPlan addon(std::string name, std::vector<std::string> provides, std::vector<std::string> requires_, std::vector<std::string> nodes) {
  AddonPlan a;
  a.name = name;
  a.plugin = name;
  a.provides = std::move(provides);
  a.requires_ = std::move(requires_);
  a.nodes = std::move(nodes);
  return a;
}

bool has_action(const Plan& p, const std::string& type, const std::string& name, const std::string& verb) {
  return std::any_of(p.actions.begin(), p.actions.end(), [&](const PlanAction& a) { return a.type == type && a.name == name && a.verb == verb; });
}

const Step& step(const Plan& p, const std::string& id) {
  auto it = std::find_if(p.graph.steps.begin(), p.graph.steps.end(), [&](const Step& s) { return s.id == id; });
  REQUIRE(it != p.graph.steps.end());
  return *it;
}

int slot_of(const Plan& p, const std::string& id) {
  const StepAction* w = p.action_of(id);
  REQUIRE(w != nullptr);
  REQUIRE(std::holds_alternative<CreateNode>(*w));
  return std::get<CreateNode>(*w).slot;
}

// A state where every node, instance and addon of the topology exists and runs.
json converged(const Topology& t, const std::vector<AddonPlan>& addons, const std::map<std::string, int>& replicas) {
  json s = {{"serial", 3}, {"nodes", json::object()}, {"instances", json::object()}, {"addons", json::object()}};
  int slot = 0;
  for (const auto& n : t.nodes)
    s["nodes"][n.name] = {{"status", "ready"}, {"slot", slot++}, {"roles", n.roles}, {"labels", n.labels}, {"address", "127.0.0.1"}};
  for (const auto& ip : desired_instances(t, replicas))
    s["instances"][ip.id] = {{"service", ip.service}, {"node", ip.node}, {"spec_hash", ip.spec_hash}, {"status", "running"}, {"record", {{"pid", 1}}}};
  for (const auto& a : addons)
    s["addons"][a.name] = {{"plugin", a.plugin}, {"status", "ready"}, {"config_hash", stable_hash(a.config.dump())}, {"nodes", a.nodes},
                           {"provides", a.provides}, {"requires", a.requires_}};
  return s;
}

}  // namespace


TEST_CASE("instances spread round-robin over their nodes with per-node ports", "[planner]") {
  const Topology t = topo();
  auto inst = desired_instances(t, {{"hello/v1", 5}});
  REQUIRE(inst.size() == 5);
  CHECK(inst[0].node == "swarm-1");
  CHECK(inst[1].node == "swarm-2");
  CHECK(inst[2].node == "swarm-3");
  CHECK(inst[3].node == "swarm-1");
  CHECK(inst[0].port == 8000);
  CHECK(inst[3].port == 8001);
  CHECK(inst[4].workload_name() == "service-hello-v1-5");
  // Scaling keeps the existing instances where they are.
  auto more = desired_instances(t, {{"hello/v1", 8}});
  for (size_t i = 0; i < inst.size(); ++i) CHECK(more[i].spec_hash == inst[i].spec_hash);
}

TEST_CASE("a fresh cluster plans every node, instance and addon with dependencies in order", "[planner]") {
  const Topology t = topo();
  PlanInput in;
  in.topology = &t;
  in.addons = {addon("etcd", {"discovery"}, {}, {"infra"}), addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"}),
               addon("registrator", {}, {"services", "discovery"}, {"infra"})};
  Plan p = make_plan(in);
  REQUIRE(p.graph.check());
  CHECK(p.count(Change::create) == 4 + 5 + 3);
  CHECK(p.count(Change::destroy) == 0);
  const Step& start = step(p, "instance.start:hello/v1#4");
  CHECK(start.deps == std::vector<std::string>{"node.create:swarm-1"});
  const Step& ingress = step(p, "addon.apply:haproxy");
  CHECK(std::count(ingress.deps.begin(), ingress.deps.end(), "instance.start:hello/v1#1") == 1);
  const Step& reg = step(p, "addon.apply:registrator");
  CHECK(std::count(reg.deps.begin(), reg.deps.end(), "addon.apply:etcd") == 1);
  const Step& etcd = step(p, "addon.apply:etcd");
  CHECK(std::none_of(etcd.deps.begin(), etcd.deps.end(), [](const std::string& d) { return d.rfind("instance.", 0) == 0; }));
  // New nodes get the lowest free slots.
  CHECK(slot_of(p, "node.create:infra") == 0);
  CHECK(slot_of(p, "node.create:swarm-3") == 3);
}

TEST_CASE("an unchanged, running cluster plans nothing", "[planner]") {
  const Topology t = topo();
  std::vector<AddonPlan> addons = {addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(t, addons, {{"hello/v1", 5}});
  Plan p = make_plan(in);
  INFO(plan_to_text(p, "t"));
  CHECK(p.empty());
  CHECK(p.graph.steps.empty());
  CHECK(p.state_serial == 3);
}

TEST_CASE("a dead instance is restarted and the ingress re-applied", "[planner]") {
  const Topology t = topo();
  std::vector<AddonPlan> addons = {addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(t, addons, {{"hello/v1", 5}});
  in.live = {{"instances", {{"hello/v1#2", "exited"}}}};
  Plan p = make_plan(in);
  CHECK(has_action(p, "instance", "hello/v1#2", "restart"));
  CHECK(has_action(p, "addon", "haproxy", "apply"));
  CHECK(p.actions.size() == 2);
}

TEST_CASE("scaling in drains through the ingress before stopping instances", "[planner]") {
  const Topology t = topo();
  std::vector<AddonPlan> addons = {addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(t, addons, {{"hello/v1", 5}});
  in.state["overrides"]["replicas"]["hello/v1"] = {{"replicas", 3}, {"file_replicas", 5}};
  Plan p = make_plan(in);
  CHECK(p.replicas["hello/v1"] == 3);
  CHECK(has_action(p, "instance", "hello/v1#4", "stop"));
  CHECK(has_action(p, "instance", "hello/v1#5", "stop"));
  const Step& stop = step(p, "instance.stop:hello/v1#5");
  CHECK(stop.deps == std::vector<std::string>{"addon.apply:haproxy"});
  REQUIRE_FALSE(p.notes.empty());
  CHECK_THAT(p.notes[0], Catch::Contains("flotilla scale"));

  // Run it through the executor with a fake runner: the ingress applies before any stop.
  test::FakeRunner runner;
  CancelToken cancel;
  auto results = execute(p.graph, runner, ExecOptions{}, cancel);
  auto order = runner.finished();
  auto pos = [&](const std::string& id) { return std::find(order.begin(), order.end(), id) - order.begin(); };
  CHECK(pos("addon.apply:haproxy") < pos("instance.stop:hello/v1#4"));
  CHECK(pos("addon.apply:haproxy") < pos("instance.stop:hello/v1#5"));
}

TEST_CASE("a scale override yields once the file's replicas change", "[planner]") {
  const Topology t = topo();
  json state = {{"overrides", {{"replicas", {{"hello/v1", {{"replicas", 8}, {"file_replicas", 4}}}}}}}};
  auto r = effective_replicas(t, state);
  CHECK(r["hello/v1"] == 5);  // the file says 5 now, not the 4 the override was made against
  state["overrides"]["replicas"]["hello/v1"]["file_replicas"] = 5;
  CHECK(effective_replicas(t, state)["hello/v1"] == 8);
}

TEST_CASE("down destroys instances, then addons in reverse dependency order, then nodes", "[planner]") {
  const Topology t = topo();
  std::vector<AddonPlan> addons = {addon("etcd", {"discovery"}, {}, {"infra"}), addon("registrator", {}, {"services", "discovery"}, {"infra"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(t, addons, {{"hello/v1", 5}});
  in.destroy_all = true;
  Plan p = make_plan(in);
  REQUIRE(p.graph.check());
  CHECK(p.count(Change::destroy) == 4 + 5 + 2);
  CHECK(p.count(Change::create) == 0);
  const Step& etcd = step(p, "addon.destroy:etcd");
  CHECK(etcd.deps == std::vector<std::string>{"addon.destroy:registrator"});
  const Step& node = step(p, "node.destroy:swarm-1");
  CHECK(std::count(node.deps.begin(), node.deps.end(), "instance.stop:hello/v1#1") == 1);
  CHECK(std::count(node.deps.begin(), node.deps.end(), "instance.stop:hello/v1#2") == 0);
  CHECK(std::count(node.deps.begin(), node.deps.end(), "addon.destroy:etcd") == 1);
}

TEST_CASE("down removes the instances only after the addon that provides services (the swarm) is destroyed", "[planner]") {
  const Topology t = topo();
  std::vector<AddonPlan> addons = {addon("swarm", {"services"}, {}, {"swarm-1", "swarm-2", "swarm-3"}),
                                   addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(t, addons, {{"hello/v1", 5}});
  in.destroy_all = true;
  const Plan p = make_plan(in);
  REQUIRE(p.graph.check());
  const Step& swarm = step(p, "addon.destroy:swarm");
  CHECK(std::count(swarm.deps.begin(), swarm.deps.end(), "addon.destroy:haproxy") == 1);
  const Step& stop = step(p, "instance.stop:hello/v1#1");
  CHECK(std::count(stop.deps.begin(), stop.deps.end(), "addon.destroy:swarm") == 1);
  CHECK(std::count(stop.deps.begin(), stop.deps.end(), "addon.destroy:haproxy") == 1);
}

TEST_CASE("a node left half-created is created again with its slot", "[planner]") {
  const Topology t = topo();
  PlanInput in;
  in.topology = &t;
  in.state = converged(t, {}, {{"hello/v1", 5}});
  in.state["nodes"]["swarm-2"]["status"] = "creating";
  in.state["nodes"]["swarm-2"]["slot"] = 2;
  Plan p = make_plan(in);
  CHECK(has_action(p, "node", "swarm-2", "create"));
  CHECK(slot_of(p, "node.create:swarm-2") == 2);
  // Instances on that node wait for it.
  CHECK(p.actions.size() == 1);
}

TEST_CASE("a changed addon configuration cascades to the addons depending on it", "[planner]") {
  const Topology t = topo();
  std::vector<AddonPlan> addons = {addon("etcd", {"discovery"}, {}, {"infra"}), addon("registrator", {}, {"services", "discovery"}, {"infra"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(t, addons, {{"hello/v1", 5}});
  in.addons[0].config = {{"members", 3}};
  Plan p = make_plan(in);
  CHECK(has_action(p, "addon", "etcd", "apply"));
  CHECK(has_action(p, "addon", "registrator", "apply"));
  CHECK(step(p, "addon.apply:registrator").deps == std::vector<std::string>{"addon.apply:etcd"});
}

TEST_CASE("new nodes fill the free slots in order, around the slots in use", "[planner]") {
  const Topology t = topo();
  PlanInput in;
  in.topology = &t;
  in.state = {{"serial", 1}, {"nodes", json::object()}};
  in.state["nodes"]["swarm-1"] = {{"status", "ready"}, {"slot", 0}, {"roles", {"swarm"}}, {"labels", json::object()}};
  in.state["nodes"]["swarm-3"] = {{"status", "ready"}, {"slot", 2}, {"roles", {"swarm"}}, {"labels", json::object()}};
  Plan p = make_plan(in);
  CHECK(slot_of(p, "node.create:infra") == 1);
  CHECK(slot_of(p, "node.create:swarm-2") == 3);
}

TEST_CASE("a large new cluster gets slots 0..N-1, one per node", "[planner]") {
  std::string text = "[cluster]\nname = \"big\"\ndriver = \"local\"\n";
  for (int g = 1; g <= 3; ++g) text += "[[nodes]]\nname = \"g" + std::to_string(g) + "\"\ncount = 1000\nroles = [\"swarm\"]\n";
  const Topology t = topo(text);
  PlanInput in;
  in.topology = &t;
  Plan p = make_plan(in);
  REQUIRE(p.graph.steps.size() == 3000);
  std::vector<int> slots;
  for (const auto& s : p.graph.steps) slots.push_back(slot_of(p, s.id));
  std::sort(slots.begin(), slots.end());
  for (int i = 0; i < 3000; ++i) REQUIRE(slots[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("a reconciling addon resyncs on every up without counting as a change", "[planner]") {
  const Topology t = topo();
  std::vector<AddonPlan> addons = {addon("etcd", {"discovery"}, {}, {"infra"}), addon("registrator", {}, {"services", "discovery"}, {"infra"})};
  addons[1].reconcile = true;
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(t, addons, {{"hello/v1", 5}});
  Plan p = make_plan(in);
  CHECK(p.empty());
  REQUIRE(p.graph.steps.size() == 1);
  CHECK(p.graph.steps[0].id == "addon.apply:registrator");
  CHECK_THAT(plan_to_text(p, "t"), Catch::StartsWith("No changes"));
  CHECK(plan_to_json(p, "t")["actions"][0]["change"] == "resync");
}

TEST_CASE("down lets go of the services through the ingress and catalog before stopping them", "[planner]") {
  const Topology t = topo();
  std::vector<AddonPlan> addons = {addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(t, addons, {{"hello/v1", 5}});
  in.state["addons"]["haproxy"]["requires"] = {"services"};
  in.destroy_all = true;
  Plan p = make_plan(in);
  CHECK(step(p, "instance.stop:hello/v1#1").deps == std::vector<std::string>{"addon.destroy:haproxy"});
}

TEST_CASE("a node the driver finds stopped or missing is created again, and what ran on it restarted", "[planner]") {
  const Topology t = topo();
  PlanInput in;
  in.topology = &t;
  in.state = converged(t, {}, {{"hello/v1", 5}});
  in.live = {{"nodes", {{"swarm-1", "stopped"}, {"swarm-2", "missing"}, {"swarm-3", "running"}, {"infra", "unknown"}}}};
  Plan p = make_plan(in);
  REQUIRE(has_action(p, "node", "swarm-1", "create"));
  REQUIRE(has_action(p, "node", "swarm-2", "create"));
  CHECK_FALSE(has_action(p, "node", "swarm-3", "create"));
  CHECK_FALSE(has_action(p, "node", "infra", "create"));
  CHECK(p.count(Change::repair) == 2 + 4);  // two nodes; hello/v1#1,#4 on swarm-1 and #2,#5 on swarm-2
  CHECK(slot_of(p, "node.create:swarm-1") == 1);
  const Step& s = step(p, "instance.start:hello/v1#4");
  CHECK(std::count(s.deps.begin(), s.deps.end(), "node.create:swarm-1") == 1);
  CHECK_FALSE(has_action(p, "instance", "hello/v1#3", "restart"));
}

TEST_CASE("a changed driver option shows the nodes it affects and whether they are replaced", "[planner]") {
  const Topology t = topo();
  PlanInput in;
  in.topology = &t;
  in.driver.name = "local";
  in.driver.config = {{"cidr", "127.77.0.0/24"}, {"size", "small"}};
  in.state = converged(t, {}, {{"hello/v1", 5}});
  for (auto& [name, rec] : in.state["nodes"].items()) {
    rec["driver"] = "local";
    rec["driver_options"] = {{"cidr", stable_hash("\"127.77.0.0/24\"")}, {"size", stable_hash("\"small\"")}};
  }
  CHECK(make_plan(in).empty());

  in.driver.config["size"] = "large";
  Plan replace = make_plan(in);
  for (const auto& n : t.nodes) {
    auto it = std::find_if(replace.actions.begin(), replace.actions.end(), [&](const PlanAction& a) { return a.name == n.name; });
    REQUIRE(it != replace.actions.end());
    CHECK(it->verb == "replace");
    CHECK(it->detail == "driver option size changed; forces replacement");
    const StepAction* w = replace.action_of(it->step);
    REQUIRE(w);
    CHECK(std::get<CreateNode>(*w).replace);
  }
  CHECK(has_action(replace, "instance", "hello/v1#1", "restart"));
  CHECK_THAT(plan_to_text(replace, "t"), Catch::Contains("~ node swarm-1: replace (driver option size changed; forces replacement)"));

  in.driver.mutable_options = {"size"};
  Plan in_place = make_plan(in);
  CHECK(has_action(in_place, "node", "swarm-1", "update"));
  CHECK_FALSE(has_action(in_place, "instance", "hello/v1#1", "restart"));
  CHECK(in_place.count(Change::update) == 4);
}

TEST_CASE("a mode swarm service plans no instances, and a change of its spec re-applies the addon that deploys it, then the ingress",
          "[planner]") {
  Topology t = topo();
  t.services[0].swarm_mode = true;
  const std::vector<AddonPlan> addons = {addon("swarm", {"services"}, {}, {"swarm-1", "swarm-2", "swarm-3"}),
                                         addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  const Plan fresh = make_plan(in);
  REQUIRE(fresh.graph.check());
  CHECK(fresh.instances.empty());
  CHECK_FALSE(has_action(fresh, "instance", "hello/v1#1", "start"));
  const Step& ingress = step(fresh, "addon.apply:haproxy");
  CHECK(std::count(ingress.deps.begin(), ingress.deps.end(), "addon.apply:swarm") == 1);

  // Deployed as the topology says: nothing to do (the swarm addon only resyncs, if reconciling).
  in.state = converged(t, addons, {{"hello/v1", 5}});
  in.state["addons"]["swarm"]["outputs"] = {{"services", {{"hello/v1", {{"spec", swarm_service_spec(t.services[0], 5)}}}}}};
  CHECK(make_plan(in).empty());

  // Scaled in the file: the swarm addon applies for it, and the ingress after it.
  Topology scaled = t;
  scaled.services[0].replicas = 3;
  in.topology = &scaled;
  const Plan p = make_plan(in);
  INFO(plan_to_text(p, "t"));
  CHECK(has_action(p, "addon", "swarm", "apply"));
  CHECK(has_action(p, "addon", "haproxy", "apply"));
  CHECK(std::any_of(p.actions.begin(), p.actions.end(), [](const PlanAction& a) { return a.name == "swarm" && a.detail == "swarm services changed"; }));
  CHECK(p.count(Change::create) == 0);
}

TEST_CASE("addon stages: read from the manifest in order, and a bad list is refused with what is wrong", "[planner]") {
  std::vector<AddonStage> stages;
  CHECK(parse_addon_stages(json::object(), stages).empty());
  CHECK(stages.empty());
  const json good = json::parse(R"({"stages": [{"name": "elasticsearch"}, {"name": "logstash", "after": ["elasticsearch"]},
                                               {"name": "kibana", "after": ["elasticsearch"]}]})");
  REQUIRE(parse_addon_stages(good, stages).empty());
  REQUIRE(stages.size() == 3);
  CHECK(stages[1].name == "logstash");
  CHECK(stages[1].after == std::vector<std::string>{"elasticsearch"});
  CHECK(stages[0].after.empty());

  auto problem = [&](const char* manifest) { return parse_addon_stages(json::parse(manifest), stages); };
  CHECK_THAT(problem(R"({"stages": {"name": "a"}})"), Catch::Contains("not an array"));
  CHECK_THAT(problem(R"({"stages": [{"after": []}]})"), Catch::Contains("stage 1") && Catch::Contains("no string \"name\""));
  CHECK_THAT(problem(R"({"stages": [{"name": "Big Stage"}]})"), Catch::Contains("\"Big Stage\"") && Catch::Contains("a-z, 0-9 and -"));
  CHECK_THAT(problem(R"({"stages": [{"name": "a"}, {"name": "a"}]})"), Catch::Contains("stage 2") && Catch::Contains("repeats"));
  // `after` names earlier stages only, so the stages can never wait on each other in a circle.
  CHECK_THAT(problem(R"({"stages": [{"name": "a", "after": ["b"]}, {"name": "b"}]})"),
             Catch::Contains("stage 1 (\"a\")") && Catch::Contains("\"b\", which is not an earlier stage"));
  CHECK_THAT(problem(R"({"stages": [{"name": "a", "after": ["a"]}]})"), Catch::Contains("not an earlier stage"));
  CHECK_THAT(problem(R"({"stages": [{"name": "a", "after": "b"}]})"), Catch::Contains("not an array"));
}

TEST_CASE("addon stages: each is a step after what the addon waits for, and the addon's apply waits for them all", "[planner]") {
  const Topology t = topo();
  PlanInput in;
  in.topology = &t;
  AddonPlan elk = addon("elk", {"logs"}, {}, {"infra"});
  elk.stages = {{"elasticsearch", {}}, {"logstash", {"elasticsearch"}}, {"kibana", {"elasticsearch"}}};
  in.addons = {addon("etcd", {"discovery"}, {}, {"infra"}), elk, addon("registrator", {}, {"services", "logs"}, {"infra"})};
  Plan p = make_plan(in);
  REQUIRE(p.graph.check());
  auto has = [](const Step& s, const std::string& dep) { return std::count(s.deps.begin(), s.deps.end(), dep) == 1; };
  const Step& es = step(p, "addon.apply:elk/elasticsearch");
  CHECK(has(es, "node.create:infra"));
  CHECK(es.label == "apply addon elk: elasticsearch");
  CHECK(has(step(p, "addon.apply:elk/logstash"), "addon.apply:elk/elasticsearch"));
  CHECK(has(step(p, "addon.apply:elk/kibana"), "addon.apply:elk/elasticsearch"));
  CHECK_FALSE(has(step(p, "addon.apply:elk/kibana"), "addon.apply:elk/logstash"));
  const Step& whole = step(p, "addon.apply:elk");
  for (const char* s : {"elasticsearch", "logstash", "kibana"}) CHECK(has(whole, std::string("addon.apply:elk/") + s));
  // What follows the addon follows its whole apply; the stages are not lines of the plan.
  CHECK(has(step(p, "addon.apply:registrator"), "addon.apply:elk"));
  CHECK(p.count(Change::create) == 4 + 5 + 3);
  const StepAction* w = p.action_of("addon.apply:elk/kibana");
  REQUIRE(w != nullptr);
  REQUIRE(std::holds_alternative<ApplyAddon>(*w));
  CHECK(std::get<ApplyAddon>(*w).stage == "kibana");
  CHECK(std::get<ApplyAddon>(*(p.action_of("addon.apply:elk"))).stage.empty());
}

TEST_CASE("a changed spec rolls the running instances wave by wave, each after the last, between the addons they need and the ingress",
          "[planner][rollout]") {
  const Topology t = topo(std::string(test::kTopology) + "env = { RELEASE = \"v2\" }\n[services.update]\nmax_parallel = 2\n");
  std::vector<AddonPlan> addons = {addon("etcd", {"kv"}, {}, {"infra"}), addon("registrator", {"catalog"}, {"kv", "services"}, {"infra"}),
                                   addon("haproxy", {"ingress"}, {"services", "catalog"}, {"swarm-1"})};
  addons[0].config = {{"changed", true}};  // etcd is re-applied in this plan: the waves wait for it
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(topo(), addons, {{"hello/v1", 5}});  // every instance runs the spec without RELEASE
  in.state["addons"]["etcd"]["config_hash"] = "old";
  Plan p = make_plan(in);
  INFO(plan_to_text(p, "t"));
  REQUIRE(p.rollouts.size() == 1);
  CHECK(p.rollouts[0].service == "hello/v1");
  CHECK(p.rollouts[0].waves == 3);
  CHECK(p.rollouts[0].instances == std::vector<std::string>{"hello/v1#1", "hello/v1#2", "hello/v1#3", "hello/v1#4", "hello/v1#5"});
  for (int i = 1; i <= 5; ++i) CHECK(has_action(p, "instance", "hello/v1#" + std::to_string(i), "replace"));
  CHECK_FALSE(p.action_of("instance.start:hello/v1#1"));
  const StepAction* w2 = p.action_of("instance.roll:hello/v1@2");
  REQUIRE(w2);
  REQUIRE(std::holds_alternative<RollWave>(*w2));
  const RollWave& wave = std::get<RollWave>(*w2);
  CHECK(wave.wave == 2);
  CHECK(wave.waves == 3);
  REQUIRE(wave.instances.size() == 2);
  CHECK(wave.instances[0].id == "hello/v1#3");
  CHECK(wave.instances[1].id == "hello/v1#4");
  CHECK(std::get<RollWave>(*p.action_of("instance.roll:hello/v1@3")).instances.size() == 1);
  // Wave 1 waits for etcd (which the registrator needs); each later wave for the one before;
  // the ingress and the catalog are applied once more after the last.
  CHECK(step(p, "instance.roll:hello/v1@1").deps == std::vector<std::string>{"addon.apply:etcd"});
  CHECK(std::count(step(p, "instance.roll:hello/v1@2").deps.begin(), step(p, "instance.roll:hello/v1@2").deps.end(),
                   "instance.roll:hello/v1@1") == 1);
  for (const char* a : {"addon.apply:haproxy", "addon.apply:registrator"}) {
    const auto& deps = step(p, a).deps;
    CHECK(std::find(deps.begin(), deps.end(), "instance.roll:hello/v1@3") != deps.end());
  }
  CHECK(p.graph.check());
  REQUIRE_FALSE(p.notes.empty());
  CHECK_THAT(p.notes.back(), Catch::Contains("rolling update of 5 instance(s) in 3 wave(s) (max_parallel 2"));
  const json j = plan_to_json(p, "t");
  CHECK(j["rollouts"][0]["waves"] == 3);
  CHECK(j["rollouts"][0]["strategy"]["min_healthy_time_s"] == 1);
}

TEST_CASE("a rollout replaces only what runs: a new instance starts, one on a remade node restarts, a strategy change alone does nothing",
          "[planner][rollout]") {
  const Topology t = topo(std::string(test::kTopology) + "env = { RELEASE = \"v2\" }\n");
  std::vector<AddonPlan> addons = {addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(topo(), addons, {{"hello/v1", 5}});
  in.state["instances"].erase("hello/v1#5");                         // never started
  in.live = {{"nodes", {{"swarm-2", "missing"}}}};                   // made anew, with hello/v1#2 on it
  Plan p = make_plan(in);
  INFO(plan_to_text(p, "t"));
  REQUIRE(p.rollouts.size() == 1);
  CHECK(p.rollouts[0].instances == std::vector<std::string>{"hello/v1#1", "hello/v1#3", "hello/v1#4"});
  CHECK(p.rollouts[0].waves == 3);
  CHECK(has_action(p, "instance", "hello/v1#5", "start"));
  CHECK(p.action_of("instance.start:hello/v1#2"));

  const Topology same = topo(std::string(test::kTopology) + "[services.update]\nmax_parallel = 3\nauto_revert = false\n");
  in.topology = &same;
  in.state = converged(topo(), addons, {{"hello/v1", 5}});
  in.live = json::object();
  CHECK(make_plan(in).empty());
}

TEST_CASE("a canary holds a new version to N instances until it is promoted, and never holds the way back", "[planner][rollout]") {
  const std::string v2 = std::string(test::kTopology) + "env = { RELEASE = \"v2\" }\n[services.update]\ncanary = 1\n";
  const Topology t = topo(v2);
  std::vector<AddonPlan> addons = {addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(topo(), addons, {{"hello/v1", 5}});
  const std::string v1_version = service_version(service_version_spec(topo().services[0]));
  const std::string v2_version = service_version(service_version_spec(t.services[0]));

  Plan first = make_plan(in);
  INFO(plan_to_text(first, "t"));
  REQUIRE(first.rollouts.size() == 1);
  CHECK(first.rollouts[0].instances == std::vector<std::string>{"hello/v1#1"});
  CHECK(first.rollouts[0].held == 4);
  CHECK(first.rollouts[0].version == v2_version);
  CHECK_THAT(first.notes.front(), Catch::Contains("the other 4 wait for `flotilla promote FILE hello/v1`"));

  // The canary runs v2: nothing more until promote.
  const auto v2_instances = desired_instances(t, {{"hello/v1", 5}});
  in.state["instances"]["hello/v1#1"]["spec_hash"] = v2_instances[0].spec_hash;
  in.state["rollouts"]["hello/v1"] = {{"from", v1_version}, {"to", v2_version}};
  Plan held = make_plan(in);
  CHECK(held.empty());
  REQUIRE(held.rollouts.size() == 1);
  CHECK(held.rollouts[0].held == 4);
  CHECK(plan_to_json(held, "t")["rollouts"][0]["held_for_promote"] == 4);

  // Promoted: the other four roll.
  in.state["rollouts"]["hello/v1"]["promoted"] = v2_version;
  Plan promoted = make_plan(in);
  REQUIRE(promoted.rollouts.size() == 1);
  CHECK(promoted.rollouts[0].instances.size() == 4);
  CHECK(promoted.rollouts[0].held == 0);

  // The file put back to v1: the canary goes back, not held, though v1 is not promoted.
  const Topology back = topo(std::string(test::kTopology) + "[services.update]\ncanary = 1\n");
  in.topology = &back;
  in.state["rollouts"]["hello/v1"].erase("promoted");
  Plan rollback = make_plan(in);
  INFO(plan_to_text(rollback, "t"));
  REQUIRE(rollback.rollouts.size() == 1);
  CHECK(rollback.rollouts[0].instances == std::vector<std::string>{"hello/v1#1"});
  CHECK(rollback.rollouts[0].held == 0);
}

TEST_CASE("a changed port rolls like any other change, and the plan names what changed on each instance", "[planner][rollout]") {
  std::string text = test::kTopology;
  text.replace(text.find("port = 8000"), 11, "port = 9000");
  const Topology t = topo(text + "image = \"sirile/node-test:2\"\n");
  std::vector<AddonPlan> addons = {addon("haproxy", {"ingress"}, {"services"}, {"swarm-1"})};
  PlanInput in;
  in.topology = &t;
  in.addons = addons;
  in.state = converged(topo(), addons, {{"hello/v1", 5}});
  for (auto& [id, rec] : in.state["instances"].items()) {
    rec["port"] = id == "hello/v1#4" ? 8001 : 8000;
    rec["spec"] = {{"service", service_version_spec(topo().services[0])}};
  }
  Plan p = make_plan(in);
  INFO(plan_to_text(p, "t"));
  REQUIRE(p.rollouts.size() == 1);
  CHECK(p.rollouts[0].instances.size() == 5);
  const std::string text_plan = plan_to_text(p, "t");
  CHECK_THAT(text_plan, Catch::Contains("~ instance hello/v1#1: replace (port 8000 -> 9000, image changed; rolling, wave 1 of 5)"));
  CHECK_THAT(text_plan, Catch::Contains("~ instance hello/v1#4: replace (port 8001 -> 9001, image changed; rolling, wave 4 of 5)"));
}
