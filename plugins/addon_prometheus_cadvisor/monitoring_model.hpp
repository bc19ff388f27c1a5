// What the prometheus-cadvisor addon wants on the cluster, computed from an addon request:
// options, scrape jobs and their targets, the Prometheus configuration, the file_sd documents
// and the workload specs. Everything here is pure (no I/O), so it is tested without servers.
//
// Header-only on purpose: the plugin and the test suite both include it, and the plugin is a
// MODULE library the tests cannot link against.
#pragma once

#include "flotilla/support/request.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace flotilla::addons::prometheus {

using json = nlohmann::json;

/// Workload names on the nodes (the engine keeps them apart from other addons' names).
inline constexpr const char* kPrometheusWorkload = "prometheus";
inline constexpr const char* kNodeExporterWorkload = "node-exporter";
inline constexpr const char* kCadvisorWorkload = "cadvisor";

/// The manifest: option schema, capabilities and default placement.
inline constexpr const char* kManifest = R"manifest({
  "schema": {
    "port": {"type": "integer", "default": 9090, "description": "Port of the Prometheus UI and API on the Prometheus node's address"},
    "retention": {"type": "string", "default": "15d", "description": "How long Prometheus keeps samples (--storage.tsdb.retention.time), e.g. 6h, 15d"},
    "scrape_interval": {"type": "string", "default": "5s", "description": "How often every target is scraped (global scrape_interval)"},
    "exporter_roles": {"type": "array", "default": [], "description": "Node roles that get an exporter; empty means every node"},
    "exporter_port": {"type": "integer", "default": 9100, "description": "Port of node_exporter on each process-runtime node"},
    "exporter_disable_collectors": {"type": "array", "default": ["systemd"], "description": "node_exporter collectors to switch off (noisy or failing without systemd)"},
    "cadvisor_image": {"type": "string", "default": "gcr.io/cadvisor/cadvisor:v0.47.2", "description": "cAdvisor image for Docker-runtime nodes"},
    "cadvisor_port": {"type": "integer", "default": 8088, "description": "Port of cAdvisor on each Docker-runtime node (8080 is HAProxy's ingress)"},
    "prometheus_image": {"type": "string", "default": "prom/prometheus:v2.42.0", "description": "Prometheus image when the Prometheus node runs Docker"},
    "scrape_services": {"type": "boolean", "default": true, "description": "Scrape every service instance (one job per service)"},
    "services_metrics_path": {"type": "string", "default": "/metrics", "description": "Path of the services' metrics"},
    "prometheus_bin": {"type": "string", "default": "/usr/bin/prometheus", "description": "Prometheus binary on process-runtime nodes"},
    "node_exporter_bin": {"type": "string", "default": "/usr/bin/prometheus-node-exporter", "description": "node_exporter binary on process-runtime nodes"},
    "ready_timeout_s": {"type": "integer", "default": 60, "description": "How long to wait for Prometheus to report ready after a start"}
  },
  "provides": ["metrics"],
  "requires": ["services"],
  "optional": ["ingress", "discovery"],
  "placement": {"roles": ["infra"], "mode": "first"}
})manifest";

/// The addon's options with defaults filled in.
struct Options {
  int port = 9090;
  std::string retention = "15d";
  std::string scrape_interval = "5s";
  std::vector<std::string> exporter_roles;
  int exporter_port = 9100;
  std::vector<std::string> exporter_disable_collectors{"systemd"};
  std::string cadvisor_image = "gcr.io/cadvisor/cadvisor:v0.47.2";
  int cadvisor_port = 8088;  // not cAdvisor's own 8080: that is the ingress port on swarm nodes
  std::string prometheus_image = "prom/prometheus:v2.42.0";
  bool scrape_services = true;
  std::string services_metrics_path = "/metrics";
  std::string prometheus_bin = "/usr/bin/prometheus";
  std::string node_exporter_bin = "/usr/bin/prometheus-node-exporter";
  int ready_timeout_s = 60;
};

/// One option problem, as the validate operation reports it.
struct OptionError {
  std::string key;
  std::string message;
};

/// True for a Prometheus duration ("5s", "1h30m", "15d"; not "0s").
inline bool is_prometheus_duration(const std::string& text) {
  static const std::regex kDuration(
      "^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$");
  if (text.empty() || !std::regex_match(text, kDuration)) return false;
  return text.find_first_of("123456789") != std::string::npos;
}

namespace detail {

template <class T>
void read_option(const json& config, const char* key, T& out, std::vector<OptionError>& errors) {
  if (!config.is_object() || !config.contains(key) || config[key].is_null()) return;
  try {
    out = config[key].get<T>();
  } catch (const json::exception&) {
    errors.push_back({key, std::string("option ") + key + " has the wrong type (" + config[key].type_name() + ")"});
  }
}

inline void check_port(const char* key, int port, std::vector<OptionError>& errors) {
  if (port < 1 || port > 65535)
    errors.push_back({key, std::string("option ") + key + " = " + std::to_string(port) + " is not a TCP port; use 1-65535"});
}

/// A job name as a file name: keeps [A-Za-z0-9_.-], turns the rest into '_'.
inline std::string file_stem(const std::string& job) {
  std::string out;
  for (char c : job) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    out += keep ? c : '_';
  }
  if (out.empty() || out[0] == '.') out.insert(0, "job");
  return out;
}

using flotilla::plugin_util::str_or;

}  // namespace detail

/// Reads the options table; every problem found is added to `errors` and the default is kept.
inline Options parse_options(const json& config, std::vector<OptionError>& errors) {
  Options o;
  detail::read_option(config, "port", o.port, errors);
  detail::read_option(config, "retention", o.retention, errors);
  detail::read_option(config, "scrape_interval", o.scrape_interval, errors);
  detail::read_option(config, "exporter_roles", o.exporter_roles, errors);
  detail::read_option(config, "exporter_port", o.exporter_port, errors);
  detail::read_option(config, "exporter_disable_collectors", o.exporter_disable_collectors, errors);
  detail::read_option(config, "cadvisor_image", o.cadvisor_image, errors);
  detail::read_option(config, "cadvisor_port", o.cadvisor_port, errors);
  detail::read_option(config, "prometheus_image", o.prometheus_image, errors);
  detail::read_option(config, "scrape_services", o.scrape_services, errors);
  detail::read_option(config, "services_metrics_path", o.services_metrics_path, errors);
  detail::read_option(config, "prometheus_bin", o.prometheus_bin, errors);
  detail::read_option(config, "node_exporter_bin", o.node_exporter_bin, errors);
  detail::read_option(config, "ready_timeout_s", o.ready_timeout_s, errors);

  detail::check_port("port", o.port, errors);
  detail::check_port("exporter_port", o.exporter_port, errors);
  detail::check_port("cadvisor_port", o.cadvisor_port, errors);
  if (!is_prometheus_duration(o.retention))
    errors.push_back({"retention", "option retention = \"" + o.retention + "\" is not a Prometheus duration; write e.g. \"12h\" or \"15d\""});
  if (!is_prometheus_duration(o.scrape_interval))
    errors.push_back({"scrape_interval", "option scrape_interval = \"" + o.scrape_interval +
                                             "\" is not a Prometheus duration; write e.g. \"5s\" or \"1m\""});
  if (o.services_metrics_path.empty() || o.services_metrics_path[0] != '/')
    errors.push_back({"services_metrics_path", "option services_metrics_path must start with '/' (e.g. \"/metrics\")"});
  for (const auto& c : o.exporter_disable_collectors) {
    if (c.empty() || c.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
      errors.push_back({"exporter_disable_collectors", "\"" + c + "\" is not a node_exporter collector name (lowercase letters, digits, '_')"});
  }
  if (o.ready_timeout_s < 1) errors.push_back({"ready_timeout_s", "option ready_timeout_s must be at least 1"});
  return o;
}

/// Reads the options table; throws std::invalid_argument listing every problem.
inline Options parse_options(const json& config) {
  std::vector<OptionError> errors;
  Options o = parse_options(config, errors);
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "; ") + e.message;
    throw std::invalid_argument(msg);
  }
  return o;
}

/// True when the node should run an exporter (its roles meet exporter_roles, or that is empty).
inline bool exports_on(const json& node, const Options& o) {
  if (o.exporter_roles.empty()) return true;
  if (!node.contains("roles") || !node["roles"].is_array()) return false;
  for (const auto& r : node["roles"]) {
    if (r.is_string() && std::find(o.exporter_roles.begin(), o.exporter_roles.end(), r.get<std::string>()) != o.exporter_roles.end())
      return true;
  }
  return false;
}

/// "process" or "docker" runtimes are served; anything else is named in the error.
inline bool runtime_supported(const std::string& runtime) { return runtime == "process" || runtime == "docker"; }

/// The exporter workload for a node: node_exporter on the process runtime, cAdvisor on Docker.
/// Throws std::invalid_argument for any other runtime.
inline json exporter_workload(const json& node, const Options& o) {
  const std::string runtime = detail::str_or(node, "runtime", "process");
  const std::string address = detail::str_or(node, "address");
  if (runtime == "process") {
    json command = json::array({o.node_exporter_bin, "--web.listen-address=" + address + ":" + std::to_string(o.exporter_port)});
    for (const auto& c : o.exporter_disable_collectors) command.push_back("--no-collector." + c);
    return json{{"name", kNodeExporterWorkload}, {"command", command}, {"env", json::object()}, {"ports", json::array({o.exporter_port})}};
  }
  if (runtime == "docker") {
    // cAdvisor reads the host's cgroups, the Docker state and /dev/kmsg; these mounts are the ones
    // its documentation gives for running it as a container.
    return json{
        {"name", kCadvisorWorkload},
        {"image", o.cadvisor_image},
        {"args", json::array({"--port=" + std::to_string(o.cadvisor_port), "--docker_only=true", "--housekeeping_interval=10s"})},
        {"env", json::object()},
        {"ports", json::array({o.cadvisor_port})},
        {"privileged", true},
        {"devices", json::array({"/dev/kmsg"})},
        {"volumes", json::array({
                        json{{"source", "/"}, {"target", "/rootfs"}, {"read_only", true}},
                        json{{"source", "/var/run"}, {"target", "/var/run"}, {"read_only", true}},
                        json{{"source", "/sys"}, {"target", "/sys"}, {"read_only", true}},
                        json{{"source", "/var/lib/docker"}, {"target", "/var/lib/docker"}, {"read_only", true}},
                        json{{"source", "/dev/disk"}, {"target", "/dev/disk"}, {"read_only", true}},
                    })},
    };
  }
  throw std::invalid_argument("node " + detail::str_or(node, "name") + " uses runtime \"" + runtime +
                              "\"; prometheus-cadvisor runs exporters only on the process and docker runtimes");
}

/// The Prometheus workload on `node`: the Debian binary on the process runtime, the image on Docker.
/// `config_path` is where put_file placed prometheus.yml, as the workload sees it.
inline json prometheus_workload(const json& node, const Options& o, const std::string& config_path, const std::string& data_dir) {
  const std::string runtime = detail::str_or(node, "runtime", "process");
  const std::string address = detail::str_or(node, "address");
  const std::string port = std::to_string(o.port);
  auto args = [&](const std::string& listen, const std::string& storage) {
    return json::array({"--config.file=" + config_path, "--web.listen-address=" + listen, "--storage.tsdb.path=" + storage,
                        "--storage.tsdb.retention.time=" + o.retention, "--web.enable-lifecycle"});
  };
  if (runtime == "process") {
    json command = json::array({o.prometheus_bin});
    for (auto& a : args(address + ":" + port, data_dir)) command.push_back(a);
    return json{{"name", kPrometheusWorkload}, {"command", command}, {"env", json::object()}, {"ports", json::array({o.port})}};
  }
  if (runtime == "docker") {
    return json{{"name", kPrometheusWorkload},
                {"image", o.prometheus_image},
                {"args", args("0.0.0.0:" + port, "/prometheus")},
                {"env", json::object()},
                {"ports", json::array({o.port})},
                {"volumes", json::array({json{{"source", data_dir}, {"target", "/prometheus"}, {"read_only", false}}})}};
  }
  throw std::invalid_argument("node " + detail::str_or(node, "name") + " uses runtime \"" + runtime +
                              "\"; prometheus-cadvisor runs Prometheus only on the process and docker runtimes");
}

/// One scrape target with its extra labels.
struct Target {
  std::string address;  // host:port
  std::map<std::string, std::string> labels;
};

/// One scrape job: a scrape_configs entry fed by its own file_sd file.
struct Job {
  std::string name;
  std::string file;  // file_sd file stem, unique among jobs
  std::string metrics_path = "/metrics";
  std::string scheme = "http";
  std::string scrape_interval;  // empty: the global interval
  std::vector<Target> targets;
};

/// The node of the cluster named `name`, or nullptr.
inline const json* find_node(const json& request, const std::string& name) {
  if (!request.contains("nodes")) return nullptr;
  for (const auto& n : request["nodes"]) {
    if (detail::str_or(n, "name") == name) return &n;
  }
  return nullptr;
}

/// The node Prometheus runs on: the first of the resolved placement. Throws std::invalid_argument
/// when the placement is empty or names an unknown node.
inline const json& prometheus_node(const json& request) {
  const json& addon = request.at("addon");
  if (!addon.contains("nodes") || !addon["nodes"].is_array() || addon["nodes"].empty())
    throw std::invalid_argument(
        "no node matches the placement of addon " + detail::str_or(addon, "name", "prometheus-cadvisor") +
        "; add a node with role \"infra\" or set [addons.placement] in the topology");
  const std::string name = addon["nodes"][0].get<std::string>();
  const json* node = find_node(request, name);
  if (node == nullptr) throw std::invalid_argument("placement names node " + name + ", which is not in the cluster");
  return *node;
}

/// Nodes that should run an exporter (placed by role, with a known address), in request order.
inline std::vector<const json*> exporter_nodes(const json& request, const Options& o) {
  std::vector<const json*> out;
  if (!request.contains("nodes")) return out;
  for (const auto& n : request["nodes"]) {
    if (detail::str_or(n, "address").empty()) continue;
    if (exports_on(n, o)) out.push_back(&n);
  }
  return out;
}

/// Every scrape job the addon wants, in a stable order: prometheus, node, cadvisor, the jobs
/// published by other addons (sorted by addon), then one job per service.
inline std::vector<Job> desired_jobs(const json& request, const Options& o) {
  std::vector<Job> jobs;
  std::set<std::string> names;
  std::set<std::string> files;
  auto add = [&](Job job) {
    std::string stem = detail::file_stem(job.name);
    std::string unique = stem;
    for (int i = 2; files.contains(unique); ++i) unique = stem + "-" + std::to_string(i);
    job.file = unique;
    files.insert(unique);
    names.insert(job.name);
    jobs.push_back(std::move(job));
  };

  const json& prom = prometheus_node(request);
  Job self{.name = "prometheus"};
  self.targets.push_back({detail::str_or(prom, "address") + ":" + std::to_string(o.port), {{"node", detail::str_or(prom, "name")}}});
  add(std::move(self));

  Job node_job{.name = "node"};
  Job cadvisor_job{.name = "cadvisor"};
  for (const json* n : exporter_nodes(request, o)) {
    const std::string runtime = detail::str_or(*n, "runtime", "process");
    std::map<std::string, std::string> labels{{"node", detail::str_or(*n, "name")}};
    if (const auto group = detail::str_or(*n, "group"); !group.empty()) labels["group"] = group;
    if (runtime == "docker")
      cadvisor_job.targets.push_back({detail::str_or(*n, "address") + ":" + std::to_string(o.cadvisor_port), labels});
    else if (runtime == "process")
      node_job.targets.push_back({detail::str_or(*n, "address") + ":" + std::to_string(o.exporter_port), labels});
  }
  // The node job stays even when empty, so the configuration does not change as the first
  // exporter node joins; cAdvisor appears only once a Docker node exists.
  add(std::move(node_job));
  if (!cadvisor_job.targets.empty()) add(std::move(cadvisor_job));

  if (request.contains("addons") && request["addons"].is_object()) {
    // std::map iteration gives the addons sorted by name, so the order is stable across runs.
    std::map<std::string, json> addons;
    for (const auto& [key, value] : request["addons"].items()) addons[key] = value;
    for (const auto& [addon_name, report] : addons) {
      if (!report.is_object() || !report.contains("outputs") || !report["outputs"].is_object()) continue;
      const json& outputs = report["outputs"];
      if (!outputs.contains("metrics_targets") || !outputs["metrics_targets"].is_array()) continue;
      for (const auto& entry : outputs["metrics_targets"]) {
        if (!entry.is_object()) continue;
        Job job;
        job.name = detail::str_or(entry, "job", addon_name);
        if (names.contains(job.name)) job.name = addon_name + ":" + job.name;
        for (int i = 2; names.contains(job.name); ++i) job.name = addon_name + ":" + detail::str_or(entry, "job", addon_name) + "-" + std::to_string(i);
        job.metrics_path = detail::str_or(entry, "metrics_path", "/metrics");
        job.scheme = detail::str_or(entry, "scheme", "http");
        job.scrape_interval = detail::str_or(entry, "scrape_interval");
        std::map<std::string, std::string> labels{{"addon", addon_name}};
        if (entry.contains("labels") && entry["labels"].is_object()) {
          for (const auto& [k, v] : entry["labels"].items()) {
            if (v.is_string()) labels[k] = v.get<std::string>();
          }
        }
        if (entry.contains("targets") && entry["targets"].is_array()) {
          for (const auto& t : entry["targets"]) {
            if (t.is_string()) job.targets.push_back({t.get<std::string>(), labels});
          }
        }
        add(std::move(job));
      }
    }
  }

  if (o.scrape_services && request.contains("services") && request["services"].is_array()) {
    for (const auto& svc : request["services"]) {
      const std::string name = detail::str_or(svc, "name");
      if (name.empty()) continue;
      // A service without a port serves no HTTP, so there is nothing to scrape.
      if (svc.contains("port") && svc["port"].is_number_integer() && svc["port"].get<int>() == 0) continue;
      Job job{.name = "service:" + name, .file = {}, .metrics_path = o.services_metrics_path};
      if (svc.contains("instances") && svc["instances"].is_array()) {
        for (const auto& inst : svc["instances"]) {
          const std::string state = detail::str_or(inst, "state", "running");
          if (state != "running") continue;
          const std::string address = detail::str_or(inst, "address");
          if (address.empty() || !inst.contains("port") || !inst["port"].is_number_integer()) continue;
          std::map<std::string, std::string> labels{{"service", name}};
          if (const auto node = detail::str_or(inst, "node"); !node.empty()) labels["node"] = node;
          if (const auto id = detail::str_or(inst, "id"); !id.empty()) labels["service_instance"] = id;
          job.targets.push_back({address + ":" + std::to_string(inst["port"].get<int>()), labels});
        }
      }
      add(std::move(job));
    }
  }
  return jobs;
}

/// The file_sd document of a job: one target group per target, so each keeps its own labels.
inline std::string render_file_sd(const Job& job) {
  json groups = json::array();
  for (const auto& t : job.targets) {
    json labels = json::object();
    for (const auto& [k, v] : t.labels) labels[k] = v;
    groups.push_back(json{{"targets", json::array({t.address})}, {"labels", labels}});
  }
  return groups.dump(2) + "\n";
}

/// A YAML double-quoted scalar (JSON string syntax is a subset of it).
inline std::string yaml_quote(const std::string& s) { return json(s).dump(); }

/// prometheus.yml: global settings and one scrape config per job, each reading its file_sd file.
/// `sd_paths` maps a job name to the path of its file as Prometheus sees it.
inline std::string render_config(const std::vector<Job>& jobs, const std::map<std::string, std::string>& sd_paths, const Options& o,
                                 const std::string& cluster) {
  std::string y;
  y += "# Written by the Flotilla addon prometheus-cadvisor; it is replaced on every `flotilla up`.\n";
  y += "# Targets live in the file_sd files named below and change without a reload.\n";
  y += "global:\n";
  y += "  scrape_interval: " + yaml_quote(o.scrape_interval) + "\n";
  y += "  evaluation_interval: " + yaml_quote(o.scrape_interval) + "\n";
  y += "  external_labels:\n";
  y += "    cluster: " + yaml_quote(cluster) + "\n";
  y += "scrape_configs:\n";
  for (const auto& job : jobs) {
    const auto it = sd_paths.find(job.name);
    if (it == sd_paths.end()) throw std::logic_error("no file_sd path for job " + job.name);
    y += "  - job_name: " + yaml_quote(job.name) + "\n";
    if (!job.scrape_interval.empty()) y += "    scrape_interval: " + yaml_quote(job.scrape_interval) + "\n";
    y += "    metrics_path: " + yaml_quote(job.metrics_path) + "\n";
    y += "    scheme: " + yaml_quote(job.scheme) + "\n";
    y += "    file_sd_configs:\n";
    y += "      - files:\n";
    y += "          - " + yaml_quote(it->second) + "\n";
  }
  return y;
}

/// FNV-1a of a text, as 16 hex digits: identifies a configuration in the addon's state.
inline std::string content_hash(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static const char* kHex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kHex[h & 0xF];
  return out;
}

/// Problems with a request as the validate operation reports them: options, placement, and
/// node runtimes this addon cannot serve.
inline std::vector<OptionError> validate_request(const json& request) {
  std::vector<OptionError> errors;
  const json config = request.contains("addon") && request["addon"].contains("config") ? request["addon"]["config"] : json::object();
  const Options o = parse_options(config, errors);
  try {
    const json& prom = prometheus_node(request);
    const std::string runtime = detail::str_or(prom, "runtime", "process");
    if (!runtime_supported(runtime))
      errors.push_back({"placement", "node " + detail::str_or(prom, "name") + " uses runtime \"" + runtime +
                                         "\"; Prometheus runs only on the process and docker runtimes; place it elsewhere"});
  } catch (const std::exception& e) {
    errors.push_back({"placement", e.what()});
  }
  // Ports this addon binds, per node, against each other and against the service instances
  // already placed there: a clash would only show later as a component that cannot bind.
  std::map<std::string, std::map<int, std::string>> used;  // node -> port -> what
  try {
    used[detail::str_or(prometheus_node(request), "name")][o.port] = "Prometheus (option port)";
  } catch (const std::exception&) {
  }
  for (const json* n : exporter_nodes(request, o)) {
    const bool docker = detail::str_or(*n, "runtime", "process") == "docker";
    const int port = docker ? o.cadvisor_port : o.exporter_port;
    const std::string what = docker ? "cAdvisor (option cadvisor_port)" : "node_exporter (option exporter_port)";
    auto& ports = used[detail::str_or(*n, "name")];
    if (auto it = ports.find(port); it != ports.end())
      errors.push_back({docker ? "cadvisor_port" : "exporter_port", what + " and " + it->second + " both use port " + std::to_string(port) +
                                                                      " on node " + detail::str_or(*n, "name") + "; give them different ports"});
    else
      ports[port] = what;
  }
  if (request.contains("services") && request["services"].is_array()) {
    for (const auto& svc : request["services"]) {
      if (!svc.contains("instances") || !svc["instances"].is_array()) continue;
      for (const auto& inst : svc["instances"]) {
        if (!inst.contains("port") || !inst["port"].is_number_integer()) continue;
        const auto node_it = used.find(detail::str_or(inst, "node"));
        if (node_it == used.end()) continue;
        const auto it = node_it->second.find(inst["port"].get<int>());
        if (it == node_it->second.end()) continue;
        const std::string key = it->second.find("option port)") != std::string::npos ? "port"
                                : it->second.find("cadvisor_port") != std::string::npos ? "cadvisor_port"
                                                                                          : "exporter_port";
        errors.push_back({key, it->second + " uses port " + std::to_string(it->first) + " on node " + node_it->first + ", where " +
                                   detail::str_or(inst, "id", detail::str_or(svc, "name")) + " already listens; choose another " + key});
      }
    }
  }

  if (request.contains("nodes") && request["nodes"].is_array()) {
    for (const auto& n : request["nodes"]) {
      if (!exports_on(n, o)) continue;
      const std::string runtime = detail::str_or(n, "runtime");
      // The runtime is known only once the driver has created the node.
      if (!runtime.empty() && !runtime_supported(runtime))
        errors.push_back({"exporter_roles", "node " + detail::str_or(n, "name") + " uses runtime \"" + runtime +
                                                "\", which has no exporter here; leave its roles out of exporter_roles"});
    }
  }
  return errors;
}

}  // namespace flotilla::addons::prometheus
