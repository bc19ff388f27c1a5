#include "status.hpp"

#include "addon_request.hpp"
#include "json_access.hpp"
#include "planner.hpp"
#include "state_records.hpp"

#include <algorithm>
#include <set>

namespace flotilla {
namespace {

std::string live_or(const json& live, const std::string& key, std::string recorded) {
  auto l = live.find(key);
  return l != live.end() && l->is_string() ? l->get<std::string>() : recorded;
}

std::string status_text(const json& status) { return status.is_string() ? status.get<std::string>() : ""; }

int pid_of(const json& record) { return record.is_object() ? record.value("pid", 0) : 0; }

// A ready node's state is what the driver's inspect found (running, stopped, missing), when it
// was asked; otherwise the recorded status.
json nodes_status(const std::map<std::string, NodeRecord>& nodes, const json& live) {
  const json& live_nodes = obj(live, "nodes");
  json out = json::array();
  for (const auto& [name, rec] : nodes) {
    std::string st = rec.status == NodeStatus::ready ? "running" : status_text(json(rec.status));
    if (rec.status == NodeStatus::ready && live_or(live_nodes, name, "unknown") != "unknown") st = live_nodes[name].get<std::string>();
    out.push_back({{"name", name}, {"address", rec.address}, {"roles", rec.roles}, {"runtime", rec.runtime}, {"state", st}});
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) { return a["address"] < b["address"]; });
  return out;
}

// Each instance's version, and whether its spec is the one the topology asks for now (an
// instance on an older spec is one a rollout has not replaced yet, or put back).
json instances_status(const std::string& service, const std::map<std::string, InstanceRecord>& instances,
                      const std::map<std::string, NodeRecord>& nodes, const json& live, const std::map<std::string, std::string>& wanted) {
  const json& live_instances = obj(live, "instances");
  json out = json::array();
  for (const auto& [id, rec] : instances) {
    if (rec.service != service) continue;
    std::string st = status_text(json(rec.status));
    if (rec.status == WorkloadStatus::running) st = live_or(live_instances, id, st);
    auto n = nodes.find(rec.node);
    const auto w = wanted.find(id);
    out.push_back({{"id", id}, {"instance", rec.instance}, {"node", rec.node}, {"address", n != nodes.end() ? n->second.address : ""},
                   {"port", rec.port}, {"state", st}, {"pid", pid_of(rec.record)}, {"version", rec.version},
                   {"spec_current", w != wanted.end() && w->second == rec.spec_hash}});
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) { return a["instance"] < b["instance"]; });
  return out;
}

json services_status(const Topology& topo, const json& state, const std::map<std::string, NodeRecord>& nodes, const json& live) {
  const auto replicas = effective_replicas(topo, state);
  const auto instances = records_of<InstanceRecord>(state, "instances");
  std::map<std::string, std::string> wanted;
  for (const auto& ip : desired_instances(topo, replicas)) wanted[ip.id] = ip.spec_hash;
  std::set<std::string> names;
  for (const auto& s : topo.services) names.insert(s.name);
  for (const auto& [id, rec] : instances) names.insert(rec.service);
  json out = json::array();
  for (const auto& name : names) {
    auto r = replicas.find(name);
    const ServiceSpec* spec = topo.find_service(name);
    if (spec != nullptr && spec->swarm_mode) {
      // Swarm runs it: its tasks as the swarm addon last reported them.
      json tasks = json::array();
      for (const auto& t : reported_swarm_instances(state, name))
        tasks.push_back({{"id", t.value("id", "")}, {"instance", t.value("instance", 0)}, {"node", t.value("node", "")},
                         {"address", t.value("address", "")}, {"port", t.value("port", 0)}, {"state", t.value("state", "")}, {"pid", 0}});
      out.push_back({{"name", name}, {"replicas", r != replicas.end() ? r->second : 0}, {"mode", "swarm"}, {"instances", tasks}});
      continue;
    }
    json list = instances_status(name, instances, nodes, live, wanted);
    int older = 0;
    for (const auto& i : list) older += i["spec_current"].get<bool>() ? 0 : 1;
    json rollout = nullptr;
    if (older > 0) {
      rollout = {{"instances_on_older_spec", older}, {"waiting_for_promote", false}};
      // A canary that holds the rest of the rollout until `flotilla promote`.
      if (spec != nullptr && spec->update.canary > 0) {
        const std::string version = service_version(service_version_spec(*spec));
        const RolloutRecord rec = rollout_record(state, name);
        rollout["waiting_for_promote"] = rec.to == version && rec.promoted != version;
      }
    }
    out.push_back({{"name", name}, {"replicas", r != replicas.end() ? r->second : 0}, {"instances", list}, {"rollout", rollout}});
  }
  return out;
}

json components_status(const std::string& addon, const AddonRecord& rec, const json& live) {
  const json& live_comps = obj(obj(live, "components"), addon.c_str());
  json out = json::array();
  for (const auto& [key, c] : rec.components)
    out.push_back({{"node", c.node}, {"name", c.name}, {"state", live_or(live_comps, key, status_text(json(c.status)))}, {"pid", pid_of(c.record)}});
  return out;
}

}  // namespace

json cluster_status(const Topology& topo, const std::filesystem::path& state_dir, const json& state, const json& live) {
  const auto nodes = records_of<NodeRecord>(state, "nodes");
  json addons = json::array();
  // Endpoints are kept per addon; the flat map keeps each name once, and a name a second addon
  // also reports is listed as "ADDON/NAME" instead of replacing the first.
  json endpoints = json::object();
  for (const auto& [name, rec] : records_of<AddonRecord>(state, "addons")) {
    addons.push_back({{"name", name}, {"plugin", rec.plugin}, {"state", status_text(json(rec.status))},
                      {"components", components_status(name, rec, live)}, {"messages", rec.messages}, {"endpoints", rec.endpoints}});
    if (rec.endpoints.is_object())
      for (const auto& [k, v] : rec.endpoints.items()) endpoints[endpoints.contains(k) ? name + "/" + k : k] = v;
  }
  return {{"cluster", topo.cluster_name},
          {"state_dir", state_dir.string()},
          {"nodes", nodes_status(nodes, live)},
          {"services", services_status(topo, state, nodes, live)},
          {"addons", addons},
          {"endpoints", endpoints}};
}

}  // namespace flotilla
