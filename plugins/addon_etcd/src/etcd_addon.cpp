#include "addon_etcd/etcd_addon.hpp"

#include "addon_etcd/etcd_member.hpp"
#include "flotilla/support/etcd_client.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::etcd_addon {

namespace {

using sdk::Context;
using sdk::json;
namespace d = flotilla::discovery;

constexpr const char* kManifest = R"json({
  "schema": {
    "members":       {"type": "integer", "enum": [1, 3, 5], "default": 1,
                      "description": "Cluster size: the first N nodes of the placement become members"},
    "client_port":   {"type": "integer", "default": 2379, "description": "Client port on each member's node address"},
    "peer_port":     {"type": "integer", "default": 2380, "description": "Peer port on each member's node address"},
    "start_timeout": {"type": "integer", "default": 60, "description": "Seconds to wait for every member to report healthy"}
  },
  "provides": ["discovery"],
  "placement": {"roles": ["infra"], "mode": "all"}
})json";

constexpr const char* kWorkload = "etcd";

json member_json(const d::EtcdMember& m) {
  return {{"node", m.node}, {"address", m.address}, {"client_port", m.client_port}, {"peer_port", m.peer_port}, {"data_dir", m.data_dir}};
}

d::EtcdMember member_from(const json& j) {
  d::EtcdMember m;
  m.node = j.value("node", "");
  m.address = j.value("address", "");
  m.client_port = j.value("client_port", 2379);
  m.peer_port = j.value("peer_port", 2380);
  m.data_dir = j.value("data_dir", "");
  return m;
}

std::vector<d::EtcdMember> members_from(const json& state) {
  std::vector<d::EtcdMember> out;
  for (const auto& j : state.value("members", json::array())) out.push_back(member_from(j));
  return out;
}

void stop_member(Context& ctx, const d::EtcdMember& m) {
  try {
    (void)ctx.runtime({{"op", "stop"}, {"node", m.node}, {"name", kWorkload}});
  } catch (const std::exception& e) {
    ctx.warn("etcd member on " + m.node + " could not be stopped: " + e.what());
  }
  std::error_code ec;
  if (!m.data_dir.empty()) std::filesystem::remove_all(m.data_dir, ec);
}
void wait_healthy(Context& ctx, const d::EtcdMember& m, std::chrono::seconds timeout) {
  const support::EtcdClient client(m.client_url(), {std::chrono::milliseconds(500), std::chrono::milliseconds(1000)});
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ctx.progress("waiting for etcd on " + m.node + " (" + m.client_url() + "/health)");
  while (!client.healthy()) {
    ctx.check_cancelled();
    if (std::chrono::steady_clock::now() > deadline) {
      std::string log;
      try {
        const json st = ctx.runtime({{"op", "inspect"}, {"node", m.node}, {"name", kWorkload}});
        log = st.value("state", "");
      } catch (const std::exception&) {
      }
      throw sdk::Retryable("etcd member on node " + m.node + " is not healthy at " + m.client_url() + "/health after " +
                                     std::to_string(timeout.count()) + " s" + (log.empty() ? "" : " (workload " + log + ")") +
                                     "; see its stderr log under the node's directory (flotilla ps) and check that ports " +
                                     std::to_string(m.client_port) + "/" + std::to_string(m.peer_port) + " are free");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}
}  // namespace

const char* manifest() { return kManifest; }

json Etcd::validate(Context&, const json& req) {
  json errors = json::array();
  const json cfg = req["addon"].value("config", json::object());
  const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
  if (auto why = d::check_member_count(cfg.value("members", 1), placed); !why.empty()) {
    errors.push_back({{"key", "members"}, {"message", why}});
  }
  for (const char* key : {"client_port", "peer_port"}) {
    const int p = cfg.value(key, 0);
    if (p < 1 || p > 65535) errors.push_back({{"key", key}, {"message", std::string(key) + " must be between 1 and 65535"}});
  }
  if (cfg.value("client_port", 2379) == cfg.value("peer_port", 2380)) {
    errors.push_back({{"key", "peer_port"}, {"message", "client_port and peer_port must differ"}});
  }
  return {{"errors", errors}};
}
json Etcd::apply(Context& ctx, const json& req) {
  const json cfg = req["addon"].value("config", json::object());
  const std::string cluster = req["cluster"].value("name", "");
  std::vector<d::EtcdMember> members;
  try {
    members = d::select_members(req, cfg.value("members", 1), cfg.value("client_port", 2379), cfg.value("peer_port", 2380));
  } catch (const std::invalid_argument& e) {
    throw sdk::Invalid(std::string("etcd: ") + e.what());
  }
  for (const auto& m : members) {
    for (const auto& n : req.value("nodes", json::array())) {
      if (n.value("name", "") == m.node && n.value("runtime", "process") != "process") {
        throw sdk::NotSupported("etcd: node " + m.node + " uses the " + n.value("runtime", "") +
                                          " runtime; the etcd addon runs Debian's /usr/bin/etcd on the process runtime only. "
                                          "Place it on process nodes or use the consul addon");
      }
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
    std::filesystem::create_directories(std::filesystem::path(m.data_dir).parent_path());
    json workload = {{"name", kWorkload},
                     {"command", d::etcd_command(m, members, token)},
                     {"env", json::object()},
                     {"ports", {m.client_port, m.peer_port}}};
    (void)ctx.runtime({{"op", "start"}, {"node", m.node}, {"workload", workload}});
  }
  // Members only report healthy once a quorum has formed, so wait after starting them all.
  const auto timeout = std::chrono::seconds(cfg.value("start_timeout", 60));
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
                {"metrics_targets", json::array({{{"job", "etcd"}, {"targets", targets}, {"metrics_path", "/metrics"}}})}}},
              {"messages", messages}};
}
json Etcd::destroy(Context& ctx, const json& req) {
  auto members = members_from(ctx.state());
  if (members.empty()) {
    const json cfg = req["addon"].value("config", json::object());
    try {
      members = d::select_members(req, cfg.value("members", 1), cfg.value("client_port", 2379), cfg.value("peer_port", 2380));
    } catch (const std::exception&) {
      // Nothing was recorded and nothing can be computed: nothing of ours runs.
    }
  }
  for (const auto& m : members) stop_member(ctx, m);
  ctx.set_state(json::object());
  return json::object();
}
}  // namespace flotilla::etcd_addon
