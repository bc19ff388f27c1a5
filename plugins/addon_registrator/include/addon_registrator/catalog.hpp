// The registrator's model: what should be in the catalog (computed from the engine's record
// of service instances and other addons' `registrations`), the etcd key layout, and the
// level-triggered sync that makes a backend's catalog equal to it (adds, updates, removes
// stale and stray entries). docs/discovery.md describes the layout.
#pragma once

#include "flotilla/support/consul_client.hpp"
#include "flotilla/support/etcd_client.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace flotilla::discovery {

using json = nlohmann::json;

/// A name or value a user must change; the message says what and how.
class InvalidName : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// True for an RFC 1123 label: 1-63 of [a-z0-9-], not starting or ending with '-'.
[[nodiscard]] bool is_dns_label(const std::string& s);

/// True for a DNS domain: dot-separated labels, at most 253 characters.
[[nodiscard]] bool is_dns_domain(const std::string& s);

/// The DNS form of a service name, as the engine makes it: "hello/v1" -> "hello-v1" ('/' and
/// '_' become '-'; anything else that is not a DNS label is refused by check_dns_label).
[[nodiscard]] std::string dns_name(std::string name);

/// Throws InvalidName unless `label` is a DNS label; `what` says where it came from.
void check_dns_label(const std::string& label, const std::string& what);

/// An ID usable as one etcd key segment and a Consul service ID: "hello/v1#3" -> "hello-v1-3".
[[nodiscard]] std::string key_safe_id(const std::string& id);

/// One catalog entry: a service instance or an addon component.
struct Registration {
  std::string name;     // DNS form: "hello-v1", "rest"
  std::string id;       // unique in the cluster, key-safe: "hello-v1-1", "rest-swarm-1"
  std::string service;  // the engine's name: "hello/v1" (for components, the registration name)
  std::string node;     // the node whose lease/agent owns the entry
  std::string address;
  int port = 0;
  std::vector<std::string> tags;
  std::string health;   // HTTP health path, "" for none
  std::string source;   // "service" or "addon:<name>"

  /// The JSON stored as the etcd value (keys sorted, so equal entries give equal text).
  [[nodiscard]] json to_json() const;
  [[nodiscard]] static Registration from_json(const json& j);
  bool operator==(const Registration&) const = default;
};

/// What the catalog should hold for an addon request (docs/sdk-reference.md): every instance of
/// every service, then every other addon's outputs.registrations. Components whose node is not
/// given are attached to the node with their address, else to `fallback_node`. Throws
/// InvalidName on a name that is no DNS label or on two entries with one ID.
[[nodiscard]] std::vector<Registration> desired_registrations(const json& request, const std::string& fallback_node);

/// Where a cluster's entries live in etcd: "<root>/<cluster>/services/" (root "/flotilla").
[[nodiscard]] std::string services_prefix(std::string root, const std::string& cluster);

/// The key of one entry: "<prefix><name>/<id>".
[[nodiscard]] std::string entry_key(const std::string& prefix, const Registration& r);

/// What one sync changed.
struct SyncReport {
  int added = 0;
  int updated = 0;
  int removed = 0;
  int unchanged = 0;
  std::vector<std::string> removed_ids;

  [[nodiscard]] bool changed() const { return added + updated + removed > 0; }
  [[nodiscard]] json to_json() const {
    return json{{"added", added}, {"updated", updated}, {"removed", removed}, {"unchanged", unchanged}};
  }
  [[nodiscard]] std::string summary() const {
    return std::to_string(added) + " added, " + std::to_string(updated) + " updated, " + std::to_string(removed) +
           " removed, " + std::to_string(unchanged) + " unchanged";
  }
};

/// Makes the etcd keys under `prefix` equal to `desired`: each entry is written (attached to
/// its node's lease from `lease_of`) when missing, different or on another lease, and every
/// other key under the prefix, ours or not, is deleted.
SyncReport sync_etcd(const support::EtcdClient& etcd, const std::string& prefix, const std::vector<Registration>& desired,
                            const std::function<std::int64_t(const std::string& node)>& lease_of);

/// Reads back the entries under `prefix` (skipping values that are not ours to parse).
[[nodiscard]] std::vector<Registration> read_etcd_catalog(const support::EtcdClient& etcd, const std::string& prefix);

// ---- Consul ----

/// The Meta key marking a Consul service as Flotilla's (value: the cluster name).
inline constexpr const char* kConsulOwnerMeta = "flotilla-cluster";

/// The body of PUT /v1/agent/service/register for an entry: an HTTP check on its health path
/// (every `interval_s`), and Consul's own reaping of an entry left critical for a minute.
[[nodiscard]] json consul_service_definition(const Registration& r, const std::string& cluster, int interval_s = 5);

/// True when a service from GET /v1/agent/services already matches `def`.
[[nodiscard]] bool consul_service_matches(const json& have, const json& def);

/// Makes the Flotilla services of cluster `cluster` on each Consul agent equal to `desired`:
/// each entry is registered on the agent of its node (`agents`: node -> HTTP URL; entries on a
/// node without an agent go to `fallback_agent`), and services marked with this cluster that
/// are not desired are deregistered from every agent. Agents are the source of truth in Consul
/// (the catalog is rebuilt from them), so nothing is written to the catalog directly.
SyncReport sync_consul(const std::map<std::string, std::string>& agents, const std::string& fallback_agent,
                              const std::string& cluster, const std::vector<Registration>& desired,
                              support::HttpTimeouts timeouts = {});

}  // namespace flotilla::discovery
