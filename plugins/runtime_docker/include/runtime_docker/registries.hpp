// Registry credentials of the docker runtime, from the topology's [runtime.docker] table:
//
//   [[runtime.docker.registries]]
//   address = "registry.example.com:5000"
//   username = "deploy"
//   password = "env:REGISTRY_PASSWORD"     # or "file:/path"; never the secret itself
//
// The password is only ever a reference (support/secret.hpp), resolved at the moment of a pull
// of an image from that registry and sent with that pull alone; no record, log line or message
// holds its value.
#pragma once

#include <flotilla/plugin.hpp>
#include <flotilla/support/docker_client.hpp>

#include <optional>
#include <string>

namespace flotilla::docker_runtime {

/// One registries entry as written (the password still a reference).
struct RegistryLogin {
  std::string address;   ///< "host[:port]", as image references name it
  std::string username;  ///< literal, or a reference
  std::string password;  ///< a reference: "env:NAME" or "file:/path"
};

/// The problems of the runtime's options, each {message, key} with key the path of the value
/// at fault ("registries[1].password"): an entry that is not a table, an unknown key, a missing
/// or malformed address, an address given twice, a username without password or the reverse, a
/// password written as the secret itself or as a malformed reference. Never quotes a password.
[[nodiscard]] sdk::json config_errors(const sdk::json& config);

/// The registry an image reference names, as Docker reads it: the part before the first '/'
/// when it holds a '.' or ':' or is "localhost", else Docker Hub ("docker.io").
[[nodiscard]] std::string registry_of(const std::string& image);

/// The entry of `config` ([runtime.docker] options) for the registry of `image`, if any.
[[nodiscard]] std::optional<RegistryLogin> login_for(const sdk::json& config, const std::string& image);

/// The credentials of `login`, its references resolved now. Throws sdk::Invalid naming node,
/// image and registry and saying which variable or file is missing; never the value.
[[nodiscard]] support::RegistryAuth resolve_login(const RegistryLogin& login, const std::string& node, const std::string& image);

/// What to add to a failed pull's message: when the registry asked for credentials, that they
/// go into [runtime.docker] (or, when some were sent, that it refused them); else "".
[[nodiscard]] std::string pull_hint(const support::DockerError& e, const std::string& image, const RegistryLogin* login);

/// Makes `image` present on the node's daemon, pulling it with the credentials `config` (the
/// [runtime.docker] options) gives for its registry, resolved only when a pull is due. A refused
/// pull throws sdk::Error naming node, image, `what` ("workload W of C") and what to do; an
/// unreachable daemon throws a DockerError that names the image; a missing secret throws sdk::Invalid.
/// `otherwise` ("; ...") is the advice for a refusal that is not about credentials ("": check
/// the image's name, the node's route to the registry and the credentials).
void ensure_image(support::DockerClient& docker, const sdk::json& config, const std::string& image, const std::string& what,
                  const std::string& otherwise = {});

}  // namespace flotilla::docker_runtime
