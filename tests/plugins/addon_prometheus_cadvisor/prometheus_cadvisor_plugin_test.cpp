// The prometheus-cadvisor plugin called on the engine's real addon host (tests/support/
// engine_addon_host.hpp: the runtime broker and the process runtime on local-driver nodes),
// which runs the real Prometheus and node_exporter processes the addon asks for. Covers apply,
// growth without restart, reload on a new job, removal of an exporter, and destroy; the SIGHUP
// fallback runs on the one fake left, sighup_only_host.hpp.
#include "support/engine_addon_host.hpp"
#include "support/prometheus_fixture.hpp"
#include "support/sighup_only_host.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <ctime>

namespace fx = flotilla::test::prom;
using flotilla::test::EngineAddonHost;
using flotilla::test::SighupOnlyHost;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// A /24 of loopback addresses reserved for this test process ("127.A.B."), so Prometheus'
/// 9090 and node_exporter's 9100 on it are free.
std::string subnet() { return flotilla::test::resources::process_subnet("cluster").prefix(); }

/// The engine's request for the addon on infra, with the nodes infra and swarm-1..swarm-<swarm>.
json make_request(EngineAddonHost& host, int swarm, const json& config, const json& addons = json::object()) {
  std::vector<std::string> nodes = {"infra"};
  for (int i = 1; i <= swarm; ++i) nodes.push_back("swarm-" + std::to_string(i));
  return host.request(config, {"infra"}, json::array(), addons, nodes);
}

// 10 s: Prometheus 2.42 hands a new target to its scrapers on fixed 5 s tickers and scrapes
// it first at its slot within the interval, so two intervals are the worst case; every wait
// allows three.
constexpr auto kInterval = 10s;

/// Polls `ok` for three scrape intervals; a timeout fails the test case naming what was awaited.
void await(const std::string& what, const std::function<bool()>& ok) {
  const auto took = fx::wait_until(ok, 3 * kInterval);
  INFO("awaited for " << (3 * kInterval).count() << " s (three scrape intervals): " << what);
  CHECK(took.count() >= 0);
}

double reload_timestamp(const std::string& base_url) {
  const auto body = fx::http(base_url + "/metrics").body;
  const std::string key = "\nprometheus_config_last_reload_success_timestamp_seconds ";
  const auto pos = body.find(key);
  return pos == std::string::npos ? -1 : std::stod(body.substr(pos + key.size(), body.find('\n', pos + 1) - pos - key.size()));
}

/// Waits until the wall clock's second has passed `timestamp`: a reload in the same second as the
/// last one would leave Prometheus' reload timestamp (whole seconds) unchanged.
void wait_for_next_second(double timestamp) {
  INFO("awaited: the wall clock past the last reload's second " << timestamp);
  REQUIRE(fx::wait_until([&] { return static_cast<double>(std::time(nullptr)) > timestamp; }, 3s).count() >= 0);
}

}  // namespace

TEST_CASE("prometheus-cadvisor plugin on the engine's host: grows without restart, reloads on a new job, destroys", "[prometheus-cadvisor][server]") {
  fx::TempDir dir("flotilla-prom-plugin");
  // infra (.1), swarm-1 (.2) and swarm-2 (.3), brought up by the engine.
  EngineAddonHost host("prometheus-cadvisor", dir.path() / "cluster", subnet() + "0/24", 2);
  CHECK(host.plugin().name == "prometheus-cadvisor");
  CHECK(host.plugin().kind == "addon");

  const json config{{"scrape_services", false}, {"scrape_interval", "10s"}};
  const std::string base_url = "http://" + subnet() + "1:9090";

  SECTION("validate reports option errors with their keys") {
    auto [st, out] = host.call("validate", make_request(host, 1, json{{"retention", "forever"}}));
    REQUIRE(st == FLT_OK);
    const json errors = json::parse(out)["errors"];
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["key"] == "retention");
    auto [st2, out2] = host.call("apply", make_request(host, 1, json{{"retention", "forever"}}));
    CHECK(st2 == FLT_INVALID);
    CHECK(out2.find("retention") != std::string::npos);
  }

  SECTION("apply, add a node, add a job, drop a node, destroy") {
    auto [st, out] = host.call("apply", make_request(host, 1, config));
    INFO(out);
    REQUIRE(st == FLT_OK);
    const json result = json::parse(out);
    CHECK(result["endpoints"]["prometheus"] == base_url);
    CHECK(result["messages"] == json::array({"Prometheus at " + base_url}));

    const pid_t prom_pid = host.pid_of("infra", "prometheus");
    REQUIRE(prom_pid > 0);
    const std::string infra = subnet() + "1:9100", swarm1 = subnet() + "2:9100", swarm2 = subnet() + "3:9100";
    await("Prometheus and the exporters of infra and swarm-1 scraped and up",
          [&] { return fx::all_healthy(base_url, {{"prometheus", {subnet() + "1:9090"}}, {"node", {infra, swarm1}}}); });
    const double loaded_at = reload_timestamp(base_url);
    REQUIRE(loaded_at > 0);

    // A node joins: a new exporter, a new file_sd content, and neither a restart nor a reload.
    host.clear_ops();
    std::tie(st, out) = host.call("apply", make_request(host, 2, config));
    REQUIRE(st == FLT_OK);
    CHECK(host.pid_of("infra", "prometheus") == prom_pid);
    CHECK(host.pid_of("swarm-2", "node-exporter") > 0);
    await("the exporters of infra, swarm-1 and the new swarm-2 scraped and up",
          [&] { return fx::all_up(base_url, {{"node", {infra, swarm1, swarm2}}}); });
    CHECK(reload_timestamp(base_url) == loaded_at);
    const auto up = fx::query_up(base_url);
    CHECK(up.at({"node", swarm2}) == "1");
    CHECK(up.at({"node", infra}) == "1");

    // Another addon publishes a metrics target: a new job, so a reload, still the same pid.
    const json addons{{"haproxy", {{"outputs", {{"metrics_targets", {{{"job", "haproxy"}, {"targets", {subnet() + "1:9090"}}}}}}}}}};
    wait_for_next_second(loaded_at);
    std::tie(st, out) = host.call("apply", make_request(host, 2, config, addons));
    INFO(out);
    REQUIRE(st == FLT_OK);
    CHECK(host.pid_of("infra", "prometheus") == prom_pid);
    CHECK(reload_timestamp(base_url) > loaded_at);
    await("the new haproxy job's target scraped and up", [&] { return fx::all_healthy(base_url, {{"haproxy", {subnet() + "1:9090"}}}); });

    // Applying the same inputs again starts nothing and reloads nothing.
    const double reloaded_at = reload_timestamp(base_url);
    host.clear_ops();
    std::tie(st, out) = host.call("apply", make_request(host, 2, config, addons));
    REQUIRE(st == FLT_OK);
    CHECK(reload_timestamp(base_url) == reloaded_at);
    CHECK(host.pid_of("infra", "prometheus") == prom_pid);

    // swarm-2 leaves: its exporter is stopped and its target leaves the node job.
    const pid_t exporter2 = host.pid_of("swarm-2", "node-exporter");
    std::tie(st, out) = host.call("apply", make_request(host, 1, config, addons));
    REQUIRE(st == FLT_OK);
    CHECK(host.pid_of("swarm-2", "node-exporter") == -1);
    CHECK_FALSE(fx::pid_alive(exporter2));
    await("swarm-2's exporter gone from the node job", [&] { return fx::target_health(base_url)["node"].count(swarm2) == 0; });

    // destroy stops everything it started and forgets its state.
    const pid_t exporter1 = host.pid_of("swarm-1", "node-exporter");
    std::tie(st, out) = host.call("destroy", make_request(host, 1, config, addons));
    INFO(out);
    REQUIRE(st == FLT_OK);
    CHECK_FALSE(fx::pid_alive(prom_pid));
    CHECK_FALSE(fx::pid_alive(exporter1));
    CHECK(host.addon_state() == json::object());
    CHECK_FALSE(fx::fs::exists(host.files_dir("infra") / "prometheus.yml"));
    CHECK_FALSE(fx::fs::exists(host.addon_dir() / "data"));
  }
}

TEST_CASE("prometheus-cadvisor plugin on a SIGHUP-only host: SIGHUP reloads when the lifecycle API is off", "[prometheus-cadvisor][server]") {
  fx::TempDir dir("flotilla-prom-hup");
  // The engine's host, but Prometheus starts without --web.enable-lifecycle: 403 to POST /-/reload.
  SighupOnlyHost host("prometheus-cadvisor", dir.path() / "cluster", subnet() + "0/24", 1);
  const json config{{"scrape_services", false}, {"exporter_roles", {"infra"}}};
  const std::string base_url = "http://" + subnet() + "1:9090";

  auto [st, out] = host.call("apply", make_request(host, 1, config));
  INFO(out);
  REQUIRE(st == FLT_OK);
  const pid_t prom_pid = host.pid_of("infra", "prometheus");
  REQUIRE(prom_pid > 0);
  REQUIRE(fx::http(base_url + "/-/reload", true).status == 403);
  const double loaded_at = reload_timestamp(base_url);

  // A new job needs the configuration reloaded: the plugin falls back to SIGHUP.
  wait_for_next_second(loaded_at);
  host.clear_ops();
  const json addons{{"etcd", {{"outputs", {{"metrics_targets", {{{"job", "etcd"}, {"targets", {subnet() + "1:9090"}}}}}}}}}};
  std::tie(st, out) = host.call("apply", make_request(host, 1, config, addons));
  INFO(out);
  REQUIRE(st == FLT_OK);
  bool signalled = false;
  for (const auto& op : host.ops()) signalled = signalled || (op.op == "signal" && op.name == "prometheus");
  CHECK(signalled);
  CHECK(reload_timestamp(base_url) > loaded_at);
  CHECK(host.pid_of("infra", "prometheus") == prom_pid);
  const auto loaded = json::parse(fx::http(base_url + "/api/v1/status/config").body);
  CHECK(loaded["data"]["yaml"].get<std::string>().find("job_name: etcd") != std::string::npos);

  std::tie(st, out) = host.call("destroy", make_request(host, 1, config, addons));
  REQUIRE(st == FLT_OK);
  CHECK_FALSE(fx::pid_alive(prom_pid));
}
