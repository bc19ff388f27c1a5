// A client for etcd 3.4's v3 JSON gateway (POST /v3/kv/*, /v3/lease/*): the registry
// operations the addons and the catalog need, without gRPC. Keys and values travel
// base64-encoded and 64-bit integers as JSON strings; this class hides both.
#pragma once

#include "flotilla/support/http.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace flotilla::support {

/// One key as etcd returns it.
struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t lease = 0;
  std::int64_t mod_revision = 0;
};

/// A 64-bit integer that the gateway sends as a string (or, rarely, a number); 0 when absent.
/// Throws Refused when it is a string that is not a number.
[[nodiscard]] std::int64_t json_int64(const nlohmann::json& doc, const char* key);

/// The end of the key range holding every key that starts with `prefix` (prefix + 1 in its last byte).
[[nodiscard]] std::string prefix_range_end(std::string prefix);

/// A lease ID as etcdctl prints and accepts it (lower-case hex).
[[nodiscard]] std::string lease_hex(std::int64_t id);

/// Talks to an etcd cluster through any of its client URLs. Thread-compatible: one client per thread.
class EtcdClient {
 public:
  /// `endpoints`: client URLs such as "http://127.77.0.1:2379"; a comma-separated list is split.
  /// Throws std::invalid_argument when none is given.
  explicit EtcdClient(const std::vector<std::string>& endpoints, HttpTimeouts timeouts = {});
  explicit EtcdClient(const std::string& endpoints, HttpTimeouts timeouts = {});

  [[nodiscard]] const std::vector<std::string>& endpoints() const { return endpoints_; }
  /// The endpoints joined by commas, as etcdctl's --endpoints takes them.
  [[nodiscard]] std::string endpoint_list() const;

  /// True when some member answers /health with {"health":"true"}.
  [[nodiscard]] bool healthy() const;

  /// Writes `key` = `value`, attached to `lease` when non-zero. Throws Refused if etcd refuses.
  void put(const std::string& key, const std::string& value, std::int64_t lease = 0) const;

  /// The key, if it exists.
  [[nodiscard]] std::optional<KeyValue> get(const std::string& key) const;

  /// Every key starting with `prefix`, in key order.
  [[nodiscard]] std::vector<KeyValue> range_prefix(const std::string& prefix) const;

  /// Deletes one key; returns how many keys went (0 or 1).
  std::int64_t erase(const std::string& key) const;

  /// Deletes every key starting with `prefix`; returns how many went.
  std::int64_t erase_prefix(const std::string& prefix) const;

  /// Grants a lease of `ttl_s` seconds; returns its ID. etcd raises TTLs below its minimum (2 s by default).
  [[nodiscard]] std::int64_t lease_grant(std::int64_t ttl_s) const;

  /// Revokes a lease and so deletes its keys. A lease that is already gone is not an error.
  void lease_revoke(std::int64_t id) const;

  /// Seconds left on a lease, or -1 when it has expired or never existed.
  [[nodiscard]] std::int64_t lease_ttl(std::int64_t id) const;

  /// The IDs of every lease etcd holds, in one request. A lease leaves the list when it is
  /// revoked, or within the lessor's next sweep (half a second) after it expired; lease_ttl
  /// tells one lease exactly.
  [[nodiscard]] std::set<std::int64_t> lease_ids() const;

  /// Renews a lease once; returns its new TTL, or 0 when it is gone. (Long-running renewals
  /// are the keepalive workload's job; this is for tests and one-off refreshes.)
  std::int64_t lease_keepalive_once(std::int64_t id) const;

  /// How long call() keeps trying while members answer 503 (no leader yet, or consensus timed
  /// out): about two elections at etcd's default 1 s election timeout.
  static constexpr std::chrono::milliseconds kUnavailableGrace{3000};

  /// POSTs `body` to `path` on the first endpoint that answers; throws Unreachable when none
  /// does and Refused when etcd answers with an error. A 503 is tried on the other endpoints
  /// and again for up to kUnavailableGrace before it is thrown.
  [[nodiscard]] nlohmann::json call(const std::string& path, const nlohmann::json& body) const;

 private:
  void add_endpoints(const std::string& list);
  [[nodiscard]] static std::vector<KeyValue> parse_kvs(const nlohmann::json& doc);

  std::vector<std::string> endpoints_;
  HttpTimeouts timeouts_;
  mutable HttpClient http_;
  mutable size_t preferred_ = 0;
};

}  // namespace flotilla::support
