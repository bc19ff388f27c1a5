// The haproxy plugin called on the engine's real addon host (tests/support/engine_addon_host.hpp:
// the runtime broker and the process runtime on local-driver nodes), which runs the real
// HAProxy the addon asks for. Covers apply, scaling through the runtime API (same worker, no
// reload), a reload for a new route, refusal of hostile names, and destroy.
#include "addon_haproxy/config.hpp"
#include "addon_haproxy/runtime_api.hpp"
#include "support/engine_addon_host.hpp"
#include "support/haproxy_lab.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <set>

namespace {

namespace hap = flotilla::haproxy;
namespace lab = flotilla::test::haproxy_lab;
namespace proc = flotilla::test::proc;
namespace fs = std::filesystem;
using flotilla::test::EngineAddonHost;
using json = nlohmann::json;
using namespace std::chrono_literals;

/// Four instances of "hello/v1" (a real HAProxy answering "b1".."b4") and the addon's request.
struct PluginLab {
  proc::ScratchDir dir{"flt-happ"};
  std::string address = lab::test_address(2);  // swarm-1's
  std::vector<int> ports;
  int ingress_port = 0, stats_port = 0;
  std::unique_ptr<lab::HaproxyProcess> instances;
  // infra (.1), swarm-1 (.2) and swarm-2 (.3), brought up by the engine.
  EngineAddonHost host{"haproxy", dir.path() / "cluster", lab::test_address(0) + "/24", 2};

  PluginLab() {
    std::set<int> used;
    while (used.size() < 6) used.insert(lab::free_port(address));
    ports.assign(used.begin(), used.end());
    ingress_port = ports[4];
    stats_port = ports[5];
    ports.resize(4);
    {
      std::ofstream out(dir.path() / "instances.cfg");
      out << lab::instances_config(address, ports);
    }
    instances = std::make_unique<lab::HaproxyProcess>(
        std::vector<std::string>{"-f", (dir.path() / "instances.cfg").string()}, dir.path() / "instances.log");
    REQUIRE(proc::wait_until(
        [&] {
          try {
            return lab::HttpClient(address, ports.back()).get("/").status == 200;
          } catch (const std::runtime_error&) {
            return false;
          }
        },
        10s));
  }

  [[nodiscard]] json service(const std::string& name, const std::vector<int>& ids) const {
    json inst = json::array();
    for (int i : ids) {
      inst.push_back({{"id", name + "#" + std::to_string(i)}, {"instance", i}, {"node", "swarm-1"}, {"address", address},
                      {"port", ports[i - 1]}, {"state", "running"}});
    }
    return {{"name", name}, {"dns", "x"}, {"port", 8000}, {"health", "/health"}, {"replicas", ids.size()}, {"instances", inst}};
  }

  /// The engine's request for the addon, placed on swarm-1 and, with `two_nodes`, swarm-2.
  [[nodiscard]] json request(const json& services, bool two_nodes = false) {
    std::vector<std::string> placed = {"swarm-1"};
    if (two_nodes) placed.push_back("swarm-2");
    const json config = {{"port", ingress_port}, {"stats_port", stats_port}, {"strip_prefix", true}, {"drain_timeout_s", 5}, {"up_timeout_s", 5}};
    return host.request(config, placed, services);
  }

  /// The config file the addon wrote (through put_file), as recorded in its state.
  [[nodiscard]] fs::path config_path() { return host.addon_state()["nodes"]["swarm-1"]["config"].get<std::string>(); }

  [[nodiscard]] hap::RuntimeApi admin() const { return hap::RuntimeApi((host.addon_dir() / "swarm-1" / "admin.sock").string()); }

  /// Which instances answered `n` requests under `prefix` through the ingress on `ingress_address`.
  [[nodiscard]] std::set<std::string> answered_by(const std::string& prefix, int n, const std::string& ingress_address = {}) const {
    lab::HttpClient c(ingress_address.empty() ? address : ingress_address, ingress_port);
    std::set<std::string> out;
    for (int i = 0; i < n; ++i) {
      const auto r = c.get(prefix + "/x");
      REQUIRE(r.status == 200);
      out.insert(r.body);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("haproxy plugin on the engine's host: scales without a reload, reloads for a new route, destroys", "[haproxy][real]") {
  PluginLab lab;
  CHECK(lab.host.plugin().name == "haproxy");
  const json manifest = lab.host.plugin().manifest;
  CHECK(manifest["placement"] == json::parse(R"({"roles":["swarm"],"mode":"first"})"));
  CHECK(manifest["schema"]["port"]["default"] == 8080);
  CHECK(manifest["schema"]["stats_port"]["default"] == 8404);

  auto [st, out] = lab.host.call("apply", lab.request(json::array({lab.service("hello/v1", {1, 2})})));
  INFO(out);
  REQUIRE(st == FLT_OK);
  const json result = json::parse(out);
  const std::string base = "http://" + lab.address + ":" + std::to_string(lab.ingress_port);
  CHECK(result["endpoints"]["rest"] == base);
  CHECK(result["endpoints"]["haproxy-stats"] == "http://" + lab.address + ":" + std::to_string(lab.stats_port) + "/stats");
  CHECK(result["messages"] == json::array({"Service available at " + base + "/hello/v1"}));
  const json reg = result["outputs"]["registrations"][0];
  CHECK(reg["name"] == "rest");
  CHECK(reg["id"] == "rest-swarm-1");
  CHECK(reg["port"] == lab.ingress_port);
  CHECK(result["outputs"]["metrics_targets"][0]["targets"][0] == lab.address + ":" + std::to_string(lab.stats_port));
  CHECK(lab.answered_by("/hello/v1", 6) == std::set<std::string>{"b1", "b2"});
  CHECK(lab::HttpClient(lab.address, lab.ingress_port).get(std::string(hap::kMonitorPath)).status == 200);

  const pid_t master = lab.host.pid_of("swarm-1", "haproxy");
  const int worker = lab.admin().worker_pid();
  REQUIRE(master > 0);
  REQUIRE(worker > 0);

  SECTION("more and fewer instances go through the runtime API: same master, same worker") {
    std::tie(st, out) = lab.host.call("apply", lab.request(json::array({lab.service("hello/v1", {1, 2, 3, 4})})));
    INFO(out);
    REQUIRE(st == FLT_OK);
    CHECK(lab.answered_by("/hello/v1", 8) == std::set<std::string>{"b1", "b2", "b3", "b4"});
    std::tie(st, out) = lab.host.call("apply", lab.request(json::array({lab.service("hello/v1", {3})})));
    REQUIRE(st == FLT_OK);
    CHECK(lab.answered_by("/hello/v1", 4) == std::set<std::string>{"b3"});
    CHECK(lab.host.pid_of("swarm-1", "haproxy") == master);
    CHECK(lab.admin().worker_pid() == worker);
    // The file holds what runs, so a later reload keeps it.
    const std::string cfg = proc::read_text(lab.config_path());
    CHECK(cfg.find("server " + hap::server_name(3, lab.address, lab.ports[2])) != std::string::npos);
    CHECK(cfg.find("server " + hap::server_name(1, lab.address, lab.ports[0])) == std::string::npos);
    const json state = lab.host.addon_state()["nodes"]["swarm-1"];
    CHECK(state["servers"]["hello.v1"] == json::array({hap::server_name(3, lab.address, lab.ports[2])}));
  }

  SECTION("a new service reloads: same master, new worker, both routes served") {
    std::tie(st, out) = lab.host.call(
        "apply", lab.request(json::array({lab.service("hello/v1", {1, 2}), lab.service("other", {4})})));
    INFO(out);
    REQUIRE(st == FLT_OK);
    CHECK(json::parse(out)["messages"].size() == 2);
    CHECK(lab.host.pid_of("swarm-1", "haproxy") == master);
    CHECK(lab.admin().worker_pid() != worker);
    CHECK(lab.answered_by("/other", 3) == std::set<std::string>{"b4"});
    CHECK(lab.answered_by("/hello/v1", 4) == std::set<std::string>{"b1", "b2"});
  }

  SECTION("servers changed by hand are brought back by the next apply, without a reload") {
    const std::string b2 = "hello.v1/" + hap::server_name(2, lab.address, lab.ports[1]);
    lab.admin().run("set server " + b2 + " state maint");
    lab.admin().run("del server " + b2, "Server deleted.");
    CHECK(lab.answered_by("/hello/v1", 4) == std::set<std::string>{"b1"});
    std::tie(st, out) = lab.host.call("apply", lab.request(json::array({lab.service("hello/v1", {1, 2})})));
    INFO(out);
    REQUIRE(st == FLT_OK);
    CHECK(lab.answered_by("/hello/v1", 6) == std::set<std::string>{"b1", "b2"});
    CHECK(lab.admin().worker_pid() == worker);
    bool warned = false;
    for (const auto& line : lab.host.logs()) warned = warned || line.find("differ from what the last apply left") != std::string::npos;
    CHECK(warned);
  }

  SECTION("hostile names are reported by validate and refused by apply; the running config stays") {
    json svc = lab.service("hello/v1", {1});
    svc["name"] = "evil\n    server x 127.0.0.1:1";
    const json req = lab.request(json::array({lab.service("hello/v1", {1, 2}), svc}));
    std::tie(st, out) = lab.host.call("validate", req);
    REQUIRE(st == FLT_OK);
    const json errors = json::parse(out)["errors"];
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["message"].get<std::string>().find("\"evil\\n    server x 127.0.0.1:1\"") != std::string::npos);
    const std::string before = proc::read_text(lab.config_path());
    std::tie(st, out) = lab.host.call("apply", req);
    CHECK(st == FLT_INVALID);
    CHECK(out.find("evil") != std::string::npos);
    CHECK(proc::read_text(lab.config_path()) == before);
    CHECK(lab.answered_by("/hello/v1", 4) == std::set<std::string>{"b1", "b2"});
  }

  SECTION("destroy stops HAProxy and removes its files") {
    const fs::path config = lab.config_path();
    REQUIRE(fs::exists(config));
    std::tie(st, out) = lab.host.call("destroy", lab.request(json::array()));
    INFO(out);
    REQUIRE(st == FLT_OK);
    CHECK(lab.host.pid_of("swarm-1", "haproxy") == -1);
    CHECK_FALSE(proc::running(master));
    CHECK_FALSE(proc::running(worker));
    CHECK_FALSE(fs::exists(lab.host.addon_dir() / "swarm-1"));
    CHECK_FALSE(fs::exists(config));
    CHECK(lab.host.addon_state() == json::object());
  }
}

TEST_CASE("haproxy plugin on the engine's host: placed on two nodes, each runs its own HAProxy with the same routes", "[haproxy][real]") {
  PluginLab lab;
  const std::string second = lab::test_address(3);
  auto [st, out] = lab.host.call("apply", lab.request(json::array({lab.service("hello/v1", {1, 2})}), true));
  INFO(out);
  REQUIRE(st == FLT_OK);
  const json result = json::parse(out);
  CHECK(result["endpoints"]["rest"] == "http://" + lab.address + ":" + std::to_string(lab.ingress_port));
  CHECK(result["endpoints"]["rest-swarm-2"] == "http://" + second + ":" + std::to_string(lab.ingress_port));
  CHECK(result["outputs"]["registrations"].size() == 2);
  CHECK(result["outputs"]["registrations"][1]["id"] == "rest-swarm-2");
  CHECK(result["outputs"]["metrics_targets"][0]["targets"].size() == 2);
  CHECK(lab.answered_by("/hello/v1", 4) == std::set<std::string>{"b1", "b2"});
  CHECK(lab.answered_by("/hello/v1", 4, second) == std::set<std::string>{"b1", "b2"});
  const pid_t first_master = lab.host.pid_of("swarm-1", "haproxy");
  REQUIRE(lab.host.pid_of("swarm-2", "haproxy") > 0);

  // Placement shrinks back to swarm-1: swarm-2's HAProxy goes, swarm-1's is left alone.
  std::tie(st, out) = lab.host.call("apply", lab.request(json::array({lab.service("hello/v1", {1, 2})})));
  REQUIRE(st == FLT_OK);
  CHECK(lab.host.pid_of("swarm-2", "haproxy") == -1);
  CHECK(lab.host.pid_of("swarm-1", "haproxy") == first_master);
  CHECK_FALSE(fs::exists(lab.host.addon_dir() / "swarm-2"));
  CHECK_FALSE(lab.host.addon_state()["nodes"].contains("swarm-2"));
  CHECK_THROWS(lab::HttpClient(second, lab.ingress_port, 1s).get("/hello/v1"));
}
