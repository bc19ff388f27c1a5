#include "addon_prometheus_cadvisor/monitoring_model.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/plugin_options.hpp"

#include <algorithm>
#include <regex>
#include <set>
#include <stdexcept>
#include <utility>

namespace flotilla::addons::prometheus {
namespace {

using flotilla::support::str_or;

/// A job name as a file name: keeps [A-Za-z0-9_.-], turns the rest into '_'.
std::string file_stem(const std::string& job) {
  std::string out;
  for (char c : job) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    out += keep ? c : '_';
  }
  if (out.empty() || out[0] == '.') out.insert(0, "job");
  return out;
}

// Prometheus's duration syntax, units largest first, each at most once; the lookahead asks for
// a non-zero digit, so "0s" and "" are refused.
constexpr const char* kDuration = "(?=.*[1-9])([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?";

}  // namespace

const flotilla::support::ConfigMap<Options>& options_map() {
  using M = flotilla::support::ConfigMap<Options>;
  static const auto map =
      M()
          .integer("port", &Options::port, "Port of the Prometheus UI and API on the Prometheus node's address")
          .range(1, 65535)
          .string("retention", &Options::retention,
                  "How long Prometheus keeps samples (--storage.tsdb.retention.time), e.g. 6h, 15d")
          .pattern(kDuration)
          .string("scrape_interval", &Options::scrape_interval,
                  "How often every target is scraped (global scrape_interval), e.g. 5s, 1m")
          .pattern(kDuration)
          .strings("exporter_roles", &Options::exporter_roles, "Node roles that get an exporter; empty means every node")
          .integer("exporter_port", &Options::exporter_port, "Port of node_exporter on each node's address")
          .range(1, 65535)
          .strings("exporter_disable_collectors", &Options::exporter_disable_collectors,
                   "node_exporter collectors to switch off (noisy or failing without systemd)")
          .pattern("[a-z0-9_]+")
          .string("node_exporter_image", &Options::node_exporter_image,
                  "node_exporter image for Docker-runtime nodes (its entrypoint is node_exporter, as in prom/node-exporter)")
          .string("prometheus_image", &Options::prometheus_image,
                  "Prometheus image when the Prometheus node runs Docker (its entrypoint is prometheus, as in prom/prometheus)")
          .boolean("scrape_services", &Options::scrape_services, "Scrape every service instance (one job per service)")
          .string("services_metrics_path", &Options::services_metrics_path, "Path of the services' metrics")
          .pattern("/.*")
          .string("prometheus_bin", &Options::prometheus_bin, "Prometheus binary on process-runtime nodes")
          .string("node_exporter_bin", &Options::node_exporter_bin, "node_exporter binary on process-runtime nodes")
          .integer("ready_timeout_s", &Options::ready_timeout_s,
                   "How long to wait for Prometheus to report ready after a start")
          .min(1)
          .string("exporter", &Options::exporter,
                  "What Docker nodes run: node-exporter, cadvisor or both (process nodes always run node_exporter)")
          .one_of({"node-exporter", "cadvisor", "both"})
          .string("cadvisor_image", &Options::cadvisor_image,
                  "cAdvisor image for Docker nodes (as gcr.io/cadvisor/cadvisor or ghcr.io/google/cadvisor: its entrypoint is cadvisor, on port 8080)")
          .integer("cadvisor_port", &Options::cadvisor_port, "Port on each Docker node's address where cAdvisor's 8080 is published")
          .range(1, 65535);
  return map;
}

const char* manifest() {
  static const std::string text = options_map().manifest(R"json({
  "provides": ["metrics"],
  "requires": ["services"],
  "optional": ["ingress", "discovery"],
  "placement": {"roles": ["infra"], "mode": "first"}
})json");
  return text.c_str();
}

bool is_prometheus_duration(const std::string& text) {
  static const std::regex duration(kDuration);
  return std::regex_match(text, duration);
}

Options parse_options(const json& config, std::vector<OptionError>& errors) {
  auto filled = options_map().fill(config);
  for (auto& e : filled.errors) errors.push_back(std::move(e));
  return filled.config;
}

Options parse_options(const json& config) { return options_map().load(config); }

bool exports_on(const json& node, const Options& o) {
  if (o.exporter_roles.empty()) return true;
  if (!node.contains("roles") || !node["roles"].is_array()) return false;
  for (const auto& r : node["roles"]) {
    if (r.is_string() && std::find(o.exporter_roles.begin(), o.exporter_roles.end(), r.get<std::string>()) != o.exporter_roles.end())
      return true;
  }
  return false;
}

json exporter_workload(const json& node, const Options& o) {
  const std::string runtime = str_or(node, "runtime", "process");
  const std::string address = str_or(node, "address");
  json args = json::array({"--web.listen-address=" + address + ":" + std::to_string(o.exporter_port)});
  for (const auto& c : o.exporter_disable_collectors) args.push_back("--no-collector." + c);
  if (runtime == "process") {
    json command = json::array({o.node_exporter_bin});
    for (auto& a : args) command.push_back(a);
    return json{{"name", kNodeExporterWorkload}, {"command", command}, {"env", json::object()}, {"ports", json::array({o.exporter_port})}};
  }
  if (runtime == "docker") {
    // The node's network: the exporter binds the node's address as the process would, and the
    // image's entrypoint (node_exporter) takes the flags.
    return json{{"name", kNodeExporterWorkload}, {"image", o.node_exporter_image}, {"network", "host"}, {"cmd", args},
                {"env", json::object()}, {"ports", json::array({o.exporter_port})}};
  }
  throw std::invalid_argument("node " + str_or(node, "name") + " uses runtime \"" + runtime +
                              "\"; prometheus-cadvisor runs exporters only on the process and docker runtimes");
}

json cadvisor_workload(const json& node, const Options& o) {
  const std::string runtime = str_or(node, "runtime", "process");
  if (runtime != "docker")
    throw std::invalid_argument("node " + str_or(node, "name") + " uses runtime \"" + runtime +
                                "\"; cAdvisor runs only in a container on a Docker node");
  // The README's `--volume=SRC:DST:ro` lines. --volume creates a missing source directory (a
  // host without /dev/disk, say), so the mounts ask the runtime for the same.
  static const std::vector<std::pair<std::string, std::string>> kMounts = {
      {"/", "/rootfs"}, {"/var/run", "/var/run"}, {"/sys", "/sys"}, {"/var/lib/docker", "/var/lib/docker"}, {"/dev/disk", "/dev/disk"}};
  json mounts = json::array();
  for (const auto& [source, target] : kMounts)
    mounts.push_back({{"source", source}, {"target", target}, {"type", "bind"}, {"read_only", true}, {"create_source", true}});
  // Bridged with the port published, as the README runs it: the image's own HEALTHCHECK asks
  // localhost:8080, so the container keeps that port and the node's address maps it. The image's
  // entrypoint and flags stay as they are.
  return json{{"name", kCadvisorWorkload},
              {"image", o.cadvisor_image},
              {"env", json::object()},
              {"ports", json::array({json{{"container", kCadvisorContainerPort}, {"host", o.cadvisor_port}}})},
              {"mounts", mounts},
              {"privileged", true},
              {"devices", json::array({"/dev/kmsg"})}};
}

std::vector<json> node_workloads(const json& node, const Options& o) {
  if (str_or(node, "runtime", "process") != "docker") return {exporter_workload(node, o)};
  std::vector<json> out;
  if (wants_node_exporter(o)) out.push_back(exporter_workload(node, o));
  if (wants_cadvisor(o)) out.push_back(cadvisor_workload(node, o));
  return out;
}

std::vector<std::string> nodes_without_cadvisor(const json& request, const Options& o) {
  std::vector<std::string> out;
  if (!wants_cadvisor(o)) return out;
  for (const json* n : exporter_nodes(request, o))
    if (str_or(*n, "runtime", "process") == "process") out.push_back(str_or(*n, "name"));
  return out;
}

json prometheus_workload(const json& node, const Options& o, const std::string& config_path, const std::string& data_dir) {
  const std::string runtime = str_or(node, "runtime", "process");
  const std::string address = str_or(node, "address");
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
    // In the node's network, so it reaches every exporter's node address; its data stays in
    // the container (/prometheus) and goes with it. The config comes from the runtime's files
    // volume, which config_path names.
    return json{{"name", kPrometheusWorkload},
                {"image", o.prometheus_image},
                {"network", "host"},
                {"cmd", args(address + ":" + port, "/prometheus")},
                {"env", json::object()},
                {"ports", json::array({o.port})}};
  }
  throw std::invalid_argument("node " + str_or(node, "name") + " uses runtime \"" + runtime +
                              "\"; prometheus-cadvisor runs Prometheus only on the process and docker runtimes");
}

const json* find_node(const json& request, const std::string& name) {
  if (!request.contains("nodes")) return nullptr;
  for (const auto& n : request["nodes"]) {
    if (str_or(n, "name") == name) return &n;
  }
  return nullptr;
}

const json& prometheus_node(const json& request) {
  const json& addon = request.at("addon");
  if (!addon.contains("nodes") || !addon["nodes"].is_array() || addon["nodes"].empty())
    throw std::invalid_argument(
        "no node matches the placement of addon " + str_or(addon, "name", "prometheus-cadvisor") +
        "; add a node with role \"infra\" or set [addons.placement] in the topology");
  const std::string name = addon["nodes"][0].get<std::string>();
  const json* node = find_node(request, name);
  if (node == nullptr) throw std::invalid_argument("placement names node " + name + ", which is not in the cluster");
  return *node;
}

std::vector<const json*> exporter_nodes(const json& request, const Options& o) {
  std::vector<const json*> out;
  if (!request.contains("nodes")) return out;
  for (const auto& n : request["nodes"]) {
    if (str_or(n, "address").empty()) continue;
    if (exports_on(n, o)) out.push_back(&n);
  }
  return out;
}

namespace {

/// The jobs of one configuration, each given a file stem no other job has.
class JobList {
 public:
  void add(Job job) {
    const std::string stem = file_stem(job.name);
    std::string unique = stem;
    for (int i = 2; files_.contains(unique); ++i) unique = stem + "-" + std::to_string(i);
    job.file = unique;
    files_.insert(unique);
    names_.insert(job.name);
    jobs_.push_back(std::move(job));
  }
  [[nodiscard]] bool has(const std::string& name) const { return names_.contains(name); }
  std::vector<Job> take() { return std::move(jobs_); }

 private:
  std::vector<Job> jobs_;
  std::set<std::string> names_;
  std::set<std::string> files_;
};

/// The labels of an exporter node's targets: its name and, when it has one, its group.
std::map<std::string, std::string> node_labels(const json& node) {
  std::map<std::string, std::string> labels{{"node", str_or(node, "name")}};
  if (const auto group = str_or(node, "group"); !group.empty()) labels["group"] = group;
  return labels;
}

/// Prometheus scraping itself.
Job prometheus_job(const json& request, const Options& o) {
  const json& prom = prometheus_node(request);
  Job self{.name = "prometheus"};
  self.targets.push_back({str_or(prom, "address") + ":" + std::to_string(o.port), {{"node", str_or(prom, "name")}}});
  return self;
}

/// node_exporter on every exporter node that runs it: every process node, and the Docker nodes
/// while option `exporter` asks for it.
Job node_exporter_job(const json& request, const Options& o) {
  Job job{.name = "node"};
  for (const json* n : exporter_nodes(request, o)) {
    const std::string runtime = str_or(*n, "runtime", "process");
    if (!runtime_supported(runtime)) continue;
    if (runtime == "process" || wants_node_exporter(o))
      job.targets.push_back({str_or(*n, "address") + ":" + std::to_string(o.exporter_port), node_labels(*n)});
  }
  return job;
}

/// cAdvisor on every exporter node of the docker runtime, at cadvisor_port.
Job cadvisor_job(const json& request, const Options& o) {
  Job job{.name = "cadvisor"};
  for (const json* n : exporter_nodes(request, o))
    if (str_or(*n, "runtime", "process") == "docker")
      job.targets.push_back({str_or(*n, "address") + ":" + std::to_string(o.cadvisor_port), node_labels(*n)});
  return job;
}

/// The jobs other addons ask for in their `metrics_targets` output; a name already taken gets
/// the addon's name in front (and a number after, while that is taken too).
void add_addon_jobs(const json& request, JobList& jobs) {
  if (!request.contains("addons") || !request["addons"].is_object()) return;
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
      job.name = str_or(entry, "job", addon_name);
      if (jobs.has(job.name)) job.name = addon_name + ":" + job.name;
      for (int i = 2; jobs.has(job.name); ++i) job.name = addon_name + ":" + str_or(entry, "job", addon_name) + "-" + std::to_string(i);
      job.metrics_path = str_or(entry, "metrics_path", "/metrics");
      job.scheme = str_or(entry, "scheme", "http");
      job.scrape_interval = str_or(entry, "scrape_interval");
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
      jobs.add(std::move(job));
    }
  }
}

/// One job per service with a port, its running instances the targets.
void add_service_jobs(const json& request, const Options& o, JobList& jobs) {
  if (!request.contains("services") || !request["services"].is_array()) return;
  for (const auto& svc : request["services"]) {
    const std::string name = str_or(svc, "name");
    if (name.empty()) continue;
    // A service without a port serves no HTTP, so there is nothing to scrape.
    if (svc.contains("port") && svc["port"].is_number_integer() && svc["port"].get<int>() == 0) continue;
    Job job{.name = "service:" + name, .file = {}, .metrics_path = o.services_metrics_path};
    if (svc.contains("instances") && svc["instances"].is_array()) {
      for (const auto& inst : svc["instances"]) {
        const std::string state = str_or(inst, "state", "running");
        if (state != "running") continue;
        const std::string address = str_or(inst, "address");
        if (address.empty() || !inst.contains("port") || !inst["port"].is_number_integer()) continue;
        std::map<std::string, std::string> labels{{"service", name}};
        if (const auto node = str_or(inst, "node"); !node.empty()) labels["node"] = node;
        if (const auto id = str_or(inst, "id"); !id.empty()) labels["service_instance"] = id;
        job.targets.push_back({address + ":" + std::to_string(inst["port"].get<int>()), labels});
      }
    }
    jobs.add(std::move(job));
  }
}

}  // namespace

std::vector<Job> desired_jobs(const json& request, const Options& o) {
  JobList jobs;
  jobs.add(prometheus_job(request, o));
  // The node job stays even when empty, and so does the cadvisor job while cAdvisor is asked
  // for, so the configuration does not change as the first exporter node joins; without
  // cAdvisor there is no cadvisor job, so existing configurations stay as they were.
  jobs.add(node_exporter_job(request, o));
  if (wants_cadvisor(o)) jobs.add(cadvisor_job(request, o));
  add_addon_jobs(request, jobs);
  if (o.scrape_services) add_service_jobs(request, o, jobs);
  return jobs.take();
}

std::string render_file_sd(const Job& job) {
  json groups = json::array();
  for (const auto& t : job.targets) {
    json labels = json::object();
    for (const auto& [k, v] : t.labels) labels[k] = v;
    groups.push_back(json{{"targets", json::array({t.address})}, {"labels", labels}});
  }
  return groups.dump(2) + "\n";
}

std::string render_config(const std::vector<Job>& jobs, const std::map<std::string, std::string>& sd_paths, const Options& o,
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

bool is_loaded_config(const std::string& recorded, const std::string& config) {
  return recorded == support::stable_hash(config) || recorded == support::legacy_stable_hash(config);
}

std::vector<OptionError> validate_request(const json& request) {
  std::vector<OptionError> errors;
  const json config = support::addon_config(request);
  const Options o = parse_options(config, errors);
  try {
    const json& prom = prometheus_node(request);
    const std::string runtime = str_or(prom, "runtime", "process");
    if (!runtime_supported(runtime))
      errors.push_back({"placement", "node " + str_or(prom, "name") + " uses runtime \"" + runtime +
                                         "\"; Prometheus runs only on the process and docker runtimes; place it elsewhere"});
  } catch (const std::exception& e) {
    errors.push_back({"placement", e.what()});
  }
  // Ports this addon binds, per node, against each other and against the service instances
  // already placed there: a clash would only show later as a component that cannot bind.
  struct Use {
    std::string what;
    std::string key;  // the option that sets the port
  };
  std::map<std::string, std::map<int, Use>> used;  // node -> port -> what
  try {
    used[str_or(prometheus_node(request), "name")][o.port] = {"Prometheus (option port)", "port"};
  } catch (const std::exception&) {
  }
  for (const json* n : exporter_nodes(request, o)) {
    const std::string runtime = str_or(*n, "runtime", "process");
    std::vector<std::pair<int, Use>> wanted;
    if (runtime != "docker" || wants_node_exporter(o))
      wanted.push_back({o.exporter_port, {"node_exporter (option exporter_port)", "exporter_port"}});
    if (runtime == "docker" && wants_cadvisor(o)) wanted.push_back({o.cadvisor_port, {"cAdvisor (option cadvisor_port)", "cadvisor_port"}});
    auto& ports = used[str_or(*n, "name")];
    for (auto& [port, use] : wanted) {
      if (auto it = ports.find(port); it != ports.end())
        errors.push_back({use.key, use.what + " and " + it->second.what + " both use port " + std::to_string(port) + " on node " +
                                       str_or(*n, "name") + "; give them different ports"});
      else
        ports[port] = std::move(use);
    }
  }
  if (request.contains("services") && request["services"].is_array()) {
    for (const auto& svc : request["services"]) {
      if (!svc.contains("instances") || !svc["instances"].is_array()) continue;
      for (const auto& inst : svc["instances"]) {
        if (!inst.contains("port") || !inst["port"].is_number_integer()) continue;
        const auto node_it = used.find(str_or(inst, "node"));
        if (node_it == used.end()) continue;
        const auto it = node_it->second.find(inst["port"].get<int>());
        if (it == node_it->second.end()) continue;
        const std::string& key = it->second.key;
        errors.push_back({key, it->second.what + " uses port " + std::to_string(it->first) + " on node " + node_it->first + ", where " +
                                   str_or(inst, "id", str_or(svc, "name")) + " already listens; choose another " + key});
      }
    }
  }

  if (request.contains("nodes") && request["nodes"].is_array()) {
    for (const auto& n : request["nodes"]) {
      if (!exports_on(n, o)) continue;
      const std::string runtime = str_or(n, "runtime");
      // The runtime is known only once the driver has created the node.
      if (!runtime.empty() && !runtime_supported(runtime))
        errors.push_back({"exporter_roles", "node " + str_or(n, "name") + " uses runtime \"" + runtime +
                                                "\", which has no exporter here; leave its roles out of exporter_roles"});
    }
  }
  return errors;
}
}  // namespace flotilla::addons::prometheus
