// prometheus-cadvisor through the real CLI on a temporary local cluster: every target healthy
// after `up`, a node added by `up` scraped without restarting Prometheus, and the addon's
// processes gone once it leaves the topology. The cluster is always brought `down`.
#include "support/cleanup_report.hpp"
#include "support/prometheus_fixture.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

namespace fx = flotilla::test::prom;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kFlotilla = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";

// Prometheus 2.42 hands discovered targets to the scrapers on two fixed 5 s tickers (discovery
// manager, then scrape manager) and scrapes a new target first at its slot within the interval:
// up to 10 s plus one interval. With a 10 s interval two intervals are the worst case; every wait
// allows three.
constexpr auto kInterval = 10s;

std::string topology(const std::string& cidr, int swarm, bool with_addon) {
  std::string t = "[cluster]\nname = \"promit\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" + cidr + "\"\n\n";
  t += "[[nodes]]\nname = \"infra\"\ncount = 1\nroles = [\"infra\"]\n\n";
  t += "[[nodes]]\nname = \"swarm\"\ncount = " + std::to_string(swarm) + "\nroles = [\"swarm\"]\n\n";
  if (with_addon) t += "[[addons]]\nplugin = \"prometheus-cadvisor\"\n[addons.options]\nscrape_interval = \"10s\"\n\n";
  t += "[[services]]\nname = \"hello/v1\"\ncommand = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]\n";
  t += "replicas = 2\nport = 8000\nhealth = \"/health\"\nroles = [\"swarm\"]\n";
  return t;
}

/// Runs a flotilla subcommand on the test's topology and state directory.
std::pair<int, std::string> run_cli(const std::string& args, const fx::fs::path& dir) {
  return fx::run_command(kFlotilla + " " + args + " " + (dir / "topology.toml").string() + " --state-dir " + (dir / "state").string());
}

/// Brings the cluster down whatever happened in the test.
struct DownGuard {
  fx::fs::path dir;
  ~DownGuard() {
    if (const auto [code, out] = run_cli("down -q", dir); code != 0)
      flotilla::test::report_cleanup_failure("down in " + dir.string() + " exited " + std::to_string(code) + ": " + out);
  }
};

json cluster_status(const fx::fs::path& dir) {
  const auto [code, out] = run_cli("status --output json", dir);
  INFO(out);
  REQUIRE(code == 0);
  return json::parse(out.substr(out.find('{')));
}

/// Pids of the addon's components as (node/name) -> pid.
std::map<std::string, pid_t> component_pids(const json& st) {
  std::map<std::string, pid_t> out;
  for (const auto& a : st.value("addons", json::array())) {
    if (a.value("name", "") != "prometheus-cadvisor") continue;
    for (const auto& c : a["components"]) out[c.value("node", "") + "/" + c.value("name", "")] = c.value("pid", 0);
  }
  return out;
}

}  // namespace

TEST_CASE("prometheus-cadvisor through the CLI: targets healthy, growth keeps the pid, removal stops everything",
          "[prometheus-cadvisor][integration]") {
  REQUIRE(fx::fs::exists(kFlotilla));
  fx::TempDir dir("flotilla-prom-it");
  // Held past the guard's `down`: Prometheus' 9090 and node_exporter's 9100 on it are ours.
  const auto subnet = flotilla::test::resources::reserve_subnet();
  const std::string net = subnet.prefix();
  std::ofstream(dir.path() / "topology.toml") << topology(net + "0/24", 2, true);
  DownGuard guard{dir.path()};

  auto [code, out] = run_cli("up", dir.path());
  INFO(out);
  REQUIRE(code == 0);
  const std::string base_url = "http://" + net + "1:9090";
  CHECK(out.find("Prometheus at " + base_url) != std::string::npos);

  const json st = cluster_status(dir.path());
  auto pids = component_pids(st);
  REQUIRE(pids.size() == 4);  // prometheus + node_exporter on infra, swarm-1, swarm-2
  const pid_t prom_pid = pids.at("infra/prometheus");
  REQUIRE(fx::pid_alive(prom_pid));
  std::vector<std::string> services;
  for (const auto& svc : st["services"])
    for (const auto& inst : svc["instances"]) services.push_back(inst.value("address", "") + ":" + std::to_string(inst.value("port", 0)));
  REQUIRE(services.size() == 2);

  const std::vector<std::string> nodes{net + "1:9100", net + "2:9100", net + "3:9100"};
  const std::map<std::string, std::vector<std::string>> expected{
      {"prometheus", {net + "1:9090"}}, {"node", nodes}, {"service:hello/v1", services}};
  const auto first = fx::wait_until([&] { return fx::all_up(base_url, expected); }, 3 * kInterval);
  INFO("all targets healthy " << first.count() << " s after up; targets: " << fx::http(base_url + "/api/v1/targets").body);
  CHECK(first.count() >= 0);
  auto up = fx::query_up(base_url);
  for (const auto& [job, instances] : expected)
    for (const auto& inst : instances) CHECK(up[{job, inst}] == "1");

  // Grow swarm from 2 to 3 nodes and run up again: new targets arrive through file_sd, so
  // Prometheus is neither restarted nor reloaded.
  const double loaded_at = fx::metric_value(base_url, "prometheus_config_last_reload_success_timestamp_seconds");
  REQUIRE(loaded_at > 0);
  std::ofstream(dir.path() / "topology.toml", std::ios::trunc) << topology(net + "0/24", 3, true);
  std::tie(code, out) = run_cli("up", dir.path());
  INFO(out);
  REQUIRE(code == 0);
  pids = component_pids(cluster_status(dir.path()));
  CHECK(pids.at("infra/prometheus") == prom_pid);
  REQUIRE(pids.contains("swarm-3/node-exporter"));
  const std::string node3 = net + "4:9100";
  const auto grown = fx::wait_until([&] { return fx::all_up(base_url, {{"node", {nodes[0], nodes[1], nodes[2], node3}}}); }, 3 * kInterval);
  INFO("new node healthy " << grown.count() << " s after up");
  CHECK(grown.count() >= 0);
  up = fx::query_up(base_url);
  CHECK(up[{"node", node3}] == "1");
  CHECK(fx::pid_alive(prom_pid));
  CHECK(fx::metric_value(base_url, "prometheus_config_last_reload_success_timestamp_seconds") == loaded_at);

  // Remove the addon: nothing it started may survive.
  std::ofstream(dir.path() / "topology.toml", std::ios::trunc) << topology(net + "0/24", 3, false);
  std::tie(code, out) = run_cli("up", dir.path());
  INFO(out);
  REQUIRE(code == 0);
  for (const auto& [what, pid] : pids) {
    INFO(what << " pid " << pid);
    CHECK_FALSE(fx::pid_alive(pid));
  }
  CHECK(component_pids(cluster_status(dir.path())).empty());
  CHECK(fx::http(base_url + "/-/ready").status == 0);

  std::tie(code, out) = run_cli("down", dir.path());
  INFO(out);
  CHECK(code == 0);
}
