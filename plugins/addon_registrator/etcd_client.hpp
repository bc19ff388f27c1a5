// A client for etcd 3.4's v3 JSON gateway (POST /v3/kv/*, /v3/lease/*): the registry
// operations the registrator needs, without gRPC. Keys and values travel base64-encoded and
// 64-bit integers as JSON strings; this class hides both.
#pragma once

#include "http_client.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace flotilla::discovery {

using json = nlohmann::json;

/// One key as etcd returns it.
struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t lease = 0;
  std::int64_t mod_revision = 0;
};

/// Parses a 64-bit integer that the gateway sends as a string (or, rarely, a number).
inline std::int64_t json_int64(const json& doc, const char* key) {
  if (!doc.is_object() || !doc.contains(key)) return 0;
  const json& v = doc.at(key);
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (const std::exception&) {
      throw Refused(std::string("etcd sent a non-numeric \"") + key + "\": " + v.get<std::string>());
    }
  }
  return 0;
}

/// The end of the key range holding every key that starts with `prefix` (prefix + 1 in its last byte).
inline std::string prefix_range_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xFF) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

/// A lease ID as etcdctl prints and accepts it (lower-case hex).
inline std::string lease_hex(std::int64_t id) {
  std::ostringstream out;
  out << std::hex << static_cast<std::uint64_t>(id);
  return out.str();
}

/// Talks to an etcd cluster through any of its client URLs. Thread-compatible: one client per thread.
class EtcdClient {
 public:
  /// `endpoints`: client URLs such as "http://127.77.0.1:2379"; a comma-separated list is split.
  explicit EtcdClient(const std::vector<std::string>& endpoints, HttpTimeouts timeouts = {}) : timeouts_(timeouts) {
    for (const auto& e : endpoints) add_endpoints(e);
    if (endpoints_.empty()) throw std::invalid_argument("etcd client: no endpoints given");
  }
  explicit EtcdClient(const std::string& endpoints, HttpTimeouts timeouts = {}) : timeouts_(timeouts) {
    add_endpoints(endpoints);
    if (endpoints_.empty()) throw std::invalid_argument("etcd client: no endpoints given");
  }

  [[nodiscard]] const std::vector<std::string>& endpoints() const { return endpoints_; }
  /// The endpoints joined by commas, as etcdctl's --endpoints takes them.
  [[nodiscard]] std::string endpoint_list() const {
    std::string out;
    for (const auto& e : endpoints_) out += (out.empty() ? "" : ",") + e;
    return out;
  }

  /// True when some member answers /health with {"health":"true"}.
  [[nodiscard]] bool healthy() const {
    for (const auto& e : endpoints_) {
      try {
        const auto r = http_request("GET", e + "/health", {}, "application/json", timeouts_);
        const json doc = json::parse(r.body, nullptr, false);
        if (r.status == 200 && doc.is_object() && doc.value("health", "") == "true") return true;
      } catch (const Unreachable&) {
      }
    }
    return false;
  }

  /// Writes `key` = `value`, attached to `lease` when non-zero. Throws Refused if etcd refuses.
  void put(const std::string& key, const std::string& value, std::int64_t lease = 0) const {
    json body = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0) body["lease"] = std::to_string(lease);
    (void)call("/v3/kv/put", body);
  }

  /// The key, if it exists.
  [[nodiscard]] std::optional<KeyValue> get(const std::string& key) const {
    const json doc = call("/v3/kv/range", {{"key", base64_encode(key)}});
    auto kvs = parse_kvs(doc);
    if (kvs.empty()) return std::nullopt;
    return kvs.front();
  }

  /// Every key starting with `prefix`, in key order.
  [[nodiscard]] std::vector<KeyValue> range_prefix(const std::string& prefix) const {
    const json doc = call("/v3/kv/range", {{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_range_end(prefix))}});
    return parse_kvs(doc);
  }

  /// Deletes one key; returns how many keys went (0 or 1).
  std::int64_t erase(const std::string& key) const {
    return json_int64(call("/v3/kv/deleterange", {{"key", base64_encode(key)}}), "deleted");
  }

  /// Deletes every key starting with `prefix`; returns how many went.
  std::int64_t erase_prefix(const std::string& prefix) const {
    return json_int64(call("/v3/kv/deleterange",
                           {{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_range_end(prefix))}}),
                      "deleted");
  }

  /// Grants a lease of `ttl_s` seconds; returns its ID. etcd raises TTLs below its minimum (2 s by default).
  [[nodiscard]] std::int64_t lease_grant(std::int64_t ttl_s) const {
    const json doc = call("/v3/lease/grant", {{"TTL", std::to_string(ttl_s)}});
    if (doc.contains("error") && doc["error"].is_string() && !doc["error"].get<std::string>().empty()) {
      throw Refused("etcd refused a lease of " + std::to_string(ttl_s) + " s: " + doc["error"].get<std::string>());
    }
    const std::int64_t id = json_int64(doc, "ID");
    if (id == 0) throw Refused("etcd granted no lease ID (answer: " + doc.dump() + ")");
    return id;
  }

  /// Revokes a lease and so deletes its keys. A lease that is already gone is not an error.
  void lease_revoke(std::int64_t id) const {
    try {
      (void)call("/v3/lease/revoke", {{"ID", std::to_string(id)}});
    } catch (const Refused& e) {
      if (std::string(e.what()).find("lease not found") == std::string::npos) throw;
    }
  }

  /// Seconds left on a lease, or -1 when it has expired or never existed.
  [[nodiscard]] std::int64_t lease_ttl(std::int64_t id) const {
    return json_int64(call("/v3/lease/timetolive", {{"ID", std::to_string(id)}}), "TTL");
  }

  /// Renews a lease once; returns its new TTL, or 0 when it is gone. (Long-running renewals
  /// are the keepalive workload's job; this is for tests and one-off refreshes.)
  std::int64_t lease_keepalive_once(std::int64_t id) const {
    const json doc = call("/v3/lease/keepalive", {{"ID", std::to_string(id)}});
    // The gateway wraps streaming answers in {"result": ...}.
    const json& result = doc.contains("result") ? doc["result"] : doc;
    return json_int64(result, "TTL");
  }

  /// POSTs `body` to `path` on the first endpoint that answers; throws Unreachable when none
  /// does and Refused when etcd answers with an error.
  [[nodiscard]] json call(const std::string& path, const json& body) const {
    std::string failures;
    for (size_t n = 0; n < endpoints_.size(); ++n) {
      const size_t i = (preferred_ + n) % endpoints_.size();
      const std::string url = endpoints_[i] + path;
      HttpResponse r;
      try {
        r = http_request("POST", url, body.dump(), "application/json", timeouts_);
      } catch (const Unreachable& e) {
        failures += std::string(failures.empty() ? "" : "; ") + e.what();
        continue;
      }
      preferred_ = i;
      const json doc = json::parse(r.body, nullptr, false);
      if (r.status != 200) {
        std::string why = doc.is_object() && doc.contains("message") && doc["message"].is_string()
                              ? doc["message"].get<std::string>()
                              : (doc.is_object() && doc.contains("error") && doc["error"].is_string()
                                     ? doc["error"].get<std::string>()
                                     : r.body.substr(0, 200));
        throw Refused("etcd at " + endpoints_[i] + " refused " + path + " (HTTP " + std::to_string(r.status) + "): " + why);
      }
      if (doc.is_discarded()) {
        throw Refused("etcd at " + endpoints_[i] + " answered " + path + " with something that is not JSON: " +
                      r.body.substr(0, 200));
      }
      return doc;
    }
    throw Unreachable("etcd is unreachable at " + endpoint_list() + " (" + failures +
                      "); check that the etcd addon runs (flotilla status) and that its endpoints are right");
  }

 private:
  void add_endpoints(const std::string& list) {
    std::string item;
    std::istringstream in(list);
    while (std::getline(in, item, ',')) {
      while (!item.empty() && (item.back() == '/' || item.back() == ' ')) item.pop_back();
      while (!item.empty() && item.front() == ' ') item.erase(item.begin());
      if (!item.empty()) endpoints_.push_back(item);
    }
  }

  static std::vector<KeyValue> parse_kvs(const json& doc) {
    std::vector<KeyValue> out;
    if (!doc.contains("kvs")) return out;
    for (const auto& kv : doc["kvs"]) {
      KeyValue v;
      v.key = base64_decode(kv.value("key", ""));
      v.value = base64_decode(kv.value("value", ""));
      v.lease = json_int64(kv, "lease");
      v.mod_revision = json_int64(kv, "mod_revision");
      out.push_back(std::move(v));
    }
    return out;
  }

  std::vector<std::string> endpoints_;
  HttpTimeouts timeouts_;
  mutable size_t preferred_ = 0;
};

}  // namespace flotilla::discovery
