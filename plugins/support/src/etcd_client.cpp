#include "flotilla/support/etcd_client.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/wait.hpp"

#include <sstream>

namespace flotilla::support {
using json = nlohmann::json;

namespace {
std::string decode(const std::string& text) {
  auto plain = base64_decode(text);
  if (!plain) throw Refused("invalid base64 text in a registry answer");
  return std::move(*plain);
}
}  // namespace

std::int64_t json_int64(const json& doc, const char* key) {
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

std::string prefix_range_end(std::string prefix) {
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

std::string lease_hex(std::int64_t id) {
  std::ostringstream out;
  out << std::hex << static_cast<std::uint64_t>(id);
  return out.str();
}

EtcdClient::EtcdClient(const std::vector<std::string>& endpoints, HttpTimeouts timeouts)
    : timeouts_(timeouts), http_(HttpClientOptions{.timeouts = timeouts}) {
  for (const auto& e : endpoints) add_endpoints(e);
  if (endpoints_.empty()) throw std::invalid_argument("etcd client: no endpoints given");
}

EtcdClient::EtcdClient(const std::string& endpoints, HttpTimeouts timeouts)
    : timeouts_(timeouts), http_(HttpClientOptions{.timeouts = timeouts}) {
  add_endpoints(endpoints);
  if (endpoints_.empty()) throw std::invalid_argument("etcd client: no endpoints given");
}

std::string EtcdClient::endpoint_list() const {
  std::string out;
  for (const auto& e : endpoints_) out += (out.empty() ? "" : ",") + e;
  return out;
}

bool EtcdClient::healthy() const {
  for (const auto& e : endpoints_) {
    try {
      const auto r = http_.send({.method = "GET", .url = e + "/health"});
      const json doc = json::parse(r.body, nullptr, false);
      if (r.status == 200 && doc.is_object() && doc.value("health", "") == "true") return true;
    } catch (const Unreachable&) {
    }
  }
  return false;
}

void EtcdClient::put(const std::string& key, const std::string& value, std::int64_t lease) const {
  json body = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  (void)call("/v3/kv/put", body);
}

std::optional<KeyValue> EtcdClient::get(const std::string& key) const {
  const json doc = call("/v3/kv/range", {{"key", base64_encode(key)}});
  auto kvs = parse_kvs(doc);
  if (kvs.empty()) return std::nullopt;
  return kvs.front();
}

std::vector<KeyValue> EtcdClient::range_prefix(const std::string& prefix) const {
  const json doc = call("/v3/kv/range", {{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_range_end(prefix))}});
  return parse_kvs(doc);
}

std::int64_t EtcdClient::erase(const std::string& key) const {
  return json_int64(call("/v3/kv/deleterange", {{"key", base64_encode(key)}}), "deleted");
}

std::int64_t EtcdClient::erase_prefix(const std::string& prefix) const {
  return json_int64(call("/v3/kv/deleterange", {{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_range_end(prefix))}}),
                    "deleted");
}

std::int64_t EtcdClient::lease_grant(std::int64_t ttl_s) const {
  const json doc = call("/v3/lease/grant", {{"TTL", std::to_string(ttl_s)}});
  if (doc.contains("error") && doc["error"].is_string() && !doc["error"].get<std::string>().empty()) {
    throw Refused("etcd refused a lease of " + std::to_string(ttl_s) + " s: " + doc["error"].get<std::string>());
  }
  const std::int64_t id = json_int64(doc, "ID");
  if (id == 0) throw Refused("etcd granted no lease ID (answer: " + doc.dump() + ")");
  return id;
}

void EtcdClient::lease_revoke(std::int64_t id) const {
  try {
    (void)call("/v3/lease/revoke", {{"ID", std::to_string(id)}});
  } catch (const Refused& e) {
    if (std::string(e.what()).find("lease not found") == std::string::npos) throw;
  }
}

std::int64_t EtcdClient::lease_ttl(std::int64_t id) const {
  return json_int64(call("/v3/lease/timetolive", {{"ID", std::to_string(id)}}), "TTL");
}

std::set<std::int64_t> EtcdClient::lease_ids() const {
  std::set<std::int64_t> ids;
  const json doc = call("/v3/lease/leases", json::object());
  if (const auto leases = doc.find("leases"); leases != doc.end() && leases->is_array())
    for (const auto& lease : *leases)
      if (const std::int64_t id = json_int64(lease, "ID"); id != 0) ids.insert(id);
  return ids;
}

std::int64_t EtcdClient::lease_keepalive_once(std::int64_t id) const {
  const json doc = call("/v3/lease/keepalive", {{"ID", std::to_string(id)}});
  // The gateway wraps streaming answers in {"result": ...}.
  const json& result = doc.contains("result") ? doc["result"] : doc;
  return json_int64(result, "TTL");
}

json EtcdClient::call(const std::string& path, const json& body) const {
  // A member answers 503 while the cluster elects a leader ("no leader", "leader changed") or
  // when consensus on the request timed out. Both pass within an election or two, so such an
  // answer sends the request to the next member and, once every member has been tried, round
  // again with a growing pause until kUnavailableGrace has passed.
  const auto deadline = std::chrono::steady_clock::now() + kUnavailableGrace;
  std::string failures;
  std::optional<Refused> unavailable;
  for (int round = 0;; ++round) {
    for (size_t n = 0; n < endpoints_.size(); ++n) {
      const size_t i = (preferred_ + n) % endpoints_.size();
      const std::string url = endpoints_[i] + path;
      HttpResponse r;
      try {
        r = http_.send({.method = "POST", .url = url, .body = body.dump()});
      } catch (const Unreachable& e) {
        if (round == 0) failures += std::string(failures.empty() ? "" : "; ") + e.what();
        continue;
      }
      const json doc = json::parse(r.body, nullptr, false);
      if (r.status != 200) {
        std::string why = doc.is_object() && doc.contains("message") && doc["message"].is_string()
                              ? doc["message"].get<std::string>()
                              : (doc.is_object() && doc.contains("error") && doc["error"].is_string() ? doc["error"].get<std::string>()
                                                                                                       : r.body.substr(0, 200));
        Refused refused("etcd at " + endpoints_[i] + " refused " + path + " (HTTP " + std::to_string(r.status) + "): " + why, url,
                        r.status, r.body);
        if (r.status != 503) throw refused;
        unavailable = std::move(refused);
        continue;
      }
      preferred_ = i;
      if (doc.is_discarded()) {
        throw Refused("etcd at " + endpoints_[i] + " answered " + path + " with something that is not JSON: " + r.body.substr(0, 200),
                      url, r.status, r.body);
      }
      return doc;
    }
    if (!unavailable || std::chrono::steady_clock::now() >= deadline) break;
    (void)sleep_for(backoff_ceiling(std::chrono::milliseconds(100), std::chrono::milliseconds(800), round));
  }
  if (unavailable) throw *unavailable;
  throw Unreachable("etcd is unreachable at " + endpoint_list() + " (" + failures +
                        "); check that the etcd addon runs (flotilla status) and that its endpoints are right",
                    endpoints_.front() + path);
}

void EtcdClient::add_endpoints(const std::string& list) {
  std::string item;
  std::istringstream in(list);
  while (std::getline(in, item, ',')) {
    while (!item.empty() && (item.back() == '/' || item.back() == ' ')) item.pop_back();
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    if (!item.empty()) endpoints_.push_back(item);
  }
}

std::vector<KeyValue> EtcdClient::parse_kvs(const json& doc) {
  std::vector<KeyValue> out;
  if (!doc.contains("kvs")) return out;
  for (const auto& kv : doc["kvs"]) {
    KeyValue v;
    v.key = decode(kv.value("key", ""));
    v.value = decode(kv.value("value", ""));
    v.lease = json_int64(kv, "lease");
    v.mod_revision = json_int64(kv, "mod_revision");
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace flotilla::support
