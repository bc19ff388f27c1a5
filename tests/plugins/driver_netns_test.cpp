// The netns driver: its options and checks, and (as root) real nodes: a namespace on a bridge
// with its own dockerd each, created twice (idempotent), inspected, and destroyed leaving
// nothing of its own and everything else.
#include "driver_netns/driver.hpp"
#include "driver_netns/host.hpp"

#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/process.hpp"
#include "support/docker_lab.hpp"
#include "support/plugin_harness.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
namespace s = flotilla::support;
using flotilla::test::PluginHarness;
using nlohmann::json;

json node(const std::string& name, int slot) { return {{"name", name}, {"slot", slot}}; }

/// unavailable_reason() as an unprivileged user sees it (in a child that drops root).
std::string reason_as_nobody() {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(2);
    const std::string why = flotilla::netns::unavailable_reason();
    (void)!::write(fds[1], why.data(), why.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

}  // namespace

TEST_CASE("netns driver: manifest and option checks", "[plugins][netns]") {
  PluginHarness plugin("driver_netns");
  CHECK(std::string(plugin.descriptor().name) == "netns");
  const json schema = plugin.manifest()["schema"];
  CHECK(schema["subnet"]["default"] == "10.214.0.0/24");
  CHECK(schema["storage_driver"]["default"] == "vfs");

  const auto out = plugin.call("validate", {{"cluster", {{"name", "t"}}},
                                            {"config", {{"subnet", "10.214.0.0/16"}, {"storage_driver", "aufs"}, {"colour", "red"}}},
                                            {"nodes", json::array({node("a", 0)})}});
  REQUIRE(out.ok());
  std::string all;
  for (const auto& e : out.result["errors"]) all += e["message"].get<std::string>() + "\n";
  CHECK_THAT(all, Catch::Contains("subnet") && Catch::Contains("storage_driver") && Catch::Contains("colour"));

  flotilla::netns::Options o;
  const auto l = flotilla::netns::layout_of({{"name", "c"}, {"state_dir", "/var/tmp/c"}}, o, node("swarm-1", 3));
  CHECK(l.net.address == "10.214.0.5");
  CHECK(l.gateway == "10.214.0.1");
  CHECK(l.net.host_veth.size() <= 15);
  CHECK(l.bridge.size() <= 15);
  CHECK(l.dockerd.root == "/var/tmp/c/nodes/swarm-1/docker");
  CHECK_THROWS_WITH(flotilla::netns::layout_of({{"name", "c"}, {"state_dir", "/x"}}, o, node("big", 300)), Catch::Contains("node big"));
}

TEST_CASE("netns driver: validate says root is needed when it is not root", "[plugins][netns]") {
  if (::geteuid() != 0) {
    PluginHarness plugin("driver_netns");
    const auto out = plugin.call("validate", {{"cluster", {{"name", "t"}}}, {"config", json::object()}, {"nodes", json::array()}});
    REQUIRE(out.ok());
    REQUIRE(out.result["errors"].size() == 1);
    CHECK_THAT(out.result["errors"][0]["message"].get<std::string>(), Catch::Contains("need root"));
    return;
  }
  CHECK_THAT(reason_as_nobody(), Catch::Contains("need root") && Catch::Contains("driver local"));
}

TEST_CASE("netns driver: nodes are namespaces with their own dockerd, and destroy removes them and nothing else",
          "[plugins][netns][docker][integration]") {
  if (const std::string why = flotilla::test::DockerLab::unavailable_reason(); !why.empty()) FLOTILLA_SKIP(why);
  PluginHarness plugin("driver_netns");
  flotilla::test::proc::ScratchDir scratch("flt-netns");
  const json cluster = {{"name", "netns-test"}, {"state_dir", scratch.path().string()}};
  const json config = {{"subnet", "10.214.250.0/24"}};
  { std::ofstream(scratch.path() / "keep.txt") << "not the driver's\n"; }

  std::vector<json> records;
  for (int i = 0; i < 2; ++i) {
    const json n = node("swarm-" + std::to_string(i + 1), i);
    const auto made = plugin.call("create", {{"cluster", cluster}, {"config", config}, {"node", n}});
    INFO(made.describe());
    REQUIRE(made.ok());
    CHECK(made.result["address"] == "10.214.250." + std::to_string(i + 2));
    CHECK(made.result["runtime"] == "docker");
    records.push_back(made.result);
  }
  // Idempotent: the same record again, nothing restarted.
  const auto again = plugin.call("create", {{"cluster", cluster}, {"config", config}, {"node", node("swarm-1", 0)}});
  REQUIRE(again.ok());
  CHECK(again.result == records[0]);

  for (int i = 0; i < 2; ++i) {
    const json& r = records[i];
    CHECK(flotilla::netns::netns_exists(r["data"]["netns"]));
    CHECK(flotilla::netns::link_exists(r["data"]["veth"]));
    s::DockerClient docker({.node = "swarm-" + std::to_string(i + 1), .host = r["runtime_config"]["host"]});
    CHECK(docker.version()["ApiVersion"] == "1.41");
    // The TLS endpoint on the node's address, as `flotilla env` points a docker client at it.
    const json env = r["runtime_config"]["env"];
    const fs::path certs = env["DOCKER_CERT_PATH"].get<std::string>();
    s::DockerEndpoint tls{.node = "swarm-" + std::to_string(i + 1), .host = env["DOCKER_HOST"], .use_tls = true};
    tls.tls = {.ca_file = certs / "ca.pem", .cert_file = certs / "cert.pem", .key_file = certs / "key.pem"};
    CHECK(s::DockerClient(tls).version()["ApiVersion"] == "1.41");
    // Without a client certificate the daemon refuses the connection.
    tls.tls.cert_file.clear();
    tls.tls.key_file.clear();
    CHECK_THROWS_AS(s::DockerClient(tls).version(), s::DockerError);
    const auto inspected = plugin.call("inspect", {{"cluster", cluster}, {"config", config}, {"node", node("swarm-" + std::to_string(i + 1), i)}, {"record", r}});
    REQUIRE(inspected.ok());
    CHECK(inspected.result["state"] == "running");
  }
  const std::string bridge = records[0]["data"]["bridge"];
  CHECK(flotilla::netns::link_exists(bridge));

  std::vector<s::ProcessId> dockerds;
  for (int i = 0; i < 2; ++i) {
    const auto id = s::read_pid_file(fs::path(records[i]["data"]["workdir"].get<std::string>()) / "docker" / "dockerd.identity");
    REQUIRE(id);
    dockerds.push_back(*id);
  }
  for (int i = 0; i < 2; ++i) {
    const json n = node("swarm-" + std::to_string(i + 1), i);
    const auto gone = plugin.call("destroy", {{"cluster", cluster}, {"config", config}, {"node", n}, {"record", records[i]}});
    INFO(gone.describe());
    REQUIRE(gone.ok());
    CHECK_FALSE(s::is_running(dockerds[i]));
    CHECK_FALSE(flotilla::netns::netns_exists(records[i]["data"]["netns"]));
    CHECK_FALSE(flotilla::netns::link_exists(records[i]["data"]["veth"]));
    CHECK_FALSE(fs::exists(fs::path(records[i]["data"]["workdir"].get<std::string>()) / "docker"));
    CHECK(flotilla::netns::link_exists(bridge) == (i == 0));  // the bridge goes with its last node
    const auto inspected = plugin.call("inspect", {{"cluster", cluster}, {"config", config}, {"node", n}, {"record", records[i]}});
    CHECK(inspected.result["state"] == "missing");
  }
  const auto twice = plugin.call("destroy", {{"cluster", cluster}, {"config", config}, {"node", node("swarm-1", 0)}, {"record", records[0]}});
  CHECK(twice.ok());
  CHECK(fs::exists(scratch.path() / "keep.txt"));
  CHECK_FALSE(fs::exists(scratch.path() / ("netns-bridge-" + bridge)));
  CHECK_FALSE(fs::exists(scratch.path() / "netns-tls"));
}
