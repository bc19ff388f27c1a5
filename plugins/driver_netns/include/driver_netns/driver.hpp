// The `netns` driver: every node is a Linux network namespace on a bridge of the host, with
// its own address in a private /24 and its own dockerd (data root, exec root, pid file, unix
// socket), reached through the docker runtime. A multi-host Docker cluster on one machine;
// it needs root. Everything it makes is named after the cluster, and `destroy` removes only that.
#pragma once

#include <flotilla/plugin.hpp>

#include "driver_netns/host.hpp"

#include <optional>
#include <string>

namespace flotilla::netns {

/// The driver's options ([driver.netns] in the topology).
struct Options {
  std::string subnet = "10.214.0.0/24";
  std::string storage_driver = "vfs";
  std::string bridge;  ///< empty: "flt" + 8 hex digits of the cluster's name and state directory
  bool docker_bridge = true;  ///< false: dockerd runs with --bridge=none (containers use the node's network only)
  bool tls = true;            ///< each dockerd also listens on ADDRESS:docker_port with TLS client certificates
  std::int64_t docker_port = 2376;
  std::string files_image = "busybox:latest";  ///< reported as runtime_config.files_image (docs/docker.md)
  bool registry = true;                         ///< run the lab's registry on the bridge's address
  std::int64_t registry_port = 5050;
  std::string registry_cache = "/var/cache/flotilla/registry";  ///< the registry's images; kept by destroy
};

/// Where one node lives: derived from the cluster, the options and the node's slot alone, so
/// `destroy` finds the same objects `create` made even without a record.
struct NodeLayout {
  std::string name;
  std::string bridge;
  std::string gateway;
  NamespaceSpec net;
  DockerdSpec dockerd;
  std::filesystem::path tls_dir;  ///< the cluster's CA and client certificate (DOCKER_CERT_PATH)
  std::string netns_prefix;       ///< every namespace of the cluster is named this and its slot
  std::optional<RegistrySpec> registry;  ///< the cluster's registry, when the options ask for one
};

/// The layout of `node` (an engine node object with name, slot and workdir). Throws
/// sdk::Invalid naming the node when its slot or workdir is missing or does not fit the subnet.
[[nodiscard]] NodeLayout layout_of(const sdk::json& cluster, const Options& options, const sdk::json& node);

/// Why this machine cannot run the driver ("" when it can): not root, or a tool missing.
[[nodiscard]] std::string unavailable_reason();

class NetnsDriver final : public flotilla::sdk::Driver {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json create(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json inspect(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& request) override;
};

/// The manifest (JSON text, with the option schema); lives as long as the process.
[[nodiscard]] const char* manifest();

}  // namespace flotilla::netns
