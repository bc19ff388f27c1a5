#include "runtime_broker.hpp"

#include "engine.hpp"
#include "json_access.hpp"
#include "plugin_views.hpp"
#include "planner.hpp"
#include "util.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace flotilla {
namespace {

flt_status error_out(json& out, flt_status st, const std::string& message) {
  out = {{"error", message}};
  return st;
}

flt_status failed(json& out, const Error& e) { return error_out(out, e.retryable ? FLT_RETRYABLE : FLT_ERROR, e.message); }

}  // namespace

json workload_ref(const json& record, const std::string& workload) {
  if (!record.is_null()) return record;
  if (workload.empty()) return json();
  return {{"name", workload}};
}

json workload_ref(const InstanceRecord& instance) {
  std::string workload = instance.workload;
  if (workload.empty() && !instance.service.empty()) {
    InstancePlan named;
    named.service = instance.service;
    named.instance = instance.instance;
    workload = named.workload_name();
  }
  return workload_ref(instance.record, workload);
}

json workload_ref(const std::string& addon, const ComponentRecord& component) {
  std::string workload = component.workload;
  if (workload.empty() && !component.name.empty()) workload = addon_workload_prefix(addon) + safe_name(component.name);
  return workload_ref(component.record, workload);
}

json RuntimeBroker::records_for(std::string node, const std::string& addon, const std::string& key) {
  json slice = {{"nodes", json::object()}, {"addons", json::object()}};
  e_.read_state([&](const json& s) {
    const json& record = obj(obj(s, "addons"), addon.c_str());
    if (record.is_object()) slice["addons"][addon] = {{"components", json::object()}};
    if (!key.empty())
      if (const json& comp = obj(record, "components"); comp.contains(key) && comp[key].is_object()) {
        slice["addons"][addon]["components"][key] = comp[key];
        if (node.empty()) node = comp[key].value("node", "");
      }
    if (const json& nodes = obj(s, "nodes"); nodes.contains(node)) slice["nodes"][node] = nodes[node];
  });
  return slice;
}

flt_status RuntimeBroker::handle(const std::string& addon, const json& req, json& out) {
  const std::string op = req.value("op", "");
  Call c{addon, req, out, json::object(), ""};
  if (op == "list") return list(c);
  if (op == "batch") return batch(addon, req, out, [&](const json& one, json& result) { return handle(addon, one, result); });
  c.node = req.value("node", "");
  const std::string name = req.value("name", req.contains("workload") ? req["workload"].value("name", "") : std::string());
  const std::string key = c.node + "/" + name;
  c.state = records_for(c.node, addon, name.empty() ? std::string() : key);
  if (record_of<NodeRecord>(c.state, "nodes", c.node).status != NodeStatus::ready)
    return error_out(out, FLT_INVALID, "node \"" + c.node + "\" does not exist or is not ready");
  if (op == "put_file" || op == "remove_file") return put_file(c, op == "remove_file");
  if (name.empty()) return error_out(out, FLT_INVALID, "runtime operation " + op + " needs a workload name");
  const auto components = record_of<AddonRecord>(c.state, "addons", addon).components;
  const auto found = components.find(key);
  const ComponentRecord* comp = found != components.end() ? &found->second : nullptr;
  if (op == "start") return start(c, name, key, comp);
  if (op == "stop") return stop(c, key, comp);
  if (op == "inspect" || op == "signal") return inspect_or_signal(c, op, name, comp);
  if (!comp) return error_out(out, FLT_NOT_FOUND, "addon " + addon + " has no component " + name + " on node " + c.node);
  return error_out(out, FLT_INVALID, "unknown runtime operation \"" + op + "\"; see docs/sdk-reference.md");
}

flt_status RuntimeBroker::batch(const std::string& addon, const json& req, json& out,
                                const std::function<flt_status(const json& op, json& result)>& one_op) {
  const auto ops = req.find("ops");
  const std::string how = "; send {\"op\": \"batch\", \"ops\": [runtime operations]} (see docs/sdk-reference.md)";
  if (ops == req.end() || !ops->is_array()) return error_out(out, FLT_INVALID, "runtime operation batch needs \"ops\", an array" + how);
  for (size_t i = 0; i < ops->size(); ++i) {
    const json& op = (*ops)[i];
    if (!op.is_object()) return error_out(out, FLT_INVALID, "runtime operation batch: ops[" + std::to_string(i) + "] is not an object" + how);
    if (op.value("op", "") == "batch") return error_out(out, FLT_INVALID, "runtime operation batch: ops[" + std::to_string(i) + "] is a batch itself" + how);
  }
  std::vector<json> results(ops->size());
  in_parallel(addon, ops->size(), [&](size_t i) {
    json one = json::object();
    flt_status st = FLT_ERROR;
    try {
      st = one_op((*ops)[i], one);
    } catch (const std::exception& e) {
      one = json{{"error", std::string("engine error in runtime operation: ") + e.what()}};
    }
    results[i] = st == FLT_OK ? json{{"status", st}, {"result", one}} : json{{"status", st}, {"error", str_or(one, "error")}};
  });
  out = {{"results", results}};
  return FLT_OK;
}

void RuntimeBroker::in_parallel(const std::string& addon, size_t n, const std::function<void(size_t)>& fn) {
  size_t limit = static_cast<size_t>(std::max(1, e_.options_.parallelism));
  if (const AddonPlan* a = e_.find_addon(addon); a && a->max_parallel > 0) limit = std::min(limit, static_cast<size_t>(a->max_parallel));
  parallel_for(n, limit, fn);
}

std::vector<std::string> RuntimeBroker::stop_components(const std::string& addon, const std::vector<std::string>& keys) {
  std::vector<std::string> errors(keys.size());
  in_parallel(addon, keys.size(), [&](size_t i) {
    try {
      if (auto ok = stop_component(addon, keys[i]); !ok) errors[i] = ok.error().message;
    } catch (const std::exception& e) {
      errors[i] = "addon " + addon + " component " + keys[i] + ": " + e.what();
    }
  });
  std::erase(errors, std::string());
  return errors;
}

flt_status RuntimeBroker::list(Call& c) {
  json comps = json::array();
  const json state = e_.snapshot();
  const auto rec = record_of<AddonRecord>(state, "addons", c.addon);
  for (const auto& [key, comp] : rec.components)
    comps.push_back({{"key", key}, {"node", comp.node}, {"name", comp.name}, {"record", comp.record.is_null() ? json::object() : comp.record}});
  c.out = {{"components", comps}};
  return FLT_OK;
}

flt_status RuntimeBroker::put_file(Call& c, bool remove) {
  json r_req = {{"path", safe_name(c.addon) + "/" + c.req.value("path", "")}};
  if (remove) r_req["remove"] = true;
  else r_req.update({{"content", c.req.value("content", "")}, {"mode", c.req.value("mode", 0644)}});
  auto r = e_.runtime_call(c.state, c.node, "put_file", r_req);
  if (!r) return failed(c.out, r.error());
  c.out = *r;
  return FLT_OK;
}

flt_status RuntimeBroker::start(Call& c, const std::string& name, const std::string& key, const ComponentRecord* before) {
  json workload = c.req.value("workload", json::object());
  workload["name"] = addon_workload_prefix(c.addon) + safe_name(name);
  workload["owner"] = "addon:" + c.addon;
  if (workload.contains("command") && workload["command"].is_array() && !workload["command"].empty()) {
    auto resolved = program_for_runtime(workload["command"][0], e_.node_view(c.state, c.node).value("runtime", ""));
    if (!resolved) return error_out(c.out, FLT_INVALID, resolved.error().message);
    workload["command"][0] = *resolved;
  }
  const std::string workload_name = workload["name"].get<std::string>();
  const json command = workload.value("command", json::array());
  const std::string image = workload.value("image", "");
  // A component recorded as running under this name, command and image already holds what the
  // intent would record; an apply that starts its components again, unchanged, so writes no
  // state at all (two saves per component before, each of the whole state).
  const bool recorded = before && before->status == WorkloadStatus::running && before->node == c.node && before->name == name &&
                        before->workload == workload_name && before->command == command && before->image == image;
  if (!recorded)
    if (auto ok = e_.update_component(c.addon, key, [&](ComponentRecord& comp) {
          comp.node = c.node;
          comp.name = name;
          comp.workload = workload_name;
          comp.command = command;
          comp.image = image;
          comp.status = WorkloadStatus::starting;
        });
        !ok)
      return error_out(c.out, FLT_ERROR, ok.error().message);
  // The runtime's start is idempotent by name: a workload of this name that runs with this
  // spec is returned as it is (changed: false), so one a killed run started is adopted here.
  auto r = e_.runtime_call(c.state, c.node, "start", {{"workload", workload}});
  if (!r) return failed(c.out, r.error());
  const json record = r->value("record", *r);
  if (before && before->record.is_null() && !r->value("changed", true))
    spdlog::info("addon {}: adopted component {} on node {}, started by a run that ended before recording it", c.addon, name, c.node);
  if (!recorded || before->record != record)
    if (auto ok = e_.update_component(c.addon, key, [&](ComponentRecord& comp) {
          comp.record = record;
          comp.status = WorkloadStatus::running;
        });
        !ok)
      return error_out(c.out, FLT_ERROR, ok.error().message);
  c.out = *r;
  return FLT_OK;
}

flt_status RuntimeBroker::stop(Call& c, const std::string& key, const ComponentRecord* component) {
  if (component)
    if (auto ok = stop_component(c.addon, key); !ok) return error_out(c.out, FLT_ERROR, ok.error().message);
  c.out = json::object();
  return FLT_OK;
}

flt_status RuntimeBroker::inspect_or_signal(Call& c, const std::string& op, const std::string& name,
                                            const ComponentRecord* component) {
  // A component recorded only as intent is asked about by name: it may run, started by a run
  // that died before recording it, and must not look like a stranger holding its port.
  const json ref = component ? workload_ref(c.addon, *component) : json();
  if (ref.is_null()) {
    if (op == "inspect") {
      c.out = {{"state", "missing"}};
      return FLT_OK;
    }
    return error_out(c.out, FLT_NOT_FOUND,
                     "addon " + c.addon + " has no component " + name + " on node " + c.node);
  }
  json r_req = {{"record", ref}};
  if (op == "signal") r_req["signal"] = c.req.value("signal", "HUP");
  auto r = e_.runtime_call(c.state, c.node, op.c_str(), r_req);
  if (!r) return failed(c.out, r.error());
  c.out = *r;
  return FLT_OK;
}

Result<void> RuntimeBroker::stop_component(const std::string& addon, const std::string& key) {
  const json state = records_for("", addon, key);
  const auto components = record_of<AddonRecord>(state, "addons", addon).components;
  const auto c = components.find(key);
  if (c == components.end()) return {};  // nothing recorded, nothing to forget
  if (const json ref = workload_ref(addon, c->second); !ref.is_null()) {
    auto r = e_.runtime_call(state, c->second.node, "stop", {{"record", ref}, {"timeout_s", e_.options_.stop_timeout.count()}, {"purge", true}});
    if (!r) return fail("addon " + addon + " component " + key + ": " + r.error().message);
  }
  return e_.erase_component(addon, key);
}

}  // namespace flotilla
