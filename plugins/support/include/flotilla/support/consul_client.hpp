// A client for Consul's HTTP API: the agent service endpoints (register, deregister, list),
// catalog and health queries with blocking (index + wait), and the KV store. Written against
// the documented API (/v1/agent/service/*, /v1/catalog/service/:name, /v1/health/service/:name,
// /v1/kv/:key, /v1/status/leader).
#pragma once

#include "flotilla/support/http.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace flotilla::support {

/// Blocking-query parameters: wait until the resource's index passes `index`, at most `wait`.
/// index 0 means "answer at once".
struct BlockingQuery {
  std::uint64_t index = 0;
  std::chrono::seconds wait{0};
};

/// The answer of a blocking endpoint: the body and the X-Consul-Index that came with it.
struct QueryResult {
  std::uint64_t index = 0;
  nlohmann::json body;
};

/// The index to send with the next blocking query after one returned `got`, following
/// Consul's rules: start over (0) when the index went backwards, and never block on 0.
[[nodiscard]] std::uint64_t next_blocking_index(std::uint64_t previous, std::uint64_t got);

/// Talks to one Consul agent over HTTP. Thread-compatible: one client per thread. Every call
/// throws Unreachable when the agent does not answer and Refused when it answers with an error
/// or with something that is not JSON.
class ConsulClient {
 public:
  /// `base_url` such as "http://127.77.0.2:8500".
  explicit ConsulClient(std::string base_url, HttpTimeouts timeouts = {});

  [[nodiscard]] const std::string& base_url() const { return base_; }

  /// The leader's "ip:port", or "" while the cluster has none.
  [[nodiscard]] std::string leader() const;

  /// Registers (or replaces) a service on this agent. `definition` is the documented body:
  /// {Name, ID, Tags, Address, Port, Meta, Check: {HTTP, Interval, Timeout, DeregisterCriticalServiceAfter}}.
  void register_service(const nlohmann::json& definition) const;

  /// Deregisters a service (and its checks) from this agent. An unknown ID is not an error.
  void deregister_service(const std::string& id) const;

  /// The services registered on this agent: {ID: {ID, Service, Tags, Meta, Port, Address, ...}}.
  [[nodiscard]] nlohmann::json agent_services() const;

  /// Every instance of service `name` in the catalog (no health filter).
  [[nodiscard]] QueryResult catalog_service(const std::string& name, BlockingQuery q = {}) const;

  /// Instances of `name` with their node and checks; with `passing_only`, only those whose
  /// checks all pass (what DNS answers with).
  [[nodiscard]] QueryResult health_service(const std::string& name, bool passing_only, BlockingQuery q = {}) const;

  /// Writes a KV pair; returns false when Consul did not apply it (e.g. a failed check-and-set).
  bool kv_put(const std::string& key, const std::string& value, std::optional<std::uint64_t> cas = std::nullopt) const;

  /// A KV value, or nullopt when the key does not exist.
  [[nodiscard]] std::optional<std::string> kv_get(const std::string& key) const;

  /// A KV entry list as Consul returns it ([] when missing), with its index, for blocking reads.
  [[nodiscard]] QueryResult kv_get_blocking(const std::string& key, BlockingQuery q) const;

  /// Deletes a key (or, with `recurse`, every key under it).
  bool kv_delete(const std::string& key, bool recurse = false) const;

 private:
  [[nodiscard]] HttpTimeouts timeouts_for(BlockingQuery q) const;
  [[nodiscard]] QueryResult query(const std::string& path, BlockingQuery q, const std::string& extra) const;
  [[nodiscard]] HttpResponse raw(const std::string& method, const std::string& path, const std::string& body, const std::string& type,
                                 HttpTimeouts timeouts) const;
  HttpResponse send(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& type = "application/json") const;
  void check(const HttpResponse& r, const std::string& method, const std::string& path) const;
  [[nodiscard]] nlohmann::json parse(const HttpResponse& r, const std::string& path) const;

  std::string base_;
  HttpTimeouts timeouts_;
  mutable HttpClient http_;
};

}  // namespace flotilla::support
