// Addon prometheus-cadvisor: Prometheus on one node, exporters on every chosen node
// (node_exporter as a process or a container, cAdvisor in a container on Docker nodes, as
// option `exporter` says), and scrape targets that follow
// the cluster through file_sd files, so nodes and instances come and go without a reload.
//
// Changes that need a new configuration (a job appears or goes, the scrape interval changes)
// are applied with POST /-/reload; Prometheus is restarted only when its command line changes
// (port, retention, binary) or it is not running.
#include "addon_prometheus_cadvisor/addon.hpp"

#include "addon_prometheus_cadvisor/monitoring_model.hpp"
#include "flotilla/support/encoding.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/http_wait.hpp"
#include "flotilla/support/wait.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace flotilla::addons::prometheus {
namespace {

namespace prom = flotilla::addons::prometheus;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::json;
using flotilla::support::str_or;

namespace support = flotilla::support;
using namespace std::chrono_literals;

/// The body of GET `url`, or "" when nothing answers (a missing sample then reads as -1).
std::string get_or_empty(support::HttpClient& http, const std::string& url) {
  try {
    return http.send({.url = url}).body;
  } catch (const support::Unreachable&) {
    return {};
  }
}

/// The value of an unlabelled sample in Prometheus' text exposition, or -1 when absent.
double sample_value(const std::string& exposition, const std::string& metric) {
  size_t pos = 0;
  while ((pos = exposition.find(metric, pos)) != std::string::npos) {
    const bool line_start = pos == 0 || exposition[pos - 1] == '\n';
    const size_t after = pos + metric.size();
    if (line_start && after < exposition.size() && exposition[after] == ' ') {
      try {
        return std::stod(exposition.substr(after + 1, exposition.find('\n', after) - after - 1));
      } catch (const std::exception&) {
        return -1;
      }
    }
    pos = after;
  }
  return -1;
}

/// Writes a file on `node` through the runtime; returns its path as workloads see it.
std::string put_file(Context& ctx, const std::string& node, const std::string& rel, const std::string& content) {
  const json r = ctx.runtime(json{{"op", "put_file"}, {"node", node}, {"path", rel}, {"content", content}, {"mode", 0644}});
  const std::string path = str_or(r, "path");
  if (path.empty()) throw Error(FLT_ERROR, "runtime put_file of " + rel + " on node " + node + " returned no path");
  return path;
}

/// Stops this addon's components that are not wanted any more (node left the exporter roles,
/// Prometheus moved to another node).
void stop_unwanted(Context& ctx, const std::set<std::pair<std::string, std::string>>& wanted) {
  std::vector<sdk::Component> unwanted;
  for (const sdk::Component& c : ctx.list()) {
    if (wanted.contains({c.node, c.name})) continue;
    ctx.info("stopping " + c.name + " on " + c.node + ": no longer placed there");
    unwanted.push_back(c);
  }
  (void)Context::all_ok(ctx.stop_each(unwanted));
}

/// Polls /-/ready until Prometheus answers 200; a dead process or a timeout is retryable.
void wait_ready(Context& ctx, const std::string& base_url, const std::string& node, int timeout_s, const json& started) {
  support::HttpClient http({.timeouts = {2000ms, 2000ms}});
  std::string seen = "no answer";
  bool stopped = false;
  int polls = 0;
  const auto ready = [&] {
    try {
      const support::HttpResponse r = http.send({.url = base_url + "/-/ready"});
      if (r.status == 200) return true;
      seen = "HTTP " + std::to_string(r.status);
    } catch (const support::Unreachable& e) {
      seen = e.what();
    }
    // Every 10 polls, ask the runtime whether the process is still there at all.
    if (++polls % 10 == 0) {
      const json st = ctx.runtime(json{{"op", "inspect"}, {"node", node}, {"name", prom::kPrometheusWorkload}});
      stopped = str_or(st, "state", "running") != "running";
    }
    return stopped;
  };
  if (support::wait_until(std::chrono::seconds(timeout_s), 200ms, ready, [&ctx] { return ctx.cancelled(); }) && !stopped) return;
  ctx.check_cancelled();
  std::string where;
  if (started.contains("record") && started["record"].is_object()) {
    if (const auto err = str_or(started["record"], "stderr"); !err.empty()) where = "; its log is " + err;
  }
  throw flotilla::sdk::Retryable("Prometheus on node " + node + " did not become ready at " + base_url + "/-/ready within " +
                                 std::to_string(timeout_s) + " s (last answer: " + seen + ")" + where);
}

/// Makes the running Prometheus load the new configuration without a restart: POST
/// /-/reload, or SIGHUP through the runtime when the lifecycle API is not enabled.
void reload(Context& ctx, const std::string& base_url, const std::string& node) {
  ctx.progress("reloading Prometheus on " + node);
  support::HttpClient http;
  std::string seen;
  try {
    const support::HttpResponse answer =
        http.send({.method = "POST", .url = base_url + "/-/reload", .timeouts = support::HttpTimeouts{2000ms, 30000ms}});
    if (answer.status == 200) {
      ctx.info("Prometheus on " + node + " reloaded its configuration");
      return;
    }
    if (answer.status != 403) seen = "HTTP " + std::to_string(answer.status) + ": " + answer.body;
  } catch (const support::Unreachable& e) {
    seen = e.what();
  }
  if (!seen.empty()) {
    throw Error(FLT_ERROR, "Prometheus on node " + node + " did not take the new configuration (" + seen +
                               "); it keeps the previous one. Check the options of addon prometheus-cadvisor, then run `flotilla up` again");
  }
  // 403: the lifecycle API is off in the running process; SIGHUP does the same reload.
  const std::string metrics_url = base_url + "/metrics";
  const double before = sample_value(get_or_empty(http, metrics_url), "prometheus_config_last_reload_success_timestamp_seconds");
  (void)ctx.runtime(json{{"op", "signal"}, {"node", node}, {"name", prom::kPrometheusWorkload}, {"signal", "HUP"}});
  const bool reloaded = support::wait_for_http(http, metrics_url, 15s, 200ms, [&](const std::string& metrics) {
    if (sample_value(metrics, "prometheus_config_last_reload_success_timestamp_seconds") > before) return true;
    if (sample_value(metrics, "prometheus_config_last_reload_successful") == 0)
      throw Error(FLT_ERROR, "Prometheus on node " + node + " rejected the new configuration after SIGHUP; see its log");
    return false;
  }).ok;
  if (!reloaded) throw flotilla::sdk::Retryable("Prometheus on node " + node + " did not report a reload within 15 s of SIGHUP");
}

/// The options of a request that passes validate; throws Invalid naming every problem.
prom::Options checked_options(const json& request) {
  const auto problems = prom::validate_request(request);
  if (!problems.empty()) {
    std::string msg;
    for (const auto& p : problems) msg += (msg.empty() ? "" : "; ") + p.message;
    throw flotilla::sdk::Invalid(msg);
  }
  return prom::parse_options(request.at("addon").value("config", json::object()));
}

/// Starts the exporters of every exporter node, then stops the exporters no longer wanted
/// (exporter changed, a node left the roles), so their targets go with them. Prometheus, on
/// `prom_name`, stays.
void start_exporters(Context& ctx, const json& request, const prom::Options& o, const std::string& prom_name) {
  std::set<std::pair<std::string, std::string>> wanted{{prom_name, prom::kPrometheusWorkload}};
  std::vector<json> starts;
  for (const json* node : prom::exporter_nodes(request, o)) {
    const std::string name = str_or(*node, "name");
    for (const json& workload : prom::node_workloads(*node, o)) {
      starts.push_back(json{{"op", "start"}, {"node", name}, {"workload", workload}});
      wanted.insert({name, workload["name"].get<std::string>()});
    }
  }
  // One node's exporters do not wait for another's: the engine starts them all at once.
  ctx.progress("starting " + std::to_string(starts.size()) + " exporter(s)");
  (void)ctx.runtime_all(starts);
  if (const auto kept = prom::nodes_without_cadvisor(request, o); !kept.empty()) {
    std::string names;
    for (const auto& n : kept) names += (names.empty() ? "" : ", ") + n;
    ctx.warn("exporter = \"" + o.exporter + "\": node(s) " + names +
             " run the process runtime, where cAdvisor (a container) cannot run; they keep node_exporter");
  }
  stop_unwanted(ctx, wanted);
}

/// Writes one file_sd file per job on `prom_name` and empties the files of jobs that are gone,
/// so nothing reads stale targets from them. Returns each job's file as Prometheus sees it;
/// every file written is set in `files`.
std::map<std::string, std::string> write_targets(Context& ctx, const std::vector<prom::Job>& jobs, const std::string& prom_name,
                                                 const json& state, json& files) {
  // put_file replaces a file atomically, which is what Prometheus' file watcher needs to never
  // read half a file. Paths are relative to the node's files directory, which the engine keeps
  // per addon.
  std::map<std::string, std::string> sd_paths;
  for (const auto& job : jobs) {
    const std::string rel = "sd/" + job.file + ".json";
    sd_paths[job.name] = put_file(ctx, prom_name, rel, prom::render_file_sd(job));
    files[rel] = true;
  }
  if (state.contains("files") && state["files"].is_object() && str_or(state, "node") == prom_name) {
    for (const auto& [rel, unused] : state["files"].items()) {
      if (!files.contains(rel) && rel.rfind("sd/", 0) == 0) (void)put_file(ctx, prom_name, rel, "[]\n");
    }
  }
  return sd_paths;
}

/// Starts Prometheus on `prom_node` with the configuration at `config_path` and waits until it
/// is ready. One that was already running loaded whatever config it had then; the state's
/// `loaded_config` says which one, so a config written by a run that died before reloading is
/// still reloaded.
void run_prometheus(Context& ctx, const json& addon, const json& prom_node, const prom::Options& o, const std::string& base_url,
                    const std::string& config_path, const std::string& config, const json& state) {
  const std::string prom_name = str_or(prom_node, "name");
  const std::string data_dir = str_or(addon, "dir", ".") + "/data";
  const json workload = prom::prometheus_workload(prom_node, o, config_path, data_dir);
  ctx.progress("prometheus on " + prom_name);
  const json started = ctx.runtime(json{{"op", "start"}, {"node", prom_name}, {"workload", workload}});
  const bool fresh_start = started.value("changed", true);
  wait_ready(ctx, base_url, prom_name, o.ready_timeout_s, started);
  if (!fresh_start && !prom::is_loaded_config(str_or(state, "loaded_config"), config)) reload(ctx, base_url, prom_name);
}

}  // namespace

json PrometheusCadvisor::validate(Context&, const json& request) {
  json errors = json::array();
  for (const auto& e : prom::validate_request(request)) errors.push_back(json{{"key", e.key}, {"message", e.message}});
  return json{{"errors", errors}};
}

json PrometheusCadvisor::apply(Context& ctx, const json& request) {
  const prom::Options o = checked_options(request);
  const json& prom_node = prom::prometheus_node(request);
  const std::string prom_name = str_or(prom_node, "name");
  const std::string prom_address = str_or(prom_node, "address");
  const std::string base_url = "http://" + prom_address + ":" + std::to_string(o.port);
  json state = ctx.state();

  // Exporters first, so a node's target already answers when Prometheus learns about it.
  start_exporters(ctx, request, o, prom_name);

  const std::vector<prom::Job> jobs = prom::desired_jobs(request, o);
  json files = json::object();
  const auto sd_paths = write_targets(ctx, jobs, prom_name, state, files);
  const std::string cluster = request.contains("cluster") ? str_or(request["cluster"], "name", "flotilla") : "flotilla";
  const std::string config = prom::render_config(jobs, sd_paths, o, cluster);
  const std::string config_rel = "prometheus.yml";
  const std::string config_path = put_file(ctx, prom_name, config_rel, config);
  files[config_rel] = true;

  run_prometheus(ctx, request.at("addon"), prom_node, o, base_url, config_path, config, state);

  json job_names = json::array();
  for (const auto& job : jobs) job_names.push_back(job.name);
  state = json{{"node", prom_name}, {"loaded_config", flotilla::support::stable_hash(config)}, {"jobs", job_names}, {"files", files}};
  ctx.set_state(state);

  json outputs = json::object();
  outputs["registrations"] = json::array({json{{"name", "prometheus"},
                                               {"id", "prometheus-" + prom_name},
                                               {"address", prom_address},
                                               {"port", o.port},
                                               {"health", "/-/healthy"}}});
  return json{{"endpoints", json{{"prometheus", base_url}}},
              {"outputs", outputs},
              {"messages", json::array({"Prometheus at " + base_url})}};
}

json PrometheusCadvisor::destroy(Context& ctx, const json& request) {
  // Every component at once: the exporters of all nodes and Prometheus are one batch.
  const std::vector<sdk::Component> components = ctx.list();
  ctx.progress("stopping " + std::to_string(components.size()) + " monitoring components");
  try {
    (void)Context::all_ok(ctx.stop_each(components));
  } catch (const Error& e) {
    throw Error(FLT_RETRYABLE, std::string("could not stop every monitoring component (") + e.what() + "); run `flotilla up` again");
  }

  const json state = ctx.state();
  const std::string node = str_or(state, "node");
  if (!node.empty() && state.contains("files") && state["files"].is_object()) {
    for (const auto& [rel, unused] : state["files"].items()) {
      try {
        (void)ctx.runtime(json{{"op", "remove_file"}, {"node", node}, {"path", rel}});
      } catch (const Error& e) {
        // Older engines have no remove_file; the files then go with the node's directory.
        ctx.debug("could not remove " + rel + " on " + node + ": " + e.what());
      }
    }
  }
  if (request.contains("addon") && request["addon"].contains("dir") && request["addon"]["dir"].is_string()) {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(request["addon"]["dir"].get<std::string>()) / "data", ec);
    if (ec) ctx.warn("could not remove the Prometheus data directory: " + ec.message());
  }
  ctx.set_state(json::object());
  return json::object();
}

}  // namespace flotilla::addons::prometheus
