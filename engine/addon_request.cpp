#include "addon_request.hpp"

#include "json_access.hpp"
#include "plugin_views.hpp"
#include "state_records.hpp"

namespace flotilla {
namespace {

json running_nodes(const Topology& topo, const std::filesystem::path& state_dir, const json& state) {
  json nodes = json::array();
  for (const auto& n : topo.nodes) {
    json v = node_view(state, n.name, state_dir);
    if (v["state"] == "running") nodes.push_back(std::move(v));
  }
  return nodes;
}

json services_view(const Topology& topo, const json& state, const Plan& plan) {
  const auto recorded = records_of<InstanceRecord>(state, "instances");
  const auto nodes = records_of<NodeRecord>(state, "nodes");
  json services = json::array();
  for (const auto& s : topo.services) {
    auto rep = plan.replicas.find(s.name);
    const int replicas = rep != plan.replicas.end() ? rep->second : s.replicas;
    if (s.swarm_mode) {
      services.push_back({{"name", s.name}, {"dns", service_dns_label(s.name)}, {"port", s.port}, {"health", s.health},
                          {"replicas", replicas}, {"mode", "swarm"}, {"spec", swarm_service_spec(s, replicas)},
                          {"instances", reported_swarm_instances(state, s.name)}});
      continue;
    }
    json instances = json::array();
    for (const auto& ip : plan.instances) {
      if (ip.service != s.name) continue;
      auto it = recorded.find(ip.id);
      if (it == recorded.end() || it->second.status != WorkloadStatus::running) continue;
      // Where it runs as recorded: during a rollout, an instance not yet replaced still runs
      // on its old node and port.
      const InstanceRecord& rec = it->second;
      auto n = nodes.find(rec.node);
      instances.push_back({{"id", ip.id}, {"instance", ip.instance}, {"node", rec.node},
                           {"address", n != nodes.end() ? n->second.address : ""}, {"port", rec.port},
                           {"state", "running"}, {"workload", ip.workload_name()}});
    }
    services.push_back({{"name", s.name}, {"dns", service_dns_label(s.name)}, {"port", s.port}, {"health", s.health},
                        {"replicas", replicas}, {"instances", instances}});
  }
  return services;
}

}  // namespace

json reported_swarm_instances(const json& state, const std::string& service) {
  for (const auto& [name, rec] : records_of<AddonRecord>(state, "addons")) {
    const json& svc = obj(obj(rec.outputs, "services"), service.c_str());
    if (svc.contains("instances") && svc["instances"].is_array()) return svc["instances"];
  }
  return json::array();
}

json addon_request(const Topology& topo, const std::filesystem::path& state_dir, const AddonPlan& addon, const json& config,
                   const json& state, const Plan& plan) {
  json addons = json::object();
  json components = json::array();
  for (const auto& [name, rec] : records_of<AddonRecord>(state, "addons")) {
    if (name != addon.name)
      addons[name] = {{"plugin", rec.plugin}, {"provides", rec.provides}, {"endpoints", rec.endpoints}, {"outputs", rec.outputs},
                      {"workload_prefix", addon_workload_prefix(name)}};
    for (const auto& [key, c] : rec.components) {
      const json status = c.status;
      components.push_back({{"addon", name}, {"node", c.node}, {"name", c.name}, {"state", status.is_string() ? status : json("")},
                            {"record", c.record.is_object() ? c.record : json::object()}});
    }
  }
  return {{"addon",
           {{"name", addon.name}, {"plugin", addon.plugin}, {"config", config}, {"nodes", addon.nodes},
            {"dir", (state_dir / "addons" / addon.name).string()}, {"workload_prefix", addon_workload_prefix(addon.name)}}},
          {"cluster", cluster_view(topo, state_dir)},
          {"nodes", running_nodes(topo, state_dir, state)},
          {"services", services_view(topo, state, plan)},
          {"addons", addons},
          {"components", components}};
}

}  // namespace flotilla
