#include "state_records.hpp"

#include "json_access.hpp"

#include <limits>
#include <optional>

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
  put_known(j, "spec", r.spec);
  if (!r.version.empty()) j["version"] = r.version;
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
  r.spec = j.value("spec", d.spec);
  r.version = j.value("version", d.version);
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

// An addon's endpoints and messages are strings (the SDK says so, the CLI prints them); a value
// of another type is written as its JSON text, so a plugin's mistake never makes a state file
// that the next load refuses.
namespace {

json endpoints_text(const json& endpoints) {
  json out = json::object();
  if (endpoints.is_object())
    for (const auto& [k, v] : endpoints.items()) out[k] = v.is_string() ? v : json(v.dump());
  return out;
}

json messages_text(const json& messages) {
  json out = json::array();
  if (messages.is_array())
    for (const auto& m : messages) out.push_back(m.is_string() ? m : json(m.dump()));
  return out;
}

}  // namespace

RolloutRecord rollout_record(const json& state, const std::string& service) {
  const json& rec = obj(obj(state, "rollouts"), service.c_str());
  return {str_or(rec, "from"), str_or(rec, "to"), str_or(rec, "promoted")};
}

json& addon_slot(json& state, const std::string& addon) {
  json& record = ensure_object(state, "addons")[addon];
  if (!record.is_object()) record = AddonRecord{};
  return record;
}

void to_json(json& j, const AddonRecord& r) {
  j = {{"status", r.status},
       {"plugin", r.plugin},
       {"provides", r.provides},
       {"requires", r.requires_},
       {"optional", r.optional},
       {"components", r.components},
       {"endpoints", endpoints_text(r.endpoints)},
       {"outputs", r.outputs.is_object() ? r.outputs : json::object()},
       {"messages", messages_text(r.messages)}};
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

// ---------------------------------------------------------------------------------------------
// The shape of a loaded state. Walks the fixed levels of the format (sections, records, a
// record's keys), never recursing over user data, and stops at the first problem.

namespace flotilla {
namespace {

enum class Want { string, integer, serial, pid, object, object_or_null, strings, string_map, node_status, workload_status, addon_status };

std::string expected_text(Want w) {
  switch (w) {
    case Want::string: return "a string";
    case Want::integer: return "an integer";
    case Want::serial: return "an integer from 0";
    case Want::pid: return "a process id (an integer from 1)";
    case Want::object: return "an object";
    case Want::object_or_null: return "an object or null";
    case Want::strings: return "an array of strings";
    case Want::string_map: return "an object whose values are strings";
    case Want::node_status: return "one of \"creating\", \"ready\", \"destroying\"";
    case Want::workload_status: return "one of \"starting\", \"running\", \"stopping\"";
    case Want::addon_status: return "one of \"applying\", \"ready\", \"destroying\"";
  }
  return "?";
}

// What was found instead, short enough for one line.
std::string found_text(const json& v) {
  switch (v.type()) {
    case json::value_t::string: {
      std::string s = v.get<std::string>();
      if (s.size() > 40) s = s.substr(0, 37) + "...";
      return "a string (" + json(s).dump(-1, ' ', false, json::error_handler_t::replace) + ")";
    }
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "the number " + v.dump();
    case json::value_t::boolean: return v.dump();
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    default: return "a value of type " + std::string(v.type_name());
  }
}

bool in_int_range(const json& v, long long lo, long long hi) {
  if (v.is_number_unsigned()) {
    const unsigned long long n = v.get<unsigned long long>();
    return n <= static_cast<unsigned long long>(hi) && (lo <= 0 || n >= static_cast<unsigned long long>(lo));
  }
  if (!v.is_number_integer()) return false;
  const long long n = v.get<long long>();
  return n >= lo && n <= hi;
}

bool all_strings(const json& v) {
  for (const auto& x : v)
    if (!x.is_string()) return false;
  return true;
}

bool one_of(const json& v, std::initializer_list<const char*> names) {
  if (!v.is_string()) return false;
  for (const char* n : names)
    if (v == n) return true;
  return false;
}

bool fits(const json& v, Want w) {
  constexpr long long kIntMax = std::numeric_limits<int>::max();
  switch (w) {
    case Want::string: return v.is_string();
    case Want::integer: return in_int_range(v, std::numeric_limits<int>::min(), kIntMax);
    case Want::serial: return in_int_range(v, 0, std::numeric_limits<long long>::max());
    case Want::pid: return in_int_range(v, 1, kIntMax);
    case Want::object: return v.is_object();
    case Want::object_or_null: return v.is_object() || v.is_null();
    case Want::strings: return v.is_array() && all_strings(v);
    case Want::string_map: return v.is_object() && all_strings(v);
    case Want::node_status: return one_of(v, {"creating", "ready", "destroying"});
    case Want::workload_status: return one_of(v, {"starting", "running", "stopping"});
    case Want::addon_status: return one_of(v, {"applying", "ready", "destroying"});
  }
  return false;
}

// The path of a key below `parent` ("" at the top), as jq spells it without the leading dot.
std::string key_path(const std::string& parent, const std::string& key) { return parent.empty() ? key : parent + "." + key; }
std::string entry_path(const std::string& parent, const std::string& key) {
  return parent + "[" + json(key).dump(-1, ' ', false, json::error_handler_t::replace) + "]";
}

class ShapeCheck {
 public:
  /// `parent[key]` when present and of the wanted type; null when absent or wrong (a wrong
  /// type, or a required key that is absent, is recorded as the problem).
  const json* at(const json& parent, const std::string& path, const char* key, Want w, bool required = false) {
    if (problem) return nullptr;
    const auto it = parent.find(key);
    if (it == parent.end()) {
      if (required) problem = key_path(path, key) + ": missing; expected " + expected_text(w);
      return nullptr;
    }
    if (!fits(*it, w)) {
      problem = key_path(path, key) + ": expected " + expected_text(w) + ", got " + found_text(*it);
      return nullptr;
    }
    return &*it;
  }
  /// Each entry of the object `parent[key]`, which must be an object of objects.
  template <class Fn>
  void each_record(const json& parent, const std::string& path, const char* key, Fn&& fn) {
    const json* section = at(parent, path, key, Want::object);
    if (section == nullptr) return;
    for (const auto& [name, rec] : section->items()) {
      if (problem) return;
      const std::string at_path = entry_path(key_path(path, key), name);
      if (!rec.is_object()) problem = at_path + ": expected an object, got " + found_text(rec);
      else fn(rec, at_path);
    }
  }
  std::optional<std::string> problem;
};

void check_node(ShapeCheck& c, const json& r, const std::string& p) {
  c.at(r, p, "status", Want::node_status, true);
  for (const char* k : {"group", "driver", "address", "runtime"}) c.at(r, p, k, Want::string);
  for (const char* k : {"index", "slot"}) c.at(r, p, k, Want::integer);
  c.at(r, p, "roles", Want::strings);
  c.at(r, p, "labels", Want::string_map);
  c.at(r, p, "driver_options", Want::object_or_null);
  for (const char* k : {"runtime_config", "data"}) c.at(r, p, k, Want::object);
}

// What instances and components share: a workload a runtime started.
void check_workload(ShapeCheck& c, const json& r, const std::string& p) {
  c.at(r, p, "status", Want::workload_status, true);
  c.at(r, p, "node", Want::string, true);
  for (const char* k : {"workload", "image"}) c.at(r, p, k, Want::string);
  c.at(r, p, "command", Want::strings);
  if (const json* rec = c.at(r, p, "record", Want::object_or_null); rec != nullptr && rec->is_object())
    c.at(*rec, key_path(p, "record"), "pid", Want::pid);
}

void check_instance(ShapeCheck& c, const json& r, const std::string& p) {
  check_workload(c, r, p);
  c.at(r, p, "service", Want::string, true);
  for (const char* k : {"instance", "port"}) c.at(r, p, k, Want::integer);
  c.at(r, p, "spec_hash", Want::string);
}

void check_addon(ShapeCheck& c, const json& r, const std::string& p) {
  c.at(r, p, "status", Want::addon_status, true);
  c.at(r, p, "plugin", Want::string, true);
  c.at(r, p, "config_hash", Want::string);
  for (const char* k : {"provides", "requires", "optional", "nodes", "messages"}) c.at(r, p, k, Want::strings);
  c.at(r, p, "endpoints", Want::string_map);
  c.at(r, p, "outputs", Want::object);  // "state" is the addon's own, of any type
  c.each_record(r, p, "components", [&](const json& comp, const std::string& cp) {
    check_workload(c, comp, cp);
    c.at(comp, cp, "name", Want::string, true);
  });
}

void check_overrides(ShapeCheck& c, const json& state) {
  const json* overrides = c.at(state, "", "overrides", Want::object);
  if (overrides == nullptr) return;
  c.each_record(*overrides, "overrides", "replicas", [&](const json& o, const std::string& p) {
    for (const char* k : {"replicas", "file_replicas"}) c.at(o, p, k, Want::integer, true);
  });
}

}  // namespace

Result<void> check_state_shape(const json& state) {
  if (!state.is_object()) return fail("the state must be a JSON object, found " + found_text(state));
  if (state.empty()) return {};
  ShapeCheck c;
  c.at(state, "", "serial", Want::serial, true);
  c.at(state, "", "format_version", Want::integer);
  for (const char* k : {"cluster", "topology", "updated"}) c.at(state, "", k, Want::string);
  c.each_record(state, "", "nodes", [&](const json& r, const std::string& p) { check_node(c, r, p); });
  c.each_record(state, "", "instances", [&](const json& r, const std::string& p) { check_instance(c, r, p); });
  c.each_record(state, "", "addons", [&](const json& r, const std::string& p) { check_addon(c, r, p); });
  check_overrides(c, state);
  if (c.problem) return fail(*c.problem);
  return {};
}

}  // namespace flotilla
