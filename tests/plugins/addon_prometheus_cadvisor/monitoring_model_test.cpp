// Rendering and validation of the prometheus-cadvisor addon: scrape jobs, file_sd documents,
// prometheus.yml (checked by Debian's promtool), workload specs and option errors.
#include "addon_prometheus_cadvisor/monitoring_model.hpp"
#include "flotilla/support/encoding.hpp"
#include "support/prometheus_fixture.hpp"

#include <catch2/catch.hpp>

#include <fstream>

namespace pm = flotilla::addons::prometheus;
namespace fx = flotilla::test::prom;
using json = nlohmann::json;

namespace {

json node(const std::string& name, const std::string& group, const std::string& role, const std::string& address,
          const std::string& runtime = "process") {
  return json{{"name", name},       {"group", group},     {"index", 1},
              {"roles", {role}},    {"address", address}, {"runtime", runtime},
              {"state", "running"}, {"labels", json::object()}};
}

/// An addon request for infra + `swarm` nodes, one service with two instances and one addon
/// publishing metrics targets.
json sample_request(int swarm = 2, const json& config = json::object()) {
  json nodes = json::array({node("infra", "infra", "infra", "127.77.0.1")});
  for (int i = 1; i <= swarm; ++i)
    nodes.push_back(node("swarm-" + std::to_string(i), "swarm", "swarm", "127.77.0." + std::to_string(i + 1)));
  return json{
      {"addon", {{"name", "prometheus-cadvisor"}, {"plugin", "prometheus-cadvisor"}, {"config", config}, {"nodes", {"infra"}}, {"dir", "/tmp/x/addons/prometheus-cadvisor"}}},
      {"cluster", {{"name", "local"}, {"state_dir", "/tmp/x"}, {"bin_dir", "/tmp/bin"}}},
      {"nodes", nodes},
      {"services",
       {{{"name", "hello/v1"},
         {"dns", "hello-v1"},
         {"port", 8000},
         {"health", "/health"},
         {"replicas", 2},
         {"instances",
          {{{"id", "hello/v1#1"}, {"instance", 1}, {"node", "swarm-1"}, {"address", "127.77.0.2"}, {"port", 8000}, {"state", "running"}},
           {{"id", "hello/v1#2"}, {"instance", 2}, {"node", "swarm-2"}, {"address", "127.77.0.3"}, {"port", 8000}, {"state", "running"}}}}}}},
      {"addons",
       {{"haproxy",
         {{"plugin", "haproxy"},
          {"provides", {"ingress"}},
          {"endpoints", {{"haproxy", "http://127.77.0.2:8080"}}},
          {"outputs", {{"metrics_targets", {{{"job", "haproxy"}, {"targets", {"127.77.0.2:8405"}}, {"metrics_path", "/metrics"}}}}}}}}}},
      {"components", json::array()}};
}

const pm::Job* find_job(const std::vector<pm::Job>& jobs, const std::string& name) {
  for (const auto& j : jobs)
    if (j.name == name) return &j;
  return nullptr;
}

std::vector<std::string> addresses(const pm::Job& job) {
  std::vector<std::string> out;
  for (const auto& t : job.targets) out.push_back(t.address);
  return out;
}

/// Renders the config and its file_sd files into `dir`; returns the config's path.
fx::fs::path render_to(const fx::fs::path& dir, const json& request) {
  const pm::Options o = pm::parse_options(request["addon"]["config"]);
  const auto jobs = pm::desired_jobs(request, o);
  std::map<std::string, std::string> paths;
  for (const auto& j : jobs) {
    const auto p = dir / "sd" / (j.file + ".json");
    fx::write_atomically(p, pm::render_file_sd(j));
    paths[j.name] = p.string();
  }
  const auto cfg = dir / "prometheus.yml";
  fx::write_atomically(cfg, pm::render_config(jobs, paths, o, "local"));
  return cfg;
}

}  // namespace

TEST_CASE("prometheus-cadvisor options take their defaults and reject bad values", "[prometheus-cadvisor]") {
  std::vector<pm::OptionError> errors;
  const pm::Options o = pm::parse_options(json::object(), errors);
  CHECK(errors.empty());
  CHECK(o.port == 9090);
  CHECK(o.retention == "15d");
  CHECK(o.scrape_interval == "5s");
  CHECK(o.exporter_port == 9100);
  CHECK(o.node_exporter_image == "prom/node-exporter:v1.5.0");
  CHECK(o.scrape_services);

  errors.clear();
  (void)pm::parse_options(json{{"retention", "two weeks"}, {"scrape_interval", "0s"}, {"port", 70000}, {"exporter_roles", "swarm"}}, errors);
  std::set<std::string> keys;
  for (const auto& e : errors) keys.insert(e.key);
  CHECK(keys == std::set<std::string>{"retention", "scrape_interval", "port", "exporter_roles"});
  CHECK_THROWS_AS(pm::parse_options(json{{"retention", "x"}}), std::invalid_argument);

  CHECK(pm::is_prometheus_duration("1h30m"));
  CHECK(pm::is_prometheus_duration("15d"));
  CHECK_FALSE(pm::is_prometheus_duration("15 d"));
  CHECK_FALSE(pm::is_prometheus_duration(""));
}

TEST_CASE("prometheus-cadvisor jobs cover prometheus, every node, addon targets and services", "[prometheus-cadvisor]") {
  const json req = sample_request(2);
  const auto jobs = pm::desired_jobs(req, pm::parse_options(req["addon"]["config"]));

  std::vector<std::string> names;
  for (const auto& j : jobs) names.push_back(j.name);
  CHECK(names == std::vector<std::string>{"prometheus", "node", "haproxy", "service:hello/v1"});

  CHECK(addresses(*find_job(jobs, "prometheus")) == std::vector<std::string>{"127.77.0.1:9090"});
  CHECK(addresses(*find_job(jobs, "node")) == std::vector<std::string>{"127.77.0.1:9100", "127.77.0.2:9100", "127.77.0.3:9100"});
  CHECK(find_job(jobs, "node")->targets[1].labels.at("node") == "swarm-1");
  CHECK(find_job(jobs, "node")->targets[1].labels.at("group") == "swarm");
  CHECK(addresses(*find_job(jobs, "haproxy")) == std::vector<std::string>{"127.77.0.2:8405"});
  CHECK(find_job(jobs, "haproxy")->targets[0].labels.at("addon") == "haproxy");
  const pm::Job* svc = find_job(jobs, "service:hello/v1");
  REQUIRE(svc != nullptr);
  CHECK(addresses(*svc) == std::vector<std::string>{"127.77.0.2:8000", "127.77.0.3:8000"});
  CHECK(svc->file == "service_hello_v1");
  CHECK(svc->targets[1].labels.at("service_instance") == "hello/v1#2");
}

TEST_CASE("prometheus-cadvisor exporter_roles and scrape_services narrow the targets", "[prometheus-cadvisor]") {
  const json req = sample_request(2, json{{"exporter_roles", {"swarm"}}, {"scrape_services", false}, {"exporter_port", 9200}});
  const auto jobs = pm::desired_jobs(req, pm::parse_options(req["addon"]["config"]));
  CHECK(addresses(*find_job(jobs, "node")) == std::vector<std::string>{"127.77.0.2:9200", "127.77.0.3:9200"});
  CHECK(find_job(jobs, "service:hello/v1") == nullptr);
}

TEST_CASE("prometheus-cadvisor adding a node changes a file_sd file but not prometheus.yml", "[prometheus-cadvisor]") {
  const json before = sample_request(2);
  const json after = sample_request(3);
  const pm::Options o = pm::parse_options(json::object());
  const auto jobs_before = pm::desired_jobs(before, o);
  const auto jobs_after = pm::desired_jobs(after, o);
  std::map<std::string, std::string> paths;
  for (const auto& j : jobs_after) paths[j.name] = "/files/sd/" + j.file + ".json";
  CHECK(pm::render_config(jobs_before, paths, o, "local") == pm::render_config(jobs_after, paths, o, "local"));
  CHECK(pm::render_file_sd(*find_job(jobs_before, "node")) != pm::render_file_sd(*find_job(jobs_after, "node")));

  // A new scrape interval, by contrast, is a configuration change (reloaded, not restarted).
  const pm::Options slower = pm::parse_options(json{{"scrape_interval", "30s"}});
  CHECK(pm::render_config(jobs_after, paths, o, "local") != pm::render_config(jobs_after, paths, slower, "local"));
}

TEST_CASE("prometheus-cadvisor file_sd documents are target groups with labels", "[prometheus-cadvisor]") {
  const json req = sample_request(1);
  const auto jobs = pm::desired_jobs(req, pm::parse_options(json::object()));
  const json doc = json::parse(pm::render_file_sd(*find_job(jobs, "node")));
  REQUIRE(doc.is_array());
  REQUIRE(doc.size() == 2);
  CHECK(doc[1]["targets"] == json::array({"127.77.0.2:9100"}));
  CHECK(doc[1]["labels"]["node"] == "swarm-1");
  CHECK(json::parse(pm::render_file_sd(pm::Job{.name = "empty"})) == json::array());
}

TEST_CASE("prometheus-cadvisor job names from addons never clash", "[prometheus-cadvisor]") {
  json req = sample_request(1);
  req["addons"]["etcd"] = json{{"outputs", {{"metrics_targets", {{{"job", "node"}, {"targets", {"127.77.0.1:2379"}}}}}}}};
  const auto jobs = pm::desired_jobs(req, pm::parse_options(json::object()));
  REQUIRE(find_job(jobs, "etcd:node") != nullptr);
  CHECK(addresses(*find_job(jobs, "etcd:node")) == std::vector<std::string>{"127.77.0.1:2379"});
  std::set<std::string> files;
  for (const auto& j : jobs) CHECK(files.insert(j.file).second);
}

TEST_CASE("prometheus-cadvisor rendered prometheus.yml passes promtool check config", "[prometheus-cadvisor]") {
  fx::TempDir dir("flotilla-promtool");
  json req = sample_request(3, json{{"scrape_interval", "15s"}});
  req["addons"]["etcd"] = json{{"outputs", {{"metrics_targets", {{{"job", "etcd"}, {"targets", {"127.77.0.1:2379"}}, {"scheme", "http"}, {"scrape_interval", "10s"}}}}}}};
  const auto cfg = render_to(dir.path(), req);
  const auto [code, output] = fx::run_command("promtool check config " + cfg.string());
  INFO(output);
  CHECK(code == 0);
  CHECK(output.find("SUCCESS") != std::string::npos);

  // promtool does fail on a broken document, so the check above means something.
  std::ofstream(dir.path() / "broken.yml") << "global:\n  scrape_interval: \"5 s\"\n";
  CHECK(fx::run_command("promtool check config " + (dir.path() / "broken.yml").string()).first != 0);
}

TEST_CASE("prometheus-cadvisor process workloads bind the node address", "[prometheus-cadvisor]") {
  const json req = sample_request(1, json{{"retention", "2h"}, {"port", 9191}});
  const pm::Options o = pm::parse_options(req["addon"]["config"]);
  const json w = pm::prometheus_workload(pm::prometheus_node(req), o, "/n/files/prometheus.yml", "/d/data");
  CHECK(w["name"] == "prometheus");
  CHECK(w["command"][0] == "/usr/bin/prometheus");
  const auto cmd = w["command"].get<std::vector<std::string>>();
  auto has = [&](const std::string& a) { return std::find(cmd.begin(), cmd.end(), a) != cmd.end(); };
  CHECK(has("--web.listen-address=127.77.0.1:9191"));
  CHECK(has("--storage.tsdb.retention.time=2h"));
  CHECK(has("--storage.tsdb.path=/d/data"));
  CHECK(has("--config.file=/n/files/prometheus.yml"));
  CHECK(has("--web.enable-lifecycle"));
  CHECK(w["ports"] == json::array({9191}));

  const json e = pm::exporter_workload(req["nodes"][1], o);
  CHECK(e["name"] == "node-exporter");
  CHECK(e["command"] == json::array({"/usr/bin/prometheus-node-exporter", "--web.listen-address=127.77.0.2:9100", "--no-collector.systemd"}));
  CHECK_FALSE(e.contains("image"));
}

TEST_CASE("prometheus-cadvisor on Docker runtime nodes: node_exporter and Prometheus containers in the node's network", "[prometheus-cadvisor]") {
  json req = sample_request(1);
  req["addon"]["config"]["node_exporter_image"] = "node-exporter:flotilla";
  req["nodes"][1]["runtime"] = "docker";
  const pm::Options o = pm::parse_options(req["addon"]["config"]);
  const json w = pm::exporter_workload(req["nodes"][1], o);
  CHECK(w["name"] == "node-exporter");
  CHECK(w["image"] == "node-exporter:flotilla");
  CHECK(w["network"] == "host");
  CHECK_FALSE(w.contains("command"));
  CHECK(w["cmd"] == json::array({"--web.listen-address=127.77.0.2:9100", "--no-collector.systemd"}));

  // The Docker node is scraped in the node job, like a process node.
  const auto jobs = pm::desired_jobs(req, o);
  CHECK(addresses(*find_job(jobs, "node")) == std::vector<std::string>{"127.77.0.1:9100", "127.77.0.2:9100"});

  // Prometheus itself on a Docker node: the image's entrypoint takes the flags, on the node's address.
  const json p = pm::prometheus_workload(req["nodes"][1], o, "/flotilla/files/prometheus-cadvisor/prometheus.yml", "/d/data");
  CHECK(p["image"] == "prom/prometheus:v2.42.0");
  CHECK(p["network"] == "host");
  CHECK(p["cmd"][0] == "--config.file=/flotilla/files/prometheus-cadvisor/prometheus.yml");
  CHECK(p["cmd"][1] == "--web.listen-address=127.77.0.2:9090");
  CHECK(p["cmd"][2] == "--storage.tsdb.path=/prometheus");
}

namespace {

/// The workload names a node gets under `exporter`.
std::vector<std::string> workload_names(const json& node, const std::string& exporter) {
  std::vector<std::string> out;
  for (const json& w : pm::node_workloads(node, pm::parse_options(json{{"exporter", exporter}}))) out.push_back(w["name"]);
  return out;
}

/// sample_request(2) with swarm-1 and swarm-2 on the docker runtime and `config`.
json docker_request(const json& config) {
  json req = sample_request(2, config);
  req["nodes"][1]["runtime"] = "docker";
  req["nodes"][2]["runtime"] = "docker";
  return req;
}

}  // namespace

TEST_CASE("prometheus-cadvisor exporter option: which nodes get node_exporter and which get cAdvisor", "[prometheus-cadvisor]") {
  std::vector<pm::OptionError> errors;
  CHECK(pm::parse_options(json::object(), errors).exporter == "node-exporter");
  CHECK(pm::parse_options(json::object(), errors).cadvisor_port == 8081);
  CHECK(pm::parse_options(json::object(), errors).cadvisor_image == "ghcr.io/google/cadvisor:v0.53.0");
  CHECK(errors.empty());
  (void)pm::parse_options(json{{"exporter", "cadvisor-exporter"}, {"cadvisor_port", 0}}, errors);
  std::set<std::string> keys;
  for (const auto& e : errors) keys.insert(e.key);
  CHECK(keys == std::set<std::string>{"exporter", "cadvisor_port"});

  const json docker = node("swarm-1", "swarm", "swarm", "127.77.0.2", "docker");
  const json process = node("infra", "infra", "infra", "127.77.0.1", "process");
  using names = std::vector<std::string>;
  CHECK(workload_names(docker, "node-exporter") == names{"node-exporter"});
  CHECK(workload_names(docker, "cadvisor") == names{"cadvisor"});
  CHECK(workload_names(docker, "both") == names{"node-exporter", "cadvisor"});
  // A process node keeps node_exporter whatever `exporter` says: cAdvisor runs only in Docker.
  for (const std::string exporter : {"node-exporter", "cadvisor", "both"}) {
    INFO(exporter);
    CHECK(workload_names(process, exporter) == names{"node-exporter"});
  }
  CHECK_THROWS_AS(pm::cadvisor_workload(process, pm::Options{}), std::invalid_argument);

  // The warning line names the process nodes only when cAdvisor is asked for.
  CHECK(pm::nodes_without_cadvisor(docker_request(json::object()), pm::parse_options(json::object())).empty());
  CHECK(pm::nodes_without_cadvisor(docker_request({{"exporter", "cadvisor"}}), pm::parse_options({{"exporter", "cadvisor"}})) == names{"infra"});
  CHECK(pm::nodes_without_cadvisor(docker_request({{"exporter", "both"}}), pm::parse_options({{"exporter", "both"}})) == names{"infra"});
}

TEST_CASE("prometheus-cadvisor cadvisor job: Docker nodes at cadvisor_port labelled with the node's name, process nodes stay in the node job",
          "[prometheus-cadvisor]") {
  // The default: no cadvisor job at all, so an existing configuration renders as before.
  auto jobs = pm::desired_jobs(docker_request(json::object()), pm::Options{});
  CHECK(find_job(jobs, "cadvisor") == nullptr);
  CHECK(addresses(*find_job(jobs, "node")) == std::vector<std::string>{"127.77.0.1:9100", "127.77.0.2:9100", "127.77.0.3:9100"});

  const json cadvisor_only = docker_request({{"exporter", "cadvisor"}});
  jobs = pm::desired_jobs(cadvisor_only, pm::parse_options(cadvisor_only["addon"]["config"]));
  std::vector<std::string> job_names;
  for (const auto& j : jobs) job_names.push_back(j.name);
  CHECK(job_names == std::vector<std::string>{"prometheus", "node", "cadvisor", "haproxy", "service:hello/v1"});
  CHECK(addresses(*find_job(jobs, "node")) == std::vector<std::string>{"127.77.0.1:9100"});
  const pm::Job& cadvisor = *find_job(jobs, "cadvisor");
  CHECK(addresses(cadvisor) == std::vector<std::string>{"127.77.0.2:8081", "127.77.0.3:8081"});
  CHECK(cadvisor.targets[0].labels == std::map<std::string, std::string>{{"node", "swarm-1"}, {"group", "swarm"}});
  CHECK(cadvisor.targets[1].labels.at("node") == "swarm-2");
  CHECK(cadvisor.metrics_path == "/metrics");
  CHECK(cadvisor.file == "cadvisor");

  const json both = docker_request({{"exporter", "both"}, {"cadvisor_port", 9338}});
  jobs = pm::desired_jobs(both, pm::parse_options(both["addon"]["config"]));
  CHECK(addresses(*find_job(jobs, "node")) == std::vector<std::string>{"127.77.0.1:9100", "127.77.0.2:9100", "127.77.0.3:9100"});
  CHECK(addresses(*find_job(jobs, "cadvisor")) == std::vector<std::string>{"127.77.0.2:9338", "127.77.0.3:9338"});

  // A Docker node joining changes the cadvisor file_sd file, not prometheus.yml.
  json grown = cadvisor_only;
  grown["nodes"].push_back(node("swarm-3", "swarm", "swarm", "127.77.0.4", "docker"));
  const pm::Options o = pm::parse_options(cadvisor_only["addon"]["config"]);
  const auto before = pm::desired_jobs(cadvisor_only, o), after = pm::desired_jobs(grown, o);
  std::map<std::string, std::string> paths;
  for (const auto& j : after) paths[j.name] = "/sd/" + j.file + ".json";
  CHECK(pm::render_config(before, paths, o, "local") == pm::render_config(after, paths, o, "local"));
  CHECK(pm::render_file_sd(*find_job(before, "cadvisor")) != pm::render_file_sd(*find_job(after, "cadvisor")));

  // With no Docker node yet, the cadvisor job is there and empty.
  const json none = sample_request(1, {{"exporter", "cadvisor"}});
  jobs = pm::desired_jobs(none, pm::parse_options(none["addon"]["config"]));
  REQUIRE(find_job(jobs, "cadvisor") != nullptr);
  CHECK(find_job(jobs, "cadvisor")->targets.empty());
}

TEST_CASE("prometheus-cadvisor cAdvisor workload: the README's docker run as a workload spec", "[prometheus-cadvisor]") {
  // cAdvisor's README, "Quick Start: Running cAdvisor in a Docker Container" (github.com/google/cadvisor,
  // README.md as of v0.53.0): --volume=/:/rootfs:ro --volume=/var/run:/var/run:ro --volume=/sys:/sys:ro
  // --volume=/var/lib/docker/:/var/lib/docker:ro --volume=/dev/disk/:/dev/disk:ro --publish=8080:8080
  // --privileged --device=/dev/kmsg ghcr.io/google/cadvisor:$VERSION.
  const json n = node("swarm-1", "swarm", "swarm", "127.77.0.2", "docker");
  const json w = pm::cadvisor_workload(n, pm::parse_options({{"cadvisor_image", "cadvisor:test"}, {"cadvisor_port", 8099}}));
  CHECK(w["name"] == "cadvisor");
  CHECK(w["image"] == "cadvisor:test");
  CHECK_FALSE(w.contains("cmd"));  // the image's entrypoint and defaults
  CHECK_FALSE(w.contains("network"));  // bridged, port published, as the README runs it
  CHECK(w["ports"] == json::array({{{"container", 8080}, {"host", 8099}}}));
  CHECK(w["privileged"] == true);
  CHECK(w["devices"] == json::array({"/dev/kmsg"}));
  std::map<std::string, std::string> mounts;
  for (const auto& m : w["mounts"]) {
    CHECK(m["read_only"] == true);
    CHECK(m["type"] == "bind");
    mounts[m.value("target", "")] = m.value("source", "");
  }
  CHECK(mounts == std::map<std::string, std::string>{
                      {"/rootfs", "/"}, {"/var/run", "/var/run"}, {"/sys", "/sys"}, {"/var/lib/docker", "/var/lib/docker"}, {"/dev/disk", "/dev/disk"}});
}

TEST_CASE("prometheus-cadvisor validation names the placement and unsupported runtimes", "[prometheus-cadvisor]") {
  json req = sample_request(1);
  CHECK(pm::validate_request(req).empty());

  json unplaced = req;
  unplaced["addon"]["nodes"] = json::array();
  auto errors = pm::validate_request(unplaced);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "placement");
  CHECK(errors[0].message.find("role \"infra\"") != std::string::npos);

  json vbox = req;
  vbox["nodes"][1]["runtime"] = "jail";
  errors = pm::validate_request(vbox);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("swarm-1") != std::string::npos);
  CHECK_THROWS_AS(pm::exporter_workload(vbox["nodes"][1], pm::Options{}), std::invalid_argument);
}

TEST_CASE("prometheus-cadvisor validation finds port clashes on a node", "[prometheus-cadvisor]") {
  // Prometheus and node_exporter both on infra's address.
  auto errors = pm::validate_request(sample_request(1, json{{"port", 9100}}));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "exporter_port");
  CHECK(errors[0].message.find("node infra") != std::string::npos);

  // node_exporter on the port a service instance already uses.
  errors = pm::validate_request(sample_request(2, json{{"exporter_port", 8000}}));
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].key == "exporter_port");
  CHECK(errors[0].message.find("hello/v1#1") != std::string::npos);
  CHECK(errors[1].message.find("swarm-2") != std::string::npos);

  // Not an exporter node: no clash.
  CHECK(pm::validate_request(sample_request(2, json{{"exporter_port", 8000}, {"exporter_roles", {"infra"}}})).empty());

  // cAdvisor's published port against a service instance and against node_exporter, on Docker
  // nodes only; the process node infra keeps node_exporter and has no cAdvisor to clash.
  errors = pm::validate_request(docker_request({{"exporter", "cadvisor"}, {"cadvisor_port", 8000}}));
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].key == "cadvisor_port");
  CHECK(errors[0].message.find("cAdvisor") != std::string::npos);
  CHECK(errors[0].message.find("hello/v1#1") != std::string::npos);
  errors = pm::validate_request(docker_request({{"exporter", "both"}, {"cadvisor_port", 9100}}));
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].key == "cadvisor_port");
  CHECK(errors[0].message.find("node swarm-1") != std::string::npos);
  CHECK(pm::validate_request(docker_request({{"exporter", "cadvisor"}, {"cadvisor_port", 9100}})).empty());
}

TEST_CASE("prometheus-cadvisor manifest is valid JSON with the declared capabilities", "[prometheus-cadvisor]") {
  const json m = json::parse(pm::manifest());
  CHECK(m["provides"] == json::array({"metrics"}));
  CHECK(m["requires"] == json::array({"services"}));
  CHECK(m["optional"] == json::array({"ingress", "discovery"}));
  CHECK(m["placement"] == json{{"roles", {"infra"}}, {"mode", "first"}});
  // Every option the parser reads is declared, with a default of the declared type.
  for (const char* key : {"port", "retention", "scrape_interval", "exporter_roles", "exporter_port", "node_exporter_image", "prometheus_image", "scrape_services",
                          "exporter", "cadvisor_image", "cadvisor_port"})
    CHECK(m["schema"].contains(key));
  std::vector<pm::OptionError> errors;
  json defaults = json::object();
  for (const auto& [k, v] : m["schema"].items()) defaults[k] = v["default"];
  (void)pm::parse_options(defaults, errors);
  CHECK(errors.empty());
}

TEST_CASE("prometheus-cadvisor: a loaded_config hash stored by an earlier release still counts, so the upgrade reloads nothing",
          "[prometheus-cadvisor]") {
  const std::string config = "global:\n  scrape_interval: \"15s\"\n";
  CHECK(pm::is_loaded_config(flotilla::support::stable_hash(config), config));
  // Earlier releases stored FNV-1a with the wrong offset basis; that value is accepted too.
  CHECK(pm::is_loaded_config(flotilla::support::legacy_stable_hash(config), config));
  // Any other configuration is not the loaded one, whichever hash recorded it.
  const std::string changed = config + "rule_files: []\n";
  CHECK_FALSE(pm::is_loaded_config(flotilla::support::stable_hash(config), changed));
  CHECK_FALSE(pm::is_loaded_config(flotilla::support::legacy_stable_hash(config), changed));
  CHECK_FALSE(pm::is_loaded_config("", config));
}
