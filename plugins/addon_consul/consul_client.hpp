// A client for Consul's HTTP API: the agent service endpoints (register, deregister, list),
// catalog and health queries with blocking (index + wait), and the KV store. Written against
// the documented API (/v1/agent/service/*, /v1/catalog/service/:name, /v1/health/service/:name,
// /v1/kv/:key, /v1/status/leader).
#pragma once

#include "../addon_registrator/http_client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace flotilla::discovery {

using json = nlohmann::json;

/// Blocking-query parameters: wait until the resource's index passes `index`, at most `wait`.
/// index 0 means "answer at once".
struct BlockingQuery {
  std::uint64_t index = 0;
  std::chrono::seconds wait{0};
};

/// The answer of a blocking endpoint: the body and the X-Consul-Index that came with it.
struct QueryResult {
  std::uint64_t index = 0;
  json body;
};

/// The index to send with the next blocking query after one returned `got`, following
/// Consul's rules: start over (0) when the index went backwards, and never block on 0.
[[nodiscard]] inline std::uint64_t next_blocking_index(std::uint64_t previous, std::uint64_t got) {
  if (got < previous) return 0;
  return got;
}

/// Talks to one Consul agent over HTTP. Thread-compatible.
class ConsulClient {
 public:
  /// `base_url` such as "http://127.77.0.2:8500"; `token` is sent as X-Consul-Token when set.
  explicit ConsulClient(std::string base_url, HttpTimeouts timeouts = {}) : base_(std::move(base_url)), timeouts_(timeouts) {
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
  }

  [[nodiscard]] const std::string& base_url() const { return base_; }

  /// The leader's "ip:port", or "" while the cluster has none.
  [[nodiscard]] std::string leader() const {
    const auto r = send("GET", "/v1/status/leader");
    const json doc = parse(r, "/v1/status/leader");
    return doc.is_string() ? doc.get<std::string>() : std::string();
  }

  /// Registers (or replaces) a service on this agent. `definition` is the documented body:
  /// {Name, ID, Tags, Address, Port, Meta, Check: {HTTP, Interval, Timeout, DeregisterCriticalServiceAfter}}.
  void register_service(const json& definition) const {
    (void)send("PUT", "/v1/agent/service/register?replace-existing-checks=true", definition.dump());
  }

  /// Deregisters a service (and its checks) from this agent. An unknown ID is not an error.
  void deregister_service(const std::string& id) const {
    const std::string path = "/v1/agent/service/deregister/" + url_encode(id);
    const auto r = raw("PUT", path, {}, "application/json", timeouts_);
    if (r.status == 404) return;  // already gone: what we wanted
    check(r, "PUT", path);
  }

  /// The services registered on this agent: {ID: {ID, Service, Tags, Meta, Port, Address, ...}}.
  [[nodiscard]] json agent_services() const { return parse(send("GET", "/v1/agent/services"), "/v1/agent/services"); }

  /// Every instance of service `name` in the catalog (no health filter).
  [[nodiscard]] QueryResult catalog_service(const std::string& name, BlockingQuery q = {}) const {
    return query("/v1/catalog/service/" + url_encode(name), q, {});
  }

  /// Instances of `name` with their node and checks; with `passing_only`, only those whose
  /// checks all pass (what DNS answers with).
  [[nodiscard]] QueryResult health_service(const std::string& name, bool passing_only, BlockingQuery q = {}) const {
    return query("/v1/health/service/" + url_encode(name), q, passing_only ? "passing=true" : "");
  }

  /// Writes a KV pair; returns false when Consul did not apply it (e.g. a failed check-and-set).
  bool kv_put(const std::string& key, const std::string& value, std::optional<std::uint64_t> cas = std::nullopt) const {
    std::string path = "/v1/kv/" + key_path(key);
    if (cas) path += "?cas=" + std::to_string(*cas);
    const auto r = send("PUT", path, value, "application/octet-stream");
    return trim(r.body) == "true";
  }

  /// A KV value, or nullopt when the key does not exist.
  [[nodiscard]] std::optional<std::string> kv_get(const std::string& key) const {
    const auto q = kv_get_blocking(key, {});
    if (!q.body.is_array() || q.body.empty()) return std::nullopt;
    const json& entry = q.body.front();
    if (!entry.contains("Value") || entry["Value"].is_null()) return std::string();
    return base64_decode(entry["Value"].get<std::string>());
  }

  /// A KV entry list as Consul returns it ([] when missing), with its index, for blocking reads.
  [[nodiscard]] QueryResult kv_get_blocking(const std::string& key, BlockingQuery q) const {
    const std::string path = "/v1/kv/" + key_path(key);
    const auto r = raw("GET", path + blocking_suffix(q, {}), {}, "application/json", timeouts_for(q));
    QueryResult out;
    out.index = header_index(r);
    if (r.status == 404) {
      out.body = json::array();
      return out;
    }
    check(r, "GET", path);
    out.body = parse(r, path);
    return out;
  }

  /// Deletes a key (or, with `recurse`, every key under it).
  bool kv_delete(const std::string& key, bool recurse = false) const {
    const auto r = send("DELETE", "/v1/kv/" + key_path(key) + (recurse ? "?recurse=true" : ""));
    return trim(r.body) == "true";
  }

 private:
  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
  }

  // KV keys keep their slashes: each segment is encoded on its own.
  static std::string key_path(const std::string& key) {
    std::string out, seg;
    for (char c : key) {
      if (c == '/') {
        out += url_encode(seg) + "/";
        seg.clear();
      } else {
        seg += c;
      }
    }
    return out + url_encode(seg);
  }

  static std::string blocking_suffix(BlockingQuery q, const std::string& extra) {
    std::string query = extra;
    if (q.index > 0) {
      query += std::string(query.empty() ? "" : "&") + "index=" + std::to_string(q.index);
      if (q.wait.count() > 0) query += "&wait=" + std::to_string(q.wait.count()) + "s";
    }
    return query.empty() ? std::string() : "?" + query;
  }

  // A blocking query may legitimately take `wait` plus Consul's jitter (wait/16).
  HttpTimeouts timeouts_for(BlockingQuery q) const {
    HttpTimeouts t = timeouts_;
    if (q.index > 0) t.total += std::chrono::duration_cast<std::chrono::milliseconds>(q.wait + q.wait / 16 + std::chrono::seconds(1));
    return t;
  }

  static std::uint64_t header_index(const HttpResponse& r) {
    const auto it = r.headers.find("x-consul-index");
    if (it == r.headers.end()) return 0;
    try {
      return std::stoull(it->second);
    } catch (const std::exception&) {
      return 0;
    }
  }

  QueryResult query(const std::string& path, BlockingQuery q, const std::string& extra) const {
    const auto r = raw("GET", path + blocking_suffix(q, extra), {}, "application/json", timeouts_for(q));
    check(r, "GET", path);
    QueryResult out;
    out.index = header_index(r);
    out.body = parse(r, path);
    return out;
  }

  HttpResponse raw(const std::string& method, const std::string& path, const std::string& body, const std::string& type,
                   HttpTimeouts timeouts) const {
    try {
      return http_request(method, base_ + path, body, type, timeouts);
    } catch (const Unreachable& e) {
      throw Unreachable(std::string("Consul agent at ") + base_ + " is unreachable (" + e.what() +
                        "); check that the consul addon runs on that node (flotilla status)");
    }
  }

  HttpResponse send(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& type = "application/json") const {
    HttpResponse r = raw(method, path, body, type, timeouts_);
    check(r, method, path);
    return r;
  }

  void check(const HttpResponse& r, const std::string& method, const std::string& path) const {
    if (r.status >= 200 && r.status < 300) return;
    // Consul's errors are plain text ("Invalid check: ...", "Permission denied").
    throw Refused("Consul agent at " + base_ + " refused " + method + " " + path + " (HTTP " + std::to_string(r.status) +
                  "): " + trim(r.body.substr(0, 300)));
  }

  json parse(const HttpResponse& r, const std::string& path) const {
    json doc = json::parse(r.body, nullptr, false);
    if (doc.is_discarded()) {
      throw Refused("Consul agent at " + base_ + " answered " + path + " with something that is not JSON: " + r.body.substr(0, 200));
    }
    return doc;
  }

  std::string base_;
  HttpTimeouts timeouts_;
};

}  // namespace flotilla::discovery
