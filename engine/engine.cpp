#include "engine.hpp"

#include "addon_request.hpp"
#include "clock.hpp"
#include "json_access.hpp"
#include "plugin_views.hpp"
#include "schema.hpp"
#include "state_migration.hpp"
#include "status.hpp"
#include "step_runner.hpp"
#include "util.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <atomic>
#include <thread>

namespace flotilla {

int ApplyReport::failed() const {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [](auto& r) { return r.outcome == StepOutcome::failed; }));
}
int ApplyReport::skipped() const {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [](auto& r) { return r.outcome == StepOutcome::skipped; }));
}
int ApplyReport::succeeded() const {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [](auto& r) { return r.outcome == StepOutcome::succeeded; }));
}

Result<std::unique_ptr<Engine>> Engine::open(const EngineOptions& options, EngineDeps deps) {
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  auto topo = load_topology(options.topology_file);
  if (!topo) return std::unexpected(topo.error());
  e->topo_ = std::move(*topo);
  if (deps.host) {
    e->host_ = std::move(*deps.host);
  } else {
    e->host_ = PluginHost::discover(PluginHost::search_path(options.plugin_path));
    for (const auto& problem : e->host_.problems()) spdlog::warn("{}", problem.message);
  }
  e->state_dir_ = state_dir_for(e->topo_, options.state_dir);
  e->store_ = deps.store ? std::move(deps.store)
                         : std::make_unique<FileStateStore>(e->state_dir_, restore_command(options.topology_file, options.state_dir));
  e->health_ = deps.health ? std::move(deps.health) : std::make_shared<HttpHealthProbe>();
  Engine* self = e.get();
  e->journal_ = std::make_unique<StateJournal>(*e->store_, [self](json& s) {
    s["format_version"] = kStateFormatVersion;
    s["cluster"] = self->topo_.cluster_name;
    s["topology"] = self->topo_.file.string();
    s["serial"] = s.value("serial", 0LL) + 1;
    s["updated"] = iso_now();
  });
  if (auto ok = e->check_plugins(); !ok) return std::unexpected(ok.error());
  return e;
}

std::filesystem::path Engine::state_dir_for(const Topology& topo, const std::filesystem::path& state_dir) {
  if (!state_dir.empty()) return std::filesystem::absolute(state_dir);
  return topo.file.parent_path() / ".flotilla" / topo.cluster_name;
}

std::string restore_command(const std::filesystem::path& topology_file, const std::filesystem::path& state_dir) {
  std::string out = "flotilla state restore-backup " + topology_file.string();
  if (!state_dir.empty()) out += " --state-dir " + state_dir.string();
  return out;
}

json Engine::cluster_view() const { return flotilla::cluster_view(topo_, state_dir_); }

json Engine::node_view(const json& state, const std::string& name) const { return flotilla::node_view(state, name, state_dir_); }

json Engine::addon_request(const AddonPlan& addon, const json& state, const Plan& plan) const {
  return flotilla::addon_request(topo_, state_dir_, addon, resolved_config(addon), state, plan);
}

const AddonPlan* Engine::find_addon(const std::string& name) const {
  for (const auto& a : addons_)
    if (a.name == name) return &a;
  return nullptr;
}

json Engine::resolved_config(const AddonPlan& addon) const {
  const Plugin* p = host_.find("addon", addon.plugin);
  const json schema = p ? p->manifest.value("schema", json::object()) : json::object();
  auto r = resolve_secrets(schema, addon.config, {}, {}, "addon \"" + addon.name + "\"");
  if (!r) return addon.config;  // reported by check_plugins before anything runs
  for (const auto& v : secret_values(schema, *r)) add_secret(v);
  return *r;
}

Result<json> Engine::load_state() {
  return journal_->load([this](json s) { return migrate_state(std::move(s), topo_, addons_, driver_option_hashes()); });
}

Result<json> Engine::runtime_call(const json& state, const std::string& node, const char* op, json request) {
  const json view = node_view(state, node);
  const std::string rt = view["runtime"];
  if (rt.empty()) return fail("node " + node + " has no runtime yet (it was never created); run `flotilla up`");
  auto plugin = host_.get("runtime", rt);
  if (!plugin) return fail("node " + node + ": " + plugin.error().message);
  const Plugin& p = **plugin;
  request["node"] = view;
  const auto config = runtime_configs_.find(rt);
  request["config"] = config != runtime_configs_.end() ? config->second : json::object();
  flt_operation fn = nullptr;
  const std::string o = op;
  if (o == "start") fn = p.runtime->start;
  else if (o == "stop") fn = p.runtime->stop;
  else if (o == "inspect") fn = p.runtime->inspect;
  else if (o == "signal") fn = p.runtime->signal;
  else if (o == "put_file") fn = p.runtime->put_file;
  else if (o == "validate") fn = p.runtime->validate;
  CallHooks hooks;
  hooks.instance = node;
  auto r = call_plugin(p, fn, op, request, hooks);
  if (r.status == FLT_NOT_FOUND && (o == "stop" || o == "inspect")) return json{{"state", "missing"}};
  if (r.status != FLT_OK) {
    Error e = call_error(p, op, r);
    e.message = "node " + node + ": " + e.message;
    return std::unexpected(e);
  }
  return r.result;
}

json Engine::driver_option_hashes() const {
  json out = json::object();
  for (const auto& [k, v] : driver_plan_.config.items()) out[k] = stable_hash(v.dump());
  return out;
}

json Engine::inspect_nodes(const json& state) {
  json out = json::object();
  if (!driver_ || !driver_->driver->inspect) return out;
  const auto nodes = records_of<NodeRecord>(state, "nodes");
  std::vector<std::string> names;
  for (const auto& [name, rec] : nodes)
    if (rec.status == NodeStatus::ready) names.push_back(name);
  std::vector<std::string> found(names.size());
  int workers = std::max(1, options_.parallelism);
  if (driver_->max_parallel() > 0) workers = std::min(workers, driver_->max_parallel());
  workers = std::min<int>(workers, static_cast<int>(names.size()));
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next.fetch_add(1); i < names.size(); i = next.fetch_add(1)) {
      const NodeRecord& rec = nodes.at(names[i]);
      json req = {{"cluster", cluster_view()}, {"config", driver_config_}, {"node", node_view(state, names[i])},
                  {"record", {{"address", rec.address}, {"runtime", rec.runtime}, {"data", rec.data}}}};
      CallHooks hooks;
      hooks.instance = names[i];
      auto r = call_plugin(*driver_, driver_->driver->inspect, "inspect", req, hooks);
      if (r.status == FLT_NOT_FOUND) found[i] = "missing";
      else if (r.status != FLT_OK) {
        spdlog::warn("driver:{}:{}: {}", driver_->name, names[i], call_error(*driver_, "inspect", r).message);
        found[i] = "unknown";
      } else found[i] = str_or(r.result, "state", "unknown");
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < names.size(); ++i) out[names[i]] = found[i];
  return out;
}

json Engine::refresh(const json& state) {
  json live = {{"nodes", inspect_nodes(state)}, {"instances", json::object()}, {"components", json::object()}};
  // Every recorded workload is inspected, on up to --parallelism threads (with Docker each is a
  // request). A workload recorded only as intent is looked up by its name (workload_ref).
  struct Probe {
    json* section;  // where its state goes: live["instances"] or live["components"][addon]
    std::string key, node;
    json ref;
    std::string seen = "unknown";
  };
  std::vector<Probe> probes;
  json& instances = live["instances"];
  for (const auto& [id, rec] : records_of<InstanceRecord>(state, "instances"))
    if (json ref = workload_ref(rec); !ref.is_null()) probes.push_back({&instances, id, rec.node, std::move(ref)});
  for (const auto& [name, rec] : records_of<AddonRecord>(state, "addons")) {
    json& comps = live["components"][name] = json::object();
    for (const auto& [key, c] : rec.components)
      if (json ref = workload_ref(name, c); !ref.is_null()) probes.push_back({&comps, key, c.node, std::move(ref)});
  }
  parallel_for(probes.size(), static_cast<size_t>(std::max(1, options_.parallelism)), [&](size_t i) {
    Probe& p = probes[i];
    try {
      auto r = runtime_call(state, p.node, "inspect", {{"record", p.ref}});
      p.seen = r ? str_or(*r, "state", "missing") : "unknown";
    } catch (const std::exception&) {
      p.seen = "unknown";
    }
  });
  for (const Probe& p : probes) (*p.section)[p.key] = p.seen;
  return live;
}

Result<Plan> Engine::plan(bool destroy_all) {
  auto st = load_state();
  if (!st) return std::unexpected(st.error());
  PlanInput in;
  in.topology = &topo_;
  in.addons = addons_;
  in.driver = driver_plan_;
  in.state = *st;
  in.live = refresh(*st);
  in.driver_pool = "driver:" + topo_.driver;
  in.driver_max_parallel = driver_ ? driver_->max_parallel() : 0;
  in.destroy_all = destroy_all;
  Plan p = make_plan(in);
  if (auto ok = p.graph.check(); !ok) return fail("the plan's step graph is broken: " + ok.error().message);
  return p;
}

Result<ApplyReport> Engine::apply(const Plan& plan, CancelToken& cancel, ExecutionObserver* observer) {
  ApplyReport report;
  if (plan.graph.steps.empty()) return report;
  if (auto ok = commit([](json&) {}); !ok) return std::unexpected(ok.error());
  EngineStepRunner runner(*this, plan);
  ExecOptions opts;
  opts.parallelism = options_.parallelism;
  if (driver_ && driver_->max_parallel() > 0) opts.pool_limits["driver:" + topo_.driver] = driver_->max_parallel();
  for (const auto& a : addons_)
    if (a.max_parallel > 0) opts.pool_limits["addon:" + a.plugin] = a.max_parallel;
  report.results = execute(plan.graph, runner, opts, cancel, observer);
  report.interrupted = cancel.stop_scheduling();
  return report;
}

void Engine::remove_stale_temp_files() const {
  // Temp files of atomic writes (".state.json.tmp-PID-N", ".lock.tmp-PID-N", and of the netns
  // driver's bridge mark) that a run killed mid-write left behind; a live writer's are kept
  // (only a run that is taking the lock now).
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    std::size_t at = std::string::npos;
    for (const char* prefix : {".state.json.tmp-", ".state.json.bak.tmp-", ".lock.tmp-"})
      if (name.starts_with(prefix)) at = std::string_view(prefix).size();
    if (const auto tmp = name.rfind(".tmp-"); name.starts_with(".netns-bridge-") && tmp != std::string::npos) at = tmp + 5;
    if (at == std::string::npos) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + at, &end, 10);
    if (end == nullptr || *end != '-') continue;
    const bool dead = pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    if (pid == ::getpid() || dead) std::filesystem::remove(entry.path(), ec);
  }
}

void Engine::cleanup_after_down() {
  const json s = snapshot();
  if (!obj(s, "nodes").empty() || !obj(s, "instances").empty() || !obj(s, "addons").empty()) return;
  // Only what flotilla writes here goes (docs/cli.md, "What down removes"): a file a user put
  // in the directory stays, and so does the directory then. Each node's and addon's own
  // directory went with it when it was destroyed; `nodes` and `addons` go only when empty.
  // The backup goes before the state file: a crash in between leaves a state file recording
  // nothing, never a lone backup, which would read as a lost state.
  std::error_code ec;
  for (const char* f : {"state.json.bak", "state.json", "events.jsonl"}) std::filesystem::remove(state_dir_ / f, ec);
  for (const char* sub : {"nodes", "addons"})
    if (std::filesystem::is_directory(std::filesystem::symlink_status(state_dir_ / sub, ec))) std::filesystem::remove(state_dir_ / sub, ec);
  remove_stale_temp_files();
  // The lock file is removed by its holder; the directory goes once it is empty.
}

Result<const ServiceSpec*> Engine::service_named(const std::string& service) const {
  if (const ServiceSpec* s = topo_.find_service(service)) return s;
  std::vector<std::string> names;
  for (const auto& x : topo_.services) names.push_back(x.name);
  return fail("service \"" + service + "\" is not in " + topo_.file.string() + "; services: " + join(names, ", "));
}

Result<void> Engine::set_replicas(const std::string& service, int replicas) {
  auto found = service_named(service);
  if (!found) return std::unexpected(found.error());
  const ServiceSpec* s = *found;
  if (auto st = load_state(); !st) return std::unexpected(st.error());
  return commit([&](json& st) { st["overrides"]["replicas"][service] = {{"replicas", replicas}, {"file_replicas", s->replicas}}; });
}

Result<void> Engine::promote(const std::string& service) {
  auto found = service_named(service);
  if (!found) return std::unexpected(found.error());
  const ServiceSpec* s = *found;
  if (s->update.canary == 0)
    return fail("service " + service + " has no canary (" + s->pos.str() + "); a rollout without one needs no promote: run `flotilla up`");
  auto st = load_state();
  if (!st) return std::unexpected(st.error());
  const std::string version = service_version(service_version_spec(*s));
  if (rollout_record(*st, service).to != version)
    return fail("no canary of service " + service + " runs version " + version + " (what " + topo_.file.filename().string() +
                " says) yet; run `flotilla up` first to start it");
  return commit([&](json& state) { state["rollouts"][service]["promoted"] = version; });
}

json Engine::status(const json& state, const json& live) const { return cluster_status(topo_, state_dir_, state, live); }

}  // namespace flotilla
