#include "addon_swarm/swarm_addon.hpp"

#include "flotilla/support/config_map.hpp"
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/encoding.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/secret.hpp"
#include "flotilla/support/wait.hpp"

#include <algorithm>
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

/// A placed node and the role it should have.
struct Member {
  std::string node;
  std::string address;
  bool manager = false;
  json view;
};

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

/// One node's dockerd and its swarm membership as GET /info last reported it.
class Daemon {
 public:
  Daemon(Member member, const Context& ctx) : member_(std::move(member)), docker_(endpoint(member_, ctx)) {}

  [[nodiscard]] const Member& member() const { return member_; }
  [[nodiscard]] const std::string& node() const { return member_.node; }
  [[nodiscard]] s::DockerClient& docker() { return docker_; }

  /// Asks GET /info again; returns its `Swarm`.
  const json& refresh() {
    const json info = call("GET", "/info", "GET /info");
    swarm_ = info.is_object() ? info.value("Swarm", json::object()) : json::object();
    return swarm_;
  }
  /// "inactive", "pending", "active", "error" or "locked" ("" reads as inactive).
  [[nodiscard]] std::string state() const {
    const std::string st = swarm_.value("LocalNodeState", "");
    return st.empty() ? "inactive" : st;
  }
  [[nodiscard]] std::string node_id() const { return swarm_.value("NodeID", ""); }
  [[nodiscard]] bool controls() const { return state() == "active" && swarm_.value("ControlAvailable", false); }
  /// The swarm's ID; only a manager knows it.
  [[nodiscard]] std::string cluster_id() const {
    const auto c = swarm_.find("Cluster");
    return c != swarm_.end() && c->is_object() ? c->value("ID", "") : "";
  }
  [[nodiscard]] std::string error() const { return swarm_.value("Error", ""); }
  [[nodiscard]] std::string swarm_addr(int port) const { return member_.address + ":" + std::to_string(port); }

  /// One Engine API call; a non-2xx answer is a DockerError naming `what`. Returns the body as
  /// JSON (null when empty).
  json call(const std::string& method, const std::string& path, const std::string& what, const std::string& body = {},
            std::chrono::seconds timeout = 30s) {
    const auto r = docker_.call(method, path, body, {}, s::HttpTimeouts{3000ms, timeout});
    if (r.status < 200 || r.status >= 300) docker_.fail(what, r);
    return r.body.empty() ? json() : json::parse(r.body, nullptr, false);
  }

 private:
  static s::DockerEndpoint endpoint(const Member& m, const Context& ctx) {
    s::DockerEndpoint e = s::docker_endpoint_of(m.view);
    e.cancelled = [&ctx] { return ctx.cancelled(); };
    return e;
  }

  Member member_;
  s::DockerClient docker_;
  json swarm_ = json::object();
};

using Daemons = std::vector<std::unique_ptr<Daemon>>;

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

/// What an apply did: `changed` when it touched the swarm, and the messages for the user.
struct Report {
  bool changed = false;
  std::vector<std::string> messages;

  /// Records a change and the message that tells of it.
  void note_change(std::string message) {
    changed = true;
    messages.push_back(std::move(message));
  }
};

/// The manager that speaks for the swarm: the first placed manager that controls one, else any
/// placed node that does (the managers option may have changed). Null when none does.
Daemon* lead_of(Daemons& ds) {
  for (auto& d : ds)
    if (d->member().manager && d->controls()) return d.get();
  for (auto& d : ds)
    if (d->controls()) return d.get();
  return nullptr;
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

/// Gives every member the role of its place: promotions before demotions, so the swarm never
/// runs short of managers.
void set_roles(Context& ctx, Daemons& ds, Daemon& lead, Report& report) {
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

// ---- mode = "swarm" services ------------------------------------------------------------------
//
// Each is a replicated Swarm service. Its port is published in mode host, on a port each task's
// node picks: the routing mesh needs the dockerd's own iptables rules and the kernel's IPVS, which
// a node may not have, and the cluster's ingress (HAProxy) reaches the tasks on their nodes
// anyway. The tasks are reported as the service's instances.

constexpr const char* kClusterLabel = "io.flotilla.cluster";
constexpr const char* kServiceLabel = "io.flotilla.service";
constexpr const char* kSpecLabel = "io.flotilla.spec";
constexpr std::chrono::seconds kRejectionGrace{15};

/// A `mode = "swarm"` service of the request, as the engine shapes it.
struct WantedService {
  std::string name;  // "hello/v1"
  std::string dns;   // "hello-v1"
  json spec;         // image, env, port, health, replicas
  [[nodiscard]] int replicas() const { return spec.value("replicas", 1); }
  [[nodiscard]] int port() const { return spec.value("port", 0); }
};

std::vector<WantedService> wanted_services(const json& req) {
  std::vector<WantedService> out;
  const auto svcs = req.find("services");
  if (svcs == req.end() || !svcs->is_array()) return out;
  for (const auto& svc : *svcs)
    if (svc.is_object() && svc.value("mode", "") == "swarm")
      out.push_back({svc.value("name", ""), svc.value("dns", ""), svc.value("spec", json::object())});
  return out;
}

std::string cluster_of(const json& req) { return req.value("cluster", json::object()).value("name", ""); }

std::string swarm_name(const std::string& cluster, const WantedService& w) { return cluster + "-" + w.dns; }

/// The body of POST /services/create (and of an update) for `w`.
json service_spec(const WantedService& w, const std::string& cluster) {
  json env = json::array();
  const json given = w.spec.value("env", json::object());
  for (const auto& [k, v] : given.items()) env.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  env.push_back("FLOTILLA_SERVICE=" + w.name);
  env.push_back("FLOTILLA_INSTANCE=" + w.name + "#{{.Task.Slot}}");  // a template Swarm fills in per task
  if (w.port() > 0) env.push_back("PORT=" + std::to_string(w.port()));
  const json labels = {{kClusterLabel, cluster}, {kServiceLabel, w.name}};  // the tasks' containers carry these
  json service_labels = labels;
  service_labels[kSpecLabel] = s::stable_hash(w.spec.dump());
  json spec = {{"Name", swarm_name(cluster, w)},
               {"Labels", service_labels},
               {"TaskTemplate",
                {{"ContainerSpec", {{"Image", w.spec.value("image", "")}, {"Env", env}, {"Labels", labels}}},
                 {"RestartPolicy", {{"Condition", "any"}, {"Delay", 1'000'000'000}}}}},
               {"Mode", {{"Replicated", {{"Replicas", w.replicas()}}}}}};
  if (w.port() > 0)
    spec["EndpointSpec"] = {{"Ports", json::array({{{"Protocol", "tcp"}, {"TargetPort", w.port()}, {"PublishMode", "host"}}})}};
  return spec;
}

/// The Swarm services of this cluster (GET /services by label).
json cluster_services(Daemon& lead, const std::string& cluster) {
  const json filters = {{"label", {std::string(kClusterLabel) + "=" + cluster}}};
  json list = lead.call("GET", "/services?filters=" + s::url_encode(filters.dump()), "list the swarm's services (GET /services)");
  return list.is_array() ? list : json::array();
}

std::string label_of(const json& svc, const char* key) {
  return svc.value("Spec", json::object()).value("Labels", json::object()).value(key, "");
}

/// Creates the missing services, updates the changed ones and removes the ones no longer asked
/// for.
void converge_services(Context& ctx, Daemon& lead, const std::string& cluster, const std::vector<WantedService>& wanted, Report& report) {
  const json existing = cluster_services(lead, cluster);
  for (const auto& w : wanted) {
    const json body = service_spec(w, cluster);
    const auto cur = std::find_if(existing.begin(), existing.end(), [&](const json& e) { return label_of(e, kServiceLabel) == w.name; });
    const std::string what = "service " + w.name + " (Swarm service " + swarm_name(cluster, w) + ", " + std::to_string(w.replicas()) + " replica(s))";
    if (cur == existing.end()) {
      ctx.progress("creating " + what);
      (void)lead.call("POST", "/services/create", "create the Swarm service " + swarm_name(cluster, w), body.dump());
      report.note_change("swarm: created " + what);
    } else if (label_of(*cur, kSpecLabel) != body["Labels"][kSpecLabel]) {
      ctx.progress("updating " + what);
      const auto version = cur->value("Version", json::object()).value("Index", 0LL);
      (void)lead.call("POST", "/services/" + cur->value("ID", "") + "/update?version=" + std::to_string(version),
                      "update the Swarm service " + swarm_name(cluster, w), body.dump());
      report.note_change("swarm: updated " + what);
    }
  }
  for (const auto& e : existing) {
    const std::string name = label_of(e, kServiceLabel);
    if (std::any_of(wanted.begin(), wanted.end(), [&](const WantedService& w) { return w.name == name; })) continue;
    ctx.progress("removing the Swarm service of " + name + " (no longer in the topology)");
    (void)lead.call("DELETE", "/services/" + e.value("ID", ""), "remove the Swarm service " + e.value("Spec", json::object()).value("Name", ""));
    report.note_change("swarm: removed the Swarm service of " + name);
  }
}

/// The host port on which a task publishes `target`, from the task's PortStatus.
int published_port(const json& task, int target) {
  const json ports = task.value("Status", json::object()).value("PortStatus", json::object()).value("Ports", json::array());
  for (const auto& p : ports)
    if (p.value("TargetPort", 0) == target) return p.value("PublishedPort", 0);
  return 0;
}

/// The running tasks of `w` as instances; `pending` gets what keeps the others from counting,
/// `rejected` the error of a task Swarm rejected or that failed (an image no node can pull).
json task_instances(Daemon& lead, const Daemons& ds, const std::string& cluster, const WantedService& w, std::string& pending,
                    std::string& rejected) {
  // While Swarm rolls an update, old tasks still run: they are not what the service will be.
  const json svc = lead.call("GET", "/services/" + swarm_name(cluster, w), "inspect the Swarm service " + swarm_name(cluster, w));
  if (const std::string st = svc.is_object() ? svc.value("UpdateStatus", json::object()).value("State", "") : "";
      st == "updating" || st == "rollback_started" || st == "paused" || st == "rollback_paused") {
    pending = "its update is " + st;
    return json::array();
  }
  // Every task of the service: a task Swarm rejected is kept with desired state "ready" while it
  // tries again, so the API's desired-state filter ("running") would hide why nothing runs.
  const json filters = {{"service", {swarm_name(cluster, w)}}};
  const json tasks = lead.call("GET", "/tasks?filters=" + s::url_encode(filters.dump()), "list the tasks of " + swarm_name(cluster, w));
  json out = json::array();
  int other = 0;
  for (const auto& t : tasks.is_array() ? tasks : json::array()) {
    if (const std::string desired = t.value("DesiredState", ""); desired != "running" && desired != "ready") continue;  // history
    const json status = t.value("Status", json::object());
    const std::string node_id = t.value("NodeID", "");
    const auto d = std::find_if(ds.begin(), ds.end(), [&](const auto& x) { return x->node_id() == node_id; });
    const int port = w.port() > 0 ? published_port(t, w.port()) : 0;
    if (status.value("State", "") != "running" || d == ds.end() || (w.port() > 0 && port == 0)) {
      ++other;
      const std::string err = status.value("Err", "");
      if (pending.empty() && !err.empty()) pending = err;
      if (const std::string st = status.value("State", ""); rejected.empty() && (st == "rejected" || st == "failed"))
        rejected = err.empty() ? "a task " + st : err;
      continue;
    }
    const int slot = t.value("Slot", 0);
    out.push_back({{"id", w.name + "#" + std::to_string(slot)}, {"instance", slot}, {"node", (*d)->node()},
                   {"address", (*d)->member().address}, {"port", port}, {"state", "running"},
                   {"workload", "task " + t.value("ID", "")}});
  }
  if (other > 0 && pending.empty()) pending = std::to_string(other) + " task(s) not running yet";
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) { return a["instance"] < b["instance"]; });
  return out;
}

/// Waits until every wanted service runs its replicas, each with its port published; returns
/// the addon's `services` output (per service: its spec as the engine gave it, and its tasks as
/// instances).
json await_services(Context& ctx, Daemon& lead, const Daemons& ds, const std::string& cluster, const std::vector<WantedService>& wanted,
                    const Options& cfg) {
  json out = json::object();
  for (const auto& w : wanted) {
    ctx.progress("waiting for the " + std::to_string(w.replicas()) + " replica(s) of " + w.name + " to run");
    json instances;
    std::string pending, rejected;
    // Swarm retries a rejected task forever; when no task runs and every try is rejected for
    // this long, the cause (an image that cannot be pulled) will not go away by waiting.
    std::optional<std::chrono::steady_clock::time_point> rejecting_since;
    bool given_up = false;
    const bool ok = s::wait_until(
        std::chrono::seconds(cfg.service_timeout), 500ms,
        [&] {
          pending.clear();
          rejected.clear();
          instances = task_instances(lead, ds, cluster, w, pending, rejected);
          if (static_cast<int>(instances.size()) == w.replicas() && pending.empty()) return true;
          if (rejected.empty() || !instances.empty()) {
            rejecting_since.reset();
            return false;
          }
          const auto now = std::chrono::steady_clock::now();
          if (!rejecting_since) rejecting_since = now;
          given_up = now - *rejecting_since > kRejectionGrace;
          return given_up;
        },
        [&ctx] { return ctx.cancelled(); });
    ctx.check_cancelled();
    if (given_up)
      throw sdk::Error(FLT_ERROR, "swarm: service " + w.name + ": Swarm rejects every task (" + rejected + ") for " +
                                      std::to_string(kRejectionGrace.count()) + " s; check that every swarm node can pull " +
                                      w.spec.value("image", "") + " (`docker service ps " + swarm_name(cluster, w) +
                                      "` on a manager) and run up again");
    if (!ok)
      throw sdk::Retryable("swarm: service " + w.name + " runs " + std::to_string(instances.size()) + " of " + std::to_string(w.replicas()) +
                           " replica(s) after " + std::to_string(cfg.service_timeout) + " s" + (pending.empty() ? "" : " (" + pending + ")") +
                           "; check that every swarm node can pull " + w.spec.value("image", "") + " (`docker service ps " +
                           swarm_name(cluster, w) + "` on a manager)");
    out[w.name] = {{"spec", w.spec}, {"swarm_service", swarm_name(cluster, w)}, {"instances", instances}};
  }
  return out;
}

/// Removes this cluster's Swarm services and waits (bounded) for their containers to go.
void remove_services(Context& ctx, Daemons& ds, const std::string& cluster, const Options& cfg) {
  Daemon* lead = lead_of(ds);
  if (lead == nullptr) return;
  const json existing = cluster_services(*lead, cluster);
  for (const auto& e : existing) {
    ctx.progress("removing the Swarm service " + e.value("Spec", json::object()).value("Name", ""));
    (void)lead->call("DELETE", "/services/" + e.value("ID", ""), "remove the Swarm service " + e.value("Spec", json::object()).value("Name", ""));
  }
  if (existing.empty()) return;
  (void)s::wait_until(
      std::chrono::seconds(cfg.service_timeout), 500ms,
      [&] {
        return std::all_of(ds.begin(), ds.end(), [&](const auto& d) {
          return d->docker().list_containers({std::string(kClusterLabel) + "=" + cluster, kServiceLabel}).empty();
        });
      },
      [&ctx] { return ctx.cancelled(); });
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
  set_roles(ctx, ds, *lead, report);
  remove_departed(ctx, req, previous, ds, *lead, report);
  const json nodes = wait_ready(ctx, ds, *lead, cfg);
  const auto wanted = wanted_services(req);
  converge_services(ctx, *lead, cluster_of(req), wanted, report);
  const json services = await_services(ctx, *lead, ds, cluster_of(req), wanted, cfg);
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
    remove_services(ctx, ds, cluster_of(req), options_of(req));
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
