#include "state_records.hpp"

namespace flotilla {
namespace {

// Writes `v` under `key` unless it is null (not known yet).
void put_known(json& j, const char* key, const json& v) {
  if (!v.is_null()) j[key] = v;
}

}  // namespace

void to_json(json& j, const NodeRecord& r) {
  j = {{"status", r.status}, {"group", r.group},     {"index", r.index},     {"slot", r.slot},
       {"roles", r.roles},   {"labels", r.labels},   {"driver", r.driver},   {"address", r.address},
       {"runtime", r.runtime}, {"runtime_config", r.runtime_config}, {"data", r.data}};
  put_known(j, "driver_options", r.driver_options);
}

void from_json(const json& j, NodeRecord& r) {
  const NodeRecord d;
  r.status = j.value("status", d.status);
  r.group = j.value("group", d.group);
  r.index = j.value("index", d.index);
  r.slot = j.value("slot", d.slot);
  r.roles = j.value("roles", d.roles);
  r.labels = j.value("labels", d.labels);
  r.driver = j.value("driver", d.driver);
  r.driver_options = j.value("driver_options", d.driver_options);
  r.address = j.value("address", d.address);
  r.runtime = j.value("runtime", d.runtime);
  r.runtime_config = j.value("runtime_config", d.runtime_config);
  r.data = j.value("data", d.data);
}

void to_json(json& j, const InstanceRecord& r) {
  j = {{"status", r.status}, {"service", r.service},   {"instance", r.instance}, {"node", r.node},   {"port", r.port},
       {"spec_hash", r.spec_hash}, {"workload", r.workload}, {"command", r.command}, {"image", r.image}};
  put_known(j, "record", r.record);
}

void from_json(const json& j, InstanceRecord& r) {
  const InstanceRecord d;
  r.status = j.value("status", d.status);
  r.service = j.value("service", d.service);
  r.instance = j.value("instance", d.instance);
  r.node = j.value("node", d.node);
  r.port = j.value("port", d.port);
  r.spec_hash = j.value("spec_hash", d.spec_hash);
  r.workload = j.value("workload", d.workload);
  r.command = j.value("command", d.command);
  r.image = j.value("image", d.image);
  r.record = j.value("record", d.record);
}

void to_json(json& j, const ComponentRecord& r) {
  j = {{"status", r.status}, {"node", r.node}, {"name", r.name}, {"workload", r.workload}, {"command", r.command}, {"image", r.image}};
  put_known(j, "record", r.record);
}

void from_json(const json& j, ComponentRecord& r) {
  const ComponentRecord d;
  r.status = j.value("status", d.status);
  r.node = j.value("node", d.node);
  r.name = j.value("name", d.name);
  r.workload = j.value("workload", d.workload);
  r.command = j.value("command", d.command);
  r.image = j.value("image", d.image);
  r.record = j.value("record", d.record);
}

void to_json(json& j, const AddonRecord& r) {
  j = {{"status", r.status},     {"plugin", r.plugin},         {"provides", r.provides}, {"requires", r.requires_},
       {"optional", r.optional}, {"components", r.components}, {"endpoints", r.endpoints}, {"outputs", r.outputs},
       {"messages", r.messages}};
  // Written once known: an addon whose apply never finished has no hash, nodes or state yet.
  if (!r.config_hash.empty()) j["config_hash"] = r.config_hash;
  if (r.status == AddonStatus::ready || !r.nodes.empty()) j["nodes"] = r.nodes;
  if (!r.state.empty()) j["state"] = r.state;
}

void from_json(const json& j, AddonRecord& r) {
  const AddonRecord d;
  r.status = j.value("status", d.status);
  r.plugin = j.value("plugin", d.plugin);
  r.provides = j.value("provides", d.provides);
  r.requires_ = j.value("requires", d.requires_);
  r.optional = j.value("optional", d.optional);
  r.config_hash = j.value("config_hash", d.config_hash);
  r.nodes = j.value("nodes", d.nodes);
  r.components = j.value("components", d.components);
  r.endpoints = j.value("endpoints", d.endpoints);
  r.outputs = j.value("outputs", d.outputs);
  r.messages = j.value("messages", d.messages);
  r.state = j.value("state", d.state);
}

}  // namespace flotilla
