// The request every addon operation receives, built without a running cluster.
#include "addon_request.hpp"
#include "plugin_views.hpp"
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
