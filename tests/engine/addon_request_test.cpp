// The request every addon operation receives, built without a running cluster.
#include "addon_request.hpp"
#include "plugin_views.hpp"
#include "status.hpp"
#include "support/topology_fixture.hpp"

#include <catch2/catch.hpp>

using namespace flotilla;

TEST_CASE("addon requests name every addon's workload prefix, so addons need not derive it", "[addon_request]") {
  const Topology topo = test::topo();
  AddonPlan self;
  self.name = "syslog";
  self.plugin = "syslog";
  self.nodes = {"infra"};
  // A recorded addon whose name is not a safe file name: its prefix is the runtime's name for it.
  const json state = {{"addons", {{"my etcd", {{"plugin", "etcd"}, {"status", "ready"}}}, {"syslog", {{"plugin", "syslog"}, {"status", "ready"}}}}}};
  const json req = addon_request(topo, "/state", self, json::object(), state, Plan{});
  CHECK(req["addon"]["workload_prefix"] == "addon-syslog-");
  REQUIRE(req["addons"].contains("my etcd"));
  CHECK(req["addons"]["my etcd"]["workload_prefix"] == "addon-my-etcd-");
  CHECK_FALSE(req["addons"].contains("syslog"));  // itself is in `addon`, not among the others
  CHECK(addon_workload_prefix("my etcd") + safe_name("etcd") == "addon-my-etcd-etcd");
}

TEST_CASE("a workload's program is looked up on this machine only for the process runtime", "[engine]") {
  // The process runtime runs it here: found on PATH and made absolute, or a clear error.
  const auto sh = program_for_runtime("sh", "process");
  REQUIRE(sh);
  CHECK(std::filesystem::path(*sh).is_absolute());
  const auto missing = program_for_runtime("flotilla-no-such-program", "process");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("`flotilla-no-such-program` is not found") && Catch::Contains("PATH"));
  // Any other runtime runs it in an image or on another host: it goes as written.
  const auto in_image = program_for_runtime("flotilla-no-such-program", "docker");
  REQUIRE(in_image);
  CHECK(*in_image == "flotilla-no-such-program");
  CHECK(*program_for_runtime("sh", "docker") == "sh");
  CHECK(std::filesystem::path(*program_for_runtime("sh", "")).is_absolute());
}

TEST_CASE("a mode swarm service reaches addons with its spec and, as instances, the tasks its deploying addon reported", "[addon_request]") {
  Topology topo = test::topo();
  topo.services[0].swarm_mode = true;
  AddonPlan self;
  self.name = "haproxy";
  self.plugin = "haproxy";
  const json task = {{"id", "hello/v1#2"}, {"instance", 2}, {"node", "swarm-3"}, {"address", "10.0.0.3"}, {"port", 30001}, {"state", "running"}};
  const json state = {
      {"addons", {{"swarm", {{"plugin", "swarm"}, {"status", "ready"}, {"outputs", {{"services", {{"hello/v1", {{"instances", {task}}}}}}}}}}}}};
  Plan plan;
  plan.replicas = {{"hello/v1", 3}};
  const json req = addon_request(topo, "/state", self, json::object(), state, plan);
  REQUIRE(req["services"].size() == 1);
  const json& svc = req["services"][0];
  CHECK(svc["mode"] == "swarm");
  CHECK(svc["replicas"] == 3);
  CHECK(svc["spec"] == swarm_service_spec(topo.services[0], 3));
  CHECK(svc["spec"]["image"] == topo.services[0].image);
  CHECK(svc["instances"] == json::array({task}));
}

TEST_CASE("status shows a mode swarm service's tasks as the swarm addon last reported them", "[addon_request][status]") {
  Topology topo = test::topo();
  topo.services[0].swarm_mode = true;
  const json task = {{"id", "hello/v1#1"}, {"instance", 1}, {"node", "swarm-2"}, {"address", "10.0.0.2"}, {"port", 30002}, {"state", "running"}};
  const json state = {
      {"addons", {{"swarm", {{"plugin", "swarm"}, {"status", "ready"}, {"outputs", {{"services", {{"hello/v1", {{"instances", {task}}}}}}}}}}}}};
  const json st = cluster_status(topo, "/state", state, json::object());
  REQUIRE(st["services"].size() == 1);
  const json& svc = st["services"][0];
  CHECK(svc["mode"] == "swarm");
  REQUIRE(svc["instances"].size() == 1);
  CHECK(svc["instances"][0]["node"] == "swarm-2");
  CHECK(svc["instances"][0]["port"] == 30002);
  CHECK(svc["instances"][0]["state"] == "running");
}
