// The shape of an etcd cluster for the `etcd` addon: which nodes are members and the
// command (and environment) each member runs with. Pure functions, so tests can check them
// and start the same command themselves.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace flotilla::discovery {

using json = nlohmann::json;

/// One member of the etcd cluster.
struct EtcdMember {
  std::string node;
  std::string address;
  int client_port = 2379;
  int peer_port = 2380;
  std::string data_dir;
  /// A container on a Docker-runtime node (sharing the node's network); data_dir is then a
  /// path inside the container.
  bool container = false;

  [[nodiscard]] std::string client_url() const { return "http://" + address + ":" + std::to_string(client_port); }
  [[nodiscard]] std::string peer_url() const { return "http://" + address + ":" + std::to_string(peer_port); }
  bool operator==(const EtcdMember&) const = default;
};

/// How many members `members` asks for, checked against the placed nodes; the message says
/// what to change when there are too few.
[[nodiscard]] std::string check_member_count(int members, const std::vector<std::string>& placed);

/// The members for an addon request: the first `members` placed nodes, in placement order,
/// with their addresses from the request's node list. Throws std::invalid_argument when a
/// node has no address yet or there are too few.
[[nodiscard]] std::vector<EtcdMember> select_members(const json& req, int members, int client_port, int peer_port);

/// "n1=http://a:2380,n2=http://b:2380": the --initial-cluster value.
[[nodiscard]] std::string initial_cluster(const std::vector<EtcdMember>& members);

/// Client URLs of every member joined by commas (what etcdctl --endpoints takes).
[[nodiscard]] std::string client_urls(const std::vector<EtcdMember>& members);

/// The command line of member `self` of `members`. `token` keeps clusters apart (it changes
/// when the cluster is recreated, so a stale member cannot join the new one).
[[nodiscard]] std::vector<std::string> etcd_command(const EtcdMember& self, const std::vector<EtcdMember>& members,
    const std::string& token, const std::string& binary = "etcd");

}  // namespace flotilla::discovery
