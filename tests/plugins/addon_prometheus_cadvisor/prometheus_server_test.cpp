// The rendered configuration against a real Prometheus 2.42 and real node_exporters on
// 127.0.0.1, started by the test itself (not by the engine): targets become healthy within two
// scrape intervals, a target added through the file_sd file is picked up without a restart,
// and a configuration change is taken by POST /-/reload with the pid unchanged.
#include "addon_prometheus_cadvisor/monitoring_model.hpp"
#include "support/prometheus_fixture.hpp"

#include <catch2/catch.hpp>

namespace pm = flotilla::addons::prometheus;
namespace fx = flotilla::test::prom;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kAddress = "127.0.0.1";

/// A request with one node, infra, at 127.0.0.1, and no services or addons.
json single_node_request(const json& config) {
  return json{{"addon", {{"name", "prometheus-cadvisor"}, {"config", config}, {"nodes", {"infra"}}}},
              {"cluster", {{"name", "server-test"}}},
              {"nodes", {{{"name", "infra"}, {"group", "infra"}, {"roles", {"infra"}}, {"address", kAddress}, {"runtime", "process"}}}},
              {"services", json::array()},
              {"addons", json::object()}};
}

std::vector<std::string> command_of(const json& workload) { return workload["command"].get<std::vector<std::string>>(); }

/// process_start_time_seconds of the Prometheus process, read from its own /metrics.
double prometheus_start_time(const std::string& base_url) {
  const auto body = fx::http(base_url + "/metrics").body;
  const std::string key = "\nprocess_start_time_seconds ";
  const auto pos = body.find(key);
  return pos == std::string::npos ? -1 : std::stod(body.substr(pos + key.size(), body.find('\n', pos + 1) - pos - key.size()));
}

}  // namespace

TEST_CASE("prometheus-cadvisor rendered config scrapes real node_exporters and follows file_sd changes", "[prometheus-cadvisor][server]") {
  fx::TempDir dir("flotilla-prom-server");
  const int prom_port = fx::free_port();
  const int exporter_port = fx::free_port();
  // Prometheus 2.42 passes discovered targets to the scrapers on two fixed 5 s tickers and first
  // scrapes a new target at its slot within the interval: up to 10 s plus one interval. With a
  // 10 s interval two intervals are the worst case; every wait allows three.
  const json request = single_node_request(
      json{{"port", prom_port}, {"exporter_port", exporter_port}, {"scrape_services", false}, {"scrape_interval", "10s"}});
  const pm::Options o = pm::parse_options(request["addon"]["config"]);
  const auto interval = 10s;
  const std::string base_url = std::string("http://") + kAddress + ":" + std::to_string(prom_port);

  // The exporter exactly as the addon would start it on this node.
  const json exporter = pm::exporter_workload(request["nodes"][0], o);
  fx::Child exporter1(command_of(exporter), dir.path() / "exporter1.log");

  auto jobs = pm::desired_jobs(request, o);
  std::map<std::string, std::string> sd_paths;
  for (const auto& job : jobs) {
    const auto path = dir.path() / "files" / "sd" / (job.file + ".json");
    fx::write_atomically(path, pm::render_file_sd(job));
    sd_paths[job.name] = path.string();
  }
  const auto config_path = dir.path() / "files" / "prometheus.yml";
  fx::write_atomically(config_path, pm::render_config(jobs, sd_paths, o, "server-test"));
  REQUIRE(fx::run_command("promtool check config " + config_path.string()).first == 0);

  const json workload = pm::prometheus_workload(request["nodes"][0], o, config_path.string(), (dir.path() / "data").string());
  fx::Child prometheus(command_of(workload), dir.path() / "prometheus.log");
  REQUIRE(fx::wait_until([&] { return fx::http(base_url + "/-/ready").status == 200; }, 30s).count() >= 0);
  const double start_time = prometheus_start_time(base_url);
  REQUIRE(start_time > 0);

  const std::string self = std::string(kAddress) + ":" + std::to_string(prom_port);
  const std::string node1 = std::string(kAddress) + ":" + std::to_string(exporter_port);
  const auto first = fx::wait_until([&] { return fx::all_healthy(base_url, {{"prometheus", {self}}, {"node", {node1}}}); }, 3 * interval);
  INFO("targets healthy after Prometheus became ready: " << first.count() << " s");
  CHECK(first.count() >= 0);

  // A second node joins: only the node job's file_sd file changes, atomically.
  const int exporter_port2 = fx::free_port();
  const json config2 = json{{"port", prom_port}, {"exporter_port", exporter_port2}};
  const json exporter_b = pm::exporter_workload(request["nodes"][0], pm::parse_options(config2));
  fx::Child exporter2(command_of(exporter_b), dir.path() / "exporter2.log");
  const std::string node2 = std::string(kAddress) + ":" + std::to_string(exporter_port2);
  REQUIRE(fx::wait_until([&] { return fx::http("http://" + node2 + "/metrics").status == 200; }, 10s).count() >= 0);

  pm::Job* node_job = nullptr;
  for (auto& j : jobs)
    if (j.name == "node") node_job = &j;
  REQUIRE(node_job != nullptr);
  node_job->targets.push_back({node2, {{"node", "infra-2"}}});
  fx::write_atomically(sd_paths["node"], pm::render_file_sd(*node_job));
  const auto second = fx::wait_until([&] { return fx::all_up(base_url, {{"prometheus", {self}}, {"node", {node1, node2}}}); }, 3 * interval);
  INFO("added target healthy after the file_sd write: " << second.count() << " s");
  CHECK(second.count() >= 0);
  CHECK(prometheus.running());
  CHECK(prometheus_start_time(base_url) == start_time);

  const auto up = fx::query_up(base_url);
  CHECK(up.at({"prometheus", self}) == "1");
  CHECK(up.at({"node", node1}) == "1");
  CHECK(up.at({"node", node2}) == "1");

  // A configuration change (scrape interval) is taken by a reload, not a restart.
  const pm::Options slower = pm::parse_options(json{{"port", prom_port}, {"scrape_interval", "7s"}});
  fx::write_atomically(config_path, pm::render_config(jobs, sd_paths, slower, "server-test"));
  const auto reload = fx::http(base_url + "/-/reload", true);
  CHECK(reload.status == 200);
  const auto loaded = json::parse(fx::http(base_url + "/api/v1/status/config").body);
  CHECK(loaded["data"]["yaml"].get<std::string>().find("scrape_interval: 7s") != std::string::npos);
  CHECK(prometheus.running());
  CHECK(prometheus_start_time(base_url) == start_time);
}
