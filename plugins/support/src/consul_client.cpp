#include "flotilla/support/consul_client.hpp"

#include "flotilla/support/encoding.hpp"

namespace flotilla::support {
using json = nlohmann::json;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// KV keys keep their slashes: each segment is encoded on its own.
std::string key_path(const std::string& key) {
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

std::string blocking_suffix(BlockingQuery q, const std::string& extra) {
  std::string query = extra;
  if (q.index > 0) {
    query += std::string(query.empty() ? "" : "&") + "index=" + std::to_string(q.index);
    if (q.wait.count() > 0) query += "&wait=" + std::to_string(q.wait.count()) + "s";
  }
  return query.empty() ? std::string() : "?" + query;
}

std::uint64_t header_index(const HttpResponse& r) {
  const auto it = r.headers.find("x-consul-index");
  if (it == r.headers.end()) return 0;
  try {
    return std::stoull(it->second);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

std::uint64_t next_blocking_index(std::uint64_t previous, std::uint64_t got) {
  if (got < previous) return 0;
  return got;
}

ConsulClient::ConsulClient(std::string base_url, HttpTimeouts timeouts)
    : base_(std::move(base_url)), timeouts_(timeouts), http_(HttpClientOptions{.timeouts = timeouts}) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

std::string ConsulClient::leader() const {
  const auto r = send("GET", "/v1/status/leader");
  const json doc = parse(r, "/v1/status/leader");
  return doc.is_string() ? doc.get<std::string>() : std::string();
}

void ConsulClient::register_service(const json& definition) const {
  (void)send("PUT", "/v1/agent/service/register?replace-existing-checks=true", definition.dump());
}

void ConsulClient::deregister_service(const std::string& id) const {
  const std::string path = "/v1/agent/service/deregister/" + url_encode(id);
  const auto r = raw("PUT", path, {}, "application/json", timeouts_);
  if (r.status == 404) return;  // already gone: what we wanted
  check(r, "PUT", path);
}

json ConsulClient::agent_services() const { return parse(send("GET", "/v1/agent/services"), "/v1/agent/services"); }

QueryResult ConsulClient::catalog_service(const std::string& name, BlockingQuery q) const {
  return query("/v1/catalog/service/" + url_encode(name), q, {});
}

QueryResult ConsulClient::health_service(const std::string& name, bool passing_only, BlockingQuery q) const {
  return query("/v1/health/service/" + url_encode(name), q, passing_only ? "passing=true" : "");
}

bool ConsulClient::kv_put(const std::string& key, const std::string& value, std::optional<std::uint64_t> cas) const {
  std::string path = "/v1/kv/" + key_path(key);
  if (cas) path += "?cas=" + std::to_string(*cas);
  const auto r = send("PUT", path, value, "application/octet-stream");
  return trim(r.body) == "true";
}

std::optional<std::string> ConsulClient::kv_get(const std::string& key) const {
  const auto q = kv_get_blocking(key, {});
  if (!q.body.is_array() || q.body.empty()) return std::nullopt;
  const json& entry = q.body.front();
  if (!entry.contains("Value") || entry["Value"].is_null()) return std::string();
  auto value = base64_decode(entry["Value"].get<std::string>());
  if (!value) throw Refused("invalid base64 text in a registry answer", base_ + "/v1/kv/" + key_path(key));
  return value;
}

QueryResult ConsulClient::kv_get_blocking(const std::string& key, BlockingQuery q) const {
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

bool ConsulClient::kv_delete(const std::string& key, bool recurse) const {
  const auto r = send("DELETE", "/v1/kv/" + key_path(key) + (recurse ? "?recurse=true" : ""));
  return trim(r.body) == "true";
}

// A blocking query may legitimately take `wait` plus Consul's jitter (wait/16).
HttpTimeouts ConsulClient::timeouts_for(BlockingQuery q) const {
  HttpTimeouts t = timeouts_;
  if (q.index > 0) t.total += std::chrono::duration_cast<std::chrono::milliseconds>(q.wait + q.wait / 16 + std::chrono::seconds(1));
  return t;
}

QueryResult ConsulClient::query(const std::string& path, BlockingQuery q, const std::string& extra) const {
  const auto r = raw("GET", path + blocking_suffix(q, extra), {}, "application/json", timeouts_for(q));
  check(r, "GET", path);
  QueryResult out;
  out.index = header_index(r);
  out.body = parse(r, path);
  return out;
}

HttpResponse ConsulClient::raw(const std::string& method, const std::string& path, const std::string& body, const std::string& type,
                               HttpTimeouts timeouts) const {
  try {
    return http_.send({.method = method, .url = base_ + path, .body = body, .content_type = type, .timeouts = timeouts});
  } catch (const Unreachable& e) {
    throw Unreachable(std::string("Consul agent at ") + base_ + " is unreachable (" + e.what() +
                          "); check that the consul addon runs on that node (flotilla status)",
                      e.url(), e.cause());
  }
}

HttpResponse ConsulClient::send(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& type) const {
  HttpResponse r = raw(method, path, body, type, timeouts_);
  check(r, method, path);
  return r;
}

void ConsulClient::check(const HttpResponse& r, const std::string& method, const std::string& path) const {
  if (r.status >= 200 && r.status < 300) return;
  // Consul's errors are plain text ("Invalid check: ...", "Permission denied").
  throw Refused("Consul agent at " + base_ + " refused " + method + " " + path + " (HTTP " + std::to_string(r.status) +
                    "): " + trim(r.body.substr(0, 300)),
                base_ + path, r.status, r.body);
}

json ConsulClient::parse(const HttpResponse& r, const std::string& path) const {
  json doc = json::parse(r.body, nullptr, false);
  if (doc.is_discarded()) {
    throw Refused("Consul agent at " + base_ + " answered " + path + " with something that is not JSON: " + r.body.substr(0, 200),
                  base_ + path, r.status, r.body);
  }
  return doc;
}

}  // namespace flotilla::support
