#include "addon_syslog/syslog_addon.hpp"

#include "addon_syslog/docker_logs.hpp"
#include "addon_syslog/rsyslog_config.hpp"
#include "addon_syslog/syslog_options.hpp"
#include "flotilla/support/encoding.hpp"
#include "flotilla/support/net.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/request.hpp"
#include "flotilla/support/wait.hpp"

#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace flotilla::syslog_addon {

namespace {

namespace fs = std::filesystem;
using flotilla::support::find_node;
using flotilla::support::str_or;
using sdk::Context;
using sdk::Error;
using sdk::Invalid;
using sdk::json;
using sdk::Retryable;

constexpr const char* kCollector = "collector";
constexpr const char* kShipper = "shipper";
constexpr auto kCollectorReadyTimeout = std::chrono::seconds(15);

constexpr const char* kManifest = R"json({
  "provides": ["logs"],
  "answers": ["logs"],
  "requires": ["services"],
  "placement": {"roles": ["infra"], "mode": "first"}
})json";

/// The array under `key`, by reference (json::value() would return a copy, and pointers into
/// it would dangle), or an empty one.
const json& array_at(const json& obj, const char* key) {
  static const json empty = json::array();
  if (!obj.is_object()) return empty;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : empty;
}

/// Nodes that get a shipper: every node, or those with one of the `roles` option's roles.
std::vector<const json*> shipper_nodes(const json& req, const Options& o) {
  std::vector<const json*> out;
  for (const auto& n : array_at(req, "nodes")) {
    if (o.roles.empty()) {
      out.push_back(&n);
      continue;
    }
    for (const auto& r : n.value("roles", json::array()))
      if (r.is_string() && std::find(o.roles.begin(), o.roles.end(), r.get<std::string>()) != o.roles.end()) {
        out.push_back(&n);
        break;
      }
  }
  return out;
}

/// The prefix the engine gives an addon's workloads on a node (`workload_prefix` in requests).
std::string workload_prefix(const json& addon, const std::string& name) {
  const std::string prefix = str_or(addon, "workload_prefix");
  if (prefix.empty()) throw Invalid("addon " + name + " was given no `workload_prefix` by the engine; upgrade Flotilla");
  return prefix;
}

/// An addon as its workloads name it: the engine's prefix without "addon-" and the final '-'.
std::string addon_in_workload_names(const json& addon, const std::string& name) {
  const std::string prefix = workload_prefix(addon, name);
  constexpr std::string_view kHead = "addon-";
  if (prefix.size() <= kHead.size() + 1 || prefix.compare(0, kHead.size(), kHead) != 0 || prefix.back() != '-')
    throw Invalid("addon " + name + " was given an unusable `workload_prefix` `" + prefix + "` by the engine");
  return prefix.substr(kHead.size(), prefix.size() - kHead.size() - 1);
}

bool have_relp_modules() {
  glob_t g{};
  bool found = false;
  for (const char* pattern : {"/usr/lib/*/rsyslog/imrelp.so", "/usr/lib/rsyslog/imrelp.so", "/usr/lib64/rsyslog/imrelp.so"}) {
    if (::glob(pattern, 0, nullptr, &g) == 0 && g.gl_pathc > 0) found = true;
    ::globfree(&g);
    if (found) break;
  }
  return found;
}

/// put_file of `content` to `rel` on each of `nodes`, all at once; the paths in their order.
std::vector<fs::path> put_on_each(Context& ctx, const std::vector<std::string>& nodes, const std::string& rel,
                                  const std::vector<std::string>& contents) {
  std::vector<json> ops;
  for (size_t i = 0; i < nodes.size(); ++i)
    ops.push_back(json{{"op", "put_file"}, {"node", nodes[i]}, {"path", rel}, {"content", contents[i]}, {"mode", 0644}});
  std::vector<fs::path> paths;
  const std::vector<json> results = ctx.runtime_all(ops);
  for (size_t i = 0; i < results.size(); ++i) {
    const std::string path = str_or(results[i], "path");
    if (path.empty()) throw Error(FLT_ERROR, "put_file of " + rel + " on node " + nodes[i] + " returned no path");
    paths.emplace_back(path);
  }
  return paths;
}

/// Writes a file on a node; returns its path as the node's workloads see it.
fs::path put(Context& ctx, const std::string& node, const std::string& rel, const std::string& content) {
  return put_on_each(ctx, {node}, rel, {content}).front();
}

/// Stops `components` at once (one batch; throws after all ran when any failed) and removes
/// the files they were given, in two more batches. A work directory goes only if rsyslog left
/// it empty: queue files still in it hold lines not yet delivered, and the node's removal
/// takes them in the end.
void stop_and_remove(Context& ctx, const std::vector<sdk::Component>& components) {
  if (components.empty()) return;
  (void)Context::all_ok(ctx.stop_each(components));
  for (const std::vector<std::string>& suffixes : {std::vector<std::string>{".conf", "-work/README"}, {"-work"}}) {
    std::vector<json> ops;
    std::vector<std::string> what;
    for (const sdk::Component& c : components)
      for (const std::string& suffix : suffixes) {
        ops.push_back(json{{"op", "remove_file"}, {"node", c.node}, {"path", c.name + suffix}});
        what.push_back(c.name + suffix + " on node " + c.node);
      }
    const std::vector<sdk::BatchResult> removed = ctx.runtime_batch(ops);
    for (size_t i = 0; i < removed.size(); ++i)
      if (removed[i].status != FLT_OK) ctx.debug("kept " + what[i] + ": " + removed[i].error);
  }
}

bool is_running(Context& ctx, const std::string& node, const std::string& name) {
  try {
    return str_or(ctx.runtime(json{{"op", "inspect"}, {"node", node}, {"name", name}}), "state") == "running";
  } catch (const Error&) {
    return false;
  }
}

/// Waits until the collector accepts RELP connections, so the shippers start against a live
/// collector and a broken one is reported here rather than as silently missing logs.
void wait_for_collector(Context& ctx, const std::string& addon, const std::string& node, const std::string& address, int port,
                        const json& started) {
  bool died = false;
  const bool accepting = support::wait_until(kCollectorReadyTimeout, std::chrono::milliseconds(100), [&] {
    if (support::tcp_port_open(address, static_cast<std::uint16_t>(port), std::chrono::milliseconds(500))) return true;
    died = !is_running(ctx, node, kCollector);
    return died;
  }, [&ctx] { return ctx.cancelled(); });
  if (accepting && !died) return;
  ctx.check_cancelled();
  const std::string log = str_or(started.value("record", json::object()), "stderr");
  throw Retryable("addon " + addon + ": the collector rsyslog on node " + node + " does not accept RELP on " + address + ":" +
                  std::to_string(port) + (log.empty() ? std::string() : "; see " + log) +
                  " (is rsyslog-relp installed? is the port free?)");
}

/// `log_files` published by other addons for this node, minus those the wildcards cover.
std::vector<ExtraFile> extra_files(const json& req, const std::string& node, const std::string& workdir) {
  std::vector<ExtraFile> out;
  const std::string covered = (fs::path(workdir) / "workloads").string() + "/";
  const json others = req.value("addons", json::object());
  for (const auto& [_, other] : others.items()) {
    const json files = other.value("outputs", json::object()).value("log_files", json::array());
    if (!files.is_array()) continue;
    for (const auto& f : files) {
      if (str_or(f, "node") != node || str_or(f, "path").empty()) continue;
      const std::string path = str_or(f, "path");
      const std::string base = fs::path(path).filename().string();
      if (path.rfind(covered, 0) == 0 && (base == "stdout.log" || base == "stderr.log")) continue;
      out.push_back({path, str_or(f, "service", "files"), str_or(f, "instance"), str_or(f, "stream", "file")});
    }
  }
  return out;
}

/// The addons as workload names hold them, sorted, so addon-<addon>-<component> names split right.
std::vector<std::string> addon_names(const json& req, const std::string& self) {
  std::vector<std::string> names{addon_in_workload_names(req.value("addon", json::object()), self)};
  const json others = req.value("addons", json::object());
  for (const auto& [other, entry] : others.items())
    if (const std::string n = addon_in_workload_names(entry, other); std::find(names.begin(), names.end(), n) == names.end())
      names.push_back(n);
  std::sort(names.begin(), names.end());
  return names;
}

/// Where the collector runs and keeps its store.
struct CollectorPlace {
  std::string node;
  std::string address;
  fs::path store;
  fs::path logstore;  // the flotilla-logstore executable
};

/// Finds the collector's node, address and store, or says what is missing.
CollectorPlace place_collector(const json& req, const std::string& name) {
  const json addon = req.value("addon", json::object());
  const json placed = addon.value("nodes", json::array());
  if (!placed.is_array() || placed.empty() || !placed[0].is_string())
    throw Invalid("addon " + name + " has no node for its collector: give a node group roles = [\"infra\"] or set the addon's placement");
  CollectorPlace p;
  p.node = placed[0].get<std::string>();
  const json* cnode = find_node(req, p.node);
  if (cnode == nullptr || str_or(*cnode, "address").empty())
    throw Retryable("addon " + name + ": node " + p.node + " has no address yet; create it first (flotilla up)");
  p.address = str_or(*cnode, "address");
  const fs::path addon_dir = str_or(addon, "dir");
  if (addon_dir.empty()) throw Invalid("addon " + name + " was given no `dir` by the engine; cannot place its log store");
  p.store = addon_dir / "store";
  p.logstore = fs::path(str_or(req.value("cluster", json::object()), "bin_dir")) / "flotilla-logstore";
  if (!fs::exists(p.logstore))
    throw Invalid("addon " + name + " needs " + p.logstore.string() +
                  ", which is missing; build it (cmake --build BUILD --target flotilla-logstore) or install Flotilla");
  return p;
}

/// Configures and starts the collector, and waits until it accepts RELP.
void start_collector(Context& ctx, const json& req, const std::string& name, const Options& o, const CollectorPlace& p) {
  ctx.progress("configuring the log collector on " + p.node);
  // put_file paths are relative to the node's files directory, which the engine already
  // keeps apart per addon.
  const fs::path cwork =
      put(ctx, p.node, "collector-work/README", "rsyslog work directory of the log collector (disk part of its queue).\n").parent_path();
  CollectorConfig cc;
  cc.address = p.address;
  cc.port = o.port;
  cc.work_dir = cwork;
  cc.logstore = p.logstore;
  cc.store_dir = p.store;
  cc.max_file_size = o.max_file_size;
  cc.retention_days = o.retention_days;
  cc.addon_names = addon_names(req, name);
  if (auto problem = collector_config_problem(cc)) throw Invalid("addon " + name + ": " + *problem);
  const std::string ctext = render_collector(cc);
  const fs::path cconf = put(ctx, p.node, "collector.conf", ctext);

  if (!is_running(ctx, p.node, kCollector) && support::tcp_port_open(p.address, static_cast<std::uint16_t>(o.port), std::chrono::milliseconds(300)))
    throw Invalid("addon " + name + ": port " + std::to_string(o.port) + " on " + p.address + " (node " + p.node +
                  ") is taken by another program; set the addon option `port` to a free one");
  // Stopped through rsyslogd alone: it stops flotilla-logstore itself, after the line in
  // hand. A TERM to the whole group could reach flotilla-logstore while it starts, before it
  // ignores TERM; rsyslogd, stopping, would then drop the line it was storing and still
  // acknowledge it to the shipper (librelp answers 200 whatever the input made of a frame).
  json cworkload{{"name", kCollector},
                 {"command", rsyslogd_command(cconf, cconf.parent_path() / "collector.pid")},
                 {"env", {{"FLOTILLA_SYSLOG_CONFIG", support::stable_hash(ctext)}}},
                 {"ports", json::array({o.port})},
                 {"stop_mode", "leader"}};
  const json started = ctx.runtime(json{{"op", "start"}, {"node", p.node}, {"workload", cworkload}});
  wait_for_collector(ctx, name, p.node, p.address, o.port, started);
}

/// Configures and starts the shipper of each node that gets one; returns those nodes. The
/// nodes do not wait for each other: each phase (work directory, configuration, start) is one
/// batch the engine runs at once.
std::vector<std::string> start_shippers(Context& ctx, const json& req, const std::string& name, const Options& o,
                                        const CollectorPlace& p) {
  std::vector<std::string> shipped;
  std::vector<std::string> workdirs;
  for (const json* n : shipper_nodes(req, o)) {
    if (str_or(*n, "runtime", "process") != "process") continue;  // Docker nodes: pulled, see docker_logs.hpp
    const std::string node = str_or(*n, "name");
    const std::string workdir = str_or(*n, "workdir");
    if (workdir.empty()) {
      ctx.warn("node " + node + " has no workdir yet; its shipper starts on the next `flotilla up`");
      continue;
    }
    shipped.push_back(node);
    workdirs.push_back(workdir);
  }
  if (shipped.empty()) return shipped;
  ctx.check_cancelled();
  ctx.progress("configuring the log shippers of " + std::to_string(shipped.size()) + " node(s)");
  const std::vector<fs::path> readmes = put_on_each(ctx, shipped, "shipper-work/README",
                                                    std::vector<std::string>(shipped.size(), "rsyslog work directory of the log shipper (imfile offsets, queue).\n"));
  std::vector<std::string> texts;
  for (size_t i = 0; i < shipped.size(); ++i) {
    ShipperConfig sc;
    sc.node = shipped[i];
    sc.node_workdir = workdirs[i];
    sc.work_dir = readmes[i].parent_path();
    sc.collector_address = p.address;
    sc.collector_port = o.port;
    sc.exclude_prefix = workload_prefix(req.value("addon", json::object()), name);  // its own rsyslogs: shipping them could loop
    sc.extra_files = extra_files(req, shipped[i], workdirs[i]);
    texts.push_back(render_shipper(sc));
  }
  const std::vector<fs::path> confs = put_on_each(ctx, shipped, "shipper.conf", texts);
  std::vector<json> starts;
  for (size_t i = 0; i < shipped.size(); ++i) {
    json sworkload{{"name", kShipper},
                   {"command", shipper_command(readmes[i].parent_path(), confs[i], confs[i].parent_path() / "shipper.pid")},
                   {"env", {{"FLOTILLA_SYSLOG_CONFIG", support::stable_hash(texts[i])}}},
                   {"ports", json::array()}};
    starts.push_back(json{{"op", "start"}, {"node", shipped[i]}, {"workload", sworkload}});
  }
  ctx.progress("starting the log shippers of " + std::to_string(shipped.size()) + " node(s)");
  (void)ctx.runtime_all(starts);
  return shipped;
}

/// Stops components no longer wanted: a shipper of a node that left, a collector that moved.
void stop_unwanted(Context& ctx, const std::set<std::pair<std::string, std::string>>& wanted) {
  std::vector<sdk::Component> unwanted;
  for (const sdk::Component& c : ctx.list())
    if (wanted.count({c.node, c.name}) == 0) {
      ctx.info("stopping " + c.name + " on node " + c.node + ": no longer placed there");
      unwanted.push_back(c);
    }
  stop_and_remove(ctx, unwanted);
}

bool on_process(const json& node) { return str_or(node, "runtime", "process") == "process"; }

/// True when some node that gets a shipper runs on the process runtime: they need the collector.
bool any_process_shipper(const json& req, const Options& o) {
  const auto nodes = shipper_nodes(req, o);
  return std::any_of(nodes.begin(), nodes.end(), [](const json* n) { return on_process(*n); });
}

}  // namespace

DockerPullReport pull_docker_nodes(const json& req, const Options& o) {
  const json addon = req.value("addon", json::object());
  const std::string name = str_or(addon, "name", "syslog");
  json docker_nodes = json::array();
  for (const json* n : shipper_nodes(req, o))
    if (str_or(*n, "runtime") == "docker") docker_nodes.push_back(*n);
  if (docker_nodes.empty()) return {};
  return pull_docker_logs(docker_nodes, {.dir = fs::path(str_or(addon, "dir")) / "docker",
                                         .cluster = str_or(req.value("cluster", json::object()), "name"),
                                         .max_file_size = o.max_file_size,
                                         .retention_days = o.retention_days,
                                         .addons = addon_names(req, name)});
}

const char* manifest() { return options_manifest(kManifest); }

json SyslogAddon::validate(Context&, const json& req) {
  const json addon = req.value("addon", json::object());
  Options o = Options::from(support::addon_config(req));
  json errors = o.errors;
  const json placed = addon.value("nodes", json::array());
  if (!placed.is_array() || placed.empty())
    errors.push_back({{"message", "addon " + str_or(addon, "name", "syslog") +
                                      " has no node for its collector: give a node group roles = [\"infra\"] or set the addon's placement"},
                      {"key", "placement"}});
  // The runtime is known once the driver has made the node. Process nodes ship to the rsyslog
  // collector, which runs on the process runtime; Docker nodes' container logs are read
  // through the Engine API and need no collector.
  for (const json* n : shipper_nodes(req, o))
    if (const std::string rt = str_or(*n, "runtime"); !rt.empty() && rt != "process" && rt != "docker")
      errors.push_back({{"message", "addon syslog cannot ship the logs of node " + str_or(*n, "name") + " (runtime `" + rt +
                                        "`): it reads process-runtime log files and Docker containers' logs; set the addon's `roles` to leave it out"},
                        {"key", "roles"}});
  if (placed.is_array() && !placed.empty() && placed[0].is_string())
    if (const json* c = find_node(req, placed[0].get<std::string>()); c != nullptr && !str_or(*c, "runtime").empty() && !on_process(*c) &&
                                                                       any_process_shipper(req, o))
      errors.push_back({{"message", "addon syslog's collector would run on node " + str_or(*c, "name") + " (runtime `" + str_or(*c, "runtime") +
                                        "`), but it is an rsyslog process that the process-runtime nodes ship to; place the addon on a "
                                        "process node (nodes = [...] in [[addons]])"},
                        {"key", "placement"}});
  if (!fs::exists(kRsyslogd))
    errors.push_back({{"message", std::string("addon syslog needs ") + kRsyslogd + ", which is missing; install it: apt-get install rsyslog rsyslog-relp"},
                      {"key", "plugin"}});
  else if (!have_relp_modules())
    errors.push_back({{"message", "addon syslog needs rsyslog's RELP modules (imrelp/omrelp), which are missing; install them: apt-get install rsyslog-relp"},
                      {"key", "plugin"}});
  return json{{"errors", errors}};
}

json SyslogAddon::apply(Context& ctx, const json& req) {
  const json addon = req.value("addon", json::object());
  const std::string name = str_or(addon, "name", "syslog");
  Options o = Options::from(support::addon_config(req));
  if (!o.errors.empty()) throw Invalid(o.errors[0]["message"].get<std::string>());
  const CollectorPlace p = place_collector(req, name);
  // A collector only when process nodes ship to it (on an all-Docker cluster nothing runs).
  const bool collector = any_process_shipper(req, o);
  if (collector && !on_process(*find_node(req, p.node)))
    throw Invalid("addon " + name + ": the collector cannot run on node " + p.node + " (runtime `" + str_or(*find_node(req, p.node), "runtime") +
                  "`); place the addon on a process node");
  if (collector) start_collector(ctx, req, name, o, p);
  const std::vector<std::string> shipped = collector ? start_shippers(ctx, req, name, o, p) : std::vector<std::string>{};

  std::set<std::pair<std::string, std::string>> wanted;
  if (collector) wanted.insert({p.node, kCollector});
  for (const auto& node : shipped) wanted.insert({node, kShipper});
  stop_unwanted(ctx, wanted);
  ctx.progress("reading the logs of Docker nodes' containers");
  const DockerPullReport pulled = pull_docker_nodes(req, o);
  for (const auto& problem : pulled.problems) ctx.warn("container logs not read: " + problem + "; the next `flotilla up` or `flotilla logs` reads them");

  const std::string endpoint = "relp://" + p.address + ":" + std::to_string(o.port);
  const fs::path docker_store = fs::path(str_or(addon, "dir")) / "docker" / "store";
  json state = {{"shippers", shipped}, {"store", p.store.string()}, {"docker_store", docker_store.string()}};
  if (collector) state["collector"] = {{"node", p.node}, {"address", p.address}, {"port", o.port}};
  ctx.set_state(state);
  json result = {{"outputs", {{"log_store", p.store.string()}, {"docker_log_store", docker_store.string()}}},
                 {"messages", json::array({"logs of every workload are collected in " + p.store.string() +
                                           (collector ? "" : " (containers' logs in " + docker_store.string() + ")") +
                                           "; read them with `flotilla logs TOPOLOGY [SERVICE]`"})}};
  result["endpoints"] = collector ? json{{"logs", endpoint}} : json::object();
  return result;
}

json SyslogAddon::destroy(Context& ctx, const json&) {
  // Shippers first, all at once: stopped with the collector still up, they leave nothing queued.
  std::vector<sdk::Component> shippers, others;
  for (const sdk::Component& c : ctx.list()) (c.name == kShipper ? shippers : others).push_back(c);
  ctx.progress("stopping the log shippers of " + std::to_string(shippers.size()) + " node(s)");
  stop_and_remove(ctx, shippers);
  stop_and_remove(ctx, others);
  ctx.set_state(json::object());
  return json::object();
}

}  // namespace flotilla::syslog_addon
