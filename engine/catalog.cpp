#include "catalog.hpp"

#include "util.hpp"

#include "flotilla/support/etcd_client.hpp"

#include <stdexcept>

namespace flotilla {
namespace {

Result<std::vector<json>> query_etcd(const json& query, const std::string& name, std::chrono::milliseconds timeout) {
  const std::string key = substitute(query.value("key", ""), {{"name", name}});
  std::vector<std::string> endpoints;  // URLs, or comma-separated lists of them
  if (auto e = query.find("endpoints"); e != query.end()) {
    if (e->is_string()) endpoints.push_back(e->get<std::string>());
    else if (e->is_array())
      for (const auto& x : *e) endpoints.push_back(x.get<std::string>());
  }
  try {
    const support::EtcdClient etcd(endpoints, {timeout, timeout});
    std::vector<json> out;
    for (const auto& kv : etcd.range_prefix(key)) {
      json entry = json::parse(kv.value, nullptr, false);
      if (entry.is_object() && entry.contains("address")) out.push_back(std::move(entry));
    }
    return out;
  } catch (const std::invalid_argument&) {
    return fail("the etcd catalog did not answer: no etcd endpoint in the catalog query");
  } catch (const support::HttpError& e) {
    return fail(std::string("the etcd catalog did not answer: ") + e.what());
  }
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

}  // namespace flotilla
