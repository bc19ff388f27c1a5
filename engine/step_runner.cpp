#include "step_runner.hpp"

#include "addon_graph.hpp"
#include "engine.hpp"
#include "json_access.hpp"
#include "plugin_views.hpp"
#include "state_records.hpp"
#include "util.hpp"

#include "flotilla/support/wait.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace flotilla {
namespace {

Error on_node(const std::string& node, Error e) {
  e.message = "node " + node + ": " + e.message;
  return e;
}

bool provides_container_dns(const std::vector<AddonPlan>& addons) {
  return std::any_of(addons.begin(), addons.end(), [](const AddonPlan& a) {
    return std::find(a.provides.begin(), a.provides.end(), "container-dns") != a.provides.end();
  });
}

}  // namespace

EngineStepRunner::EngineStepRunner(Engine& engine, const Plan& plan)
    : e_(engine), plan_(plan), broker_(engine), container_dns_(provides_container_dns(engine.addons())) {}

Result<void> EngineStepRunner::run(const Step& step, const CancelToken& cancel) {
  const StepAction* work = plan_.action_of(step.id);
  if (!work) return fail("internal error: step " + step.id + " is not in the plan");
  return std::visit([&](const auto& w) { return run_one(w, cancel); }, *work);
}

Result<void> EngineStepRunner::run_one(const CreateNode& w, const CancelToken& cancel) {
  if (w.replace)
    if (auto ok = destroy_node(w.node, cancel); !ok) return ok;
  return create_node(w.node, w.slot, cancel);
}
Result<void> EngineStepRunner::run_one(const UpdateNode& w, const CancelToken&) { return update_node(w.node); }
Result<void> EngineStepRunner::run_one(const DestroyNode& w, const CancelToken& cancel) { return destroy_node(w.node, cancel); }
Result<void> EngineStepRunner::run_one(const StartInstance& w, const CancelToken& cancel) { return start_instance(w.instance, cancel); }
Result<void> EngineStepRunner::run_one(const RollWave& w, const CancelToken& cancel) { return roll_wave(w, cancel); }
Result<void> EngineStepRunner::run_one(const StopInstance& w, const CancelToken&) { return stop_instance(w.id); }
Result<void> EngineStepRunner::run_one(const ApplyAddon& w, const CancelToken& cancel) { return apply_addon(w.addon, w.stage, w.resync, cancel); }
Result<void> EngineStepRunner::run_one(const DestroyAddon& w, const CancelToken& cancel) { return destroy_addon(w.addon, cancel); }

// Progress lines carry the same kind:plugin:instance prefix as the plugin's log lines.
CallHooks EngineStepRunner::hooks_for(const std::string& kind, const std::string& plugin, const std::string& instance,
                                      const CancelToken& cancel) {
  CallHooks h;
  h.instance = instance;
  h.cancelled = [&cancel] { return cancel.aborted(); };
  h.progress = [prefix = kind + ":" + plugin + ":" + instance](const std::string& m) { spdlog::debug("{}: {}", prefix, m); };
  return h;
}

CallHooks EngineStepRunner::addon_hooks(const std::string& addon, const std::string& plugin, const CancelToken& cancel) {
  CallHooks h = hooks_for("addon", plugin, addon, cancel);
  h.runtime = [this, addon](const json& req, json& out) { return broker_.handle(addon, req, out); };
  // The addon's own state is read and written in place: neither copies the whole state, and
  // setting the value it already has saves nothing.
  h.state_get = [this, addon] {
    json v = json::object();
    e_.read_state([&](const json& s) {
      if (const json& rec = obj(obj(s, "addons"), addon.c_str()); rec.contains("state")) v = rec["state"];
    });
    return v;
  };
  h.state_set = [this, addon, plugin](const json& v) -> flt_status {
    auto ok = e_.commit_if([&](json& s) {
      json& rec = addon_slot(s, addon);
      if (rec.contains("state") && rec["state"] == v) return false;
      rec["state"] = v;
      return true;
    });
    if (ok) return FLT_OK;
    spdlog::error("addon:{}:{}: its state was not saved: {}", plugin, addon, ok.error().message);
    return ok.error().retryable ? FLT_RETRYABLE : FLT_ERROR;
  };
  return h;
}

json EngineStepRunner::driver_request(const std::string& name, const json& state) {
  return {{"cluster", e_.cluster_view()}, {"config", e_.driver_config_}, {"node", e_.node_view(state, name)}};
}

Result<void> EngineStepRunner::create_node(const std::string& name, int slot, const CancelToken& cancel) {
  const NodeSpec* spec = e_.topo_.find_node(name);
  if (!spec) return fail("internal error: node " + name + " is not in the topology");
  if (auto ok = e_.update_record<NodeRecord>("nodes", name, [&](NodeRecord& n) {
        n.status = NodeStatus::creating;
        n.group = spec->group;
        n.index = spec->index;
        n.slot = slot;
        n.roles = spec->roles;
        n.labels = spec->labels;
        n.driver = e_.topo_.driver;
        n.driver_options = e_.driver_option_hashes();
      });
      !ok)
    return ok;
  std::error_code ec;
  std::filesystem::create_directories(e_.state_dir_ / "nodes" / name, ec);
  const Plugin& driver = *e_.driver_;
  auto r = call_plugin(driver, driver.driver->create, "create", driver_request(name, e_.snapshot()),
                       hooks_for("driver", driver.name, name, cancel));
  if (r.status != FLT_OK) return std::unexpected(on_node(name, call_error(driver, "create", r)));
  std::string runtime = e_.topo_.runtime.empty() ? str_or(r.result, "runtime", "process") : e_.topo_.runtime;
  if (auto rt = e_.host_.get("runtime", runtime); !rt) return fail("node " + name + ": " + rt.error().message);
  const std::string address = str_or(r.result, "address");
  if (address.empty()) return fail("node " + name + ": driver " + e_.topo_.driver + " returned no address; this is a bug in the driver");
  return e_.update_record<NodeRecord>("nodes", name, [&](NodeRecord& n) {
    n.status = NodeStatus::ready;
    n.address = address;
    n.runtime = runtime;
    n.runtime_config = r.result.value("runtime_config", json::object());
    n.data = r.result.value("data", json::object());
  });
}

Result<void> EngineStepRunner::update_node(const std::string& name) {
  const NodeSpec* spec = e_.topo_.find_node(name);
  if (!spec) return fail("internal error: node " + name + " is not in the topology");
  return e_.update_record<NodeRecord>("nodes", name, [&](NodeRecord& n) {
    n.roles = spec->roles;
    n.labels = spec->labels;
    n.driver_options = e_.driver_option_hashes();
  });
}

// Stops every workload the state records on a node (instances and addon components).
Result<void> EngineStepRunner::stop_everything_on(const std::string& node) {
  const json state = e_.snapshot();
  std::vector<std::string> errors;
  for (const auto& [id, rec] : records_of<InstanceRecord>(state, "instances"))
    if (rec.node == node)
      if (auto ok = stop_instance(id); !ok) errors.push_back(ok.error().message);
  for (const auto& [addon, rec] : records_of<AddonRecord>(state, "addons"))
    for (const auto& [key, c] : rec.components)
      if (c.node == node)
        if (auto ok = broker_.stop_component(addon, key); !ok) errors.push_back(ok.error().message);
  if (!errors.empty()) return fail(join(errors, "; "));
  return {};
}

Result<void> EngineStepRunner::destroy_node(const std::string& name, const CancelToken& cancel) {
  if (auto ok = stop_everything_on(name); !ok) return ok;
  if (auto ok = e_.update_record<NodeRecord>("nodes", name, [](NodeRecord& n) { n.status = NodeStatus::destroying; }); !ok) return ok;
  const json state = e_.snapshot();
  const auto rec = record_of<NodeRecord>(state, "nodes", name);
  json req = driver_request(name, state);
  req["record"] = {{"address", rec.address}, {"runtime", rec.runtime}, {"data", rec.data}};
  const Plugin& driver = *e_.driver_;
  auto r = call_plugin(driver, driver.driver->destroy, "destroy", req, hooks_for("driver", driver.name, name, cancel));
  if (r.status != FLT_OK && r.status != FLT_NOT_FOUND) return std::unexpected(on_node(name, call_error(driver, "destroy", r)));
  std::error_code ec;
  std::filesystem::remove_all(e_.state_dir_ / "nodes" / name, ec);
  return e_.erase_record("nodes", name);
}

std::string EngineStepRunner::container_resolver(const json& state, const std::string& node) const {
  // Containers on a node's Docker bridge reach their node at the bridge's gateway, where an
  // addon that provides `container-dns` (the registrator) forwards the cluster's names.
  if (!container_dns_) return {};
  return str_or(e_.node_view(state, node).value("runtime_config", json::object()), "bridge_gateway");
}

Result<void> EngineStepRunner::start_instance(const InstancePlan& ip, const CancelToken& cancel, std::chrono::seconds health_timeout) {
  const std::string& id = ip.id;
  const std::string& node = ip.node;
  const int port = ip.port;
  const ServiceSpec* svc = e_.topo_.find_service(ip.service);
  if (!svc) return fail("internal error: service of instance " + id + " is not in the topology");
  const json state = e_.snapshot();
  const std::string address = e_.node_view(state, node)["address"];
  const std::map<std::string, std::string> vars = {{"address", address}, {"port", std::to_string(port)},
                                                   {"instance", std::to_string(ip.instance)},
                                                   {"id", id}, {"node", node}, {"service", svc->name}};
  json command = json::array();
  for (const auto& arg : svc->command) command.push_back(substitute(arg, vars));
  if (!command.empty()) {
    auto resolved = program_for_runtime(command[0], e_.node_view(state, node).value("runtime", ""));
    if (!resolved) return fail("instance " + id + " (" + svc->pos.str() + "): " + resolved.error().message);
    command[0] = *resolved;
  }
  json env = json::object();
  for (const auto& [k, v] : svc->env) env[k] = substitute(v, vars);
  env["FLOTILLA_INSTANCE"] = id;
  env["FLOTILLA_SERVICE"] = svc->name;
  if (port > 0) env["PORT"] = std::to_string(port);
  json workload = {{"name", ip.workload_name()}, {"owner", "service:" + svc->name}, {"command", command},
                   {"image", svc->image}, {"env", env}, {"ports", port > 0 ? json::array({port}) : json::array()}};
  if (const std::string resolver = container_resolver(state, node); !resolver.empty()) workload["dns"] = json::array({resolver});
  InstanceRecord want;
  want.service = svc->name;
  want.instance = ip.instance;
  want.node = node;
  want.port = port;
  want.spec_hash = ip.spec_hash;
  want.workload = ip.workload_name();
  want.command = command;
  want.image = svc->image;
  want.spec = {{"workload", workload}, {"health", svc->health}, {"service", service_version_spec(*svc)}};
  want.version = service_version(want.spec["service"]);
  return launch(id, want, cancel, health_timeout);
}

// Starts `want.spec`'s workload as instance `id` and records it, running once it answers its
// health check. A replaced instance that moves to another node is stopped where it was first.
Result<void> EngineStepRunner::launch(const std::string& id, const InstanceRecord& want, const CancelToken& cancel,
                                      std::chrono::seconds health_timeout) {
  const std::string& node = want.node;
  const json state = e_.snapshot();
  const auto old = record_of<InstanceRecord>(state, "instances", id);
  if (old.status != WorkloadStatus::unknown && old.node != node)
    if (auto ok = stop_instance(id); !ok) return ok;
  if (auto ok = e_.update_record<InstanceRecord>("instances", id, [&](InstanceRecord& rec) {
        const json record = rec.record;
        rec = want;
        rec.record = record;
        rec.status = WorkloadStatus::starting;
      });
      !ok)
    return ok;
  auto started = e_.runtime_call(e_.snapshot(), node, "start", {{"workload", want.spec["workload"]}});
  if (!started) return fail("instance " + id + " on " + node + ": " + started.error().message);
  // The runtime's start is idempotent by name: what a killed run started with this spec is
  // returned as it is (changed: false) and adopted here instead of started twice.
  const json record = started->value("record", *started);
  if (old.node == node && old.record.is_null() && !started->value("changed", true))
    spdlog::info("instance {}: adopted its workload on node {}, started by a run that ended before recording it", id, node);
  if (auto ok = e_.update_record<InstanceRecord>("instances", id, [&](InstanceRecord& rec) { rec.record = record; }); !ok) return ok;
  if (const std::string url = health_url(state, want); !url.empty())
    if (auto ok = wait_healthy(id, node, url, record, cancel, health_timeout); !ok) return ok;
  return e_.update_record<InstanceRecord>("instances", id, [](InstanceRecord& rec) { rec.status = WorkloadStatus::running; });
}

std::string EngineStepRunner::health_url(const json& state, const InstanceRecord& rec) const {
  const std::string health = str_or(rec.spec, "health");
  if (rec.port <= 0 || health.empty()) return {};
  return "http://" + str_or(e_.node_view(state, rec.node), "address") + ":" + std::to_string(rec.port) + health;
}

Result<void> EngineStepRunner::wait_healthy(const std::string& id, const std::string& node, const std::string& url, const json& record,
                                            const CancelToken& cancel, std::chrono::seconds timeout) {
  if (timeout.count() <= 0) timeout = e_.options_.health_timeout;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(20);
  int code = 0;
  while ((code = e_.health_->http_status(url, std::chrono::milliseconds(1000))) != 200) {
    if (cancel.aborted()) return fail("instance " + id + ": interrupted while waiting for " + url);
    auto alive = e_.runtime_call(e_.snapshot(), node, "inspect", {{"record", record}});
    if (alive && str_or(*alive, "state") != "running")
      return fail("instance " + id + " on " + node + " exited before answering " + url + "; see its log in " +
                  str_or(record, "stderr", str_or(record, "dir")));
    if (std::chrono::steady_clock::now() > deadline)
      return fail("instance " + id + " on " + node + " did not answer " + url + " with 200 within " +
                  std::to_string(timeout.count()) + " s (last status " + std::to_string(code) +
                  "); check the service's `health` path and its log in " + str_or(record, "dir"));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(250));
  }
  return {};
}

// Stays healthy for `hold`: every check in that time answers 200 and the workload keeps running.
Result<void> EngineStepRunner::hold_healthy(const std::string& id, const std::string& node, const std::string& url,
                                            const json& record, std::chrono::seconds hold, const CancelToken& cancel) {
  const std::string within = " within its min_healthy_time of " + std::to_string(hold.count()) + " s";
  std::string problem;
  const bool failed = support::wait_until(
      hold, std::chrono::milliseconds(200),
      [&] {
        if (!url.empty())
          if (const int code = e_.health_->http_status(url, std::chrono::milliseconds(1000)); code != 200) {
            problem = "instance " + id + " on " + node + " answered " + (code > 0 ? std::to_string(code) : std::string("nothing")) +
                      " at " + url + within;
            return true;
          }
        auto alive = e_.runtime_call(e_.snapshot(), node, "inspect", {{"record", record}});
        if (alive && str_or(*alive, "state") != "running") {
          problem = "instance " + id + " on " + node + " exited" + within + "; see its log in " + str_or(record, "stderr", str_or(record, "dir"));
          return true;
        }
        return false;
      },
      [&] { return cancel.aborted(); });
  if (failed) return fail(problem);
  if (cancel.aborted()) return fail("instance " + id + ": interrupted while it was being held healthy");
  return {};
}

// Re-applies the addons that follow the instances (ingress, catalog, metrics), in dependency
// order, so they match which instances are recorded running now. Only addons already applied
// take part; one serialises all, since waves of several services may run at once.
Result<void> EngineStepRunner::follow_instances(const CancelToken& cancel) {
  const std::lock_guard lock(follow_mu_);
  auto order = addon_order(e_.addons());
  if (!order) return std::unexpected(order.error());
  for (const std::string& name : *order) {
    const AddonPlan* a = e_.find_addon(name);
    if (!a || !a->needs_services() || !a->stages.empty()) continue;
    if (record_of<AddonRecord>(e_.snapshot(), "addons", name).status != AddonStatus::ready) continue;
    if (auto ok = apply_addon(name, "", false, cancel); !ok) return ok;
  }
  return {};
}

// Which version a service's rollout goes from and to (`rollouts.SERVICE` in state), for the
// canary: going back to `from` is a rollback, and `flotilla promote` marks `to` promoted. A
// rollback, or another wave of the same rollout, leaves the record as it is.
Result<void> EngineStepRunner::note_rollout(const ServiceSpec& svc, const std::string& from) {
  const std::string to = service_version(service_version_spec(svc));
  return e_.commit_if([&](json& s) {
    const RolloutRecord rec = rollout_record(s, svc.name);
    if (rec.to == to || rec.from == to) return false;
    ensure_object(s, "rollouts")[svc.name] = {{"from", from}, {"to", to}};
    return true;
  });
}

// One wave of a rolling update (see RollWave). A replacement that fails ends the rollout: with
// auto_revert the wave's instances go back to the spec they ran, and the error says which
// version runs where.
Result<void> EngineStepRunner::roll_wave(const RollWave& w, const CancelToken& cancel) {
  const ServiceSpec* svc = e_.topo_.find_service(w.service);
  if (!svc) return fail("internal error: service " + w.service + " is not in the topology");
  const std::string where = "rollout of " + w.service + ", wave " + std::to_string(w.wave) + " of " + std::to_string(w.waves);
  std::map<std::string, InstanceRecord> previous;
  for (const auto& ip : w.instances) previous[ip.id] = record_of<InstanceRecord>(e_.snapshot(), "instances", ip.id);
  if (auto ok = note_rollout(*svc, previous.begin()->second.version); !ok) return ok;
  spdlog::info("{}: taking {} out of the ingress and the catalog", where, join_ids(w.instances));
  for (const auto& ip : w.instances)
    if (auto ok = e_.update_record<InstanceRecord>("instances", ip.id, [](InstanceRecord& r) { r.status = WorkloadStatus::stopping; }); !ok)
      return ok;
  if (auto ok = follow_instances(cancel); !ok) return fail(where + ": " + ok.error().message);

  std::vector<std::string> errors(w.instances.size());
  {
    std::vector<std::thread> threads;
    for (size_t k = 0; k < w.instances.size(); ++k)
      threads.emplace_back([&, k] {
        const InstancePlan& ip = w.instances[k];
        auto ok = start_instance(ip, cancel, svc->update.healthy_deadline);
        if (ok && svc->update.min_healthy_time.count() > 0) {
          const json state = e_.snapshot();
          const auto rec = record_of<InstanceRecord>(state, "instances", ip.id);
          ok = hold_healthy(ip.id, ip.node, health_url(state, rec), rec.record, svc->update.min_healthy_time, cancel);
        }
        if (!ok) errors[k] = ok.error().message;
      });
    for (auto& t : threads) t.join();
  }
  std::vector<std::string> failed;
  for (const auto& e : errors)
    if (!e.empty()) failed.push_back(e);

  std::vector<std::string> reverted, not_reverted;
  if (!failed.empty() && svc->update.auto_revert) {
    for (const InstancePlan& ip : w.instances) {
      const InstanceRecord& old = previous[ip.id];
      if (!old.spec.is_object() || !old.spec.contains("workload")) {
        not_reverted.push_back(ip.id + " (its previous spec is not recorded)");
        continue;
      }
      auto back = launch(ip.id, old, cancel, std::chrono::seconds(0));
      if (back) reverted.push_back(ip.id);
      else not_reverted.push_back(ip.id + " (" + back.error().message + ")");
    }
  }
  // Back into the ingress and the catalog: the replacements, or the wave put back.
  auto readded = follow_instances(cancel);
  if (failed.empty()) {
    if (!readded) return fail(where + ": " + readded.error().message);
    spdlog::info("{}: {} replaced and serving", where, join_ids(w.instances));
    return {};
  }
  std::string text = where + " failed: " + join(failed, "; ");
  if (!svc->update.auto_revert) text += ". auto_revert is off, so the failed instances stay stopped and out of the ingress";
  if (!reverted.empty()) text += ". Reverted " + join(reverted, ", ") + " to the previous spec";
  if (!not_reverted.empty()) text += ". Could not revert " + join(not_reverted, ", ");
  if (!readded) text += ". Putting the instances back into the ingress failed: " + readded.error().message;
  text += ". Now running: " + versions_of(w.service) + ". Fix the service and run `flotilla up` again";
  return fail(text);
}

// "hello/v1#1, hello/v1#2".
std::string EngineStepRunner::join_ids(const std::vector<InstancePlan>& instances) {
  std::vector<std::string> ids;
  for (const auto& ip : instances) ids.push_back(ip.id);
  return join(ids, ", ");
}

// Which version each instance of `service` runs: "version 1a2b3c4d (the previous) on
// hello/v1#1, hello/v1#2; version 9f8e7d6c (the topology's) on hello/v1#3".
std::string EngineStepRunner::versions_of(const std::string& service) const {
  std::map<std::string, std::string> wanted;  // id -> spec_hash
  for (const auto& ip : plan_.instances)
    if (ip.service == service) wanted[ip.id] = ip.spec_hash;
  std::map<std::string, std::vector<std::string>> by_version;
  for (const auto& [id, rec] : records_of<InstanceRecord>(e_.snapshot(), "instances")) {
    if (rec.service != service) continue;
    const auto w = wanted.find(id);
    const bool current = w != wanted.end() && w->second == rec.spec_hash;
    const std::string version = (rec.version.empty() ? std::string("version unknown") : "version " + rec.version) +
                                (current ? " (the topology's)" : " (the previous)");
    by_version[version].push_back(id + (rec.status == WorkloadStatus::running ? "" : " (not running)"));
  }
  std::vector<std::string> parts;
  for (const auto& [version, ids] : by_version) parts.push_back(version + " on " + join(ids, ", "));
  return parts.empty() ? "no instance" : join(parts, "; ");
}

Result<void> EngineStepRunner::stop_instance(const std::string& id) {
  const json state = e_.snapshot();
  if (!obj(state, "instances").contains(id)) return {};
  const auto rec = record_of<InstanceRecord>(state, "instances", id);
  // One recorded only as intent may run all the same (the run that started it died before
  // recording it): the runtime stops it by its workload name.
  if (const json ref = workload_ref(rec); !ref.is_null()) {
    if (auto ok = e_.update_record<InstanceRecord>("instances", id, [](InstanceRecord& r) { r.status = WorkloadStatus::stopping; }); !ok)
      return ok;
    auto r = e_.runtime_call(state, rec.node, "stop", {{"record", ref}, {"timeout_s", e_.options_.stop_timeout.count()}, {"purge", true}});
    if (!r) return fail("instance " + id + ": " + r.error().message);
  }
  return e_.erase_record("instances", id);
}

Result<void> EngineStepRunner::apply_addon(const std::string& name, const std::string& stage, bool resync, const CancelToken& cancel) {
  const AddonPlan* a = e_.find_addon(name);
  if (!a) return fail("internal error: addon " + name + " is not in the topology");
  const Plugin* p = e_.host_.find("addon", a->plugin);
  std::error_code ec;
  std::filesystem::create_directories(e_.state_dir_ / "addons" / name, ec);
  if (!resync)
    if (auto ok = e_.update_record<AddonRecord>("addons", name, [&](AddonRecord& rec) {
          rec.plugin = a->plugin;
          rec.status = AddonStatus::applying;
          rec.provides = a->provides;
          rec.requires_ = a->requires_;
          rec.optional = a->optional;
        });
        !ok)
      return ok;
  json request = e_.addon_request(*a, e_.snapshot(), plan_);
  if (!stage.empty()) {
    request["stage"] = stage;
  } else if (!a->stages.empty()) {
    const std::lock_guard lock(stages_mu_);
    request["stages"] = stage_outputs_.value(name, json::object());
  }
  auto r = call_plugin(*p, p->addon->apply, "apply", request, addon_hooks(name, a->plugin, cancel));
  const std::string op = stage.empty() ? "apply" : "apply (stage " + stage + ")";
  if (r.status != FLT_OK) return std::unexpected(call_error(*p, op.c_str(), r));
  if (!stage.empty()) {
    // The addon is ready only when its whole apply has run.
    const std::lock_guard lock(stages_mu_);
    stage_outputs_[name][stage] = r.result.value("outputs", json::object());
    return {};
  }
  return e_.commit_if([&](json& s) {
    json& slot = ensure_object(s, "addons")[name];
    AddonRecord rec = slot.is_object() ? slot.get<AddonRecord>() : AddonRecord{};
    rec.status = AddonStatus::ready;
    rec.config_hash = addon_config_hash(*a);
    rec.nodes = a->nodes;
    rec.endpoints = r.result.value("endpoints", json::object());
    rec.outputs = r.result.value("outputs", json::object());
    rec.messages = r.result.value("messages", json::array());
    json updated = rec;
    if (updated == slot) return false;
    slot = std::move(updated);
    return true;
  });
}

Result<void> EngineStepRunner::destroy_addon(const std::string& name, const CancelToken& cancel) {
  const auto rec = record_of<AddonRecord>(e_.snapshot(), "addons", name);
  const std::string plugin = rec.plugin;
  std::vector<std::string> errors;
  if (const Plugin* p = e_.host_.find("addon", plugin)) {
    AddonPlan a;
    a.name = name;
    a.plugin = plugin;
    a.nodes = rec.nodes;
    if (const AddonPlan* current = e_.find_addon(name)) a = *current;
    if (auto ok = e_.update_record<AddonRecord>("addons", name, [](AddonRecord& x) { x.status = AddonStatus::destroying; }); !ok) return ok;
    auto r = call_plugin(*p, p->addon->destroy, "destroy", e_.addon_request(a, e_.snapshot(), plan_), addon_hooks(name, plugin, cancel));
    if (r.status == FLT_RETRYABLE) return std::unexpected(call_error(*p, "destroy", r));  // the executor retries
    if (r.status != FLT_OK && r.status != FLT_NOT_FOUND) errors.push_back(call_error(*p, "destroy", r).message);
  } else {
    spdlog::warn("addon {}: plugin {} is not installed; stopping its recorded components directly", name, plugin);
  }
  // Whatever the addon left running, the engine stops: it recorded every component.
  const auto left = record_of<AddonRecord>(e_.snapshot(), "addons", name);
  std::vector<std::string> keys;
  for (const auto& [key, c] : left.components) keys.push_back(key);
  for (std::string& error : broker_.stop_components(name, keys)) errors.push_back(std::move(error));
  if (!errors.empty()) return fail(join(errors, "; "));
  std::error_code ec;
  std::filesystem::remove_all(e_.state_dir_ / "addons" / name, ec);
  return e_.erase_record("addons", name);
}

}  // namespace flotilla
