// The swarm addon on the Docker lab, for real: dockerd's built-in Swarm mode across the lab's
// three nodes (one manager, two workers), through each node's Engine API. A rerun changes
// nothing, a node made to leave behind the addon's back is joined again (and its stale entry
// removed), the join tokens reach no result, state or log line, and destroy leaves every node
// inactive. Option `managers` makes managers at the start and promotes and demotes nodes later,
// and a node taken out of the placement leaves the swarm and the manager's list.
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/wait.hpp"
#include "support/docker_addon_host.hpp"
#include "support/plugin_harness.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace s = flotilla::support;
using flotilla::test::DockerAddonHost;
using flotilla::test::call_ok;
using flotilla::test::DockerLab;
using nlohmann::json;

namespace {

s::DockerClient client_of(const flotilla::test::LabNode& n) { return s::DockerClient({.node = n.name, .host = n.host}); }

json swarm_info(const flotilla::test::LabNode& n) {
  auto docker = client_of(n);
  const auto r = docker.call("GET", "/info");
  REQUIRE(r.status == 200);
  return json::parse(r.body)["Swarm"];
}

void force_leave(const flotilla::test::LabNode& n) {
  auto docker = client_of(n);
  (void)docker.call("POST", "/swarm/leave?force=true");
}

/// Every lab node out of any swarm, at the start and at the end (a failed check included), so
/// the other tests of the process find plain dockerds.
struct LeaveOnExit {
  const DockerLab& lab;
  explicit LeaveOnExit(const DockerLab& l) : lab(l) { leave_all(); }
  ~LeaveOnExit() {
    try {
      leave_all();
    } catch (...) {
    }
  }
  void leave_all() const {
    for (const auto& n : lab.nodes()) force_leave(n);
  }
};

/// The manager's node list: node ID -> {role, state}.
std::map<std::string, std::pair<std::string, std::string>> listed(const flotilla::test::LabNode& manager) {
  auto docker = client_of(manager);
  const auto r = docker.call("GET", "/nodes");
  REQUIRE(r.status == 200);
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const auto& e : json::parse(r.body)) out[e["ID"]] = {e["Spec"]["Role"], e["Status"]["State"]};
  return out;
}

/// How `manager` lists node `id` in the Raft group ("reachable" once it joined it), or "".
std::string reachability(const flotilla::test::LabNode& manager, const std::string& id) {
  auto docker = client_of(manager);
  const auto r = docker.call("GET", "/nodes/" + id);
  REQUIRE(r.status == 200);
  return json::parse(r.body).value("ManagerStatus", json::object()).value("Reachability", "");
}

/// Checks the manager on lab node 0 lists exactly the first roles.size() lab nodes, each ready
/// and with its role.
void check_listed(const DockerLab& lab, const std::vector<std::string>& roles) {
  const auto nodes = listed(lab.nodes()[0]);
  CHECK(nodes.size() == roles.size());
  for (size_t i = 0; i < roles.size(); ++i) {
    const std::string id = swarm_info(lab.nodes()[i])["NodeID"];
    INFO("lab node " << i << " (" << id << ")");
    REQUIRE(nodes.contains(id));
    CHECK(nodes.at(id).first == roles[i]);
    CHECK(nodes.at(id).second == "ready");
  }
}

/// Checks the manager lists exactly the three lab nodes, ready, node 0 the manager.
void check_three_ready(const DockerLab& lab) { check_listed(lab, {"manager", "worker", "worker"}); }

/// Destroys the addon's swarm and checks that every lab node left it.
void destroy_and_check(DockerAddonHost& host, const json& req, const DockerLab& lab) {
  call_ok(host, "destroy", req);
  for (const auto& n : lab.nodes()) CHECK(swarm_info(n)["LocalNodeState"] == "inactive");
  CHECK(host.state().empty());
}

}  // namespace

TEST_CASE("swarm addon on the Docker lab: three nodes ready, a rerun changes nothing, a node that left is joined again, destroy leaves",
          "[swarm][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const LeaveOnExit guard(*lab);

  DockerAddonHost host("addon_swarm", "swarm", DockerAddonHost::lab_nodes(*lab, {"swarm", "swarm", "swarm"}, "lab"));
  const json req = host.request(json::object(), {"swarm-0", "swarm-1", "swarm-2"}, "/tmp/flotilla-swarm-docker-test");
  std::string returned;  // everything the plugin gave back, for the token check

  auto [vst, vout] = host.call("validate", req);
  REQUIRE(vst == FLT_OK);
  CHECK(json::parse(vout)["errors"].empty());

  const std::string out = call_ok(host, "apply", req);
  returned += out;
  const json first = json::parse(out)["outputs"];
  CHECK(first["changed"] == true);
  REQUIRE(first["nodes"].size() == 3);
  for (const auto& n : first["nodes"]) CHECK(n["state"] == "ready");
  CHECK(first["nodes"][0]["role"] == "manager");
  CHECK(first["nodes"][1]["role"] == "worker");
  CHECK(first["managers"] == json::array({lab->nodes()[0].address + ":2377"}));
  check_three_ready(*lab);

  const std::string out2 = call_ok(host, "apply", req);
  returned += out2;
  CHECK(json::parse(out2)["outputs"]["changed"] == false);
  CHECK(json::parse(out2)["outputs"]["nodes"] == first["nodes"]);

  // A worker leaves behind the addon's back; the next apply joins it again and removes the
  // entry it left in the manager's list.
  force_leave(lab->nodes()[2]);
  CHECK(swarm_info(lab->nodes()[2])["LocalNodeState"] == "inactive");
  const std::string out3 = call_ok(host, "apply", req);
  returned += out3;
  CHECK(json::parse(out3)["outputs"]["changed"] == true);
  CHECK(swarm_info(lab->nodes()[2])["LocalNodeState"] == "active");
  check_three_ready(*lab);

  // The join tokens, as the manager gives them, appear in nothing the addon returned or logged.
  {
    auto manager = client_of(lab->nodes()[0]);
    const auto r = manager.call("GET", "/swarm");
    REQUIRE(r.status == 200);
    const json tokens = json::parse(r.body)["JoinTokens"];
    std::string logged;
    for (const auto& line : host.logs()) logged += line + "\n";
    for (const std::string& token : {tokens["Worker"].get<std::string>(), tokens["Manager"].get<std::string>()}) {
      REQUIRE(token.size() > 20);
      CHECK(returned.find(token) == std::string::npos);
      CHECK(logged.find(token) == std::string::npos);
      CHECK(host.state().dump().find(token) == std::string::npos);
    }
  }

  call_ok(host, "destroy", req);
  for (const auto& n : lab->nodes()) CHECK(swarm_info(n)["LocalNodeState"] == "inactive");
  CHECK(host.state().empty());
}

TEST_CASE("swarm addon: validate names a node without a Docker Engine and a managers count above the placement", "[swarm]") {
  flotilla::test::PluginHarness plugin("addon_swarm");
  const json req = {{"addon", {{"name", "swarm"}, {"config", {{"managers", 3}}}, {"nodes", {"swarm-1", "swarm-2"}}, {"dir", "/tmp/x"}}},
                    {"nodes",
                     {{{"name", "swarm-1"}, {"address", "10.0.0.1"}, {"runtime", "process"}},
                      {{"name", "swarm-2"}, {"address", "10.0.0.2"}, {"runtime", "docker"}}}}};
  const auto r = plugin.call("validate", req);
  REQUIRE(r.ok());
  REQUIRE(r.result["errors"].size() == 2);
  CHECK_THAT(r.result["errors"][0]["message"].get<std::string>(),
             Catch::Contains("node swarm-1") && Catch::Contains("`process`") && Catch::Contains("needs Docker nodes"));
  CHECK_THAT(r.result["errors"][1]["message"].get<std::string>(), Catch::Contains("managers = 3"));

  // apply refuses the same node before touching anything.
  json one = req;
  one["addon"]["config"] = json::object();
  const auto applied = plugin.call("apply", one);
  CHECK(applied.status == FLT_NOT_SUPPORTED);
  CHECK_THAT(applied.error, Catch::Contains("node swarm-1") && Catch::Contains("needs Docker nodes"));
}

// Every apply below waits at most join_timeout (30 s) for the nodes, and the guard makes every
// lab node leave whatever swarm it is in when the test ends, failed or not.

TEST_CASE("swarm addon on the Docker lab: managers = 2 makes the second node a manager from the start",
          "[swarm][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const LeaveOnExit guard(*lab);

  DockerAddonHost host("addon_swarm", "swarm", DockerAddonHost::lab_nodes(*lab, {"swarm", "swarm", "swarm"}, "lab"));
  const json req = host.request({{"managers", 2}, {"join_timeout", 30}}, {"swarm-0", "swarm-1", "swarm-2"}, "/tmp/flotilla-swarm-managers");
  const json out = json::parse(call_ok(host, "apply", req))["outputs"];
  CHECK(out["managers"] == json::array({lab->nodes()[0].address + ":2377", lab->nodes()[1].address + ":2377"}));
  check_listed(*lab, {"manager", "manager", "worker"});
  CHECK(swarm_info(lab->nodes()[1])["ControlAvailable"] == true);

  destroy_and_check(host, req, *lab);
}

TEST_CASE("swarm addon on the Docker lab: raising managers promotes a worker, lowering it demotes the node again",
          "[swarm][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const LeaveOnExit guard(*lab);

  DockerAddonHost host("addon_swarm", "swarm", DockerAddonHost::lab_nodes(*lab, {"swarm", "swarm", "swarm"}, "lab"));
  const std::vector<std::string> placed = {"swarm-0", "swarm-1", "swarm-2"};
  const std::string dir = "/tmp/flotilla-swarm-roles";
  call_ok(host, "apply", host.request({{"managers", 1}, {"join_timeout", 30}}, placed, dir));
  check_three_ready(*lab);
  const std::string id = swarm_info(lab->nodes()[1])["NodeID"];

  const json promoted = json::parse(call_ok(host, "apply", host.request({{"managers", 2}, {"join_timeout", 30}}, placed, dir)))["outputs"];
  CHECK(promoted["changed"] == true);
  check_listed(*lab, {"manager", "manager", "worker"});
  CHECK(swarm_info(lab->nodes()[1])["NodeID"] == id);  // promoted in place, not joined anew
  // apply returns once the new manager is in the Raft group: demoting it at once must work.
  CHECK(reachability(lab->nodes()[0], id) == "reachable");

  const json req = host.request({{"managers", 1}, {"join_timeout", 30}}, placed, dir);
  const json demoted = json::parse(call_ok(host, "apply", req))["outputs"];
  CHECK(demoted["changed"] == true);
  CHECK(demoted["managers"] == json::array({lab->nodes()[0].address + ":2377"}));
  check_listed(*lab, {"manager", "worker", "worker"});
  CHECK(swarm_info(lab->nodes()[1])["NodeID"] == id);

  destroy_and_check(host, req, *lab);
}

TEST_CASE("swarm addon on the Docker lab: a node that leaves the placement leaves the swarm and its entry goes",
          "[swarm][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const LeaveOnExit guard(*lab);

  DockerAddonHost host("addon_swarm", "swarm", DockerAddonHost::lab_nodes(*lab, {"swarm", "swarm", "swarm"}, "lab"));
  const std::string dir = "/tmp/flotilla-swarm-placement";
  call_ok(host, "apply", host.request({{"join_timeout", 30}}, {"swarm-0", "swarm-1", "swarm-2"}, dir));
  check_three_ready(*lab);

  const json req = host.request({{"join_timeout", 30}}, {"swarm-0", "swarm-1"}, dir);
  const json out = json::parse(call_ok(host, "apply", req))["outputs"];
  CHECK(out["changed"] == true);
  CHECK(out["nodes"].size() == 2);
  CHECK(swarm_info(lab->nodes()[2])["LocalNodeState"] == "inactive");
  check_listed(*lab, {"manager", "worker"});
  CHECK(host.state()["members"].size() == 2);

  destroy_and_check(host, req, *lab);
}

namespace {

/// The request's `services` with hello/v1 as a mode = "swarm" service of `replicas` replicas, as
/// the engine shapes it (services_view).
json swarm_hello(const std::string& image, int replicas) {
  const json spec = {{"image", image}, {"env", {{"GREETING", "hi"}}}, {"port", 8000}, {"health", "/health"}, {"replicas", replicas}};
  return json::array({{{"name", "hello/v1"}, {"dns", "hello-v1"}, {"port", 8000}, {"health", "/health"}, {"replicas", replicas},
                       {"mode", "swarm"}, {"spec", spec}, {"instances", json::array()}}});
}

/// The manager's Swarm services that carry the lab cluster's label.
json lab_services(const flotilla::test::LabNode& manager) {
  auto docker = client_of(manager);
  const auto r = docker.call("GET", "/services?filters=" + s::url_encode(R"({"label":["io.flotilla.cluster=lab"]})"));
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

/// Checks that each instance answers GET /hello/v1 on its node's address and published port,
/// naming itself (FLOTILLA_INSTANCE, filled in per task by Swarm); returns the nodes seen.
std::set<std::string> check_answers(const json& instances, const DockerLab& lab) {
  std::set<std::string> nodes;
  s::HttpClient http({.timeouts = {std::chrono::seconds(1), std::chrono::seconds(3)}});
  for (const auto& inst : instances) {
    INFO(inst.dump());
    const std::string address = inst["address"];
    CHECK(std::any_of(lab.nodes().begin(), lab.nodes().end(), [&](const auto& n) { return n.address == address; }));
    REQUIRE(inst["port"].get<int>() > 0);
    const std::string url = "http://" + address + ":" + std::to_string(inst["port"].get<int>()) + "/hello/v1";
    json body;
    const bool answered = s::wait_until(std::chrono::seconds(10), std::chrono::milliseconds(200), [&] {
          try {
            body = json::parse(http.get(url).body);
            return true;
          } catch (const std::exception&) {
            return false;
          }
        });
    REQUIRE(answered);
    CHECK(body["instance"] == inst["id"]);
    nodes.insert(inst["node"].get<std::string>());
  }
  return nodes;
}

}  // namespace

TEST_CASE("swarm addon on the Docker lab: a mode swarm service runs its replicas as Swarm tasks, reported as instances that answer, "
          "scales, goes when removed, fails fast on an image no node has, and goes with destroy",
          "[swarm][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const LeaveOnExit guard(*lab);
  if (lab->registry().empty()) FLOTILLA_SKIP("the lab has no registry (docker-registry is not installed): Swarm tasks pull their image from it");
  REQUIRE(flotilla::test::build_lab_images(*lab, {"flotilla-hello"}, 1).empty());
  const std::string image = lab->registry() + "/flotilla-hello:flotilla";

  DockerAddonHost host("addon_swarm", "swarm", DockerAddonHost::lab_nodes(*lab, {"swarm", "swarm", "swarm"}, "lab"));
  const std::vector<std::string> placed = {"swarm-0", "swarm-1", "swarm-2"};
  const std::string dir = "/tmp/flotilla-swarm-services";
  const json config = {{"join_timeout", 30}, {"service_timeout", 120}};
  json req = host.request(config, placed, dir);
  req["services"] = swarm_hello(image, 4);

  const json out = json::parse(call_ok(host, "apply", req))["outputs"];
  CHECK(out["changed"] == true);
  const json svc = out["services"]["hello/v1"];
  CHECK(svc["spec"] == req["services"][0]["spec"]);  // echoed: the engine compares it to the topology's
  CHECK(svc["swarm_service"] == "lab-hello-v1");
  REQUIRE(svc["instances"].size() == 4);
  std::set<int> slots;
  for (const auto& i : svc["instances"]) slots.insert(i["instance"].get<int>());
  CHECK(slots == std::set<int>{1, 2, 3, 4});
  CHECK(check_answers(svc["instances"], *lab).size() >= 2);  // Swarm spreads the replicas over the nodes
  REQUIRE(lab_services(lab->nodes()[0]).size() == 1);
  CHECK(lab_services(lab->nodes()[0])[0]["Spec"]["Mode"]["Replicated"]["Replicas"] == 4);

  // Unchanged: nothing is touched, the same tasks are reported.
  const json again = json::parse(call_ok(host, "apply", req))["outputs"];
  CHECK(again["changed"] == false);
  CHECK(again["services"]["hello/v1"]["instances"] == svc["instances"]);

  // Scaled down: the service is updated in place and reports two tasks.
  req["services"] = swarm_hello(image, 2);
  const json scaled = json::parse(call_ok(host, "apply", req))["outputs"];
  CHECK(scaled["changed"] == true);
  CHECK(scaled["services"]["hello/v1"]["instances"].size() == 2);
  (void)check_answers(scaled["services"]["hello/v1"]["instances"], *lab);
  CHECK(lab_services(lab->nodes()[0])[0]["Spec"]["Mode"]["Replicated"]["Replicas"] == 2);

  // Taken out of the topology: the Swarm service goes.
  req["services"] = json::array();
  const json removed = json::parse(call_ok(host, "apply", req))["outputs"];
  CHECK(removed["changed"] == true);
  CHECK(removed["services"].empty());
  CHECK(lab_services(lab->nodes()[0]).empty());

  // An image no node can pull: Swarm rejects every task, and apply says so (not retryable)
  // instead of waiting out service_timeout (120 s here).
  req["services"] = swarm_hello(lab->registry() + "/flotilla-no-such-image:flotilla", 1);
  const auto started = std::chrono::steady_clock::now();
  const auto [status, error] = host.call("apply", req);
  CHECK(status == FLT_ERROR);
  CHECK_THAT(error, Catch::Contains("Swarm rejects every task") && Catch::Contains("flotilla-no-such-image"));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(100));

  // Destroy with the service deployed removes it and its containers before the nodes leave.
  req["services"] = swarm_hello(image, 3);
  (void)call_ok(host, "apply", req);
  destroy_and_check(host, req, *lab);
  for (const auto& n : lab->nodes()) {
    auto docker = client_of(n);
    CHECK(docker.list_containers({"io.flotilla.cluster=lab", "io.flotilla.service"}).empty());
  }
}
