// Where a node's Docker daemon listens on its host, for containers that talk to that daemon
// through a bind mount of its socket (logspout, gliderlabs/registrator).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace flotilla::support {

/// The socket of `node`'s dockerd on its host: PATH when the node's endpoint
/// (runtime_config.host) is unix://PATH (the netns driver's nodes each have their own), else
/// /var/run/docker.sock (a TCP endpoint says nothing about the socket; that is Docker's default).
[[nodiscard]] inline std::string docker_socket_of(const nlohmann::json& node) {
  const nlohmann::json config = node.is_object() ? node.value("runtime_config", nlohmann::json::object()) : nlohmann::json();
  const std::string host = config.is_object() ? config.value("host", "") : "";
  if (host.starts_with("unix://") && host.size() > 7) return host.substr(7);
  return "/var/run/docker.sock";
}

}  // namespace flotilla::support
