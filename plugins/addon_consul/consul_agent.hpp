// The shape of a Consul cluster for the `consul` addon: which nodes run servers, and the
// agent command line of each node (process runtime: the `consul` binary; Docker runtimes:
// the same arguments as the hashicorp/consul image's command).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace flotilla::discovery {

using json = nlohmann::json;

/// One Consul agent (server or client) on a node.
struct ConsulAgent {
  std::string node;
  std::string address;
  bool server = false;
  std::string runtime = "process";
};

/// Cluster-wide settings of the agents.
struct ConsulSettings {
  int servers = 1;
  std::string datacenter = "dc1";
  std::string domain = "consul";
  int http_port = 8500;
  int dns_port = 8600;
  std::string data_root;  // addon dir: data in <data_root>/<node> (process runtime)
};

/// The `consul` executable on PATH, if any.
[[nodiscard]] inline std::optional<std::filesystem::path> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::istringstream in(path);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    const auto candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(candidate)) return candidate;
  }
  return std::nullopt;
}

/// The message for a process-runtime cluster without a consul binary.
inline constexpr const char* kConsulMissing =
    "consul not found on PATH: Consul is not packaged in Debian; install it from HashiCorp or use the etcd addon "
    "(plugin = \"etcd\")";

/// Picks the agents: servers on the first `servers` nodes with role "infra", then on the
/// first other nodes in placement order; every other placed node runs a client agent.
/// Returns an empty list when there are fewer placed nodes than servers.
[[nodiscard]] inline std::vector<ConsulAgent> plan_agents(const json& req, int servers) {
  const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
  std::vector<ConsulAgent> agents;
  for (const auto& name : placed) {
    ConsulAgent a;
    a.node = name;
    bool infra = false;
    for (const auto& n : req.value("nodes", json::array())) {
      if (n.value("name", "") != name) continue;
      a.address = n.value("address", "");
      a.runtime = n.value("runtime", "process");
      for (const auto& r : n.value("roles", json::array())) infra = infra || r == "infra";
    }
    agents.push_back(a);
    if (infra && servers > 0) {
      agents.back().server = true;
      --servers;
    }
  }
  for (auto& a : agents) {
    if (servers == 0) break;
    if (!a.server) {
      a.server = true;
      --servers;
    }
  }
  if (servers > 0) return {};
  return agents;
}

/// The agent's arguments after the binary: `consul agent ...`. Every agent binds its HTTP,
/// DNS and Serf ports on its node's address and retries joining every server.
[[nodiscard]] inline std::vector<std::string> consul_agent_args(const ConsulAgent& self, const std::vector<ConsulAgent>& all,
                                                                const ConsulSettings& s) {
  std::vector<std::string> args = {"agent",
                                   "-node=" + self.node,
                                   "-datacenter=" + s.datacenter,
                                   "-domain=" + s.domain,
                                   "-bind=" + self.address,
                                   "-advertise=" + self.address,
                                   "-client=" + self.address,
                                   "-http-port=" + std::to_string(s.http_port),
                                   "-dns-port=" + std::to_string(s.dns_port),
                                   "-data-dir=" + (self.runtime == "process" ? s.data_root + "/" + self.node : std::string("/consul/data"))};
  if (self.server) {
    args.push_back("-server");
    args.push_back("-bootstrap-expect=" + std::to_string(s.servers));
    args.push_back("-ui");
  }
  for (const auto& a : all) {
    if (a.server && a.node != self.node) args.push_back("-retry-join=" + a.address);
  }
  return args;
}

}  // namespace flotilla::discovery
