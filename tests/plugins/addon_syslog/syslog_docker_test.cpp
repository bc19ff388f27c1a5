// The syslog addon on Docker nodes of the lab: a service container writes to stdout and
// stderr; apply and `flotilla logs` (run_logs_command asking the plugin as the CLI does) read
// its lines through the Engine API into the store and show them under the service, each once,
// with later lines added by later reads. Validate names a collector placed where the process
// nodes' shippers cannot use it.
#include "logs.hpp"
#include "plugin_host.hpp"

#include "flotilla/support/wait.hpp"
#include "support/docker_addon_host.hpp"
#include "support/plugin_harness.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <thread>

namespace s = flotilla::support;
using flotilla::test::DockerAddonHost;
using flotilla::test::call_ok;
using flotilla::test::DockerLab;
using flotilla::test::PluginHarness;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// `flotilla logs` for `service` over the addon request `req`, as the CLI asks it.
std::string logs_of(const json& req, const std::string& service) {
  static const auto plugin = flotilla::load_plugin(std::filesystem::path(FLOTILLA_PLUGIN_DIR) / "addon_syslog.so");
  REQUIRE(plugin);
  flotilla::LogsOptions o;
  o.service = service;
  std::ostringstream out, err;
  const int rc = flotilla::run_logs_command(o, [&](const json& args, const std::function<bool()>& stop, const std::function<void(std::string_view)>& on_part) {
    json request = req;
    request["question"] = "logs";
    request["args"] = args;
    flotilla::CallHooks hooks;
    hooks.instance = "syslog";
    hooks.cancelled = stop;
    return flotilla::call_query(*plugin, request, hooks, on_part);
  }, out, err);
  INFO(err.str());
  CHECK(rc == flotilla::kLogsOk);
  return out.str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("syslog on Docker nodes: a container's stdout and stderr lines reach the store and `flotilla logs`, each once",
          "[syslog][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const json nodes = DockerAddonHost::lab_nodes(*lab, {"infra", "swarm", "swarm"}, "lab");
  const std::filesystem::path dir = "/tmp/flotilla-syslog-docker-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);

  // A service instance as the engine would run it on swarm-1: a line a second on stdout.
  PluginHarness runtime("runtime_docker");
  const json workload = {{"name", "service-hello-v1-1"},
                         {"owner", "service:hello/v1"},
                         {"image", DockerLab::kImage},
                         {"cmd", {"/bin/sh", "-c", "echo started-on-stdout; echo trouble-on-stderr >&2; i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done"}}};
  const auto started = runtime.call("start", {{"node", nodes[1]}, {"workload", workload}, {"cluster", {{"name", "lab"}}}});
  REQUIRE(started.ok());
  struct Stop {
    PluginHarness& rt;
    json node, record;
    ~Stop() { (void)rt.call("stop", {{"node", node}, {"record", record}, {"timeout_s", 1}, {"purge", true}}); }
  } stop{runtime, nodes[1], started.result["record"]};

  DockerAddonHost host("addon_syslog", "syslog", nodes);
  json req = host.request(json::object(), {"infra"}, (dir / "addon").string());
  req["cluster"]["bin_dir"] = std::string(FLOTILLA_BINARY_DIR) + "/bin";
  auto [vst, vout] = host.call("validate", req);
  REQUIRE(vst == FLT_OK);
  const json verrors = json::parse(vout)["errors"];
  for (const auto& e : verrors)
    if (e["key"] == "plugin") FLOTILLA_SKIP(e["message"].get<std::string>());
  CHECK(verrors.empty());

  call_ok(host, "apply", req);
  CHECK(std::filesystem::is_directory(dir / "addon" / "docker" / "store" / "hello-v1"));

  // Every read takes what the container wrote since the last one: read until its first tick.
  std::string first;
  const bool ticked = s::wait_until(15s, 200ms, [&] { return count(first = logs_of(req, "hello/v1"), "tick-0\n") > 0; });
  INFO("awaited: tick-0 of the container in `flotilla logs`; got: " << first);
  REQUIRE(ticked);
  CHECK(count(first, "started-on-stdout") == 1);
  CHECK(count(first, "trouble-on-stderr") == 1);
  CHECK_THAT(first, Catch::Contains("swarm-1"));
  CHECK(count(first, "tick-0\n") == 1);

  // Later lines come with a later read, and nothing read before comes twice.
  std::string second;
  const bool more = s::wait_until(15s, 200ms, [&] { return count(second = logs_of(req, "hello/v1"), "tick-") > count(first, "tick-"); });
  INFO("awaited: a later tick than the first read's; got: " << second);
  REQUIRE(more);
  CHECK(count(second, "started-on-stdout") == 1);
  CHECK(count(second, "tick-0\n") == 1);
  CHECK(count(second, "tick-") > count(first, "tick-"));

  auto [dst, dout] = host.call("destroy", req);
  CHECK(dst == FLT_OK);
  std::filesystem::remove_all(dir);
}

TEST_CASE("syslog validate: a collector on a Docker node cannot serve process nodes' shippers", "[syslog]") {
  PluginHarness plugin("addon_syslog");
  json req = {{"addon", {{"name", "syslog"}, {"config", json::object()}, {"nodes", {"infra"}}, {"dir", "/tmp/x"}, {"workload_prefix", "addon-syslog-"}}},
              {"nodes",
               {{{"name", "infra"}, {"address", "10.0.0.2"}, {"runtime", "docker"}},
                {{"name", "swarm-1"}, {"address", "10.0.0.3"}, {"runtime", "process"}}}}};
  const auto r = plugin.call("validate", req);
  REQUIRE(r.ok());
  bool named = false;
  for (const auto& e : r.result["errors"])
    if (e["key"] == "placement") named = e["message"].get<std::string>().find("node infra") != std::string::npos;
  CHECK(named);

  // Every node on Docker: nothing runs on the nodes, so no collector is needed anywhere.
  req["nodes"][1]["runtime"] = "docker";
  const auto all_docker = plugin.call("validate", req);  // a named result: the loop must not outlive it
  for (const auto& e : all_docker.result["errors"]) CHECK(e["key"] == "plugin");
  req["nodes"][1]["runtime"] = "lxc";
  const auto bad = plugin.call("validate", req);
  bool lxc = false;
  for (const auto& e : bad.result["errors"]) lxc = lxc || e["message"].get<std::string>().find("swarm-1 (runtime `lxc`)") != std::string::npos;
  CHECK(lxc);
}
