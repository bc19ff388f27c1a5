// The `docker` runtime: workloads run as containers through the Docker Engine API of their
// node (runtime_config.host: a unix socket, TCP, or TCP with TLS client certificates). Every
// container carries labels that mark it as Flotilla's (cluster, node, workload, component and
// the hash of its spec), so a new `start` replaces only a container whose spec changed, and
// nothing without those labels is ever touched.
#pragma once

#include <flotilla/plugin.hpp>
#include <flotilla/support/docker_client.hpp>

#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace flotilla::docker_runtime {

/// Label keys on every container Flotilla makes.
inline constexpr const char* kManagedLabel = "io.flotilla.managed";
inline constexpr const char* kClusterLabel = "io.flotilla.cluster";
inline constexpr const char* kNodeLabel = "io.flotilla.node";
inline constexpr const char* kWorkloadLabel = "io.flotilla.workload";
inline constexpr const char* kComponentLabel = "io.flotilla.component";
inline constexpr const char* kSpecHashLabel = "io.flotilla.spec-hash";

/// The endpoint of the node in a request (node.runtime_config: host, tls {ca, cert, key}).
/// Throws sdk::Invalid naming the node when it has none.
[[nodiscard]] support::DockerEndpoint endpoint_of(const sdk::json& node);

/// The Engine API container config for `workload` on `node`: image, cmd, env, ports published
/// on the node's address, mounts, restart policy, resource limits, `privileged`, `devices` and
/// the ownership labels (without the spec hash). Throws sdk::Invalid naming the workload for a
/// bad field.
[[nodiscard]] sdk::json container_config(const sdk::json& node, const sdk::json& workload, const std::string& cluster);

/// The labels of an inspected container ({} when it has none).
[[nodiscard]] sdk::json container_labels(const sdk::json& container);

/// The hash of a container config: the spec-hash label's value.
[[nodiscard]] std::string config_hash(const sdk::json& config);

/// Problems of a workload for this runtime, one message each.
[[nodiscard]] std::vector<std::string> workload_errors(const sdk::json& workload);

/// What one list call per node found, kept briefly so the inspects of one run of `up` share it.
class NodeListings {
 public:
  explicit NodeListings(std::chrono::milliseconds ttl = std::chrono::milliseconds(1500)) : ttl_(ttl) {}
  /// The managed containers on `endpoint`'s daemon, listed at most once per ttl. Callers that
  /// ask while a listing of that daemon is under way wait for it instead of sending their own
  /// (the engine inspects its workloads in parallel), and share its error if it fails.
  std::vector<support::ContainerSummary> get(const support::DockerEndpoint& endpoint);
  /// Forgets the listing of that daemon (after a change made through it).
  void forget(const std::string& host);
  /// How many list calls went to daemons so far.
  [[nodiscard]] int list_calls() const;

 private:
  struct Entry {
    std::chrono::steady_clock::time_point at;
    std::vector<support::ContainerSummary> containers;
  };
  std::chrono::milliseconds ttl_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::shared_future<std::vector<support::ContainerSummary>>> listing_;  // under way
  int calls_ = 0;
};

class DockerRuntime final : public flotilla::sdk::Runtime {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json start(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json inspect(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json stop(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json signal(sdk::Context& ctx, const sdk::json& request) override;
  /// Places or removes a file in the node's files volume of its owner directory (files.hpp).
  sdk::json put_file(sdk::Context& ctx, const sdk::json& request) override;

  [[nodiscard]] NodeListings& listings() { return listings_; }

 private:
  NodeListings listings_;
};

}  // namespace flotilla::docker_runtime
