#include "addon_etcd/etcd_member.hpp"

namespace flotilla::discovery {

std::string check_member_count(int members, const std::vector<std::string>& placed) {
  if (members != 1 && members != 3 && members != 5) {
    return "members = " + std::to_string(members) + " is not allowed; use 1, 3 or 5 (an odd count keeps a quorum)";
  }
  if (static_cast<int>(placed.size()) < members) {
    std::string names;
    for (const auto& n : placed) names += (names.empty() ? "" : ", ") + n;
    return "members = " + std::to_string(members) + " needs " + std::to_string(members) + " nodes, but the placement gives " +
           std::to_string(placed.size()) + " (" + names +
           "); place the addon on a role with enough nodes, e.g. roles = [\"swarm\"] with a [[nodes]] count of at least " +
           std::to_string(members);
  }
  return {};
}

std::vector<EtcdMember> select_members(const json& req, int members, int client_port, int peer_port) {
  const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
  if (auto why = check_member_count(members, placed); !why.empty()) throw std::invalid_argument(why);
  const std::string dir = req["addon"].value("dir", "");
  std::vector<EtcdMember> out;
  for (int i = 0; i < members; ++i) {
    EtcdMember m;
    m.node = placed[static_cast<size_t>(i)];
    for (const auto& n : req.value("nodes", json::array()))
      if (n.value("name", "") == m.node) m.address = n.value("address", "");
    if (m.address.empty()) throw std::invalid_argument("node " + m.node + " has no address yet; create it first (flotilla up)");
    m.client_port = client_port;
    m.peer_port = peer_port;
    m.data_dir = dir + "/" + m.node;
    out.push_back(std::move(m));
  }
  return out;
}

std::string initial_cluster(const std::vector<EtcdMember>& members) {
  std::string out;
  for (const auto& m : members) out += (out.empty() ? "" : ",") + m.node + "=" + m.peer_url();
  return out;
}

std::string client_urls(const std::vector<EtcdMember>& members) {
  std::string out;
  for (const auto& m : members) out += (out.empty() ? "" : ",") + m.client_url();
  return out;
}

std::vector<std::string> etcd_command(const EtcdMember& self, const std::vector<EtcdMember>& members,
    const std::string& token, const std::string& binary) {
  return {binary,
          "--name=" + self.node,
          "--data-dir=" + self.data_dir,
          "--listen-client-urls=" + self.client_url(),
          "--advertise-client-urls=" + self.client_url(),
          "--listen-peer-urls=" + self.peer_url(),
          "--initial-advertise-peer-urls=" + self.peer_url(),
          "--initial-cluster=" + initial_cluster(members),
          "--initial-cluster-state=new",
          "--initial-cluster-token=" + token,
          // Lease churn from keepalives grows the history; keep one hour of it.
          "--auto-compaction-mode=periodic",
          "--auto-compaction-retention=1h",
          "--logger=zap",
          "--log-outputs=stderr"};
}

}  // namespace flotilla::discovery
