// What the prometheus-cadvisor addon wants on the cluster, computed from an addon request:
// options, scrape jobs and their targets, the Prometheus configuration, the file_sd documents
// and the workload specs. Everything here is pure (no I/O), so it is tested without servers.
#pragma once

#include "flotilla/support/config_map.hpp"
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

/// The port cAdvisor listens on in its container, as its image documents (and its HEALTHCHECK
/// asks); option cadvisor_port is where the node's address publishes it.
inline constexpr int kCadvisorContainerPort = 8080;

/// The manifest: option schema, capabilities and default placement (JSON text; lives as
/// long as the process).
[[nodiscard]] const char* manifest();

/// The addon's options; the defaults here are the manifest's.
struct Options {
  int port = 9090;
  std::string retention = "15d";
  std::string scrape_interval = "5s";
  std::vector<std::string> exporter_roles;
  int exporter_port = 9100;
  std::vector<std::string> exporter_disable_collectors{"systemd"};
  std::string node_exporter_image = "prom/node-exporter:v1.5.0";
  std::string prometheus_image = "prom/prometheus:v2.42.0";
  bool scrape_services = true;
  std::string services_metrics_path = "/metrics";
  std::string prometheus_bin = "/usr/bin/prometheus";
  std::string node_exporter_bin = "/usr/bin/prometheus-node-exporter";
  int ready_timeout_s = 60;
  /// "node-exporter", "cadvisor" or "both": what runs on Docker nodes. Process nodes always
  /// get node_exporter.
  std::string exporter = "node-exporter";
  std::string cadvisor_image = "ghcr.io/google/cadvisor:v0.53.0";
  int cadvisor_port = 8081;
};

/// True when Docker nodes get node_exporter / cAdvisor under `o.exporter`.
inline bool wants_node_exporter(const Options& o) { return o.exporter != "cadvisor"; }
inline bool wants_cadvisor(const Options& o) { return o.exporter != "node-exporter"; }

/// One option problem, as the validate operation reports it.
using OptionError = flotilla::support::OptionError;

/// The options' declarations: the manifest's schema and the reader of Options.
[[nodiscard]] const flotilla::support::ConfigMap<Options>& options_map();

/// True for a Prometheus duration ("5s", "1h30m", "15d"; not "0s").
bool is_prometheus_duration(const std::string& text);

/// Reads the options table; every problem found is added to `errors` and the default is kept.
Options parse_options(const json& config, std::vector<OptionError>& errors);

/// Reads the options table; throws std::invalid_argument listing every problem.
Options parse_options(const json& config);

/// True when the node should run an exporter (its roles meet exporter_roles, or that is empty).
bool exports_on(const json& node, const Options& o);

/// "process" or "docker" runtimes are served; anything else is named in the error.
inline bool runtime_supported(const std::string& runtime) { return runtime == "process" || runtime == "docker"; }

/// The exporter workload for a node: node_exporter, Debian's binary on the process runtime and
/// the `node_exporter_image` container in the node's network on Docker. Throws
/// std::invalid_argument for any other runtime.
json exporter_workload(const json& node, const Options& o);

/// The cAdvisor container for a Docker node, as cAdvisor's README runs it ("Quick Start:
/// Running cAdvisor in a Docker Container"): /, /var/run, /sys, /var/lib/docker and /dev/disk
/// bound read-only, privileged, /dev/kmsg, port 8080 published on the node's address at
/// cadvisor_port. Throws std::invalid_argument for a node that is not on the docker runtime.
json cadvisor_workload(const json& node, const Options& o);

/// The exporter workloads a node gets under `o.exporter`: node_exporter and/or cAdvisor on a
/// Docker node, node_exporter alone on a process node (cAdvisor runs only in Docker). Throws
/// std::invalid_argument for any other runtime.
std::vector<json> node_workloads(const json& node, const Options& o);

/// The exporter nodes that get no cAdvisor although `o.exporter` asks for it (they run the
/// process runtime and keep node_exporter), in request order.
std::vector<std::string> nodes_without_cadvisor(const json& request, const Options& o);

/// The Prometheus workload on `node`: the Debian binary on the process runtime, the image on Docker.
/// `config_path` is where put_file placed prometheus.yml, as the workload sees it.
json prometheus_workload(const json& node, const Options& o, const std::string& config_path, const std::string& data_dir);

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
const json* find_node(const json& request, const std::string& name);

/// The node Prometheus runs on: the first of the resolved placement. Throws std::invalid_argument
/// when the placement is empty or names an unknown node.
const json& prometheus_node(const json& request);

/// Nodes that should run an exporter (placed by role, with a known address), in request order.
std::vector<const json*> exporter_nodes(const json& request, const Options& o);

/// Every scrape job the addon wants, in a stable order: prometheus, node, cadvisor (only when
/// `exporter` is "cadvisor" or "both"), the jobs
/// published by other addons (sorted by addon), then one job per service.
std::vector<Job> desired_jobs(const json& request, const Options& o);

/// The file_sd document of a job: one target group per target, so each keeps its own labels.
std::string render_file_sd(const Job& job);

/// A YAML double-quoted scalar (JSON string syntax is a subset of it).
inline std::string yaml_quote(const std::string& s) { return json(s).dump(); }

/// prometheus.yml: global settings and one scrape config per job, each reading its file_sd file.
/// `sd_paths` maps a job name to the path of its file as Prometheus sees it.
std::string render_config(const std::vector<Job>& jobs, const std::map<std::string, std::string>& sd_paths, const Options& o,
                                 const std::string& cluster);

/// True when `recorded` (the state's `loaded_config`) identifies `config`: its
/// support::stable_hash, or the hash earlier releases stored (support::legacy_stable_hash), so
/// state written before the hash was corrected causes no reload; the next save stores the new one.
bool is_loaded_config(const std::string& recorded, const std::string& config);

/// Problems with a request as the validate operation reports them: options, placement, and
/// node runtimes this addon cannot serve.
std::vector<OptionError> validate_request(const json& request);

}  // namespace flotilla::addons::prometheus
