#include "catalog.hpp"

#include "util.hpp"

#include <cstring>
#include <sstream>

namespace flotilla {
namespace {

constexpr const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::vector<std::string> split(const std::string& list, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string part;
  while (std::getline(ss, part, sep))
    if (!part.empty()) out.push_back(part);
  return out;
}

// The end of etcd's key range for every key starting with `prefix`.
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = prefix.back();
    if (static_cast<unsigned char>(c) < 0xff) {
      ++c;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

Result<std::vector<json>> query_etcd(const json& query, const std::string& name, std::chrono::milliseconds timeout) {
  const std::string key = substitute(query.value("key", ""), {{"name", name}});
  std::vector<std::string> endpoints;
  if (auto e = query.find("endpoints"); e != query.end()) {
    if (e->is_string()) endpoints = split(e->get<std::string>(), ',');
    else if (e->is_array())
      for (const auto& x : *e) endpoints.push_back(x.get<std::string>());
  }
  const std::string body = json{{"key", base64_encode(key)}, {"range_end", base64_encode(prefix_end(key))}}.dump();
  std::string last_error = "no etcd endpoint in the catalog query";
  for (const auto& ep : endpoints) {
    std::string reply;
    const int code = http_post(ep + "/v3/kv/range", body, timeout, &reply);
    if (code != 200) {
      last_error = ep + " answered " + (code == 0 ? std::string("nothing") : "HTTP " + std::to_string(code));
      continue;
    }
    const json doc = json::parse(reply, nullptr, false);
    std::vector<json> out;
    for (const auto& kv : doc.value("kvs", json::array())) {
      json entry = json::parse(base64_decode(kv.value("value", "")), nullptr, false);
      if (entry.is_object() && entry.contains("address")) out.push_back(std::move(entry));
    }
    return out;
  }
  return fail("the etcd catalog did not answer: " + last_error);
}

Result<std::vector<json>> query_consul(const json& query, const std::string& name, std::chrono::milliseconds timeout) {
  const std::string url = substitute(query.value("url", ""), {{"name", name}});
  std::string reply;
  const int code = http_get(url, timeout, &reply);
  if (code != 200) return fail("the Consul catalog at " + url + " answered " + (code == 0 ? std::string("nothing") : "HTTP " + std::to_string(code)));
  std::vector<json> out;
  for (const auto& e : json::parse(reply, nullptr, false)) {
    if (!e.is_object()) continue;
    const json svc = e.value("Service", json::object());
    std::string address = svc.value("Address", "");
    if (address.empty()) address = e.value("Node", json::object()).value("Address", "");
    out.push_back({{"address", address}, {"port", svc.value("Port", 0)}, {"id", svc.value("ID", "")}});
  }
  return out;
}

}  // namespace

Result<std::vector<json>> query_catalog(const json& query, const std::string& name, std::chrono::milliseconds timeout) {
  const std::string type = query.value("type", "");
  if (type == "etcd") return query_etcd(query, name, timeout);
  if (type == "consul") return query_consul(query, name, timeout);
  return fail("unknown catalog type \"" + type + "\"");
}

std::string base64_encode(const std::string& data) {
  std::string out;
  unsigned int val = 0;
  int bits = -6;
  for (unsigned char c : data) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(kAlphabet[(val >> bits) & 0x3f]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(kAlphabet[((val << 8) >> (bits + 8)) & 0x3f]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

std::string base64_decode(const std::string& text) {
  std::string out;
  unsigned int val = 0;
  int bits = -8;
  for (unsigned char c : text) {
    const char* p = std::strchr(kAlphabet, c);
    if (c == '\0' || p == nullptr) continue;
    val = (val << 6) + static_cast<unsigned int>(p - kAlphabet);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

}  // namespace flotilla
