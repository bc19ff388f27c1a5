// The registrator's image mode: gliderlabs/registrator (github.com/gliderlabs/registrator) run
// in a container on every Docker node, as its README and run reference (docs/user/run.md) run
// it: `docker run --net=host --volume=/var/run/docker.sock:/tmp/docker.sock
// gliderlabs/registrator [options] <registry uri>`, with `-ip <node address>` so the services
// it sees are registered under their node's address, and the registry URI of the backend
// (docs/user/backends.md): `consul://<address>:<port>` or `etcd://<address>:<port>/<prefix>`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace flotilla::discovery {

using json = nlohmann::json;

/// Where the image's README mounts the Docker socket inside the container.
inline constexpr const char* kRegistratorSocket = "/tmp/docker.sock";

/// "HOST:PORT" of an "http://HOST:PORT[/...]" URL ("" when `url` is empty).
[[nodiscard]] std::string host_port(const std::string& url);

/// consul://<the Consul agent of `node`>, or of `fallback_url` (a server) when the node has
/// none; `agents` is the consul addon's outputs.agents ({node: "http://ADDRESS:PORT"}).
[[nodiscard]] std::string consul_registry_uri(const json& agents, const std::string& fallback_url, const std::string& node);

/// etcd://<member>/<path>: the member on `address` when one runs there, else the first of
/// `endpoints` (the etcd addon's comma-separated client URLs); `path` starts with '/'.
[[nodiscard]] std::string etcd_registry_uri(const std::string& endpoints, const std::string& address, const std::string& path);

/// The image's arguments: `-ip <address>`, then `flags`, then the registry URI.
[[nodiscard]] std::vector<std::string> registrator_args(const std::string& address, const std::vector<std::string>& flags,
                                                        const std::string& uri);

/// The workload of `node`'s registrator container: `image` in the node's network (host), the
/// node's Docker socket (support::docker_socket_of) bound at /tmp/docker.sock, `args` as the command (the image's
/// entrypoint is the registrator binary).
[[nodiscard]] json registrator_workload(const json& node, const std::string& image, const std::vector<std::string>& args);

}  // namespace flotilla::discovery
