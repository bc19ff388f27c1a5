#include "addon_swarm/swarm_addon.hpp"
#include "addon_swarm/swarm_daemon.hpp"
#include "addon_swarm/swarm_services.hpp"

#include "flotilla/support/config_map.hpp"
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/secret.hpp"
#include "flotilla/support/wait.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace flotilla::swarm_addon {

namespace {

using sdk::Context;
using sdk::json;
namespace s = flotilla::support;
using namespace std::chrono_literals;

// A reconciling addon: `up` applies it even when nothing changed, so a node that left the swarm
// behind Flotilla's back is joined again.
// It provides "services": it deploys the topology's `mode = "swarm"` services and reports their
// tasks as instances, so the ingress and the catalog, which require services, apply after it.
constexpr const char* kManifest = R"json({
  "reconcile": true,
  "provides": ["services"],
  "placement": {"roles": ["swarm"], "mode": "all"}
})json";

/// The addon's options; the defaults here are the manifest's.
struct Options {
  int managers = 1;
  int port = 2377;
  int join_timeout = 60;
  int service_timeout = 180;
};

const s::ConfigMap<Options>& options_map() {
  static const auto map =
      s::ConfigMap<Options>()
          .integer("managers", &Options::managers, "Managers: the first N nodes of the placement; the others join as workers")
          .range(1, 7)
          .integer("port", &Options::port, "Swarm management port on each node's address (ListenAddr and AdvertiseAddr)")
          .range(1, 65535)
          .integer("join_timeout", &Options::join_timeout, "Seconds to wait for every node to be listed `ready` by the manager")
          .range(1, 3600)
          .integer("service_timeout", &Options::service_timeout,
                   "Seconds to wait for every replica of the mode = \"swarm\" services to run with its port published")
          .range(1, 3600);
  return map;
}

Options options_of(const json& req) { return s::addon_options(options_map(), req, "swarm"); }

std::string runtime_name(const json& view) {
  const std::string r = view.value("runtime", "");
  return r.empty() ? "process" : r;
}

std::string not_docker(const std::string& node, const std::string& runtime) {
  return "swarm: node " + node + " runs on the `" + runtime +
         "` runtime, which has no Docker Engine; the swarm addon needs Docker nodes: place it on nodes of the netns driver or of "
         "runtime \"docker\"";
}

std::optional<json> view_of(const json& req, const std::string& name) {
  const auto nodes = req.find("nodes");
  if (nodes == req.end() || !nodes->is_array()) return std::nullopt;
  for (const auto& n : *nodes)
    if (n.is_object() && n.value("name", "") == name) return n;
  return std::nullopt;
}

std::vector<std::string> placed(const json& req) {
  const auto addon = req.find("addon");
  if (addon == req.end() || !addon->is_object()) return {};
  return addon->value("nodes", std::vector<std::string>{});
}

/// The placed nodes in placement order, the first `managers` of them managers. Throws
/// NotSupported for a node without a Docker Engine, Retryable for one not running yet.
std::vector<Member> members_of(const json& req, const Options& cfg) {
  std::vector<Member> out;
  for (const auto& name : placed(req)) {
    const auto view = view_of(req, name);
    if (!view) throw sdk::Retryable("swarm: node " + name + " is not running (yet): it is not among the nodes of this request");
    if (const std::string runtime = runtime_name(*view); runtime != "docker") throw sdk::NotSupported(not_docker(name, runtime));
    if (s::docker_endpoint_of(*view).host.empty())
      throw sdk::NotSupported("swarm: node " + name + " has no Docker endpoint recorded by its driver; the swarm addon needs Docker nodes");
    const std::string address = view->value("address", "");
    if (address.empty()) throw sdk::Retryable("swarm: node " + name + " has no address yet");
    out.push_back({name, address, static_cast<int>(out.size()) < cfg.managers, *view});
  }
  if (out.empty())
    throw sdk::Invalid("swarm: the placement holds no node; give a node group roles = [\"swarm\"] or set the addon's placement");
  return out;
}

std::string role_of(bool manager) { return manager ? "manager" : "worker"; }

/// Replaces every occurrence of the secret in `text`, so that a daemon's message quoting a
/// request cannot carry a join token into an error.
std::string scrub(std::string text, const s::Secret& secret) {
  if (secret.empty()) return text;
  for (auto at = text.find(secret.reveal()); at != std::string::npos; at = text.find(secret.reveal(), at))
    text.replace(at, secret.reveal().size(), "[redacted]");
  return text;
}

Daemons daemons_of(const std::vector<Member>& members, const Context& ctx) {
  Daemons out;
  for (const auto& m : members) {
    out.push_back(std::make_unique<Daemon>(m, ctx));
    out.back()->refresh();
  }
  return out;
}

/// The join tokens of the swarm, from a manager (GET /swarm). Held only for this apply.
struct JoinTokens {
  s::Secret worker;
  s::Secret manager;
};

JoinTokens join_tokens(Daemon& manager) {
  const json doc = manager.call("GET", "/swarm", "read the join tokens (GET /swarm)");
  JoinTokens t;
  if (doc.is_object() && doc.contains("JoinTokens") && doc["JoinTokens"].is_object()) {
    t.worker = s::Secret(doc["JoinTokens"].value("Worker", ""));
    t.manager = s::Secret(doc["JoinTokens"].value("Manager", ""));
  }
  if (t.worker.empty() || t.manager.empty())
    throw sdk::Retryable("swarm: manager " + manager.node() + " gave no join tokens (GET /swarm); check that it is a manager");
  return t;
}

/// The manager's list of the swarm's nodes (GET /nodes).
json node_list(Daemon& manager) {
  json nodes = manager.call("GET", "/nodes", "list the swarm's nodes (GET /nodes)");
  return nodes.is_array() ? nodes : json::array();
}

const json* entry_of(const json& nodes, const std::string& id) {
  for (const auto& n : nodes)
    if (n.value("ID", "") == id) return &n;
  return nullptr;
}

std::string entry_state(const json& entry) { return entry.value("Status", json::object()).value("State", ""); }
std::string entry_role(const json& entry) { return entry.value("Spec", json::object()).value("Role", ""); }
std::string entry_addr(const json& entry) { return entry.value("Status", json::object()).value("Addr", ""); }

/// Sets the role of the manager's entry `entry` (promote or demote).
void set_role(Daemon& manager, const json& entry, const std::string& role) {
  json spec = entry.value("Spec", json::object());
  spec["Role"] = role;
  const auto version = entry.value("Version", json::object()).value("Index", 0LL);
  (void)manager.call("POST", "/nodes/" + entry.value("ID", "") + "/update?version=" + std::to_string(version),
                     "set the role of swarm node " + entry.value("ID", "") + " to " + role, spec.dump());
}

/// Removes the manager's entry `entry` (a manager's is demoted first, as the API requires).
void remove_entry(Daemon& manager, const json& entry) {
  if (entry_role(entry) == "manager") set_role(manager, entry, "worker");
  (void)manager.call("DELETE", "/nodes/" + entry.value("ID", "") + "?force=true", "remove swarm node " + entry.value("ID", ""));
}

/// Makes `d` leave its swarm; already out is fine. A worker leaves as asked; a manager (the last
/// one cannot leave otherwise) and a node stuck joining only with force.
void leave(Daemon& d) {
  d.refresh();
  if (d.state() == "inactive") return;
  const bool force = d.controls() || d.state() != "active";
  (void)d.call("POST", std::string("/swarm/leave?force=") + (force ? "true" : "false"), "leave the swarm (POST /swarm/leave)", {}, 60s);
  d.refresh();
}

/// Joins `d` to the swarm of `manager` with the token of its role.
void join(Daemon& d, Daemon& manager, const JoinTokens& tokens, const Options& cfg) {
  const s::Secret& token = d.member().manager ? tokens.manager : tokens.worker;
  const json body = {{"ListenAddr", "0.0.0.0:" + std::to_string(cfg.port)},
                     {"AdvertiseAddr", d.swarm_addr(cfg.port)},
                     {"RemoteAddrs", {manager.swarm_addr(cfg.port)}},
                     {"JoinToken", token.reveal()}};
  try {
    (void)d.call("POST", "/swarm/join", "join the swarm of " + manager.node() + " at " + manager.swarm_addr(cfg.port), body.dump(),
                 std::chrono::seconds(cfg.join_timeout));
  } catch (const s::DockerError& e) {
    throw s::DockerError(scrub(e.what(), token), e.node(), e.status(), scrub(e.daemon_message(), token), e.unreachable());
  }
  d.refresh();
}

json member_record(const Daemon& d) {
  return {{"node", d.node()}, {"address", d.member().address}, {"role", role_of(d.member().manager)}, {"node_id", d.node_id()}};
}

/// Runs `body`, turning an unreachable daemon into Retryable (the engine tries again).
template <class Fn>
auto engine_errors(Fn&& body) {
  try {
    return body();
  } catch (const s::DockerError& e) {
    if (e.unreachable()) throw sdk::Retryable(std::string("swarm: ") + e.what());
    throw sdk::Error(FLT_ERROR, std::string("swarm: ") + e.what());
  }
}

/// Initialises a swarm on the first placed node, when no placed node is in any swarm; throws
/// naming the nodes that are in a swarm none of them manages.
Daemon& init_swarm(Context& ctx, Daemons& ds, const Options& cfg, Report& report) {
  std::vector<std::string> in_one;
  for (auto& d : ds)
    if (d->state() != "inactive") in_one.push_back(d->node() + " (" + d->state() + ")");
  if (!in_one.empty()) {
    std::string list;
    for (const auto& n : in_one) list += (list.empty() ? "" : ", ") + n;
    throw sdk::Error(FLT_ERROR, "swarm: node(s) " + list +
                                    " belong to a swarm that no placed node manages (its managers left or are gone); make them leave "
                                    "it (POST /swarm/leave?force=true, or `docker swarm leave --force` with `flotilla env`) and run up again");
  }
  Daemon& first = *ds.front();
  ctx.progress("initialising the swarm on " + first.node());
  const json body = {{"ListenAddr", "0.0.0.0:" + std::to_string(cfg.port)}, {"AdvertiseAddr", first.swarm_addr(cfg.port)}};
  (void)first.call("POST", "/swarm/init", "initialise the swarm (POST /swarm/init)", body.dump(), std::chrono::seconds(cfg.join_timeout));
  (void)s::wait_until(std::chrono::seconds(cfg.join_timeout), 200ms, [&] {
                        first.refresh();
                        return first.controls();
                      },
                      [&ctx] { return ctx.cancelled(); });
  ctx.check_cancelled();
  if (!first.controls()) throw sdk::Retryable("swarm: " + first.node() + " initialised a swarm but does not report itself its manager yet");
  report.note_change("swarm: initialised on " + first.node() + " (" + first.swarm_addr(cfg.port) + ")");
  return first;
}

/// Members that are out join the swarm of `lead`; members in another swarm are an error naming
/// them, members still joining are waited for.
void join_members(Context& ctx, Daemons& ds, Daemon& lead, const Options& cfg, Report& report) {
  const std::string cluster = lead.cluster_id();
  std::optional<JoinTokens> tokens;
  const json nodes = node_list(lead);
  for (auto& d : ds) {
    if (d.get() == &lead) continue;
    if (d->state() == "pending") {
      ctx.progress("waiting for " + d->node() + " to finish joining");
      (void)s::wait_until(std::chrono::seconds(cfg.join_timeout), 200ms, [&] {
                            d->refresh();
                            return d->state() != "pending";
                          },
                          [&ctx] { return ctx.cancelled(); });
      ctx.check_cancelled();
    }
    const std::string st = d->state();
    if (st == "active") {
      const bool ours = d->controls() ? d->cluster_id() == cluster : entry_of(nodes, d->node_id()) != nullptr;
      if (!ours)
        throw sdk::Error(FLT_ERROR, "swarm: node " + d->node() + " is in another swarm (" +
                                        (d->controls() ? "cluster " + d->cluster_id() : "node " + d->node_id()) + ") than the one " +
                                        lead.node() + " manages; make it leave that swarm (POST /swarm/leave?force=true, or "
                                        "`docker swarm leave --force` with `flotilla env`) and run up again");
      continue;
    }
    if (st != "inactive")
      throw sdk::Retryable("swarm: node " + d->node() + " is in swarm state `" + st + "`" + (d->error().empty() ? "" : ": " + d->error()) +
                           "; if it stays so, make it leave (docker swarm leave --force) and run up again");
    if (!tokens) tokens = join_tokens(lead);
    ctx.progress("joining " + d->node() + " to the swarm as a " + role_of(d->member().manager));
    join(*d, lead, *tokens, cfg);
    report.note_change("swarm: " + d->node() + " joined as a " + role_of(d->member().manager));
  }
}

/// How the lead sees a manager's place in the Raft group: "reachable" once it has joined.
std::string entry_reachability(const json& entry) { return entry.value("ManagerStatus", json::object()).value("Reachability", ""); }

/// Gives every member the role of its place: promotions before demotions, so the swarm never
/// runs short of managers. A promoted node counts once the lead lists it reachable: until it has
/// joined the Raft group, the swarm cannot demote it again ("can't find manager in raft
/// memberlist"), and its vote does not count.
void set_roles(Context& ctx, Daemons& ds, Daemon& lead, const Options& cfg, Report& report) {
  json nodes = node_list(lead);
  for (const bool promote : {true, false})
    for (auto& d : ds) {
      const json* e = entry_of(nodes, d->node_id());
      if (e == nullptr || d->member().manager != promote || entry_role(*e) == role_of(promote)) continue;
      if (d.get() == &lead) continue;  // the lead stays a manager until another one is there
      ctx.progress((promote ? "promoting " : "demoting ") + d->node());
      set_role(lead, *e, role_of(promote));
      report.note_change("swarm: " + d->node() + " is now a " + role_of(promote));
      nodes = node_list(lead);
      if (!promote) continue;
      const bool joined = s::wait_until(std::chrono::seconds(cfg.join_timeout), 200ms, [&] {
                            nodes = node_list(lead);
                            const json* now = entry_of(nodes, d->node_id());
                            return now != nullptr && entry_reachability(*now) == "reachable";
                          },
                          [&ctx] { return ctx.cancelled(); });
      ctx.check_cancelled();
      if (!joined)
        throw sdk::Retryable("swarm: " + d->node() + " was promoted but the manager does not list it reachable after " +
                             std::to_string(cfg.join_timeout) + " s (join_timeout)");
    }
}

/// Nodes that left the placement leave the swarm; their entries, and the stale entries of nodes
/// that joined again under a new ID, are removed from the manager's list.
void remove_departed(Context& ctx, const json& req, const json& previous, Daemons& ds, Daemon& lead, Report& report) {
  std::set<std::string> current_ids, current_addrs, current_names;
  for (auto& d : ds) {
    current_ids.insert(d->node_id());
    current_addrs.insert(d->member().address);
    current_names.insert(d->node());
  }
  std::set<std::string> ours_ids, ours_addrs;
  for (const auto& rec : previous.value("members", json::array())) {
    ours_ids.insert(rec.value("node_id", ""));
    ours_addrs.insert(rec.value("address", ""));
    const std::string name = rec.value("node", "");
    if (current_names.contains(name)) continue;
    const auto view = view_of(req, name);
    if (!view || runtime_name(*view) != "docker" || s::docker_endpoint_of(*view).host.empty()) continue;
    try {
      Daemon gone({name, view->value("address", ""), false, *view}, ctx);
      ctx.progress("making " + name + " leave the swarm (no longer placed)");
      leave(gone);
      report.note_change("swarm: " + name + " left the swarm (no longer placed)");
    } catch (const s::DockerError& e) {
      ctx.warn(std::string("swarm: node ") + name + ", no longer placed, could not leave the swarm: " + e.what());
    }
  }
  for (const auto& e : node_list(lead)) {
    const std::string id = e.value("ID", "");
    if (current_ids.contains(id)) continue;
    const std::string addr = entry_addr(e);
    if (!ours_ids.contains(id) && !ours_addrs.contains(addr) && !current_addrs.contains(addr)) continue;
    ctx.progress("removing the stale entry " + id + " (" + addr + ") from the swarm's node list");
    remove_entry(lead, e);
    report.note_change("swarm: removed the stale node entry " + id + " (" + addr + ")");
  }
}

/// Waits until the manager lists every member `ready`; returns that list. Throws Retryable
/// naming the members that are not, after `join_timeout`.
json wait_ready(Context& ctx, Daemons& ds, Daemon& lead, const Options& cfg) {
  json nodes;
  std::vector<std::string> waiting;
  ctx.progress("waiting for every swarm node to be ready");
  const bool ready = s::wait_until(
      std::chrono::seconds(cfg.join_timeout), 200ms,
      [&] {
        nodes = node_list(lead);
        waiting.clear();
        for (auto& d : ds) {
          const json* e = entry_of(nodes, d->node_id());
          const std::string st = e == nullptr ? "missing" : entry_state(*e);
          if (st != "ready") waiting.push_back(d->node() + " (" + st + ")");
        }
        return waiting.empty();
      },
      [&ctx] { return ctx.cancelled(); });
  ctx.check_cancelled();
  if (!ready) {
    std::string list;
    for (const auto& w : waiting) list += (list.empty() ? "" : ", ") + w;
    throw sdk::Retryable("swarm: node(s) " + list + " not ready in the list of manager " + lead.node() + " after " +
                         std::to_string(cfg.join_timeout) + " s; check that port " + std::to_string(cfg.port) +
                         " and 7946 (tcp and udp) are open between the nodes");
  }
  return nodes;
}

/// Records the members in the addon's state and returns the apply's answer, from the manager's
/// list `nodes`.
json record_members(Context& ctx, const json& previous, Daemons& ds, Daemon& lead, const json& nodes, const Options& cfg, Report& report) {
  const std::string cluster = lead.cluster_id();
  json state = {{"cluster_id", cluster}, {"members", json::array()}};
  json out_nodes = json::array();
  json managers = json::array();
  int manager_count = 0;
  for (auto& d : ds) {
    state["members"].push_back(member_record(*d));
    const json* e = entry_of(nodes, d->node_id());
    const std::string role = e != nullptr ? entry_role(*e) : role_of(d->member().manager);
    if (role == "manager") {
      managers.push_back(d->swarm_addr(cfg.port));
      ++manager_count;
    }
    out_nodes.push_back({{"node", d->node()},
                         {"address", d->member().address},
                         {"node_id", d->node_id()},
                         {"role", role},
                         {"state", e != nullptr ? entry_state(*e) : "missing"}});
  }
  const json old_state = {{"cluster_id", previous.value("cluster_id", "")}, {"members", previous.value("members", json::array())}};
  if (old_state != state) report.changed = true;
  ctx.set_state(state);
  report.messages.push_back("swarm: " + std::to_string(ds.size()) + " node(s) ready, " + std::to_string(manager_count) +
                            " manager(s), managed at " + lead.swarm_addr(cfg.port) + (report.changed ? "" : " (unchanged)"));
  return json{{"outputs", {{"cluster_id", cluster}, {"managers", managers}, {"nodes", out_nodes}, {"changed", report.changed}}},
              {"messages", report.messages}};
}

json apply_swarm(Context& ctx, const json& req) {
  const Options cfg = options_of(req);
  const auto members = members_of(req, cfg);
  const json previous = ctx.state();
  Report report;

  ctx.progress("asking each node's dockerd for its swarm state");
  Daemons ds = daemons_of(members, ctx);
  Daemon* lead = lead_of(ds);
  if (lead == nullptr) lead = &init_swarm(ctx, ds, cfg, report);
  const std::string cluster = lead->cluster_id();
  if (const std::string before = previous.value("cluster_id", ""); !before.empty() && before != cluster)
    report.messages.push_back("swarm: the swarm was made anew (cluster " + before + " -> " + cluster + ")");

  join_members(ctx, ds, *lead, cfg, report);
  set_roles(ctx, ds, *lead, cfg, report);
  remove_departed(ctx, req, previous, ds, *lead, report);
  const json nodes = wait_ready(ctx, ds, *lead, cfg);
  const auto wanted = wanted_services(req);
  converge_services(ctx, *lead, cluster_of(req), wanted, report);
  const json services = await_services(ctx, *lead, ds, cluster_of(req), wanted, std::chrono::seconds(cfg.service_timeout));
  json out = record_members(ctx, previous, ds, *lead, nodes, cfg, report);
  out["outputs"]["services"] = services;
  return out;
}

/// Demotes every manager but `lead` while the swarm still has its quorum: a manager that left
/// first would take part of the quorum with it, and the others' leave would wait on it.
void demote_others(Context& ctx, Daemons& ds, Daemon& lead) {
  json nodes = node_list(lead);
  for (auto& d : ds) {
    if (d.get() == &lead || !d->controls()) continue;
    const json* e = entry_of(nodes, d->node_id());
    if (e == nullptr) continue;
    ctx.progress("demoting " + d->node() + " before the swarm is left");
    set_role(lead, *e, "worker");
    (void)s::wait_until(std::chrono::seconds(10), 200ms, [&] { return !d->refresh().value("ControlAvailable", false); },
                        [&ctx] { return ctx.cancelled(); });
    nodes = node_list(lead);
  }
}

json destroy_swarm(Context& ctx, const json& req) {
  const json recorded = ctx.state();
  std::vector<std::pair<std::string, bool>> names;  // node, was recorded as a manager
  for (const auto& rec : recorded.value("members", json::array())) names.emplace_back(rec.value("node", ""), rec.value("role", "") == "manager");
  if (names.empty())
    for (const auto& n : placed(req)) names.emplace_back(n, false);
  Daemons ds;
  for (const auto& [name, manager] : names) {
    const auto view = view_of(req, name);
    if (!view || runtime_name(*view) != "docker" || s::docker_endpoint_of(*view).host.empty()) continue;
    try {
      ds.push_back(std::make_unique<Daemon>(Member{name, view->value("address", ""), manager, *view}, ctx));
      ds.back()->refresh();
    } catch (const s::DockerError& e) {
      ctx.warn(std::string("swarm: node ") + name + " could not be asked to leave the swarm: " + e.what());
      if (!ds.empty() && ds.back()->node() == name) ds.pop_back();
    }
  }
  try {
    remove_services(ctx, ds, cluster_of(req), std::chrono::seconds(options_of(req).service_timeout));
  } catch (const s::DockerError& e) {
    ctx.warn(std::string("swarm: the cluster's Swarm services could not be removed before the nodes leave: ") + e.what());
  }
  if (Daemon* lead = lead_of(ds); lead != nullptr) try {
      demote_others(ctx, ds, *lead);
    } catch (const s::DockerError& e) {
      ctx.warn(std::string("swarm: the other managers could not be demoted before the nodes leave: ") + e.what());
    }
  // Workers first, then managers, so no worker is left behind by a swarm that is gone.
  std::vector<std::string> failed;
  for (const bool managers : {false, true})
    for (auto& d : ds) {
      if (!managers && d->controls()) continue;
      try {
        if (d->state() != "inactive") ctx.progress(d->node() + " leaves the swarm");
        leave(*d);
        if (d->state() != "inactive") failed.push_back(d->node() + " (still " + d->state() + ")");
      } catch (const s::DockerError& e) {
        failed.push_back(d->node() + ": " + e.what());
      }
    }
  if (!failed.empty()) {
    std::string list;
    for (const auto& f : failed) list += (list.empty() ? "" : "; ") + f;
    throw sdk::Retryable("swarm: not every node left the swarm: " + list);
  }
  ctx.set_state(json::object());
  return json::object();
}

}  // namespace

const char* manifest() {
  static const std::string text = options_map().manifest(kManifest);
  return text.c_str();
}

json Swarm::validate(Context&, const json& req) {
  json errors = json::array();
  const auto filled = options_map().fill(s::addon_config(req));
  for (const auto& e : filled.errors) errors.push_back({{"key", e.key}, {"message", "swarm " + e.message}});
  const auto names = placed(req);
  for (const auto& name : names)
    // The runtime the driver declares; a request without one cannot be judged yet (apply can).
    if (const auto view = view_of(req, name); view && view->contains("runtime") && runtime_name(*view) != "docker")
      errors.push_back({{"key", "placement"}, {"message", not_docker(name, runtime_name(*view))}});
  if (filled.errors.empty() && !names.empty() && filled.config.managers > static_cast<int>(names.size()))
    errors.push_back({{"key", "managers"},
                      {"message", "swarm: managers = " + std::to_string(filled.config.managers) + " needs as many nodes, but the placement gives " +
                                      std::to_string(names.size()) + "; lower it or place the addon on more nodes"}});
  return {{"errors", errors}};
}

json Swarm::apply(Context& ctx, const json& req) {
  return engine_errors([&] { return apply_swarm(ctx, req); });
}

json Swarm::destroy(Context& ctx, const json& req) {
  return engine_errors([&] { return destroy_swarm(ctx, req); });
}

}  // namespace flotilla::swarm_addon
