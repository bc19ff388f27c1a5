// The `haproxy` addon: one HAProxy per placed node routes every service by path prefix
// ("/hello/v1" -> the healthy instances of hello/v1). Instance changes go through the runtime
// API (no reload, no failed request); only route or listener changes reload the master-worker
// process, and the config file always holds what runs, since runtime changes die on reload.
#include "addon_haproxy/addon.hpp"

#include "addon_haproxy/config.hpp"
#include "addon_haproxy/haproxy_binary.hpp"
#include "addon_haproxy/request.hpp"
#include "addon_haproxy/runtime_api.hpp"
#include "addon_haproxy/server_sync.hpp"
#include "flotilla/support/config_map.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/files.hpp"
#include "flotilla/support/request.hpp"
#include "flotilla/support/wait.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::haproxy {
namespace {

namespace fs = std::filesystem;
namespace hap = flotilla::haproxy;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::sdk::Retryable;
using flotilla::support::find_node;
using flotilla::support::read_text;
using hap::Problem;
using hap::str;
using namespace std::chrono_literals;

constexpr auto kStartTimeout = 10s;   // a fresh HAProxy answers on its admin socket by then
constexpr auto kReloadTimeout = 10s;  // a reload has a new worker answering by then
constexpr const char* kWorkload = "haproxy";
constexpr const char* kConfigFile = "haproxy.cfg";  // in the node's files directory, which the engine keeps per addon
// Inside the container: the unix admin socket that hands listeners to a reloaded worker.
constexpr const char* kContainerAdminSocket = "/tmp/flotilla-haproxy-admin.sock";

/// The addon's options; the defaults here are the manifest's.
struct Options {
  std::int64_t port = 8080;
  std::int64_t stats_port = 8404;
  bool strip_prefix = true;
  std::int64_t drain_timeout_s = 10;
  std::int64_t up_timeout_s = 10;
  std::int64_t admin_port = 9999;
  std::string image = "haproxy:2.6";
};

const flotilla::support::ConfigMap<Options>& options_map() {
  static const auto map =
      flotilla::support::ConfigMap<Options>()
          .integer("port", &Options::port, "Port of the ingress, on the node's address")
          .range(1, 65535)
          .integer("stats_port", &Options::stats_port,
                   "Port of the statistics page (/stats) and the Prometheus exporter (/metrics), on the node's address")
          .range(1, 65535)
          .boolean("strip_prefix", &Options::strip_prefix,
                   "Remove the service's path prefix before passing a request to an instance (/hello/v1/x arrives as /x)")
          .integer("drain_timeout_s", &Options::drain_timeout_s,
                   "Longest wait for the requests of a removed instance to finish before it is deleted")
          .range(0, 3600)
          .integer("up_timeout_s", &Options::up_timeout_s,
                   "Longest wait for HAProxy's own health check to pass on a new instance")
          .range(1, 600)
          .integer("admin_port", &Options::admin_port,
                   "On Docker nodes: TCP port of HAProxy's runtime API on the node's address (reachable from the "
                   "host and the nodes' bridge), since the engine cannot reach a unix socket in a container")
          .range(1, 65535)
          .string("image", &Options::image, "On Docker nodes: the HAProxy image (2.x, master-worker capable)");
  return map;
}

/// One node the addon is placed on, with the paths of its HAProxy.
struct NodePlace {
  std::string name;
  std::string address;
  std::string runtime;
  fs::path dir;  // <addon.dir>/<node>: sockets and the last applied config
  [[nodiscard]] std::string admin_socket() const { return (dir / "admin.sock").string(); }
  [[nodiscard]] std::string master_socket() const { return (dir / "master.sock").string(); }
  /// HAProxy runs in a container: config in a volume, runtime API on TCP, reload by signal.
  [[nodiscard]] bool in_container() const { return runtime == "docker"; }
  /// Where the engine reaches the runtime API.
  [[nodiscard]] std::string admin_target(const Options& o) const {
    return in_container() ? address + ":" + std::to_string(o.admin_port) : admin_socket();
  }
};

std::vector<NodePlace> placed_nodes(const json& request) {
  const json& addon = request.at("addon");
  std::vector<NodePlace> out;
  for (const json& n : addon.value("nodes", json::array())) {
    NodePlace p;
    p.name = n.get<std::string>();
    if (const json* node = find_node(request, p.name)) {
      p.address = str(*node, "address");
      p.runtime = str(*node, "runtime");
    }
    p.dir = fs::path(str(addon, "dir")) / p.name;
    out.push_back(std::move(p));
  }
  return out;
}

/// The options' problems: those of the map (types, ranges) and the one it cannot express.
std::vector<Problem> option_problems(const json& config, Options& o) {
  auto filled = options_map().fill(config);
  o = filled.config;
  std::vector<Problem> out;
  for (auto& e : filled.errors) out.push_back({e.key, std::move(e.message)});
  if (filled.ok() && o.port == o.stats_port)
    out.push_back({"stats_port", "stats_port equals port; give the statistics page its own port"});
  if (filled.ok() && (o.admin_port == o.port || o.admin_port == o.stats_port))
    out.push_back({"admin_port", "admin_port equals port or stats_port; give the runtime API its own port"});
  return out;
}

std::vector<Problem> placement_problems(const json& request) {
  std::vector<Problem> out;
  for (const NodePlace& n : placed_nodes(request)) {
    if (n.in_container()) {
      if (!n.address.empty())
        if (auto p = hap::address_problem(n.address)) out.push_back({"placement", "node " + n.name + ": " + *p});
      continue;
    }
    if (auto p = hap::file_path_problem(n.master_socket())) out.push_back({"addon", "node " + n.name + ": " + *p});
    if (n.master_socket().size() > 107) {
      out.push_back({"addon", "node " + n.name + ": the socket path " + n.master_socket() +
                                  " is longer than 107 bytes (the unix socket limit); use a shorter state directory"});
    }
    if (!n.runtime.empty() && n.runtime != "process") {
      out.push_back({"placement", "node " + n.name + " uses the `" + n.runtime +
                                      "` runtime; the haproxy addon runs on the process and docker runtimes; "
                                      "place it on a node of one of those"});
    }
    if (!n.address.empty()) {
      if (auto p = hap::address_problem(n.address)) out.push_back({"placement", "node " + n.name + ": " + *p});
    }
  }
  return out;
}

std::string join(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "; ") + p.message;
  return out;
}

/// The last lines of a log file, for error messages.
std::string tail(const fs::path& path, int lines = 10) {
  const std::string text = read_text(path);
  std::size_t pos = text.size();
  for (int i = 0; i <= lines && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  return text.substr(pos == 0 ? 0 : pos + 1);
}

/// Stops the node's HAProxy and removes its files.
void remove_from_node(Context& ctx, const std::string& node, const json& rec) {
  ctx.progress("stopping haproxy on " + node);
  try {
    (void)ctx.runtime({{"op", "stop"}, {"node", node}, {"name", kWorkload}});
  } catch (const Error& e) {
    if (e.status() != FLT_NOT_FOUND) throw;
  }
  std::error_code ec;
  if (rec.contains("dir")) fs::remove_all(str(rec, "dir"), ec);
  // The config was placed through the runtime, so it is removed through the runtime.
  try {
    (void)ctx.runtime({{"op", "remove_file"}, {"node", node}, {"path", kConfigFile}});
  } catch (const Error& e) {
    ctx.debug("could not remove " + std::string(kConfigFile) + " on " + node + ": " + e.what());
  }
}

hap::SyncOptions sync_options(Context& ctx, const Options& o, const std::string& node) {
  hap::SyncOptions s;
  s.up_timeout = std::chrono::seconds(o.up_timeout_s);
  s.drain_timeout = std::chrono::seconds(o.drain_timeout_s);
  s.check_cancelled = [&ctx] { ctx.check_cancelled(); };
  s.log = [&ctx, node](const std::string& line) { ctx.info("haproxy on " + node + ": " + line); };
  return s;
}

/// The servers HAProxy has, as saved in the state: {backend: [server names]}.
json server_names(const hap::RuntimeApi& admin) {
  json servers = json::object();
  for (const auto& [backend, list] : hap::live_membership(admin)) {
    for (const auto& s : list) servers[backend].push_back(s.name);
  }
  return servers;
}

/// Waits until HAProxy answers on its admin socket (at once when it was already running).
void wait_started(Context& ctx, const NodePlace& node, const hap::RuntimeApi& admin, const json& record) {
  if (support::wait_until(kStartTimeout, 50ms, [&] { return admin.ready(); }, [&ctx] { return ctx.cancelled(); })) return;
  ctx.check_cancelled();
  std::string why;
  if (record.contains("stderr")) why = "; its last log lines:\n" + tail(str(record, "stderr"));
  if (node.in_container()) why = "; see its log on the node (docker logs " + str(record, "name") + ")";
  throw Error(FLT_ERROR, "haproxy on " + node.name + " did not answer on " + admin.path() + " within " +
                             std::to_string(kStartTimeout.count()) + " s" + why);
}

/// Reloads through the master CLI and waits for a new worker to answer. If the master reports
/// the reload failed, puts `previous` back so the file matches what still runs.
void reload(Context& ctx, const NodePlace& node, const hap::RuntimeApi& admin, const std::string& config_file,
                   const std::string& previous) {
  const hap::RuntimeApi master(node.master_socket());
  const auto deadline = std::chrono::steady_clock::now() + kReloadTimeout;
  std::optional<hap::ProcTable> before;
  std::string refused;
  const auto answered = [&] {
    try {
      before = master.show_proc();
    } catch (const hap::RuntimeApiError& e) {
      refused = e.what();  // the master CLI can refuse a connection for a moment (seen right after start)
    }
    return before.has_value();
  };
  if (!support::wait_until(deadline, 25ms, answered)) throw hap::RuntimeApiError(refused);
  (void)master.send("reload");
  int worker = 0;
  const auto new_worker = [&] {
    ctx.check_cancelled();
    try {
      const hap::ProcTable now = master.show_proc();  // refused while the master re-executes
      if (now.reloads <= before->reloads) return false;
      if (now.failed_reloads > before->failed_reloads) {
        if (!previous.empty()) {
          (void)ctx.runtime({{"op", "put_file"}, {"node", node.name}, {"path", config_file},
                             {"content", previous}, {"mode", 0644}});
          support::write_file_atomic(node.dir / "applied.cfg", previous);
        }
        throw Error(FLT_ERROR, "haproxy on " + node.name + " refused the new config on reload; the previous one still runs");
      }
      worker = now.current_worker();
    } catch (const hap::RuntimeApiError&) {
    }
    return worker != 0;
  };
  if (!support::wait_until(deadline, 25ms, new_worker))
    throw Retryable("haproxy on " + node.name + ": no new worker within " + std::to_string(kReloadTimeout.count()) +
                    " s of a reload");
  auto answered_by_new_worker = [&] {
    try {
      return admin.worker_pid() == worker;
    } catch (const hap::RuntimeApiError&) {
      return false;
    }
  };
  if (!support::wait_until(deadline, 25ms, answered_by_new_worker, [&ctx] { return ctx.cancelled(); })) {
    ctx.check_cancelled();
    throw Retryable("haproxy on " + node.name + ": the new worker " + std::to_string(worker) + " did not answer within " +
                    std::to_string(kReloadTimeout.count()) + " s");
  }
  ctx.info("haproxy on " + node.name + ": reloaded, worker " + std::to_string(worker));
}

/// Reloads an HAProxy in a container: SIGUSR2 to its master (the container's first process)
/// through the runtime, then waits for a new worker to answer on the runtime API.
void reload_by_signal(Context& ctx, const NodePlace& node, const hap::RuntimeApi& admin) {
  int before = 0;
  try {
    before = admin.worker_pid();
  } catch (const hap::RuntimeApiError&) {
  }
  ctx.signal(node.name, kWorkload, "USR2");
  int worker = 0;
  const auto new_worker = [&] {
    try {
      worker = admin.worker_pid();
    } catch (const hap::RuntimeApiError&) {
      worker = 0;
    }
    return worker != 0 && worker != before;
  };
  if (!support::wait_until(kReloadTimeout, 25ms, new_worker, [&ctx] { return ctx.cancelled(); })) {
    ctx.check_cancelled();
    throw Retryable("haproxy on " + node.name + ": no new worker answered on " + admin.path() + " within " +
                    std::to_string(kReloadTimeout.count()) + " s of a reload (a refused config keeps the old worker); see docker logs addon-haproxy-" +
                    kWorkload + " on the node");
  }
  ctx.info("haproxy on " + node.name + ": reloaded, worker " + std::to_string(worker));
}

/// The workload that runs HAProxy on `node` with the config at `config_path`.
json haproxy_workload(const Options& o, const std::optional<fs::path>& binary, const NodePlace& node, const std::string& config_path) {
  if (node.in_container())
    return {{"name", kWorkload},
            {"image", o.image},
            {"cmd", {"haproxy", "-W", "-db", "-f", config_path}},
            {"network", "host"},
            {"ports", {o.port, o.stats_port, o.admin_port}}};
  return {{"name", kWorkload},
          {"command", {binary->string(), "-W", "-S", node.master_socket(), "-f", config_path}},
          {"ports", {o.port, o.stats_port}}};
}

/// Brings one node's HAProxy to the routes: config checked and written, process running, then
/// a reload only if the routes or listeners changed, otherwise runtime API updates.
void apply_node(Context& ctx, const Options& o, const std::optional<fs::path>& binary,
                       const NodePlace& node, const std::vector<hap::Route>& routes, json& rec) {
  fs::create_directories(node.dir);
  hap::ConfigView view;
  view.bind_address = node.address;
  view.port = static_cast<int>(o.port);
  view.stats_port = static_cast<int>(o.stats_port);
  view.admin_socket = node.in_container() ? std::string(kContainerAdminSocket) : node.admin_socket();
  if (node.in_container()) view.admin_tcp = node.admin_target(o);
  view.strip_prefix = o.strip_prefix;
  view.routes = routes;
  const std::string text = hap::render_config(view);
  const std::string skeleton = hap::skeleton_hash(view);

  // A config HAProxy refuses never replaces the one that runs.
  const fs::path candidate = node.dir / "candidate.cfg";
  support::write_file_atomic(candidate, text);
  // In a container HAProxy may be missing here; the master then refuses a bad config on reload.
  const hap::ConfigCheck check = binary ? hap::check_config(*binary, candidate) : hap::ConfigCheck{true, {}};
  if (!check.valid) {
    throw Error(FLT_ERROR, "haproxy on " + node.name + ": the generated config " + candidate.string() +
                               " was refused by `haproxy -c` (the running config is unchanged): " + check.output);
  }
  const fs::path applied = node.dir / "applied.cfg";
  const std::string previous = fs::exists(applied) ? read_text(applied) : std::string();

  ctx.progress("haproxy on " + node.name + ": writing config");
  const std::string config_file = kConfigFile;
  const json put = ctx.runtime({{"op", "put_file"}, {"node", node.name}, {"path", config_file},
                                {"content", text}, {"mode", 0644}});
  const std::string config_path = str(put, "path");
  support::write_file_atomic(applied, text);
  rec["dir"] = node.dir.string();
  rec["runtime"] = node.runtime;
  rec["config"] = config_path;

  const json workload = haproxy_workload(o, binary, node, config_path);
  const json started = ctx.runtime({{"op", "start"}, {"node", node.name}, {"workload", workload}});
  const json record = started.value("record", json::object());
  // `changed`: the runtime (re)started HAProxy, which then read the file just written. When a
  // runtime does not say, assume it did not: at worst that costs one needless reload.
  const bool fresh = started.value("changed", false);
  rec["record"] = record;

  const hap::RuntimeApi admin(node.admin_target(o));
  const hap::SyncOptions sopts = sync_options(ctx, o, node.name);
  hap::Membership desired;
  std::vector<std::string> all_servers;
  std::set<std::string> want_backends{"NOROUTE"};
  for (const auto& r : routes) {
    desired[r.backend] = r.servers;
    want_backends.insert(r.backend);
    for (const auto& s : r.servers) all_servers.push_back(r.backend + "/" + s.name);
  }

  if (fresh) ctx.progress("haproxy on " + node.name + ": starting");
  wait_started(ctx, node, admin, record);
  // The running process is the truth: a backend missing or left over means it does not run
  // the routes we want, whatever the state file says.
  const bool drifted = hap::live_backends(admin) != want_backends;
  const bool same_skeleton = rec.contains("skeleton") && hap::same_skeleton(str(rec, "skeleton"), view);
  const bool reloading = drifted || (!fresh && !same_skeleton);
  if (!fresh && !reloading && rec.contains("servers") && server_names(admin) != rec["servers"]) {
    ctx.warn("haproxy on " + node.name + ": its servers differ from what the last apply left (changed by hand?); " +
             "bringing them back to the serving instances");
  }
  if (reloading) {
    ctx.progress("haproxy on " + node.name + ": reloading for changed routes");
    if (drifted && same_skeleton) {
      ctx.warn("haproxy on " + node.name + ": its backends differ from the recorded config; reloading");
    }
    if (node.in_container()) reload_by_signal(ctx, node, admin);
    else reload(ctx, node, admin, config_file, previous);
  }
  rec["skeleton"] = skeleton;

  ctx.progress("haproxy on " + node.name + ": updating servers");
  const hap::SyncReport report = hap::sync_servers(admin, desired, sopts);
  if (report.changed()) {
    ctx.info("haproxy on " + node.name + ": " + std::to_string(report.added.size()) + " added, " +
             std::to_string(report.removed.size()) + " removed through the runtime API (no reload)");
  }
  // Servers read from the file start as UP before any check; wait (bounded) for HAProxy's own
  // check to agree, so the apply returns with every instance confirmed by HAProxy.
  const auto unchecked = hap::wait_checked(admin, all_servers, sopts.up_timeout, sopts);
  for (const auto& name : unchecked) ctx.warn("haproxy on " + node.name + ": no passing check yet for " + name);

  rec["servers"] = server_names(admin);
}

/// True when some placed node runs HAProxy as a process here (or its runtime is not known yet).
bool needs_local_binary(const json& request) {
  for (const NodePlace& n : placed_nodes(request))
    if (!n.in_container()) return true;
  return false;
}

}  // namespace

json HaproxyAddon::validate(Context&, const json& request) {
  std::vector<Problem> problems;
  if (needs_local_binary(request) && !hap::find_haproxy()) {
    problems.push_back({"plugin", "haproxy not found on PATH or in /usr/sbin; apt-get install haproxy"});
  }
  Options o;
  for (auto& p : option_problems(flotilla::support::addon_config(request), o)) problems.push_back(std::move(p));
  for (auto& p : placement_problems(request)) problems.push_back(std::move(p));
  for (auto& p : hap::service_problems(request.value("services", json::array()))) problems.push_back(std::move(p));
  json errors = json::array();
  for (const auto& p : problems) errors.push_back({{"message", p.message}, {"key", p.key}});
  return {{"errors", errors}};
}

json HaproxyAddon::apply(Context& ctx, const json& request) {
  const json& addon = request.at("addon");
  Options o;
  std::vector<Problem> problems = option_problems(flotilla::support::addon_config(request), o);
  for (auto& p : placement_problems(request)) problems.push_back(std::move(p));
  for (auto& p : hap::service_problems(request.value("services", json::array()))) problems.push_back(std::move(p));
  if (!problems.empty()) throw Invalid("haproxy: " + join(problems));
  const auto binary = hap::find_haproxy();
  if (!binary && needs_local_binary(request)) throw Invalid("haproxy not found on PATH or in /usr/sbin; apt-get install haproxy");

  json state = ctx.state();
  if (!state.contains("nodes") || !state["nodes"].is_object()) state["nodes"] = json::object();
  const std::vector<NodePlace> places = placed_nodes(request);

  // Nodes the addon left: their HAProxy goes.
  std::set<std::string> placed;
  for (const auto& n : places) placed.insert(n.name);
  const json recorded = state["nodes"];  // a named copy: items() of a temporary would dangle
  for (const auto& [name, rec] : recorded.items()) {
    if (placed.contains(name)) continue;
    remove_from_node(ctx, name, rec);
    state["nodes"].erase(name);
    ctx.set_state(state);
  }

  const std::vector<hap::Route> routes = hap::routes_of(request.value("services", json::array()));
  json endpoints = json::object(), registrations = json::array(), targets = json::array(), logs = json::array();
  json messages = json::array();
  bool first = true;
  for (const NodePlace& node : places) {
    if (node.address.empty()) throw Error(FLT_ERROR, "haproxy: node " + node.name + " has no address yet; run `flotilla up` again");
    json& rec = state["nodes"][node.name];
    try {
      apply_node(ctx, o, *binary, node, routes, rec);
    } catch (const hap::RuntimeApiError& e) {
      ctx.set_state(state);
      throw Retryable("haproxy on " + node.name + ": " + e.what());  // apply is idempotent: run it again
    }
    ctx.set_state(state);

    const std::string base = "http://" + node.address + ":" + std::to_string(o.port);
    const std::string stats = node.address + ":" + std::to_string(o.stats_port);
    const std::string suffix = first ? "" : "-" + node.name;
    endpoints["rest" + suffix] = base;
    endpoints["haproxy-stats" + suffix] = "http://" + stats + "/stats";
    registrations.push_back({{"name", "rest"},
                             {"id", "rest-" + node.name},
                             {"address", node.address},
                             {"port", o.port},
                             {"health", std::string(hap::kMonitorPath)}});
    targets.push_back(stats);
    if (rec.contains("record") && rec["record"].contains("stderr")) {
      logs.push_back({{"node", node.name}, {"service", "haproxy"}, {"instance", str(addon, "name")},
                      {"stream", "stderr"}, {"path", rec["record"]["stderr"]}});
    }
    if (first) {
      for (const auto& r : routes) messages.push_back("Service available at " + base + r.prefix);
    }
    first = false;
  }
  json outputs = {{"registrations", registrations},
                  {"metrics_targets", json::array({{{"job", "haproxy"}, {"targets", targets}, {"metrics_path", "/metrics"}}})},
                  {"log_files", logs}};
  return {{"endpoints", endpoints}, {"outputs", outputs}, {"messages", messages}};
}

json HaproxyAddon::destroy(Context& ctx, const json& request) {
  json state = ctx.state();
  json nodes = state.value("nodes", json::object());
  for (const NodePlace& n : placed_nodes(request)) {
    if (!nodes.contains(n.name)) nodes[n.name] = {{"dir", n.dir.string()}};
  }
  for (const auto& [name, rec] : nodes.items()) remove_from_node(ctx, name, rec);
  ctx.set_state(json::object());
  return json::object();
}

const char* manifest() {
  static const std::string text = options_map().manifest(R"json({
  "provides": ["ingress"],
  "requires": ["services"],
  "placement": {"roles": ["swarm"], "mode": "first"}
})json");
  return text.c_str();
}

}  // namespace flotilla::haproxy
