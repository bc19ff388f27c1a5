// The shape of a Consul cluster for the `consul` addon: which nodes run servers, and the
// agent command line of each node (process runtime: the `consul` binary; Docker runtimes:
// the same arguments as the hashicorp/consul image's command).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

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

/// The message for a process-runtime cluster without a consul binary.
inline constexpr const char* kConsulMissing =
    "consul not found on PATH: Consul is not packaged in Debian; install it from HashiCorp or use the etcd addon "
    "(plugin = \"etcd\")";

/// Picks the agents: servers on the first `servers` nodes with role "infra", then on the
/// first other nodes in placement order; every other placed node runs a client agent.
/// Returns an empty list when there are fewer placed nodes than servers.
[[nodiscard]] std::vector<ConsulAgent> plan_agents(const json& req, int servers);

/// The agent's arguments after the binary: `consul agent ...`. Every agent binds its HTTP,
/// DNS and Serf ports on its node's address and retries joining every server.
[[nodiscard]] std::vector<std::string> consul_agent_args(const ConsulAgent& self, const std::vector<ConsulAgent>& all,
    const ConsulSettings& s);

/// The runtime workload of `self`'s agent: `binary agent ...` on the process runtime; on a
/// Docker runtime a container of `image` in the node's network (`network = "host"`) whose
/// command is the agent arguments, which the hashicorp/consul entrypoint passes to
/// `consul agent` with its data directory /consul/data.
[[nodiscard]] json consul_workload(const ConsulAgent& self, const std::vector<ConsulAgent>& all, const ConsulSettings& s,
                                   const std::string& binary, const std::string& image);

}  // namespace flotilla::discovery
