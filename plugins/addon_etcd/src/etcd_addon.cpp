#include "addon_etcd/etcd_addon.hpp"

#include "addon_etcd/etcd_member.hpp"
#include "flotilla/support/config_map.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/etcd_client.hpp"
#include "flotilla/support/wait.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace flotilla::etcd_addon {

namespace {

using sdk::Context;
using sdk::json;
namespace d = flotilla::discovery;

constexpr const char* kManifest = R"json({
  "provides": ["discovery"],
  "placement": {"roles": ["infra"], "mode": "all"}
})json";

constexpr const char* kWorkload = "etcd";

/// The addon's options; the defaults here are the manifest's.
struct Options {
  int members = 1;
  int client_port = 2379;
  int peer_port = 2380;
  int start_timeout = 60;
  std::string image = "quay.io/coreos/etcd:v3.5.9";
  bool enable_v2 = false;
};

const flotilla::support::ConfigMap<Options>& options_map() {
  static const auto map =
      flotilla::support::ConfigMap<Options>()
          .integer("members", &Options::members, "Cluster size: the first N nodes of the placement become members")
          .one_of({1, 3, 5})
          .integer("client_port", &Options::client_port, "Client port on each member's node address")
          .range(1, 65535)
          .integer("peer_port", &Options::peer_port, "Peer port on each member's node address")
          .range(1, 65535)
          .integer("start_timeout", &Options::start_timeout, "Seconds to wait for every member to report healthy")
          .range(1, 3600)
          .string("image", &Options::image, "Image of the members on Docker-runtime nodes (its PATH must hold `etcd`)")
          .boolean("enable_v2", &Options::enable_v2,
                   "Also serve etcd's v2 API (--enable-v2=true; etcd 3.4 and 3.5 disable it by default), for clients that speak only v2 "
                   "such as the registrator's gliderlabs/registrator image");
  return map;
}

/// The options of a request; throws Invalid naming every bad option.
Options options_of(const json& req) { return flotilla::support::addon_options(options_map(), req, "etcd"); }

json member_json(const d::EtcdMember& m) {
  return {{"node", m.node}, {"address", m.address}, {"client_port", m.client_port}, {"peer_port", m.peer_port}, {"data_dir", m.data_dir}, {"container", m.container}};
}

d::EtcdMember member_from(const json& j) {
  d::EtcdMember m;
  m.node = j.value("node", "");
  m.address = j.value("address", "");
  m.client_port = j.value("client_port", 2379);
  m.peer_port = j.value("peer_port", 2380);
  m.data_dir = j.value("data_dir", "");
  m.container = j.value("container", false);
  return m;
}

std::vector<d::EtcdMember> members_from(const json& state) {
  std::vector<d::EtcdMember> out;
  for (const auto& j : state.value("members", json::array())) out.push_back(member_from(j));
  return out;
}

/// The runtime of node `name` in the request ("process" when it says none).
std::string runtime_of(const json& req, const std::string& name) {
  for (const auto& n : req.value("nodes", json::array()))
    if (n.value("name", "") == name) return n.value("runtime", "process").empty() ? "process" : n.value("runtime", "process");
  return "process";
}

/// Why the member on `node` cannot run on its runtime, or "" when it can.
std::string unsupported(const std::string& node, const std::string& runtime) {
  if (runtime == "process" || runtime == "docker") return {};
  return "etcd member on node " + node + ": the etcd addon runs on the process and docker runtimes, not on `" + runtime +
         "`; place it on other nodes or use the consul addon";
}

/// The workload of member `m`: Debian's etcd on the process runtime, the `image` on Docker.
json member_workload(const d::EtcdMember& m, const std::vector<d::EtcdMember>& members, const std::string& token, const Options& cfg) {
  json workload = {{"name", kWorkload}, {"env", json::object()}, {"ports", {m.client_port, m.peer_port}}};
  if (m.container) {
    // The node's network, so the member binds the node's address and reaches the other
    // members' addresses as a process would (a bridged container has no route to them).
    workload["image"] = cfg.image;
    workload["network"] = "host";
    workload["cmd"] = d::etcd_command(m, members, token, "etcd");
  } else {
    workload["command"] = d::etcd_command(m, members, token);
  }
  // Added only when asked for, so a member without it keeps its spec (and is not restarted).
  if (cfg.enable_v2) workload[m.container ? "cmd" : "command"].push_back("--enable-v2=true");
  return workload;
}

void stop_member(Context& ctx, const d::EtcdMember& m) {
  try {
    (void)ctx.runtime({{"op", "stop"}, {"node", m.node}, {"name", kWorkload}});
  } catch (const std::exception& e) {
    ctx.warn("etcd member on " + m.node + " could not be stopped: " + e.what());
  }
  std::error_code ec;
  // A container's data went with the container.
  if (!m.data_dir.empty() && !m.container) std::filesystem::remove_all(m.data_dir, ec);
}
void wait_healthy(Context& ctx, const d::EtcdMember& m, std::chrono::seconds timeout) {
  const support::EtcdClient client(m.client_url(), {std::chrono::milliseconds(500), std::chrono::milliseconds(1000)});
  ctx.progress("waiting for etcd on " + m.node + " (" + m.client_url() + "/health)");
  if (support::wait_until(timeout, std::chrono::milliseconds(200), [&] { return client.healthy(); },
                          [&ctx] { return ctx.cancelled(); }))
    return;
  ctx.check_cancelled();
  std::string log;
  try {
    const json st = ctx.runtime({{"op", "inspect"}, {"node", m.node}, {"name", kWorkload}});
    log = st.value("state", "");
  } catch (const std::exception&) {
  }
  throw sdk::Retryable("etcd member on node " + m.node + " is not healthy at " + m.client_url() + "/health after " +
                       std::to_string(timeout.count()) + " s" + (log.empty() ? "" : " (workload " + log + ")") +
                       (m.container ? "; see its container's log (docker logs addon-etcd-etcd on that node)"
                                    : "; see its stderr log under the node's directory (flotilla ps)") +
                       " and check that ports " +
                       std::to_string(m.client_port) + "/" + std::to_string(m.peer_port) + " are free");
}
}  // namespace

const char* manifest() {
  static const std::string text = options_map().manifest(kManifest);
  return text.c_str();
}

json Etcd::validate(Context&, const json& req) {
  json errors = json::array();
  // Types, the member counts and the port ranges come from the map; what it cannot express
  // (the count against the placement, two ports that must differ) is checked here.
  const auto filled = options_map().fill(req["addon"].value("config", json::object()));
  for (const auto& e : filled.errors) errors.push_back({{"key", e.key}, {"message", "etcd " + e.message}});
  const Options& cfg = filled.config;
  const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
  if (auto why = d::check_member_count(cfg.members, placed); !why.empty()) {
    errors.push_back({{"key", "members"}, {"message", why}});
  }
  for (int i = 0; i < cfg.members && i < static_cast<int>(placed.size()); ++i)
    if (auto why = unsupported(placed[static_cast<size_t>(i)], runtime_of(req, placed[static_cast<size_t>(i)])); !why.empty())
      errors.push_back({{"key", "members"}, {"message", why}});
  if (cfg.client_port == cfg.peer_port) {
    errors.push_back({{"key", "peer_port"}, {"message", "etcd options client_port and peer_port are both " +
                                                            std::to_string(cfg.peer_port) + "; give them different ports"}});
  }
  return {{"errors", errors}};
}
json Etcd::apply(Context& ctx, const json& req) {
  const Options cfg = options_of(req);
  const std::string cluster = req["cluster"].value("name", "");
  std::vector<d::EtcdMember> members;
  try {
    members = d::select_members(req, cfg.members, cfg.client_port, cfg.peer_port);
  } catch (const std::invalid_argument& e) {
    throw sdk::Invalid(std::string("etcd: ") + e.what());
  }
  for (auto& m : members) {
    const std::string runtime = runtime_of(req, m.node);
    if (auto why = unsupported(m.node, runtime); !why.empty()) throw sdk::NotSupported(why);
    if (runtime == "docker") {
      m.container = true;
      m.data_dir = "/var/lib/etcd/" + m.node;
    }
  }

  json state = ctx.state();
  int generation = state.value("generation", 1);
  const auto previous = members_from(state);
  std::vector<std::string> messages;
  if (!previous.empty() && previous != members) {
    // etcd cannot change its initial membership by flags alone; the catalog is derived
    // entirely from the engine's state, so recreating the cluster loses nothing: the
    // registrator rewrites every entry when the endpoints it sees change.
    for (const auto& m : previous) stop_member(ctx, m);
    ++generation;
    messages.push_back("etcd membership changed (" + d::initial_cluster(previous) + " -> " + d::initial_cluster(members) +
                       "): the cluster was recreated empty and the registrator re-registers every entry");
  }
  const std::string token = "flotilla-" + cluster + "-" + std::to_string(generation);
  state["generation"] = generation;
  state["members"] = json::array();
  for (const auto& m : members) state["members"].push_back(member_json(m));
  ctx.set_state(state);

  for (const auto& m : members) {
    ctx.progress("starting etcd member " + m.node);
    if (!m.container) std::filesystem::create_directories(std::filesystem::path(m.data_dir).parent_path());
    (void)ctx.runtime({{"op", "start"}, {"node", m.node}, {"workload", member_workload(m, members, token, cfg)}});
  }
  // Members only report healthy once a quorum has formed, so wait after starting them all.
  const auto timeout = std::chrono::seconds(cfg.start_timeout);
  for (const auto& m : members) wait_healthy(ctx, m, timeout);

  json targets = json::array();
  for (const auto& m : members) targets.push_back(m.address + ":" + std::to_string(m.client_port));
  json out_members = json::array();
  for (const auto& m : members) out_members.push_back({{"node", m.node}, {"client_url", m.client_url()}, {"peer_url", m.peer_url()}});
  messages.push_back("etcd: " + std::to_string(members.size()) + " member(s), endpoints " + d::client_urls(members));
  return json{{"endpoints", {{"etcd", members.front().client_url()}}},
              {"outputs",
               {{"etcd_endpoints", d::client_urls(members)},
                {"members", out_members},
                {"v2_api", cfg.enable_v2},
                {"metrics_targets", json::array({{{"job", "etcd"}, {"targets", targets}, {"metrics_path", "/metrics"}}})}}},
              {"messages", messages}};
}
json Etcd::destroy(Context& ctx, const json& req) {
  auto members = members_from(ctx.state());
  if (members.empty()) {
    try {
      const Options cfg = options_of(req);
      members = d::select_members(req, cfg.members, cfg.client_port, cfg.peer_port);
    } catch (const std::exception&) {
      // Nothing was recorded and nothing can be computed: nothing of ours runs.
    }
  }
  for (const auto& m : members) stop_member(ctx, m);
  ctx.set_state(json::object());
  return json::object();
}
}  // namespace flotilla::etcd_addon
