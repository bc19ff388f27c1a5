#include "state_migration.hpp"

#include "json_access.hpp"
#include "state_store.hpp"
#include "util.hpp"

namespace flotilla {
namespace {

void rehash_instances(json& state, const Topology& topo) {
  if (!state.contains("instances") || !state["instances"].is_object()) return;
  for (const auto& ip : desired_instances(topo, effective_replicas(topo, state))) {
    auto it = state["instances"].find(ip.id);
    if (it == state["instances"].end() || !it->is_object()) continue;
    const ServiceSpec* svc = topo.find_service(ip.service);
    if (str_or(*it, "spec_hash") == legacy_stable_hash(instance_spec(*svc, ip.node, ip.port).dump())) (*it)["spec_hash"] = ip.spec_hash;
  }
}

void rehash_addons(json& state, const std::vector<AddonPlan>& addons) {
  if (!state.contains("addons") || !state["addons"].is_object()) return;
  for (const auto& a : addons) {
    auto it = state["addons"].find(a.name);
    if (it == state["addons"].end() || !it->is_object()) continue;
    if (str_or(*it, "config_hash") == legacy_stable_hash(a.config.dump())) (*it)["config_hash"] = addon_config_hash(a);
  }
}

void adopt_driver_options(json& state, const json& driver_options) {
  if (!state.contains("nodes") || !state["nodes"].is_object()) return;
  for (auto& [name, rec] : state["nodes"].items())
    if (rec.is_object() && !rec.contains("driver_options")) rec["driver_options"] = driver_options;
}

}  // namespace

json migrate_state(json state, const Topology& topo, const std::vector<AddonPlan>& addons, const json& driver_options) {
  if (!state.is_object() || state.empty()) return state;
  const int version = state.value("format_version", 1);
  if (version >= kStateFormatVersion) return state;
  rehash_instances(state, topo);
  rehash_addons(state, addons);
  adopt_driver_options(state, driver_options);
  state["format_version"] = kStateFormatVersion;
  return state;
}

}  // namespace flotilla
