// The pieces a netns node is made of, each created and removed on its own: a bridge on the
// host, a network namespace joined to it by a veth pair, and a dockerd running inside the
// namespace with its own data root, exec root, pid file and sockets. The driver and the test
// lab build nodes from these; each removal touches only the object it names.
#pragma once

#include <flotilla/support/certificates.hpp>
#include <flotilla/support/process.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace flotilla::netns {

/// True when a network interface of that name exists in this (the host's) namespace.
[[nodiscard]] bool link_exists(const std::string& name);
/// True when /var/run/netns/NAME exists.
[[nodiscard]] bool netns_exists(const std::string& name);
/// The namespace's path, as nsenter --net= takes it.
[[nodiscard]] std::filesystem::path netns_path(const std::string& name);

/// Creates bridge `name` with `gateway`/`prefix` and brings it up; an existing bridge is kept.
/// Throws support::CommandError with the `ip` command and its message.
void ensure_bridge(const std::string& name, const std::string& gateway, int prefix);
/// Deletes the bridge if it exists.
void remove_bridge(const std::string& name);

/// How one namespace is wired.
struct NamespaceSpec {
  std::string netns;      ///< namespace name
  std::string host_veth;  ///< host end of the veth pair (at most 15 bytes); the other end is eth0 inside
  std::string bridge;
  std::string address;    ///< the node's address on the bridge
  int prefix = 24;
  std::string gateway;    ///< the bridge's address (the host's side; reached on the link, not routed through)
};

/// Creates the namespace and its veth (both kept when they exist), addresses eth0 and brings up
/// eth0 and lo. The namespace has no default route (one found is deleted): it reaches the
/// bridge's /24 and nothing else, so a pull of an image not in the lab's registry fails at
/// once instead of going to the internet. Throws support::CommandError.
void ensure_namespace(const NamespaceSpec& spec);
/// Deletes the host veth (which deletes its peer) and the namespace, those that exist.
void remove_namespace(const NamespaceSpec& spec);

/// TLS files of a dockerd's TCP endpoint.
struct DockerdTls {
  std::filesystem::path ca;    ///< CA that signs the clients' certificates
  std::filesystem::path cert;  ///< the daemon's certificate
  std::filesystem::path key;
};

/// A cluster's certificate authority and client certificate, in one directory laid out as the
/// docker CLI's DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem (and ca-key.pem, which signs).
struct ClientTls {
  std::filesystem::path dir;
  support::CertificateAuthority authority;  ///< dir/ca.pem and dir/ca-key.pem
  [[nodiscard]] std::filesystem::path ca() const { return authority.cert; }
  [[nodiscard]] std::filesystem::path cert() const { return dir / "cert.pem"; }
  [[nodiscard]] std::filesystem::path key() const { return dir / "key.pem"; }
};

/// The cluster's CA and a client certificate in `dir` (support::ensure_certificate_authority
/// and ensure_certificate: made once, keys 0600, issued again only when they no longer fit).
/// Throws support::CertificateError naming the file at fault.
ClientTls ensure_client_tls(const std::filesystem::path& dir, const std::string& cluster);

/// A server certificate for `address` (and 127.0.0.1) signed by `ca` in `dir` (server.pem,
/// server-key.pem), issued again when the one there does not cover `address`.
DockerdTls ensure_server_tls(const ClientTls& ca, const std::filesystem::path& dir, const std::string& node, const std::string& address);

/// One dockerd inside a namespace. Everything it writes lives under `root`.
struct DockerdSpec {
  std::string netns;
  std::filesystem::path root;
  std::string storage_driver = "vfs";
  bool bridge_none = false;           ///< --bridge=none: containers get no docker0 (no port bindings)
  std::string tcp_address;            ///< "ADDRESS:PORT" for a TCP endpoint; empty: unix socket only
  std::string insecure_registry;      ///< "ADDRESS:PORT" of the lab's registry (plain HTTP); empty: none
  std::optional<DockerdTls> tls;      ///< with tcp_address: --tlsverify with these files
  std::chrono::milliseconds start_timeout{std::chrono::seconds(30)};

  [[nodiscard]] std::filesystem::path socket() const { return root / "docker.sock"; }
  [[nodiscard]] std::filesystem::path pid_file() const { return root / "dockerd.pid"; }  ///< dockerd's own
  /// "PID START_TIME" of the dockerd Flotilla started, written before it execs.
  [[nodiscard]] std::filesystem::path identity_file() const { return root / "dockerd.identity"; }
  [[nodiscard]] std::filesystem::path log_file() const { return root / "dockerd.log"; }
  /// "unix:///ROOT/docker.sock"
  [[nodiscard]] std::string unix_host() const { return "unix://" + socket().string(); }
};

/// The dockerd command line for `spec` (nsenter into the namespace, then dockerd).
[[nodiscard]] std::vector<std::string> dockerd_argv(const DockerdSpec& spec);

/// The address and subnet of a dockerd's default bridge network (docker0 in its namespace).
struct DockerBridge {
  std::string gateway;  ///< "172.17.0.1": what its containers reach of their node
  std::string subnet;   ///< "172.17.0.0/16"
};

/// Asks the dockerd of `spec` for its bridge network (GET /networks/bridge). Throws
/// std::runtime_error naming the namespace when it has none or does not answer.
[[nodiscard]] DockerBridge docker_bridge(const DockerdSpec& spec);

/// The iptables command that lets the containers of `bridge` reach the other nodes: traffic
/// from its subnet leaving by the namespace's eth0 takes the node's address (the other nodes
/// have no route back to a container subnet, and each has the same one). `op` is "-C" (check)
/// or "-A" (append); the rule lives in the node's namespace only and goes with it.
[[nodiscard]] std::vector<std::string> masquerade_argv(const std::string& netns, const DockerBridge& bridge, const std::string& op);

/// Adds that rule unless the namespace has it.
void ensure_masquerade(const std::string& netns, const DockerBridge& bridge);

/// Starts dockerd (detached, so it outlives this process) unless the one recorded in its pid
/// file runs, and waits until its socket answers /_ping. Returns its identity. Throws
/// std::runtime_error with the tail of its log when it exits or does not answer in time.
support::ProcessId start_dockerd(const DockerdSpec& spec);

/// Stops the dockerd recorded under `spec.root` (SIGTERM, then SIGKILL after `grace`) if it
/// still is the process that was started; false when none was running. On SIGTERM dockerd
/// stops its running containers (their stop timeout, 10 s by default; its shutdown timeout,
/// 15 s) and then containerd; killed before that, it leaves both running, so the default grace
/// outlasts them.
bool stop_dockerd(const DockerdSpec& spec, std::chrono::milliseconds grace = std::chrono::seconds(30));

/// The lab's private registry: Debian's `docker-registry` on the host, listening on an address
/// of the bridge (`address`), so every namespace reaches it on the link. Its configuration,
/// identity and log live under `root`; the images it holds under `storage`.
struct RegistrySpec {
  std::string address;  ///< "ADDRESS:PORT"
  std::filesystem::path root;
  std::filesystem::path storage;
  std::chrono::milliseconds start_timeout{std::chrono::seconds(15)};

  [[nodiscard]] std::filesystem::path config_file() const { return root / "config.yml"; }
  /// "PID START_TIME" of the registry Flotilla started, written before it execs.
  [[nodiscard]] std::filesystem::path identity_file() const { return root / "registry.identity"; }
  [[nodiscard]] std::filesystem::path log_file() const { return root / "registry.log"; }
};

/// The registry's configuration file (YAML) for `spec`.
[[nodiscard]] std::string registry_config(const RegistrySpec& spec);

/// True when the registry recorded under `spec.root` runs (the process that was started).
[[nodiscard]] bool registry_running(const RegistrySpec& spec);

/// Starts the registry (detached) unless the one recorded runs, and waits until it answers
/// GET /v2/. Returns its identity. Throws std::runtime_error with the tail of its log when it
/// exits (an address already taken, say) or does not answer in time.
support::ProcessId start_registry(const RegistrySpec& spec);

/// Stops the registry recorded under `spec.root` if it still is the process that was started
/// (SIGTERM, then SIGKILL after `grace`); false when none was running. Removes nothing.
bool stop_registry(const RegistrySpec& spec, std::chrono::milliseconds grace = std::chrono::seconds(5));

/// Removes `dir` and everything in it, first detaching any mount below it (dockerd leaves
/// namespace bind mounts in its exec root). Missing is not an error.
void remove_tree(const std::filesystem::path& dir);

}  // namespace flotilla::netns
