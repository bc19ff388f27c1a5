// The netns driver: its options and checks, and (as root) real nodes: a namespace on a bridge
// with its own dockerd each, created twice (idempotent), inspected, and destroyed leaving
// nothing of its own and everything else.
#include "driver_netns/driver.hpp"
#include "driver_netns/host.hpp"

#include "flotilla/support/command.hpp"
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/process.hpp"
#include "flotilla/support/wait.hpp"
#include "support/docker_lab.hpp"
#include "support/plugin_harness.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
namespace s = flotilla::support;
using flotilla::test::PluginHarness;
using nlohmann::json;
using namespace std::chrono_literals;

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

  // The containers' way to the other nodes: a rule of the node's namespace, never the host's.
  const auto masq = flotilla::netns::masquerade_argv("flt-ab-1", {"172.17.0.1", "172.17.0.0/16"}, "-A");
  CHECK(masq == std::vector<std::string>{"nsenter", "--net=/var/run/netns/flt-ab-1", "iptables", "-w", "-t", "nat", "-A", "POSTROUTING",
                                         "-s", "172.17.0.0/16", "-o", "eth0", "-j", "MASQUERADE"});
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
  const std::string subnet = flotilla::test::resources::netns_subnet();
  const std::string net = subnet.substr(0, subnet.rfind('.'));
  const json config = {{"subnet", subnet}, {"registry_cache", (scratch.path() / "cache").string()}};
  { std::ofstream(scratch.path() / "keep.txt") << "not the driver's\n"; }

  const std::string host_rules_before = flotilla::test::host_iptables_rules();
  std::vector<json> records;
  for (int i = 0; i < 2; ++i) {
    const json n = node("swarm-" + std::to_string(i + 1), i);
    const auto made = plugin.call("create", {{"cluster", cluster}, {"config", config}, {"node", n}});
    INFO(made.describe());
    REQUIRE(made.ok());
    CHECK(made.result["address"] == net + "." + std::to_string(i + 2));
    CHECK(made.result["runtime"] == "docker");
    // docker0's gateway, where its containers reach their node; masqueraded out of eth0.
    const std::string gateway = made.result["runtime_config"].value("bridge_gateway", "");
    CHECK_FALSE(gateway.empty());
    const std::string nat = s::run_checked({"nsenter", "--net=/var/run/netns/" + made.result["data"]["netns"].get<std::string>(), "iptables-save", "-t", "nat"}).out;
    CHECK_THAT(nat, Catch::Contains("-o eth0 -j MASQUERADE"));
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
    // Its TMPDIR (and so its containerd's, where a stack dump goes) is under the node's root.
    const std::string env_text = flotilla::test::proc::read_text("/proc/" + std::to_string(id->pid) + "/environ");
    const std::string tmpdir = (fs::path(records[i]["data"]["workdir"].get<std::string>()) / "docker" / "tmp").string();
    CHECK(env_text.find(std::string("TMPDIR=") + tmpdir + '\0') != std::string::npos);
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
  CHECK_FALSE(fs::exists(scratch.path() / "netns-registry"));
  CHECK(flotilla::test::host_iptables_rules() == host_rules_before);  // the rules were the namespaces' alone
}

TEST_CASE("netns driver: the lab's registry comes up with the nodes, serves pulls, heals on a rerun, and goes with the last node",
          "[plugins][netns][docker][integration]") {
  if (const std::string why = flotilla::test::DockerLab::unavailable_reason(); !why.empty()) FLOTILLA_SKIP(why);
  if (!s::find_executable("docker-registry")) FLOTILLA_SKIP("docker-registry is not installed; scripts/install-deps.sh installs it");
  if (!fs::exists("/usr/bin/docker") || !s::find_executable("curl")) FLOTILLA_SKIP("the docker CLI or curl is not installed");
  PluginHarness plugin("driver_netns");
  flotilla::test::proc::ScratchDir scratch("flt-reg");
  const json cluster = {{"name", "netns-reg"}, {"state_dir", scratch.path().string()}};
  const fs::path cache = scratch.path() / "cache";
  const std::string subnet = flotilla::test::resources::netns_subnet();
  const json config = {{"subnet", subnet}, {"registry_port", 5051}, {"registry_cache", cache.string()}};
  const std::string registry = subnet.substr(0, subnet.rfind('.')) + ".1:5051";
  std::vector<json> records(2);
  struct Destroy {  // every node goes, even when a check below fails
    PluginHarness& plugin;
    const json& cluster;
    const json& config;
    std::vector<json>& records;
    ~Destroy() {
      for (int i = 0; i < 2; ++i)
        (void)plugin.call("destroy", {{"cluster", cluster}, {"config", config}, {"node", node("swarm-" + std::to_string(i + 1), i)}, {"record", records[i]}});
    }
  } destroy{plugin, cluster, config, records};

  for (int i = 0; i < 2; ++i) {
    const auto made = plugin.call("create", {{"cluster", cluster}, {"config", config}, {"node", node("swarm-" + std::to_string(i + 1), i)}});
    INFO(made.describe());
    REQUIRE(made.ok());
    CHECK(made.result["runtime_config"]["registry"] == registry);
    records[i] = made.result;
  }
  s::HttpClient http;
  CHECK(http.get("http://" + registry + "/v2/").status == 200);
  const fs::path identity = scratch.path() / "netns-registry" / "registry.identity";
  const auto first = s::read_pid_file(identity);
  REQUIRE(first);
  // The namespaces have no default route: the bridge's /24 is all they reach.
  for (const auto& r : records) CHECK(s::run_checked({"ip", "-n", r["data"]["netns"], "-4", "route", "show", "default"}).out.empty());

  // One push through swarm-1's dockerd; a second run finds the content in the registry.
  const std::string script = std::string(FLOTILLA_SOURCE_DIR) + "/scripts/build-images.sh";
  const std::string host1 = records[0]["runtime_config"]["host"];
  const auto pushed = s::run_command({"bash", script, "--host", host1, "--registry", registry, "--tag", "regtest", "busybox"}, 120s);
  INFO(pushed.out << pushed.err);
  REQUIRE(pushed.ok());
  CHECK_THAT(pushed.out, Catch::Contains(registry + "/busybox:regtest: pushed"));
  const auto again = s::run_command({"bash", script, "--host", host1, "--registry", registry, "--tag", "regtest", "busybox"}, 120s);
  INFO(again.out << again.err);
  REQUIRE(again.ok());
  CHECK_THAT(again.out, Catch::Contains("busybox:regtest: up to date in " + registry));

  // swarm-2's dockerd pulls it from the registry; an image of no lab registry is out of reach.
  s::DockerClient swarm2({.node = "swarm-2", .host = records[1]["runtime_config"]["host"]});
  const std::string image = registry + "/busybox:regtest";
  REQUIRE_FALSE(swarm2.image_present(image));
  swarm2.ensure_image(image);
  CHECK(swarm2.image_present(image));
  CHECK_THROWS_AS(swarm2.ensure_image("busybox:latest", nullptr, 30s), s::DockerError);

  // A killed registry makes the nodes "stopped"; creating again starts it anew, with its images.
  REQUIRE(s::signal_process(*first, SIGKILL));
  REQUIRE(s::wait_until(5s, 50ms, [&] { return !s::is_running(*first); }));
  const auto seen = plugin.call("inspect", {{"cluster", cluster}, {"config", config}, {"node", node("swarm-2", 1)}, {"record", records[1]}});
  CHECK(seen.result["state"] == "stopped");
  const auto healed = plugin.call("create", {{"cluster", cluster}, {"config", config}, {"node", node("swarm-2", 1)}});
  INFO(healed.describe());
  REQUIRE(healed.ok());
  const auto second = s::read_pid_file(identity);
  REQUIRE(second);
  CHECK(second->pid != first->pid);
  CHECK(s::is_running(*second));
  REQUIRE(swarm2.call("DELETE", "/images/" + image).status == 200);
  swarm2.ensure_image(image);
  CHECK(swarm2.image_present(image));

  for (int i = 0; i < 2; ++i) {
    const auto gone = plugin.call("destroy", {{"cluster", cluster}, {"config", config}, {"node", node("swarm-" + std::to_string(i + 1), i)}, {"record", records[i]}});
    INFO(gone.describe());
    REQUIRE(gone.ok());
    CHECK(s::is_running(*second) == (i == 0));  // the registry goes with the last node
  }
  CHECK_FALSE(fs::exists(scratch.path() / "netns-registry"));
  CHECK_THROWS_AS(http.get("http://" + registry + "/v2/"), s::HttpError);
  // The images stay in the cache directory, as documented.
  CHECK(fs::exists(cache / "docker" / "registry" / "v2" / "repositories" / "busybox"));
}
