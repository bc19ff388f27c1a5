// The local driver, called through its C ABI.
#include "driver_local/node_processes.hpp"
#include "support/plugin_harness.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using flotilla::test::PluginHarness;
using nlohmann::json;
namespace proc = flotilla::test::proc;
using namespace std::chrono_literals;

json nodes(int n) {
  json out = json::array();
  for (int i = 0; i < n; ++i) out.push_back({{"name", "node-" + std::to_string(i + 1)}, {"slot", i}});
  return out;
}

json validate(const PluginHarness& plugin, const std::string& cidr, int n) {
  const auto out = plugin.call("validate", {{"cluster", {{"name", "t"}}}, {"config", {{"cidr", cidr}}}, {"nodes", nodes(n)}});
  INFO(out.describe());
  REQUIRE(out.ok());
  return out.result["errors"];
}

}  // namespace

TEST_CASE("local driver: manifest declares the cidr option", "[plugins][local]") {
  PluginHarness plugin("driver_local");
  CHECK(std::string(plugin.descriptor().name) == "local");
  CHECK(std::string(plugin.descriptor().kind) == "driver");
  const json schema = plugin.manifest()["schema"];
  CHECK(schema["cidr"]["type"] == "string");
  CHECK(schema["cidr"]["default"] == "127.77.0.0/24");
  CHECK(schema["cidr"]["description"].get<std::string>().size() > 10);
}

TEST_CASE("local driver: validate checks the cidr", "[plugins][local]") {
  PluginHarness plugin("driver_local");
  CHECK(validate(plugin, "127.77.0.0/24", 3).empty());
  CHECK(validate(plugin, "127.80.0.0/16", 1000).empty());
  CHECK(validate(plugin, "127.77.0.0/30", 2).empty());

  struct Bad {
    std::string cidr;
    int nodes;
    std::string says;
  };
  for (const Bad& bad : {Bad{"10.0.0.0/24", 1, "outside 127.0.0.0/8"}, Bad{"127.0.0.0/8", 1, "use a prefix from /16 to /30"},
                         Bad{"127.77.0.0/31", 1, "use a prefix from /16 to /30"},
                         Bad{"127.77.0.5/24", 1, "host bits set; write the network address: 127.77.0.0/24"},
                         Bad{"127.77.0.0/30", 3, "has room for 2 nodes but the topology needs 3"},
                         Bad{"127.77.0.0/24", 300, "use a larger network such as 127.77.0.0/23"},
                         Bad{"not-a-cidr", 1, "is not an IPv4 network"}, Bad{"127.77.0.0", 1, "is not an IPv4 network"},
                         Bad{"127.77.0.0/x", 1, "is not an IPv4 network"}}) {
    INFO(bad.cidr << " with " << bad.nodes << " nodes");
    const json errors = validate(plugin, bad.cidr, bad.nodes);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["key"] == "cidr");
    CHECK_THAT(errors[0]["message"].get<std::string>(), Catch::Contains(bad.says));
  }
}

TEST_CASE("local driver: create gives slot-based loopback addresses and a workdir", "[plugins][local]") {
  PluginHarness plugin("driver_local");
  proc::ScratchDir dir("flotilla-driver-local");
  const json cluster = {{"name", "t"}, {"state_dir", dir.path().string()}};
  const json config = {{"cidr", "127.77.0.0/24"}};

  const json node0 = {{"name", "infra"}, {"slot", 0}, {"workdir", (dir.path() / "nodes/infra").string()}};
  const auto created = plugin.call("create", {{"cluster", cluster}, {"config", config}, {"node", node0}});
  INFO(created.describe());
  REQUIRE(created.ok());
  CHECK(created.result["address"] == "127.77.0.1");
  CHECK(created.result["runtime"] == "process");
  CHECK(created.result["runtime_config"] == json::object());
  CHECK(created.result["data"]["cidr"] == "127.77.0.0/24");
  CHECK(fs::is_directory(dir.path() / "nodes/infra"));

  // Idempotent: the same node gets the same record.
  const auto again = plugin.call("create", {{"cluster", cluster}, {"config", config}, {"node", node0}});
  REQUIRE(again.ok());
  CHECK(again.result == created.result);

  // Without a workdir in the node, the driver uses <state_dir>/nodes/<name>.
  const json node5 = {{"name", "swarm-5"}, {"slot", 5}};
  const auto fifth = plugin.call("create", {{"cluster", cluster}, {"config", config}, {"node", node5}});
  REQUIRE(fifth.ok());
  CHECK(fifth.result["address"] == "127.77.0.6");
  CHECK(fs::is_directory(dir.path() / "nodes/swarm-5"));

  const auto too_far = plugin.call("create", {{"cluster", cluster},
                                              {"config", {{"cidr", "127.77.0.0/30"}}},
                                              {"node", {{"name", "x"}, {"slot", 2}, {"workdir", (dir.path() / "x").string()}}}});
  CHECK(too_far.status == FLT_INVALID);
  CHECK_THAT(too_far.error, Catch::Contains("does not fit in cidr 127.77.0.0/30"));

  const auto inspected = plugin.call("inspect", {{"cluster", cluster}, {"config", config}, {"node", node0}, {"record", created.result}});
  REQUIRE(inspected.ok());
  CHECK(inspected.result["state"] == "running");

  REQUIRE(plugin.call("destroy", {{"cluster", cluster}, {"config", config}, {"node", node0}, {"record", created.result}}).ok());
  CHECK_FALSE(fs::exists(dir.path() / "nodes/infra"));
  CHECK(plugin.call("inspect", {{"cluster", cluster}, {"config", config}, {"node", node0}}).result["state"] == "missing");
  // Destroying a missing node succeeds.
  CHECK(plugin.call("destroy", {{"cluster", cluster}, {"config", config}, {"node", node0}}).ok());
}

TEST_CASE("local driver: destroy ends workloads still running on the node", "[plugins][local][process]") {
  PluginHarness driver("driver_local");
  PluginHarness runtime("runtime_process");
  proc::ScratchDir dir("flotilla-driver-local");
  const json cluster = {{"name", "t"}, {"state_dir", dir.path().string()}};
  json node = {{"name", "n1"}, {"slot", 1}, {"workdir", (dir.path() / "nodes/n1").string()}};
  const auto created = driver.call("create", {{"cluster", cluster}, {"config", json::object()}, {"node", node}});
  REQUIRE(created.ok());
  node["address"] = created.result["address"];
  CHECK(node["address"] == "127.77.0.2");  // the default cidr

  const auto started = runtime.call("start", {{"node", node}, {"workload", {{"name", "left"}, {"command", {"/bin/sleep", "60"}}}}});
  REQUIRE(started.ok());
  const pid_t pid = started.result["record"]["pid"].get<pid_t>();
  // Whatever happens below, the workload does not outlive the test.
  struct Stop {
    const PluginHarness& rt;
    json req;
    ~Stop() { rt.call("stop", req); }
  } stop{runtime, {{"node", node}, {"record", started.result["record"]}, {"timeout_s", 1}}};

  const auto destroyed = driver.call("destroy", {{"cluster", cluster}, {"config", json::object()}, {"node", node}});
  INFO(destroyed.describe());
  REQUIRE(destroyed.ok());
  CHECK_FALSE(proc::running(pid));
  CHECK_FALSE(fs::exists(dir.path() / "nodes/n1"));
}

TEST_CASE("local driver: destroy refuses a workdir next to /", "[plugins][local]") {
  // Asked to destroy `/` and `/tmp`, the driver must refuse. Should that guard ever regress, it
  // would remove those trees and end every daemon working in them, so the calls are made in a
  // child process whose root is a scratch directory (chroot; as a non-root user, inside a user
  // namespace of its own), without /proc: a regression removes only the scratch files.
  PluginHarness plugin("driver_local");
  proc::ScratchDir root("flotilla-destroy-root");
  fs::create_directories(root.path() / "tmp");
  const fs::path canaries[] = {root.path() / "canary", root.path() / "tmp" / "canary"};
  for (const auto& c : canaries) std::ofstream(c) << "must survive\n";

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    const bool jailed = ::chroot(root.path().c_str()) == 0 ||
                        (::unshare(CLONE_NEWUSER) == 0 && ::chroot(root.path().c_str()) == 0);
    std::string out;
    if (!jailed || ::chdir("/") != 0) {
      out = std::string("cannot chroot: ") + std::strerror(errno);
    } else {
      for (const std::string bad : {"/", "/tmp"}) {
        const auto r = plugin.call("destroy", {{"cluster", {{"name", "t"}}}, {"config", json::object()}, {"node", {{"name", "n"}, {"workdir", bad}}}});
        out += bad + " " + std::to_string(r.status) + " " + r.error + "\n";
      }
    }
    [[maybe_unused]] const auto n = ::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[1024];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int wstatus = 0;
  ::waitpid(child, &wstatus, 0);
  if (out.starts_with("cannot chroot")) FLOTILLA_SKIP("the destroy guard test needs chroot or a user namespace: " << out);
  INFO(out);
  CHECK(WIFEXITED(wstatus));
  for (const std::string bad : {"/", "/tmp"})
    CHECK_THAT(out, Catch::Contains(bad + " " + std::to_string(FLT_INVALID) + " ") &&
                        Catch::Contains("refusing to remove node workdir `" + bad + "`: it is too close to /"));
  for (const auto& c : canaries) CHECK(fs::exists(c));
}

TEST_CASE("local driver: no option changes in place", "[plugins][local]") {
  PluginHarness plugin("driver_local");
  const json manifest = plugin.manifest();
  REQUIRE(manifest.contains("mutable_options"));
  // A new cidr moves every node's address: it forces a replacement.
  CHECK(manifest["mutable_options"] == json::array());
}

TEST_CASE("local driver: the processes of a node are its daemons working in its directory", "[plugins][local][process]") {
  proc::ScratchDir dir("flotilla-node-processes");
  const fs::path node = dir.path() / "nodes" / "n1";
  fs::create_directories(node / "workloads" / "w");
  const std::string in_node = "cd '" + (node / "workloads" / "w").string() + "' && exec sleep 60";
  proc::Child daemon({"/usr/bin/setsid", "/bin/sh", "-c", in_node});               // session leader, no terminal
  proc::Child plain({"/bin/sh", "-c", in_node});                                   // not a session leader
  proc::Child elsewhere({"/usr/bin/setsid", "/bin/sh", "-c", "cd / && exec sleep 60"});  // another directory
  // Wait until the three have changed directory and exec'd sleep.
  const auto found_daemon = [&] {
    for (const auto& p : flotilla::local::node_processes(node))
      if (p.pid == daemon.pid() && p.name == "sleep") return true;
    return false;
  };
  REQUIRE(proc::wait_until(found_daemon, 5s));
  const auto found = flotilla::local::node_processes(node);
  REQUIRE(found.size() == 1);
  CHECK(found[0].pid == daemon.pid());
  CHECK(flotilla::local::node_processes(dir.path() / "nodes" / "n2").empty());

  REQUIRE(flotilla::local::end_processes(found, 5s));
  CHECK(daemon.wait_exit(5s).has_value());
  CHECK(proc::running(plain.pid()));
  CHECK(proc::running(elsewhere.pid()));
}
