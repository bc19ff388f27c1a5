#include "addon_registrator/catalog.hpp"

#include <algorithm>
#include <set>
#include <tuple>

namespace flotilla::discovery {

namespace {

/// The name of the node with `address` in the request, or "".
std::string node_by_address(const json& request, const std::string& address) {
  if (request.contains("nodes")) {
    for (const auto& n : request["nodes"]) {
      if (n.value("address", "") == address) return n.value("name", "");
    }
  }
  return {};
}

}  // namespace

json Registration::to_json() const {
  return json{{"name", name},       {"id", id},     {"service", service}, {"node", node}, {"address", address},
              {"port", port},       {"tags", tags}, {"health", health},   {"source", source}};
}

Registration Registration::from_json(const json& j) {
  Registration r;
  r.name = j.value("name", "");
  r.id = j.value("id", "");
  r.service = j.value("service", "");
  r.node = j.value("node", "");
  r.address = j.value("address", "");
  r.port = j.value("port", 0);
  if (j.contains("tags") && j["tags"].is_array()) r.tags = j["tags"].get<std::vector<std::string>>();
  r.health = j.value("health", "");
  r.source = j.value("source", "");
  return r;
}

bool is_dns_label(const std::string& s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool is_dns_domain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    if (!is_dns_label(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start))) return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

std::string dns_name(std::string name) {
  std::replace_if(name.begin(), name.end(), [](char c) { return c == '/' || c == '_'; }, '-');
  return name;
}

void check_dns_label(const std::string& label, const std::string& what) {
  if (!is_dns_label(label)) {
    throw InvalidName(what + ": \"" + label +
                      "\" is not a valid DNS label (1-63 lower-case letters, digits or '-', not starting or ending "
                      "with '-'); rename it so it can be resolved as <name>.service.<domain>");
  }
}

std::string key_safe_id(const std::string& id) {
  std::string out;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    out += ok ? c : '-';
  }
  return out;
}


std::vector<Registration> desired_registrations(const json& request, const std::string& fallback_node) {
  std::vector<Registration> out;
  static const std::set<std::string> kGone = {"stopped", "exited", "missing", "failed", "removed"};
  if (request.contains("services")) {
    for (const auto& svc : request["services"]) {
      const std::string service = svc.value("name", "");
      const std::string name = svc.contains("dns") && svc["dns"].is_string() ? svc["dns"].get<std::string>() : dns_name(service);
      check_dns_label(name, "service \"" + service + "\"");
      if (!svc.contains("instances")) continue;
      for (const auto& inst : svc["instances"]) {
        if (kGone.count(inst.value("state", "running"))) continue;
        Registration r;
        r.name = name;
        r.service = service;
        r.id = key_safe_id(inst.contains("id") ? inst["id"].get<std::string>()
                                               : service + "-" + std::to_string(inst.value("instance", 0)));
        r.node = inst.value("node", "");
        r.address = inst.value("address", "");
        r.port = inst.value("port", svc.value("port", 0));
        r.health = svc.value("health", "");
        r.tags = {"flotilla"};
        if (svc.contains("tags") && svc["tags"].is_array()) {
          for (const auto& t : svc["tags"]) r.tags.push_back(t.get<std::string>());
        }
        r.source = "service";
        out.push_back(std::move(r));
      }
    }
  }
  if (request.contains("addons") && request["addons"].is_object()) {
    for (const auto& [addon, view] : request["addons"].items()) {
      if (!view.contains("outputs") || !view["outputs"].contains("registrations")) continue;
      for (const auto& reg : view["outputs"]["registrations"]) {
        Registration r;
        r.name = reg.value("name", "");
        check_dns_label(r.name, "registration \"" + r.name + "\" of addon \"" + addon + "\"");
        r.service = r.name;
        r.address = reg.value("address", "");
        r.port = reg.value("port", 0);
        r.health = reg.value("health", "");
        r.node = reg.value("node", "");
        if (r.node.empty()) r.node = node_by_address(request, r.address);
        if (r.node.empty()) r.node = fallback_node;
        r.id = key_safe_id(reg.contains("id") ? reg["id"].get<std::string>() : r.name + "-" + r.node);
        r.tags = {"flotilla", "addon=" + addon};
        if (reg.contains("tags") && reg["tags"].is_array()) {
          for (const auto& t : reg["tags"]) r.tags.push_back(t.get<std::string>());
        }
        r.source = "addon:" + addon;
        out.push_back(std::move(r));
      }
    }
  }
  std::map<std::string, std::string> seen;
  for (const auto& r : out) {
    const auto [it, fresh] = seen.emplace(r.id, r.service);
    if (!fresh) {
      throw InvalidName("two catalog entries have the ID \"" + r.id + "\" (from \"" + it->second + "\" and \"" + r.service +
                        "\"); give one of them another name");
    }
  }
  std::sort(out.begin(), out.end(), [](const Registration& a, const Registration& b) {
    return std::tie(a.name, a.id) < std::tie(b.name, b.id);
  });
  return out;
}

std::string services_prefix(std::string root, const std::string& cluster) {
  while (!root.empty() && root.back() == '/') root.pop_back();
  return root + "/" + cluster + "/services/";
}

std::string entry_key(const std::string& prefix, const Registration& r) {
  return prefix + r.name + "/" + r.id;
}

SyncReport sync_etcd(const support::EtcdClient& etcd, const std::string& prefix, const std::vector<Registration>& desired,
                            const std::function<std::int64_t(const std::string& node)>& lease_of) {
  SyncReport report;
  std::map<std::string, support::KeyValue> actual;
  for (auto& kv : etcd.range_prefix(prefix)) actual.emplace(kv.key, std::move(kv));
  std::set<std::string> wanted;
  for (const auto& r : desired) {
    const std::string key = entry_key(prefix, r);
    wanted.insert(key);
    const std::string value = r.to_json().dump();
    const std::int64_t lease = lease_of ? lease_of(r.node) : 0;
    const auto it = actual.find(key);
    if (it != actual.end() && it->second.value == value && it->second.lease == lease) {
      ++report.unchanged;
      continue;
    }
    etcd.put(key, value, lease);
    ++(it == actual.end() ? report.added : report.updated);
  }
  for (const auto& [key, kv] : actual) {
    if (wanted.count(key)) continue;
    etcd.erase(key);
    ++report.removed;
    report.removed_ids.push_back(key.substr(prefix.size()));
  }
  return report;
}

std::vector<Registration> read_etcd_catalog(const support::EtcdClient& etcd, const std::string& prefix) {
  std::vector<Registration> out;
  for (const auto& kv : etcd.range_prefix(prefix)) {
    const json j = json::parse(kv.value, nullptr, false);
    if (j.is_object()) out.push_back(Registration::from_json(j));
  }
  return out;
}

json consul_service_definition(const Registration& r, const std::string& cluster, int interval_s) {
  json def = {{"ID", r.id},
              {"Name", r.name},
              {"Tags", r.tags},
              {"Address", r.address},
              {"Port", r.port},
              {"Meta", {{kConsulOwnerMeta, cluster}, {"flotilla-service", r.service}, {"flotilla-node", r.node}}}};
  if (!r.health.empty() && r.port > 0) {
    def["Check"] = {{"Name", r.name + " health"},
                    {"HTTP", "http://" + r.address + ":" + std::to_string(r.port) + r.health},
                    {"Interval", std::to_string(interval_s) + "s"},
                    {"Timeout", "2s"},
                    {"DeregisterCriticalServiceAfter", "1m"}};
  }
  return def;
}

bool consul_service_matches(const json& have, const json& def) {
  auto tags = [](const json& j) {
    std::vector<std::string> t = j.contains("Tags") && j["Tags"].is_array() ? j["Tags"].get<std::vector<std::string>>() : std::vector<std::string>{};
    std::sort(t.begin(), t.end());
    return t;
  };
  const json meta = have.value("Meta", json::object());
  for (const auto& [k, v] : def["Meta"].items()) {
    if (!meta.contains(k) || meta[k] != v) return false;
  }
  return have.value("Service", "") == def["Name"] && have.value("Address", "") == def["Address"] &&
         have.value("Port", 0) == def["Port"] && tags(have) == tags(def);
}

SyncReport sync_consul(const std::map<std::string, std::string>& agents, const std::string& fallback_agent,
                              const std::string& cluster, const std::vector<Registration>& desired,
                              support::HttpTimeouts timeouts) {
  SyncReport report;
  std::map<std::string, std::vector<const Registration*>> by_agent;
  for (const auto& r : desired) {
    const auto it = agents.find(r.node);
    const std::string url = it != agents.end() ? it->second : fallback_agent;
    if (url.empty()) {
      throw support::Refused("no Consul agent runs on node \"" + r.node + "\" for \"" + r.id +
                    "\"; place the consul addon on every node (placement roles = [] or mode = \"all\")");
    }
    by_agent[url].push_back(&r);
  }
  std::set<std::string> all_agents;
  for (const auto& [node, url] : agents) all_agents.insert(url);
  if (!fallback_agent.empty()) all_agents.insert(fallback_agent);
  for (const auto& url : all_agents) {
    support::ConsulClient agent(url, timeouts);
    const json have = agent.agent_services();
    std::set<std::string> wanted;
    for (const Registration* r : by_agent[url]) {
      wanted.insert(r->id);
      const json def = consul_service_definition(*r, cluster);
      if (have.contains(r->id) && consul_service_matches(have[r->id], def)) {
        ++report.unchanged;
        continue;
      }
      agent.register_service(def);
      ++(have.contains(r->id) ? report.updated : report.added);
    }
    for (const auto& [id, svc] : have.items()) {
      const json meta = svc.value("Meta", json::object());
      if (!meta.is_object() || meta.value(kConsulOwnerMeta, "") != cluster || wanted.count(id)) continue;
      agent.deregister_service(id);
      ++report.removed;
      report.removed_ids.push_back(id);
    }
  }
  return report;
}

}  // namespace flotilla::discovery
