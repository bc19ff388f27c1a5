// The prometheus-cadvisor plugin loaded through the C ABI, driven by a fake engine host that
// runs the real Prometheus and node_exporter processes the addon asks for (tests/support/
// fake_process_host.hpp). Covers apply, growth without restart, reload on a new job, removal
// of an exporter, and destroy.
#include "support/fake_process_host.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

namespace fx = flotilla::test::prom;
using flotilla::test::FakeProcessHost;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// A /24 of loopback addresses of this test run's own (127.81.20-189.0; the syslog tests use 200 and up),
/// so fixed ports do not clash.
std::string subnet() { return "127.81." + std::to_string(20 + getpid() % 170) + "."; }

json make_node(const std::string& name, const std::string& role, int host) {
  return json{{"name", name}, {"group", role}, {"roles", {role}}, {"address", subnet() + std::to_string(host)}, {"runtime", "process"}, {"state", "running"}};
}

json make_request(const fx::fs::path& dir, int swarm, const json& config, const json& addons = json::object()) {
  json nodes = json::array({make_node("infra", "infra", 1)});
  for (int i = 1; i <= swarm; ++i) nodes.push_back(make_node("swarm-" + std::to_string(i), "swarm", 1 + i));
  return json{{"addon", {{"name", "prometheus-cadvisor"}, {"plugin", "prometheus-cadvisor"}, {"config", config}, {"nodes", {"infra"}}, {"dir", (dir / "addon").string()}}},
              {"cluster", {{"name", "fake-host"}, {"state_dir", dir.string()}}},
              {"nodes", nodes},
              {"services", json::array()},
              {"addons", addons},
              {"components", json::array()}};
}

double reload_timestamp(const std::string& base_url) {
  const auto body = fx::http(base_url + "/metrics").body;
  const std::string key = "\nprometheus_config_last_reload_success_timestamp_seconds ";
  const auto pos = body.find(key);
  return pos == std::string::npos ? -1 : std::stod(body.substr(pos + key.size(), body.find('\n', pos + 1) - pos - key.size()));
}

}  // namespace

TEST_CASE("prometheus-cadvisor plugin through a fake host: grows without restart, reloads on a new job, destroys", "[prometheus-cadvisor][server]") {
  fx::TempDir dir("flotilla-prom-plugin");
  FakeProcessHost host(std::string(FLOTILLA_PLUGIN_DIR) + "/addon_prometheus_cadvisor.so", dir.path());
  CHECK(std::string(host.descriptor().name) == "prometheus-cadvisor");
  CHECK(std::string(host.descriptor().kind) == "addon");

  // 10 s: the shortest interval for which Prometheus 2.42 always scrapes a new target within two
  // intervals (its discovery hand-over runs on fixed 5 s tickers).
  const json config{{"scrape_services", false}, {"scrape_interval", "10s"}};
  const std::string base_url = "http://" + subnet() + "1:9090";
  const auto interval = 10s;

  SECTION("validate reports option errors with their keys") {
    auto [st, out] = host.call("validate", make_request(dir.path(), 1, json{{"retention", "forever"}}));
    REQUIRE(st == FLT_OK);
    const json errors = json::parse(out)["errors"];
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["key"] == "retention");
    auto [st2, out2] = host.call("apply", make_request(dir.path(), 1, json{{"retention", "forever"}}));
    CHECK(st2 == FLT_INVALID);
    CHECK(out2.find("retention") != std::string::npos);
  }

  SECTION("apply, add a node, add a job, drop a node, destroy") {
    auto [st, out] = host.call("apply", make_request(dir.path(), 1, config));
    INFO(out);
    REQUIRE(st == FLT_OK);
    const json result = json::parse(out);
    CHECK(result["endpoints"]["prometheus"] == base_url);
    CHECK(result["messages"] == json::array({"Prometheus at " + base_url}));

    const pid_t prom_pid = host.pid_of("infra", "prometheus");
    REQUIRE(prom_pid > 0);
    const std::string infra = subnet() + "1:9100", swarm1 = subnet() + "2:9100", swarm2 = subnet() + "3:9100";
    const auto first = fx::wait_until([&] { return fx::all_healthy(base_url, {{"prometheus", {subnet() + "1:9090"}}, {"node", {infra, swarm1}}}); }, 2 * interval);
    INFO("healthy after apply: " << first.count() << " s");
    CHECK(first.count() >= 0);
    const double loaded_at = reload_timestamp(base_url);
    REQUIRE(loaded_at > 0);

    // A node joins: a new exporter, a new file_sd content, and neither a restart nor a reload.
    host.clear_ops();
    std::tie(st, out) = host.call("apply", make_request(dir.path(), 2, config));
    REQUIRE(st == FLT_OK);
    CHECK(host.pid_of("infra", "prometheus") == prom_pid);
    CHECK(host.pid_of("swarm-2", "node-exporter") > 0);
    const auto second = fx::wait_until([&] { return fx::all_healthy(base_url, {{"node", {infra, swarm1, swarm2}}}); }, 2 * interval);
    INFO("new node healthy after apply: " << second.count() << " s");
    CHECK(second.count() >= 0);
    CHECK(reload_timestamp(base_url) == loaded_at);
    const auto up = fx::query_up(base_url);
    CHECK(up.at({"node", swarm2}) == "1");
    CHECK(up.at({"node", infra}) == "1");

    // Another addon publishes a metrics target: a new job, so a reload, still the same pid.
    const json addons{{"haproxy", {{"outputs", {{"metrics_targets", {{{"job", "haproxy"}, {"targets", {subnet() + "1:9090"}}}}}}}}}};
    std::this_thread::sleep_for(1100ms);  // the reload timestamp has a resolution of one second
    std::tie(st, out) = host.call("apply", make_request(dir.path(), 2, config, addons));
    INFO(out);
    REQUIRE(st == FLT_OK);
    CHECK(host.pid_of("infra", "prometheus") == prom_pid);
    CHECK(reload_timestamp(base_url) > loaded_at);
    CHECK(fx::wait_until([&] { return fx::all_healthy(base_url, {{"haproxy", {subnet() + "1:9090"}}}); }, 2 * interval).count() >= 0);

    // Applying the same inputs again starts nothing and reloads nothing.
    const double reloaded_at = reload_timestamp(base_url);
    host.clear_ops();
    std::tie(st, out) = host.call("apply", make_request(dir.path(), 2, config, addons));
    REQUIRE(st == FLT_OK);
    CHECK(reload_timestamp(base_url) == reloaded_at);
    CHECK(host.pid_of("infra", "prometheus") == prom_pid);

    // swarm-2 leaves: its exporter is stopped and its target leaves the node job.
    const pid_t exporter2 = host.pid_of("swarm-2", "node-exporter");
    std::tie(st, out) = host.call("apply", make_request(dir.path(), 1, config, addons));
    REQUIRE(st == FLT_OK);
    CHECK(host.pid_of("swarm-2", "node-exporter") == -1);
    CHECK_FALSE(fx::pid_alive(exporter2));
    CHECK(fx::wait_until([&] { return fx::target_health(base_url)["node"].count(swarm2) == 0; }, 2 * interval).count() >= 0);

    // destroy stops everything it started and forgets its state.
    const pid_t exporter1 = host.pid_of("swarm-1", "node-exporter");
    std::tie(st, out) = host.call("destroy", make_request(dir.path(), 1, config, addons));
    INFO(out);
    REQUIRE(st == FLT_OK);
    CHECK_FALSE(fx::pid_alive(prom_pid));
    CHECK_FALSE(fx::pid_alive(exporter1));
    CHECK(host.state() == json::object());
    CHECK_FALSE(fx::fs::exists(host.files_dir("infra") / "prometheus.yml"));
    CHECK_FALSE(fx::fs::exists(dir.path() / "addon" / "data"));
  }
}

TEST_CASE("prometheus-cadvisor plugin through a fake host: SIGHUP reloads when the lifecycle API is off", "[prometheus-cadvisor][server]") {
  fx::TempDir dir("flotilla-prom-hup");
  FakeProcessHost host(std::string(FLOTILLA_PLUGIN_DIR) + "/addon_prometheus_cadvisor.so", dir.path());
  // A Prometheus started without --web.enable-lifecycle answers 403 to POST /-/reload.
  host.rewrite_workloads([](json& w) {
    json kept = json::array();
    for (const auto& a : w["command"])
      if (a != "--web.enable-lifecycle") kept.push_back(a);
    w["command"] = kept;
  });
  const json config{{"scrape_services", false}, {"exporter_roles", {"infra"}}};
  const std::string base_url = "http://" + subnet() + "1:9090";

  auto [st, out] = host.call("apply", make_request(dir.path(), 1, config));
  INFO(out);
  REQUIRE(st == FLT_OK);
  const pid_t prom_pid = host.pid_of("infra", "prometheus");
  REQUIRE(prom_pid > 0);
  REQUIRE(fx::http(base_url + "/-/reload", true).status == 403);
  const double loaded_at = reload_timestamp(base_url);

  // A new job needs the configuration reloaded: the plugin falls back to SIGHUP.
  std::this_thread::sleep_for(1100ms);
  host.clear_ops();
  const json addons{{"etcd", {{"outputs", {{"metrics_targets", {{{"job", "etcd"}, {"targets", {subnet() + "1:9090"}}}}}}}}}};
  std::tie(st, out) = host.call("apply", make_request(dir.path(), 1, config, addons));
  INFO(out);
  REQUIRE(st == FLT_OK);
  bool signalled = false;
  for (const auto& op : host.ops()) signalled = signalled || (op.op == "signal" && op.name == "prometheus");
  CHECK(signalled);
  CHECK(reload_timestamp(base_url) > loaded_at);
  CHECK(host.pid_of("infra", "prometheus") == prom_pid);
  const auto loaded = json::parse(fx::http(base_url + "/api/v1/status/config").body);
  CHECK(loaded["data"]["yaml"].get<std::string>().find("job_name: etcd") != std::string::npos);

  std::tie(st, out) = host.call("destroy", make_request(dir.path(), 1, config, addons));
  REQUIRE(st == FLT_OK);
  CHECK_FALSE(fx::pid_alive(prom_pid));
}
