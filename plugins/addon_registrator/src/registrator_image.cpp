#include "addon_registrator/registrator_image.hpp"

#include "flotilla/support/docker_socket.hpp"

namespace flotilla::discovery {

std::string host_port(const std::string& url) {
  const auto scheme = url.find("://");
  std::string rest = scheme == std::string::npos ? url : url.substr(scheme + 3);
  return rest.substr(0, rest.find('/'));
}

std::string consul_registry_uri(const json& agents, const std::string& fallback_url, const std::string& node) {
  std::string url = fallback_url;
  if (agents.is_object() && agents.contains(node) && agents[node].is_string()) url = agents[node].get<std::string>();
  return "consul://" + host_port(url);
}

std::string etcd_registry_uri(const std::string& endpoints, const std::string& address, const std::string& path) {
  std::string chosen;
  for (size_t start = 0; start <= endpoints.size();) {
    const auto comma = endpoints.find(',', start);
    const std::string one = host_port(endpoints.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (chosen.empty()) chosen = one;
    if (!address.empty() && one.substr(0, one.rfind(':')) == address) {
      chosen = one;
      break;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return "etcd://" + chosen + path;
}

std::vector<std::string> registrator_args(const std::string& address, const std::vector<std::string>& flags, const std::string& uri) {
  std::vector<std::string> args = {"-ip", address};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back(uri);
  return args;
}

json registrator_workload(const json& node, const std::string& image, const std::vector<std::string>& args) {
  return {{"name", "registrator"},
          {"image", image},
          {"network", "host"},
          {"cmd", args},
          {"ports", json::array()},
          {"mounts", json::array({{{"source", support::docker_socket_of(node)}, {"target", kRegistratorSocket}, {"type", "bind"}}})}};
}

}  // namespace flotilla::discovery
