// The recorded state, typed: what the engine keeps for each node, instance, addon and addon
// component (docs/architecture.md, "State"). The state file holds these records as JSON; keys
// missing from an older file take the defaults below, and what is not known yet (a runtime
// record before the start returned) is left out rather than written as null.
#pragma once

#include "result.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// A node's progress: intent recorded before the driver is called, `ready` after.
enum class NodeStatus { unknown, creating, ready, destroying };
NLOHMANN_JSON_SERIALIZE_ENUM(NodeStatus, {{NodeStatus::unknown, nullptr},
                                          {NodeStatus::creating, "creating"},
                                          {NodeStatus::ready, "ready"},
                                          {NodeStatus::destroying, "destroying"}})

/// An instance's or component's progress: `running` once started (and healthy, for instances).
enum class WorkloadStatus { unknown, starting, running, stopping };
NLOHMANN_JSON_SERIALIZE_ENUM(WorkloadStatus, {{WorkloadStatus::unknown, nullptr},
                                              {WorkloadStatus::starting, "starting"},
                                              {WorkloadStatus::running, "running"},
                                              {WorkloadStatus::stopping, "stopping"}})

/// An addon's progress: `ready` once its apply succeeded.
enum class AddonStatus { unknown, applying, ready, destroying };
NLOHMANN_JSON_SERIALIZE_ENUM(AddonStatus, {{AddonStatus::unknown, nullptr},
                                           {AddonStatus::applying, "applying"},
                                           {AddonStatus::ready, "ready"},
                                           {AddonStatus::destroying, "destroying"}})

struct NodeRecord {
  NodeStatus status = NodeStatus::unknown;
  std::string group;
  int index = 0;
  int slot = -1;
  std::vector<std::string> roles;
  std::map<std::string, std::string> labels;
  std::string driver;
  json driver_options;                  // {option: hash}; null when recorded before format 2
  std::string address;                  // from the driver's create
  std::string runtime;
  json runtime_config = json::object();
  json data = json::object();           // the driver's own record, handed back on destroy
};
void to_json(json& j, const NodeRecord& r);
void from_json(const json& j, NodeRecord& r);

struct InstanceRecord {
  WorkloadStatus status = WorkloadStatus::unknown;
  std::string service;
  int instance = 0;
  std::string node;
  int port = 0;
  std::string spec_hash;
  std::string workload;
  json command = json::array();
  std::string image;
  json spec;                            // {"workload", "health", "service"} it was started with, so a failed rollout can go back to it
  std::string version;                  // service_version of spec.service: one per version of the service
  json record;                          // the runtime's record; null before the start returned
};
void to_json(json& j, const InstanceRecord& r);
void from_json(const json& j, InstanceRecord& r);

struct ComponentRecord {
  WorkloadStatus status = WorkloadStatus::unknown;
  std::string node;
  std::string name;
  std::string workload;
  json command = json::array();
  std::string image;
  json record;                          // the runtime's record; null before the start returned
};
void to_json(json& j, const ComponentRecord& r);
void from_json(const json& j, ComponentRecord& r);

struct AddonRecord {
  AddonStatus status = AddonStatus::unknown;
  std::string plugin;
  std::vector<std::string> provides;
  std::vector<std::string> requires_;
  std::vector<std::string> optional;
  std::string config_hash;
  std::vector<std::string> nodes;
  std::map<std::string, ComponentRecord> components;  // "node/name" -> component
  json endpoints = json::object();
  json outputs = json::object();
  json messages = json::array();
  json state = json::object();          // the addon's own, through state_get/state_set
};
void to_json(json& j, const AddonRecord& r);
void from_json(const json& j, AddonRecord& r);
/// `state["addons"][addon]`, made an empty AddonRecord where it is missing or not an object:
/// where every change to one part of an addon's record (a component, its own state) starts,
/// so that part is written without converting the whole record.
json& addon_slot(json& state, const std::string& addon);

/// A service's rollout as state records it (`rollouts.SERVICE`): the versions it goes from and
/// to, and the one `flotilla promote` let through ("" for each that is not recorded).
struct RolloutRecord {
  std::string from, to, promoted;
};
[[nodiscard]] RolloutRecord rollout_record(const json& state, const std::string& service);

/// Checks that `state` has the shape this release reads, types included: the sections
/// (`nodes`, `instances`, `addons`, `overrides`) are objects of records, every record has the
/// keys it cannot be acted on without (its `status`; an instance's `service` and `node`; a
/// component's `node` and `name`; an addon's `plugin`), and every key the engine reads has its
/// type (an integer `slot`, `port` or `pid`, an array of strings `roles`, ...). Unknown keys are
/// kept. A non-empty state needs its `serial`. Fails with the first problem as
/// "KEY PATH: expected WHAT, got WHAT" (e.g. `nodes["web-1"].slot: expected an integer, got a
/// string ("seventeen")`), so the records below never meet a wrong type.
[[nodiscard]] Result<void> check_state_shape(const json& state);

/// The record `key` of a state section ("nodes", "instances", "addons"); a default record
/// (status unknown) when there is none. Throws nlohmann::json::exception on a record whose
/// keys have the wrong types, which check_state_shape rules out for every state a store loads.
template <class Record>
[[nodiscard]] Record record_of(const json& state, const char* section, const std::string& key) {
  if (!state.is_object()) return Record{};
  auto s = state.find(section);
  if (s == state.end() || !s->is_object()) return Record{};
  auto r = s->find(key);
  return r != s->end() && r->is_object() ? r->template get<Record>() : Record{};
}

/// Every record of a state section, by key.
template <class Record>
[[nodiscard]] std::map<std::string, Record> records_of(const json& state, const char* section) {
  std::map<std::string, Record> out;
  if (!state.is_object()) return out;
  auto s = state.find(section);
  if (s == state.end() || !s->is_object()) return out;
  for (const auto& [key, r] : s->items())
    if (r.is_object()) out.emplace(key, r.template get<Record>());
  return out;
}

}  // namespace flotilla
