#include "addon_consul/consul_agent.hpp"

#include <sstream>

namespace flotilla::discovery {

std::vector<ConsulAgent> plan_agents(const json& req, int servers) {
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

std::vector<std::string> consul_agent_args(const ConsulAgent& self, const std::vector<ConsulAgent>& all,
    const ConsulSettings& s) {
  std::vector<std::string> args = {"agent",
                                   "-node=" + self.node,
                                   "-datacenter=" + s.datacenter,
                                   "-domain=" + s.domain,
                                   "-bind=" + self.address,
                                   "-advertise=" + self.address,
                                   "-client=" + self.address,
                                   "-http-port=" + std::to_string(s.http_port),
                                   "-dns-port=" + std::to_string(s.dns_port)};
  // The image's entrypoint adds -data-dir=/consul/data (its volume) and -config-dir itself.
  if (self.runtime == "process") args.push_back("-data-dir=" + s.data_root + "/" + self.node);
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

json consul_workload(const ConsulAgent& self, const std::vector<ConsulAgent>& all, const ConsulSettings& s, const std::string& binary,
                     const std::string& image) {
  auto args = consul_agent_args(self, all, s);
  if (self.runtime == "process") {
    args.insert(args.begin(), binary);
    return {{"name", "consul"}, {"env", json::object()}, {"ports", {s.http_port, s.dns_port}}, {"command", args}};
  }
  // The image's documentation runs every agent with --net=host (its consensus and gossip do
  // not want the bridge's NAT), so -bind and -client are the node's own address and nothing is
  // published; the entrypoint runs `consul agent` with the command's arguments.
  return {{"name", "consul"}, {"env", json::object()}, {"image", image}, {"network", "host"}, {"cmd", args}, {"ports", json::array()}};
}

}  // namespace flotilla::discovery
