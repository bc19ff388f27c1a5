// Addon syslog: log aggregation from Debian's rsyslog.
//
// A collector rsyslog on the infra node receives RELP and hands every line to flotilla-logstore,
// which keeps <addon.dir>/store/<service>/<YYYY-MM-DD>.jsonl. A shipper rsyslog on every node
// tails the workloads' stdout.log/stderr.log with imfile wildcards (new workloads need no
// restart) and forwards over RELP through a disk-assisted queue, so lines written while the
// collector is down arrive when it is back. RELP may deliver a line twice; the store drops
// resends by the line's key (node, file, offset). See docs/addons/syslog.md.
#include "flotilla/support/request.hpp"
#include "rsyslog_config.hpp"

#include <flotilla/plugin.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <glob.h>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace sa = flotilla::syslog_addon;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::sdk::Retryable;
using flotilla::plugin_util::find_node;
using flotilla::plugin_util::str_or;

constexpr const char* kCollector = "collector";
constexpr const char* kShipper = "shipper";
constexpr auto kCollectorReadyTimeout = std::chrono::seconds(15);
constexpr int kStopTimeoutS = 15;  // rsyslog saves its queues to disk on TERM; give it time

/// The addon's options, checked. Problems are collected as {message, key} for validate.
struct Options {
  int port = 2514;
  std::uint64_t max_file_size = 100ull << 20;
  int retention_days = 7;
  std::vector<std::string> roles;
  std::string queue_max_disk_space = "1g";
  json errors = json::array();

  static Options from(const json& config) {
    Options o;
    auto problem = [&](const std::string& key, const std::string& msg) { o.errors.push_back({{"message", msg}, {"key", key}}); };
    if (config.contains("port")) {
      if (!config["port"].is_number_integer() || config["port"].get<long long>() < 1 || config["port"].get<long long>() > 65535)
        problem("port", "syslog option `port` must be an integer from 1 to 65535 (the collector's RELP port, default 2514)");
      else o.port = config["port"].get<int>();
    }
    if (config.contains("max_file_size")) {
      const auto text = config["max_file_size"].is_string() ? config["max_file_size"].get<std::string>() : std::string();
      const auto size = sa::parse_size(text);
      if (!size || *size < 4096)
        problem("max_file_size", "syslog option `max_file_size` = `" + text +
                                     "` is not a size of at least 4K; write bytes or a number with K, M or G, e.g. \"100M\"");
      else o.max_file_size = *size;
    }
    if (config.contains("retention_days")) {
      if (!config["retention_days"].is_number_integer() || config["retention_days"].get<long long>() < 0 ||
          config["retention_days"].get<long long>() > 36500)
        problem("retention_days", "syslog option `retention_days` must be a whole number of days, 0 to keep everything");
      else o.retention_days = config["retention_days"].get<int>();
    }
    if (config.contains("roles")) {
      if (!config["roles"].is_array()) problem("roles", "syslog option `roles` must be an array of node roles, e.g. [\"swarm\"]");
      else
        for (const auto& r : config["roles"]) {
          if (r.is_string()) o.roles.push_back(r.get<std::string>());
          else problem("roles", "syslog option `roles` must hold role names (strings)");
        }
    }
    if (config.contains("queue_max_disk_space")) {
      const auto text = config["queue_max_disk_space"].is_string() ? config["queue_max_disk_space"].get<std::string>() : std::string();
      const auto size = sa::parse_size(text);
      if (!size || *size < (1u << 20))
        problem("queue_max_disk_space", "syslog option `queue_max_disk_space` = `" + text +
                                            "` is not a size of at least 1M; e.g. \"1G\" (disk a shipper may use while the collector is down)");
      else o.queue_max_disk_space = std::to_string(*size);
    }
    return o;
  }
};

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

/// True if something accepts TCP connections on address:port within `timeout_ms`.
bool tcp_reachable(const std::string& address, int port, int timeout_ms) {
  sockaddr_in sa_in{};
  sa_in.sin_family = AF_INET;
  sa_in.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &sa_in.sin_addr) != 1) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa_in), sizeof sa_in) == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  ::close(fd);
  return ok;
}

/// An addon name as the engine puts it into workload names (addon-<name>-<component>).
std::string workload_safe(std::string s) {
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '-';
  return s;
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

class SyslogAddon : public flotilla::sdk::Addon {
 public:
  json validate(Context&, const json& req) override {
    const json addon = req.value("addon", json::object());
    Options o = Options::from(addon.value("config", json::object()));
    json errors = o.errors;
    const json placed = addon.value("nodes", json::array());
    if (!placed.is_array() || placed.empty())
      errors.push_back({{"message", "addon " + str_or(addon, "name", "syslog") +
                                        " has no node for its collector: give a node group roles = [\"infra\"] or set the addon's placement"},
                        {"key", "placement"}});
    auto check_runtime = [&](const json& n) {
      const std::string rt = str_or(n, "runtime");
      if (!rt.empty() && rt != "process")
        errors.push_back({{"message", "addon syslog cannot run on node " + str_or(n, "name") + " (runtime `" + rt +
                                          "`): it tails the process runtime's log files; use the `elk` addon on Docker nodes or set the addon's `roles`"},
                          {"key", "roles"}});
    };
    for (const auto& name : placed)
      if (name.is_string())
        if (const json* n = find_node(req, name.get<std::string>())) check_runtime(*n);
    for (const json* n : shipper_nodes(req, o)) check_runtime(*n);
    if (!fs::exists(sa::kRsyslogd))
      errors.push_back({{"message", std::string("addon syslog needs ") + sa::kRsyslogd + ", which is missing; install it: apt-get install rsyslog rsyslog-relp"},
                        {"key", "plugin"}});
    else if (!have_relp_modules())
      errors.push_back({{"message", "addon syslog needs rsyslog's RELP modules (imrelp/omrelp), which are missing; install them: apt-get install rsyslog-relp"},
                        {"key", "plugin"}});
    return json{{"errors", errors}};
  }

  json apply(Context& ctx, const json& req) override {
    const json addon = req.value("addon", json::object());
    const std::string name = str_or(addon, "name", "syslog");
    Options o = Options::from(addon.value("config", json::object()));
    if (!o.errors.empty()) throw Invalid(o.errors[0]["message"].get<std::string>());
    const json placed = addon.value("nodes", json::array());
    if (!placed.is_array() || placed.empty() || !placed[0].is_string())
      throw Invalid("addon " + name + " has no node for its collector: give a node group roles = [\"infra\"] or set the addon's placement");
    const std::string collector_node = placed[0].get<std::string>();
    const json* cnode = find_node(req, collector_node);
    if (cnode == nullptr || str_or(*cnode, "address").empty())
      throw Retryable("addon " + name + ": node " + collector_node + " has no address yet; create it first (flotilla up)");
    const std::string address = str_or(*cnode, "address");
    const json cluster = req.value("cluster", json::object());
    const fs::path addon_dir = str_or(addon, "dir");
    if (addon_dir.empty()) throw Invalid("addon " + name + " was given no `dir` by the engine; cannot place its log store");
    const fs::path store = addon_dir / "store";
    const fs::path logstore = fs::path(str_or(cluster, "bin_dir")) / "flotilla-logstore";
    if (!fs::exists(logstore))
      throw Invalid("addon " + name + " needs " + logstore.string() +
                    ", which is missing; build it (cmake --build BUILD --target flotilla-logstore) or install Flotilla");

    // Names of the addons, longest match first, so addon-<addon>-<component> splits right.
    std::vector<std::string> addon_names{name};
    const json others = req.value("addons", json::object());
    for (const auto& [other, _] : others.items())
      if (std::find(addon_names.begin(), addon_names.end(), other) == addon_names.end()) addon_names.push_back(other);
    std::sort(addon_names.begin(), addon_names.end());

    // The collector.
    ctx.progress("configuring the log collector on " + collector_node);
    // put_file paths are relative to the node's files directory, which the engine already
    // keeps apart per addon.
    const fs::path cwork = put(ctx, collector_node, "collector-work/README",
                               "rsyslog work directory of the log collector (disk part of its queue).\n")
                               .parent_path();
    sa::CollectorConfig cc;
    cc.address = address;
    cc.port = o.port;
    cc.work_dir = cwork;
    cc.logstore = logstore;
    cc.store_dir = store;
    cc.max_file_size = o.max_file_size;
    cc.retention_days = o.retention_days;
    cc.addon_names = addon_names;
    if (auto problem = sa::collector_config_problem(cc)) throw Invalid("addon " + name + ": " + *problem);
    const std::string ctext = sa::render_collector(cc);
    const fs::path cconf = put(ctx, collector_node, "collector.conf", ctext);

    const bool collector_running = is_running(ctx, collector_node, kCollector);
    if (!collector_running && tcp_reachable(address, o.port, 300))
      throw Invalid("addon " + name + ": port " + std::to_string(o.port) + " on " + address + " (node " + collector_node +
                    ") is taken by another program; set the addon option `port` to a free one");
    json cworkload{{"name", kCollector},
                   {"command", sa::rsyslogd_command(cconf, cconf.parent_path() / "collector.pid")},
                   {"env", {{"FLOTILLA_SYSLOG_CONFIG", sa::fnv1a_hex(ctext)}}},
                   {"ports", json::array({o.port})}};
    const json started = ctx.runtime(json{{"op", "start"}, {"node", collector_node}, {"workload", cworkload}});
    wait_for_collector(ctx, name, collector_node, address, o.port, started);

    // The shippers.
    std::set<std::pair<std::string, std::string>> wanted{{collector_node, kCollector}};
    json shipped = json::array();
    for (const json* n : shipper_nodes(req, o)) {
      const std::string node = str_or(*n, "name");
      const std::string workdir = str_or(*n, "workdir");
      if (workdir.empty()) {
        ctx.warn("node " + node + " has no workdir yet; its shipper starts on the next `flotilla up`");
        continue;
      }
      ctx.check_cancelled();
      ctx.progress("configuring the log shipper on " + node);
      const fs::path swork =
          put(ctx, node, "shipper-work/README", "rsyslog work directory of the log shipper (imfile offsets, queue).\n")
              .parent_path();
      sa::ShipperConfig sc;
      sc.node = node;
      sc.node_workdir = workdir;
      sc.work_dir = swork;
      sc.collector_address = address;
      sc.collector_port = o.port;
      sc.exclude_prefix = "addon-" + workload_safe(name) + "-";  // its own rsyslogs: shipping them could loop
      sc.queue_max_disk_space = o.queue_max_disk_space;
      sc.extra_files = extra_files(req, node, workdir);
      const std::string stext = sa::render_shipper(sc);
      const fs::path sconf = put(ctx, node, "shipper.conf", stext);
      json sworkload{{"name", kShipper},
                     {"command", sa::shipper_command(swork, sconf, sconf.parent_path() / "shipper.pid")},
                     {"env", {{"FLOTILLA_SYSLOG_CONFIG", sa::fnv1a_hex(stext)}}},
                     {"ports", json::array()}};
      (void)ctx.runtime(json{{"op", "start"}, {"node", node}, {"workload", sworkload}});
      wanted.insert({node, kShipper});
      shipped.push_back(node);
    }

    // Components no longer wanted: a shipper of a node that left, a collector that moved.
    const json listed = ctx.runtime(json{{"op", "list"}});
    for (const auto& c : array_at(listed, "components")) {
      const std::string node = str_or(c, "node"), cname = str_or(c, "name");
      if (wanted.count({node, cname}) == 0) {
        ctx.info("stopping " + cname + " on node " + node + ": no longer placed there");
        (void)ctx.runtime(json{{"op", "stop"}, {"node", node}, {"name", cname}, {"timeout_s", kStopTimeoutS}});
        remove_files(ctx, node, cname);
      }
    }

    const std::string endpoint = "relp://" + address + ":" + std::to_string(o.port);
    ctx.set_state(json{{"collector", {{"node", collector_node}, {"address", address}, {"port", o.port}}},
                       {"shippers", shipped},
                       {"store", store.string()}});
    return json{{"endpoints", {{"logs", endpoint}}},
                {"outputs", {{"log_store", store.string()}}},
                {"messages", json::array({"logs of every workload are collected in " + store.string() +
                                          "; read them with `flotilla logs TOPOLOGY [SERVICE]`"})}};
  }

  json destroy(Context& ctx, const json&) override {
    const json listed = ctx.runtime(json{{"op", "list"}});
    // Shippers first: stopped with the collector still up, they leave nothing queued.
    const json all = listed.value("components", json::array());
    std::vector<json> comps(all.begin(), all.end());
    std::stable_sort(comps.begin(), comps.end(),
                     [](const json& a, const json& b) { return (str_or(a, "name") == kShipper) > (str_or(b, "name") == kShipper); });
    for (const auto& c : comps) {
      ctx.progress("stopping " + str_or(c, "name") + " on " + str_or(c, "node"));
      (void)ctx.runtime(json{{"op", "stop"}, {"node", str_or(c, "node")}, {"name", str_or(c, "name")}, {"timeout_s", kStopTimeoutS}});
      remove_files(ctx, str_or(c, "node"), str_or(c, "name"));
    }
    ctx.set_state(json::object());
    return json::object();
  }

 private:
  /// Writes a file on a node; returns its path as the node's workloads see it.
  static fs::path put(Context& ctx, const std::string& node, const std::string& rel, const std::string& content) {
    const json r = ctx.runtime(json{{"op", "put_file"}, {"node", node}, {"path", rel}, {"content", content}, {"mode", 0644}});
    const std::string path = str_or(r, "path");
    if (path.empty()) throw Error(FLT_ERROR, "put_file of " + rel + " on node " + node + " returned no path");
    return path;
  }

  /// Removes the files a component was given. Its work directory goes only if rsyslog left it
  /// empty: queue files still in it hold lines not yet delivered, and the node's removal takes
  /// them in the end.
  static void remove_files(Context& ctx, const std::string& node, const std::string& component) {
    for (const std::string& rel : {component + ".conf", component + "-work/README", component + "-work"}) {
      try {
        (void)ctx.runtime(json{{"op", "remove_file"}, {"node", node}, {"path", rel}});
      } catch (const Error& e) {
        ctx.debug("kept " + rel + " on node " + node + ": " + e.what());
      }
    }
  }

  static bool is_running(Context& ctx, const std::string& node, const std::string& name) {
    try {
      return str_or(ctx.runtime(json{{"op", "inspect"}, {"node", node}, {"name", name}}), "state") == "running";
    } catch (const Error&) {
      return false;
    }
  }

  /// Waits until the collector accepts RELP connections, so the shippers start against a live
  /// collector and a broken one is reported here rather than as silently missing logs.
  static void wait_for_collector(Context& ctx, const std::string& addon, const std::string& node, const std::string& address,
                                 int port, const json& started) {
    const auto deadline = std::chrono::steady_clock::now() + kCollectorReadyTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      ctx.check_cancelled();
      if (tcp_reachable(address, port, 500)) return;
      if (!is_running(ctx, node, kCollector)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const std::string log = str_or(started.value("record", json::object()), "stderr");
    throw Retryable("addon " + addon + ": the collector rsyslog on node " + node + " does not accept RELP on " + address + ":" +
                    std::to_string(port) + (log.empty() ? std::string() : "; see " + log) +
                    " (is rsyslog-relp installed? is the port free?)");
  }

  /// `log_files` published by other addons for this node, minus those the wildcards cover.
  static std::vector<sa::ExtraFile> extra_files(const json& req, const std::string& node, const std::string& workdir) {
    std::vector<sa::ExtraFile> out;
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
};

}  // namespace

namespace {
constexpr const char* kManifest = R"json({
  "schema": {
    "port": {"type": "integer", "default": 2514, "description": "RELP port of the collector on its node's address"},
    "max_file_size": {"type": "string", "default": "100M", "description": "Size at which a store file is rotated (bytes, or K/M/G)"},
    "retention_days": {"type": "integer", "default": 7, "description": "Days of logs kept in the store (0 keeps everything)"},
    "roles": {"type": "array", "default": [], "description": "Roles of the nodes whose workloads are shipped (empty: every node)"},
    "queue_max_disk_space": {"type": "string", "default": "1G", "description": "Disk a shipper may fill while the collector is unreachable"}
  },
  "provides": ["logs"],
  "requires": ["services"],
  "placement": {"roles": ["infra"], "mode": "first"}
})json";
}  // namespace

FLOTILLA_PLUGIN(SyslogAddon, "syslog", "0.1.0",
                "Log aggregation with rsyslog: a shipper per node tails every workload's output and forwards it over "
                "RELP to a collector on infra, which stores it per service and day for `flotilla logs`",
                kManifest)
