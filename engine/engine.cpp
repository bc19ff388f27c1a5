#include "engine.hpp"

#include "schema.hpp"
#include "util.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

namespace flotilla {
namespace {

std::string str_or(const json& j, const char* key, const std::string& def = "") {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

json& ensure_object(json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_object()) j[key] = json::object();
  return j[key];
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// Names of workloads on a node must be safe as file names and unique across owners.
std::string safe_name(std::string s) {
  for (auto& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '-';
  return s;
}

std::vector<std::string> errors_of(const json& result) {
  std::vector<std::string> out;
  if (auto it = result.find("errors"); it != result.end() && it->is_array())
    for (const auto& e : *it) {
      if (e.is_string()) out.push_back(e.get<std::string>());
      else if (e.is_object()) {
        std::string m = str_or(e, "message");
        if (auto k = str_or(e, "key"); !k.empty()) m = "option \"" + k + "\": " + m;
        out.push_back(m);
      }
    }
  return out;
}

}  // namespace

int ApplyReport::failed() const {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [](auto& r) { return r.outcome == StepOutcome::failed; }));
}
int ApplyReport::skipped() const {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [](auto& r) { return r.outcome == StepOutcome::skipped; }));
}
int ApplyReport::succeeded() const {
  return static_cast<int>(std::count_if(results.begin(), results.end(), [](auto& r) { return r.outcome == StepOutcome::succeeded; }));
}

Result<std::vector<std::string>> addon_order(const std::vector<AddonPlan>& addons) {
  StepGraph g;
  for (const auto& a : addons) {
    Step s{a.name, a.name, "", {}, json::object()};
    for (const auto& b : addons) {
      if (b.name == a.name) continue;
      for (const auto& cap : b.provides)
        if (contains(a.requires_, cap) || contains(a.optional, cap)) {
          s.deps.push_back(b.name);
          break;
        }
    }
    g.steps.push_back(std::move(s));
  }
  if (auto ok = g.check(); !ok) return fail("addons depend on each other in a circle: " + ok.error().message);
  // Kahn's algorithm in file order, so the order is stable.
  std::vector<std::string> out;
  std::set<std::string> done;
  while (out.size() < g.steps.size()) {
    for (const auto& s : g.steps) {
      if (done.count(s.id)) continue;
      if (std::all_of(s.deps.begin(), s.deps.end(), [&](auto& d) { return done.count(d) > 0; })) {
        out.push_back(s.id);
        done.insert(s.id);
      }
    }
  }
  return out;
}

Result<std::unique_ptr<Engine>> Engine::open(const EngineOptions& options) {
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  auto topo = load_topology(options.topology_file);
  if (!topo) return std::unexpected(topo.error());
  e->topo_ = std::move(*topo);
  e->host_ = PluginHost::discover(PluginHost::search_path(options.plugin_path));
  if (!options.state_dir.empty()) e->state_dir_ = std::filesystem::absolute(options.state_dir);
  else e->state_dir_ = e->topo_.file.parent_path() / ".flotilla" / e->topo_.cluster_name;
  e->store_ = std::make_unique<FileStateStore>(e->state_dir_);
  if (auto ok = e->check_plugins(); !ok) return std::unexpected(ok.error());
  return e;
}

Result<void> Engine::check_plugins() {
  std::vector<std::string> errors;
  auto driver = host_.get("driver", topo_.driver);
  if (!driver) return fail(topo_.driver_pos.str() + ": " + driver.error().message);
  driver_ = *driver;
  auto dcfg = apply_schema(driver_->manifest.value("schema", json::object()), topo_.driver_config, topo_.driver_option_pos,
                           topo_.driver_pos, "driver \"" + topo_.driver + "\"");
  if (!dcfg) errors.push_back(dcfg.error().message);
  else {
    const json schema = driver_->manifest.value("schema", json::object());
    auto sec = resolve_secrets(schema, *dcfg, topo_.driver_option_pos, topo_.driver_pos, "driver \"" + topo_.driver + "\"");
    if (!sec) errors.push_back(sec.error().message);
    else {
      driver_config_ = *sec;
      for (const auto& v : secret_values(schema, *sec)) add_secret(v);
    }
  }
  if (!topo_.runtime.empty())
    if (auto rt = host_.get("runtime", topo_.runtime); !rt) errors.push_back(topo_.driver_pos.str() + ": " + rt.error().message);

  for (const auto& spec : topo_.addons) {
    auto plugin = host_.get("addon", spec.plugin);
    if (!plugin) {
      errors.push_back(spec.pos.str() + ": addon \"" + spec.name + "\": " + plugin.error().message);
      continue;
    }
    const Plugin& p = **plugin;
    AddonPlan a;
    a.name = spec.name;
    a.plugin = spec.plugin;
    a.provides = p.provides();
    a.requires_ = p.requires_();
    a.optional = p.optional();
    a.max_parallel = p.max_parallel();
    a.reconcile = p.manifest.value("reconcile", false);
    auto cfg = apply_schema(p.manifest.value("schema", json::object()), spec.options, spec.option_pos, spec.pos,
                            "addon \"" + spec.name + "\" (plugin " + spec.plugin + ")");
    if (!cfg) {
      errors.push_back(cfg.error().message);
      continue;
    }
    a.config = *cfg;
    if (auto sec = resolve_secrets(p.manifest.value("schema", json::object()), a.config, spec.option_pos, spec.pos,
                                   "addon \"" + spec.name + "\" (plugin " + spec.plugin + ")");
        !sec)
      errors.push_back(sec.error().message);
    Placement placement = spec.placement;
    std::string mode = "all";
    if (auto pl = p.manifest.find("placement"); pl != p.manifest.end() && pl->is_object()) {
      mode = pl->value("mode", std::string("all"));
      if (placement.empty()) placement.roles = pl->value("roles", std::vector<std::string>{});
    }
    for (const auto* n : topo_.place(placement)) a.nodes.push_back(n->name);
    if (a.nodes.empty() && !topo_.nodes.empty()) {
      errors.push_back(spec.pos.str() + ": addon \"" + spec.name + "\" is placed on roles [" + join(placement.roles, ", ") +
                       "] / nodes [" + join(placement.nodes, ", ") + "], which match no node; set `roles` or `nodes` in its [[addons]] table");
      continue;
    }
    if (mode == "first" && a.nodes.size() > 1) a.nodes.resize(1);
    addons_.push_back(std::move(a));
  }
  // Every required capability must be provided by another addon.
  for (const auto& a : addons_)
    for (const auto& cap : a.requires_) {
      if (cap == "services") continue;
      bool found = std::any_of(addons_.begin(), addons_.end(), [&](const AddonPlan& b) { return b.name != a.name && contains(b.provides, cap); });
      if (!found) {
        const AddonSpec* spec = nullptr;
        for (const auto& s : topo_.addons)
          if (s.name == a.name) spec = &s;
        std::string providers;
        for (const auto& p : host_.plugins())
          if (p.kind == "addon" && contains(p.provides(), cap)) providers += (providers.empty() ? "" : ", ") + p.name;
        errors.push_back((spec ? spec->pos.str() + ": " : "") + "addon \"" + a.name + "\" requires \"" + cap +
                         "\", which no addon in the topology provides; add one of: " + (providers.empty() ? "(no installed plugin provides it)" : providers));
      }
    }
  if (auto order = addon_order(addons_); !order) errors.push_back(order.error().message);
  if (!errors.empty()) return fail(join(errors, "\n"));

  // The plugins' own checks.
  CallHooks hooks;
  json nodes = json::array();
  for (const auto& n : topo_.nodes) nodes.push_back({{"name", n.name}, {"group", n.group}, {"index", n.index}, {"roles", n.roles}, {"labels", n.labels}});
  {
    hooks.instance = "validate";
    if (driver_->driver->validate) {
    auto r = call_plugin(*driver_, driver_->driver->validate, "validate", {{"cluster", cluster_view()}, {"config", driver_config_}, {"nodes", nodes}}, hooks);
    if (r.status != FLT_OK) errors.push_back(topo_.driver_pos.str() + ": " + call_error(*driver_, "validate", r).message);
    for (const auto& m : errors_of(r.result)) errors.push_back(topo_.driver_pos.str() + ": driver \"" + topo_.driver + "\": " + m);
    }
  }
  if (auto ok = check_ports(); !ok) errors.push_back(ok.error().message);
  json empty_state = json::object();
  Plan empty_plan;
  for (const auto& a : addons_) {
    const Plugin* p = host_.find("addon", a.plugin);
    const AddonSpec* spec = nullptr;
    for (const auto& s : topo_.addons)
      if (s.name == a.name) spec = &s;
    hooks.instance = a.name;
    json req = addon_request(a, empty_state, empty_plan);
    req["nodes"] = nodes;
    if (!p->addon->validate) continue;  // nothing to check
    auto r = call_plugin(*p, p->addon->validate, "validate", req, hooks);
    if (r.status != FLT_OK) errors.push_back(spec->pos.str() + ": " + call_error(*p, "validate", r).message);
    for (const auto& m : errors_of(r.result)) errors.push_back(spec->pos.str() + ": addon \"" + a.name + "\": " + m);
  }
  if (!errors.empty()) return fail(join(errors, "\n"));
  return {};
}

Result<void> Engine::check_ports() const {
  // Who listens on which port of which node: service instances, and every addon option named
  // *port on the nodes the addon is placed on. Two on one port of one node is a clash.
  struct User {
    std::string what;
    SourcePos pos;
  };
  std::map<std::pair<std::string, int>, User> used;
  std::vector<std::string> errors;
  auto claim = [&](const std::string& node, int port, User u) {
    auto [it, fresh] = used.emplace(std::make_pair(node, port), u);
    if (!fresh)
      errors.push_back(u.pos.str() + ": " + u.what + " uses port " + std::to_string(port) + " on node " + node + ", which " + it->second.what +
                       " (" + it->second.pos.str() + ") uses too; change one of the ports");
  };
  std::map<std::string, int> replicas;
  for (const auto& s : topo_.services) replicas[s.name] = s.replicas;
  for (const auto& ip : desired_instances(topo_, replicas))
    if (ip.port > 0) claim(ip.node, ip.port, {"instance " + ip.id, topo_.find_service(ip.service)->pos});
  for (const auto& a : addons_) {
    const AddonSpec* spec = nullptr;
    for (const auto& s : topo_.addons)
      if (s.name == a.name) spec = &s;
    for (const auto& [key, value] : a.config.items()) {
      if (key.size() < 4 || key.compare(key.size() - 4, 4, "port") != 0 || !value.is_number_integer() || value.get<int>() <= 0) continue;
      auto pos = spec->option_pos.find(key);
      for (const auto& node : a.nodes)
        claim(node, value.get<int>(), {"addon \"" + a.name + "\" (option " + key + ")", pos != spec->option_pos.end() ? pos->second : spec->pos});
    }
  }
  if (!errors.empty()) return fail(join(errors, "\n"));
  return {};
}

json Engine::cluster_view() const {
  return {{"name", topo_.cluster_name}, {"state_dir", state_dir_.string()}, {"bin_dir", executable_dir().string()},
          {"topology", topo_.file.string()}};
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
  auto s = store_->load();
  if (!s) return s;
  std::lock_guard lock(mu_);
  state_ = *s;
  return s;
}

json Engine::snapshot() {
  std::lock_guard lock(mu_);
  return state_;
}

Result<void> Engine::commit(const std::function<void(json&)>& fn) {
  std::unique_lock lock(mu_);
  fn(state_);
  state_["format_version"] = kStateFormatVersion;
  state_["cluster"] = topo_.cluster_name;
  state_["topology"] = topo_.file.string();
  state_["serial"] = state_.value("serial", 0LL) + 1;
  state_["updated"] = iso_now();
  const std::uint64_t mine = ++changes_;
  // Group commit: one caller saves the newest state for every change made so far, and the
  // callers whose changes it holds return with it. Parallel steps thus share one fsync instead
  // of queueing for one each, and still return only once their change is on disk. A step
  // that reads a change not yet saved cannot act on it before its own commit returns, and
  // that save holds the earlier change too.
  while (saved_ < mine) {
    if (failed_ >= mine) return std::unexpected(save_error_);
    if (saving_) {
      saved_cv_.wait(lock);
      continue;
    }
    saving_ = true;
    const std::uint64_t upto = changes_;
    const json snapshot = state_;
    lock.unlock();
    auto ok = store_->save(snapshot);
    lock.lock();
    saving_ = false;
    if (ok) saved_ = upto;
    else {
      failed_ = upto;
      save_error_ = ok.error();
    }
    saved_cv_.notify_all();
  }
  return {};
}

json Engine::node_view(const json& state, const std::string& name) const {
  json n = json::object();
  if (auto it = state.find("nodes"); it != state.end() && it->contains(name)) n = (*it)[name];
  json out = {{"name", name},
              {"group", str_or(n, "group")},
              {"index", n.value("index", 0)},
              {"slot", n.value("slot", 0)},
              {"roles", n.value("roles", json::array())},
              {"labels", n.value("labels", json::object())},
              {"address", str_or(n, "address")},
              {"runtime", str_or(n, "runtime")},
              {"runtime_config", n.value("runtime_config", json::object())},
              {"workdir", (state_dir_ / "nodes" / name).string()},
              {"state", str_or(n, "status") == "ready" ? "running" : str_or(n, "status", "missing")}};
  return out;
}

Result<json> Engine::runtime_call(const json& state, const std::string& node, const char* op, json request) {
  const json view = node_view(state, node);
  const std::string rt = view["runtime"];
  if (rt.empty()) return fail("node " + node + " has no runtime yet (it was never created); run `flotilla up`");
  auto plugin = host_.get("runtime", rt);
  if (!plugin) return fail("node " + node + ": " + plugin.error().message);
  const Plugin& p = **plugin;
  request["node"] = view;
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

json Engine::refresh(const json& state) {
  json live = {{"instances", json::object()}, {"components", json::object()}};
  if (auto it = state.find("instances"); it != state.end())
    for (const auto& [id, rec] : it->items()) {
      if (!rec.contains("record")) continue;
      auto r = runtime_call(state, str_or(rec, "node"), "inspect", {{"record", rec["record"]}});
      live["instances"][id] = r ? str_or(*r, "state", "missing") : "unknown";
    }
  if (auto it = state.find("addons"); it != state.end())
    for (const auto& [name, rec] : it->items()) {
      json comps = json::object();
      for (const json components_view = rec.value("components", json::object()); const auto& [key, c] : components_view.items()) {
        if (!c.contains("record")) continue;
        auto r = runtime_call(state, str_or(c, "node"), "inspect", {{"record", c["record"]}});
        comps[key] = r ? str_or(*r, "state", "missing") : "unknown";
      }
      live["components"][name] = comps;
    }
  return live;
}

Result<Plan> Engine::plan(bool destroy_all) {
  auto st = load_state();
  if (!st) return std::unexpected(st.error());
  PlanInput in;
  in.topology = &topo_;
  in.addons = addons_;
  in.state = *st;
  in.live = refresh(*st);
  in.driver_pool = "driver:" + topo_.driver;
  in.driver_max_parallel = driver_ ? driver_->max_parallel() : 0;
  in.destroy_all = destroy_all;
  Plan p = make_plan(in);
  if (auto ok = p.graph.check(); !ok) return fail("the plan's step graph is broken: " + ok.error().message);
  return p;
}

json Engine::addon_request(const AddonPlan& addon, const json& state, const Plan& plan) const {
  json nodes = json::array();
  for (const auto& n : topo_.nodes) {
    json v = node_view(state, n.name);
    if (v["state"] == "running") nodes.push_back(std::move(v));
  }
  const json st_instances = state.value("instances", json::object());
  json services = json::array();
  for (const auto& s : topo_.services) {
    json instances = json::array();
    for (const auto& ip : plan.instances) {
      if (ip.service != s.name) continue;
      auto it = st_instances.find(ip.id);
      if (it == st_instances.end() || str_or(*it, "status") != "running") continue;
      instances.push_back({{"id", ip.id}, {"instance", ip.instance}, {"node", ip.node},
                           {"address", str_or(node_view(state, ip.node), "address")}, {"port", ip.port}, {"state", "running"},
                           {"workload", ip.workload_name()}});
    }
    auto rep = plan.replicas.find(s.name);
    services.push_back({{"name", s.name}, {"dns", service_dns_label(s.name)}, {"port", s.port}, {"health", s.health},
                        {"replicas", rep != plan.replicas.end() ? rep->second : s.replicas}, {"instances", instances}});
  }
  json addons = json::object();
  json components = json::array();
  for (const json addons_view = state.value("addons", json::object()); const auto& [name, rec] : addons_view.items()) {
    if (name != addon.name)
      addons[name] = {{"plugin", str_or(rec, "plugin")}, {"provides", rec.value("provides", json::array())},
                      {"endpoints", rec.value("endpoints", json::object())}, {"outputs", rec.value("outputs", json::object())}};
    for (const json components_view = rec.value("components", json::object()); const auto& [key, c] : components_view.items())
      components.push_back({{"addon", name}, {"node", str_or(c, "node")}, {"name", str_or(c, "name")},
                            {"state", str_or(c, "status")}, {"record", c.value("record", json::object())}});
  }
  return {{"addon",
           {{"name", addon.name}, {"plugin", addon.plugin}, {"config", resolved_config(addon)}, {"nodes", addon.nodes},
            {"dir", (state_dir_ / "addons" / addon.name).string()}}},
          {"cluster", cluster_view()},
          {"nodes", nodes},
          {"services", services},
          {"addons", addons},
          {"components", components}};
}

// ---------------------------------------------------------------------------------------
// Running steps

struct Engine::Runner final : StepRunner {
  Engine& e;
  const Plan& plan;
  explicit Runner(Engine& engine, const Plan& p) : e(engine), plan(p) {}

  Result<void> run(const Step& step, const CancelToken& cancel) override {
    const std::string type = step.data.value("type", "");
    const std::string action = step.data.value("action", "");
    const std::string name = step.data.value("name", "");
    if (type == "node" && action == "create") return create_node(name, step.data.value("slot", 0), cancel);
    if (type == "node" && action == "update") return update_node(name);
    if (type == "node" && action == "destroy") return destroy_node(name, cancel);
    if (type == "instance" && action == "stop") return stop_instance(name);
    if (type == "instance") return start_instance(step.data, cancel);
    if (type == "addon" && action == "apply") return apply_addon(name, cancel);
    if (type == "addon" && action == "destroy") return destroy_addon(name, cancel);
    return fail("internal error: unknown step " + step.id);
  }

  CallHooks hooks_for(const std::string& instance, const CancelToken& cancel) {
    CallHooks h;
    h.instance = instance;
    h.cancelled = [&cancel] { return cancel.aborted(); };
    h.progress = [instance](const std::string& m) { spdlog::debug("{}: {}", instance, m); };
    return h;
  }

  json driver_request(const std::string& name, const json& state) {
    return {{"cluster", e.cluster_view()}, {"config", e.driver_config_}, {"node", e.node_view(state, name)}};
  }

  Result<void> create_node(const std::string& name, int slot, const CancelToken& cancel) {
    const NodeSpec* spec = e.topo_.find_node(name);
    if (!spec) return fail("internal error: node " + name + " is not in the topology");
    if (auto ok = e.commit([&](json& s) {
          json& n = ensure_object(ensure_object(s, "nodes"), name.c_str());
          n["status"] = "creating";
          n["group"] = spec->group;
          n["index"] = spec->index;
          n["slot"] = slot;
          n["roles"] = spec->roles;
          n["labels"] = spec->labels;
          n["driver"] = e.topo_.driver;
        });
        !ok)
      return ok;
    std::error_code ec;
    std::filesystem::create_directories(e.state_dir_ / "nodes" / name, ec);
    json req = driver_request(name, e.snapshot());
    req["config"] = e.driver_config_;
    auto r = call_plugin(*e.driver_, e.driver_->driver->create, "create", req, hooks_for(name, cancel));
    if (r.status != FLT_OK) {
      Error err = call_error(*e.driver_, "create", r);
      err.message = "node " + name + ": " + err.message;
      return std::unexpected(err);
    }
    std::string runtime = e.topo_.runtime.empty() ? str_or(r.result, "runtime", "process") : e.topo_.runtime;
    if (auto rt = e.host_.get("runtime", runtime); !rt) return fail("node " + name + ": " + rt.error().message);
    const std::string address = str_or(r.result, "address");
    if (address.empty()) return fail("node " + name + ": driver " + e.topo_.driver + " returned no address; this is a bug in the driver");
    return e.commit([&](json& s) {
      json& n = s["nodes"][name];
      n["status"] = "ready";
      n["address"] = address;
      n["runtime"] = runtime;
      n["runtime_config"] = r.result.value("runtime_config", json::object());
      n["data"] = r.result.value("data", json::object());
    });
  }

  Result<void> update_node(const std::string& name) {
    const NodeSpec* spec = e.topo_.find_node(name);
    return e.commit([&](json& s) {
      s["nodes"][name]["roles"] = spec->roles;
      s["nodes"][name]["labels"] = spec->labels;
    });
  }

  // Stops every workload the state records on a node (instances and addon components).
  Result<void> stop_everything_on(const std::string& node) {
    json state = e.snapshot();
    std::vector<std::string> errors;
    for (const json instances_view = state.value("instances", json::object()); const auto& [id, rec] : instances_view.items())
      if (str_or(rec, "node") == node) {
        if (auto ok = stop_instance(id); !ok) errors.push_back(ok.error().message);
      }
    for (const json addons_view = state.value("addons", json::object()); const auto& [addon, rec] : addons_view.items())
      for (const json components_view = rec.value("components", json::object()); const auto& [key, c] : components_view.items())
        if (str_or(c, "node") == node) {
          if (auto ok = stop_component(addon, key); !ok) errors.push_back(ok.error().message);
        }
    if (!errors.empty()) return fail(join(errors, "; "));
    return {};
  }

  Result<void> destroy_node(const std::string& name, const CancelToken& cancel) {
    if (auto ok = stop_everything_on(name); !ok) return ok;
    if (auto ok = e.commit([&](json& s) { s["nodes"][name]["status"] = "destroying"; }); !ok) return ok;
    json state = e.snapshot();
    json req = driver_request(name, state);
    req["record"] = {{"address", str_or(state["nodes"][name], "address")}, {"runtime", str_or(state["nodes"][name], "runtime")},
                     {"data", state["nodes"][name].value("data", json::object())}};
    auto r = call_plugin(*e.driver_, e.driver_->driver->destroy, "destroy", req, hooks_for(name, cancel));
    if (r.status != FLT_OK && r.status != FLT_NOT_FOUND) {
      Error err = call_error(*e.driver_, "destroy", r);
      err.message = "node " + name + ": " + err.message;
      return std::unexpected(err);
    }
    std::error_code ec;
    std::filesystem::remove_all(e.state_dir_ / "nodes" / name, ec);
    return e.commit([&](json& s) { s["nodes"].erase(name); });
  }

  Result<std::string> resolve_command0(const std::string& cmd) {
    auto found = find_executable(cmd, {executable_dir()});
    if (!found) return fail("command `" + cmd + "` is not found in " + executable_dir().string() + " or on PATH; install it or give its full path");
    return found->string();
  }

  Result<void> start_instance(const json& data, const CancelToken& cancel) {
    const std::string id = data["name"];
    const std::string node = data["node"];
    const int port = data["port"];
    const ServiceSpec* svc = e.topo_.find_service(data["service"]);
    json state = e.snapshot();
    const json nv = e.node_view(state, node);
    const std::string address = nv["address"];
    std::map<std::string, std::string> vars = {{"address", address},
                                               {"port", std::to_string(port)},
                                               {"instance", std::to_string(data["instance"].get<int>())},
                                               {"id", id},
                                               {"node", node},
                                               {"service", svc->name}};
    json command = json::array();
    for (const auto& arg : svc->command) command.push_back(substitute(arg, vars));
    if (!command.empty()) {
      auto resolved = resolve_command0(command[0]);
      if (!resolved) return fail("instance " + id + " (" + svc->pos.str() + "): " + resolved.error().message);
      command[0] = *resolved;
    }
    json env = json::object();
    for (const auto& [k, v] : svc->env) env[k] = substitute(v, vars);
    env["FLOTILLA_INSTANCE"] = id;
    env["FLOTILLA_SERVICE"] = svc->name;
    if (port > 0) env["PORT"] = std::to_string(port);
    const json workload = {{"name", data["workload"]}, {"owner", "service:" + svc->name}, {"command", command},
                           {"image", svc->image}, {"env", env}, {"ports", port > 0 ? json::array({port}) : json::array()}};
    // A replaced instance that moves to another node is stopped where it was first.
    if (auto it = state["instances"].find(id); it != state["instances"].end() && str_or(*it, "node") != node)
      if (auto ok = stop_instance(id); !ok) return ok;
    if (auto ok = e.commit([&](json& s) {
          json& rec = ensure_object(ensure_object(s, "instances"), id.c_str());
          rec["service"] = svc->name;
          rec["instance"] = data["instance"];
          rec["node"] = node;
          rec["port"] = port;
          rec["spec_hash"] = data["spec_hash"];
          rec["workload"] = data["workload"];
          rec["command"] = command;
          rec["image"] = svc->image;
          rec["status"] = "starting";
        });
        !ok)
      return ok;
    auto started = e.runtime_call(e.snapshot(), node, "start", {{"workload", workload}});
    if (!started) return fail("instance " + id + " on " + node + ": " + started.error().message);
    const json record = started->value("record", *started);
    if (auto ok = e.commit([&](json& s) { s["instances"][id]["record"] = record; }); !ok) return ok;
    if (port > 0 && !svc->health.empty()) {
      const std::string url = "http://" + address + ":" + std::to_string(port) + svc->health;
      const auto deadline = std::chrono::steady_clock::now() + e.options_.health_timeout;
      auto delay = std::chrono::milliseconds(20);
      int code = 0;
      while ((code = http_get(url, std::chrono::milliseconds(1000))) != 200) {
        if (cancel.aborted()) return fail("instance " + id + ": interrupted while waiting for " + url);
        auto alive = e.runtime_call(e.snapshot(), node, "inspect", {{"record", record}});
        if (alive && str_or(*alive, "state") != "running")
          return fail("instance " + id + " on " + node + " exited before answering " + url + "; see its log in " +
                      str_or(record, "stderr", str_or(record, "dir")));
        if (std::chrono::steady_clock::now() > deadline)
          return fail("instance " + id + " on " + node + " did not answer " + url + " with 200 within " +
                      std::to_string(e.options_.health_timeout.count()) + " s (last status " + std::to_string(code) +
                      "); check the service's `health` path and its log in " + str_or(record, "dir"));
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, std::chrono::milliseconds(250));
      }
    }
    return e.commit([&](json& s) { s["instances"][id]["status"] = "running"; });
  }

  Result<void> stop_instance(const std::string& id) {
    json state = e.snapshot();
    auto it = state["instances"].find(id);
    if (it == state["instances"].end()) return {};
    const std::string node = str_or(*it, "node");
    if (it->contains("record")) {
      if (auto ok = e.commit([&](json& s) { s["instances"][id]["status"] = "stopping"; }); !ok) return ok;
      auto r = e.runtime_call(state, node, "stop",
                              {{"record", (*it)["record"]}, {"timeout_s", e.options_.stop_timeout.count()}, {"purge", true}});
      if (!r) return fail("instance " + id + ": " + r.error().message);
    }
    return e.commit([&](json& s) { s["instances"].erase(id); });
  }

  Result<void> stop_component(const std::string& addon, const std::string& key) {
    json state = e.snapshot();
    const json c = state["addons"][addon]["components"].value(key, json::object());
    if (c.contains("record")) {
      auto r = e.runtime_call(state, str_or(c, "node"), "stop",
                              {{"record", c["record"]}, {"timeout_s", e.options_.stop_timeout.count()}, {"purge", true}});
      if (!r) return fail("addon " + addon + " component " + key + ": " + r.error().message);
    }
    return e.commit([&](json& s) { s["addons"][addon]["components"].erase(key); });
  }

  // Runtime operations asked for by an addon: recorded in state before and after.
  flt_status addon_runtime(const std::string& addon, const json& req, json& out) {
    const std::string op = req.value("op", "");
    auto err = [&](flt_status st, const std::string& m) {
      out = {{"error", m}};
      return st;
    };
    if (op == "list") {
      json comps = json::array();
      for (const json components_view = e.snapshot()["addons"][addon].value("components", json::object()); const auto& [key, c] : components_view.items())
        comps.push_back({{"key", key}, {"node", str_or(c, "node")}, {"name", str_or(c, "name")}, {"record", c.value("record", json::object())}});
      out = {{"components", comps}};
      return FLT_OK;
    }
    const std::string node = req.value("node", "");
    json state = e.snapshot();
    if (!state["nodes"].contains(node) || str_or(state["nodes"][node], "status") != "ready")
      return err(FLT_INVALID, "node \"" + node + "\" does not exist or is not ready");
    if (op == "put_file" || op == "remove_file") {
      const std::string path = safe_name(addon) + "/" + req.value("path", "");
      json r_req = {{"path", path}};
      if (op == "remove_file") r_req["remove"] = true;
      else r_req.update({{"content", req.value("content", "")}, {"mode", req.value("mode", 0644)}});
      auto r = e.runtime_call(state, node, "put_file", r_req);
      if (!r) return err(r.error().retryable ? FLT_RETRYABLE : FLT_ERROR, r.error().message);
      out = *r;
      return FLT_OK;
    }
    const std::string name = req.value("name", req.contains("workload") ? req["workload"].value("name", "") : std::string());
    if (name.empty()) return err(FLT_INVALID, "runtime operation " + op + " needs a workload name");
    const std::string key = node + "/" + name;
    const json comp = state["addons"][addon]["components"].value(key, json::object());
    if (op == "start") {
      json workload = req.value("workload", json::object());
      workload["name"] = "addon-" + safe_name(addon) + "-" + safe_name(name);
      workload["owner"] = "addon:" + addon;
      if (workload.contains("command") && workload["command"].is_array() && !workload["command"].empty()) {
        auto resolved = resolve_command0(workload["command"][0]);
        if (!resolved) return err(FLT_INVALID, resolved.error().message);
        workload["command"][0] = *resolved;
      }
      if (auto ok = e.commit([&](json& s) {
            json& c = ensure_object(ensure_object(ensure_object(ensure_object(s, "addons"), addon.c_str()), "components"), key.c_str());
            c["node"] = node;
            c["name"] = name;
            c["workload"] = workload["name"];
            c["command"] = workload.value("command", json::array());
            c["image"] = workload.value("image", "");
            c["status"] = "starting";
          });
          !ok)
        return err(FLT_ERROR, ok.error().message);
      auto r = e.runtime_call(e.snapshot(), node, "start", {{"workload", workload}});
      if (!r) return err(r.error().retryable ? FLT_RETRYABLE : FLT_ERROR, r.error().message);
      const json record = r->value("record", *r);
      if (auto ok = e.commit([&](json& s) {
            s["addons"][addon]["components"][key]["record"] = record;
            s["addons"][addon]["components"][key]["status"] = "running";
          });
          !ok)
        return err(FLT_ERROR, ok.error().message);
      out = *r;
      return FLT_OK;
    }
    if (!comp.contains("record")) {
      if (op == "stop") {
        out = json::object();
        return FLT_OK;
      }
      if (op == "inspect") {
        out = {{"state", "missing"}};
        return FLT_OK;
      }
      return err(FLT_NOT_FOUND, "addon " + addon + " has no component " + name + " on node " + node);
    }
    if (op == "stop") {
      auto ok = stop_component(addon, key);
      if (!ok) return err(FLT_ERROR, ok.error().message);
      out = json::object();
      return FLT_OK;
    }
    if (op == "inspect" || op == "signal") {
      json r_req = {{"record", comp["record"]}};
      if (op == "signal") r_req["signal"] = req.value("signal", "HUP");
      auto r = e.runtime_call(state, node, op.c_str(), r_req);
      if (!r) return err(r.error().retryable ? FLT_RETRYABLE : FLT_ERROR, r.error().message);
      out = *r;
      return FLT_OK;
    }
    return err(FLT_INVALID, "unknown runtime operation \"" + op + "\"; see docs/sdk-reference.md");
  }

  CallHooks addon_hooks(const std::string& addon, const CancelToken& cancel) {
    CallHooks h = hooks_for(addon, cancel);
    h.runtime = [this, addon](const json& req, json& out) { return addon_runtime(addon, req, out); };
    h.state_get = [this, addon] {
      json s = e.snapshot();
      return s["addons"][addon].value("state", json::object());
    };
    h.state_set = [this, addon](const json& v) { (void)e.commit([&](json& s) { s["addons"][addon]["state"] = v; }); };
    return h;
  }

  Result<void> apply_addon(const std::string& name, const CancelToken& cancel) {
    const AddonPlan* a = nullptr;
    for (const auto& x : e.addons_)
      if (x.name == name) a = &x;
    const Plugin* p = e.host_.find("addon", a->plugin);
    std::error_code ec;
    std::filesystem::create_directories(e.state_dir_ / "addons" / name, ec);
    if (auto ok = e.commit([&](json& s) {
          json& rec = ensure_object(ensure_object(s, "addons"), name.c_str());
          rec["plugin"] = a->plugin;
          rec["status"] = "applying";
          rec["provides"] = a->provides;
          rec["requires"] = a->requires_;
          rec["optional"] = a->optional;
          ensure_object(rec, "components");
        });
        !ok)
      return ok;
    json req = e.addon_request(*a, e.snapshot(), plan);
    auto r = call_plugin(*p, p->addon->apply, "apply", req, addon_hooks(name, cancel));
    if (r.status != FLT_OK) return std::unexpected(call_error(*p, "apply", r));
    return e.commit([&](json& s) {
      json& rec = s["addons"][name];
      rec["status"] = "ready";
      rec["config_hash"] = stable_hash(a->config.dump());
      rec["nodes"] = a->nodes;
      rec["endpoints"] = r.result.value("endpoints", json::object());
      rec["outputs"] = r.result.value("outputs", json::object());
      rec["messages"] = r.result.value("messages", json::array());
    });
  }

  Result<void> destroy_addon(const std::string& name, const CancelToken& cancel) {
    json state = e.snapshot();
    const json rec = state["addons"][name];
    const std::string plugin = str_or(rec, "plugin");
    std::vector<std::string> errors;
    if (const Plugin* p = e.host_.find("addon", plugin)) {
      AddonPlan a;
      a.name = name;
      a.plugin = plugin;
      a.nodes = rec.value("nodes", std::vector<std::string>{});
      for (const auto& x : e.addons_)
        if (x.name == name) a = x;
      if (auto ok = e.commit([&](json& s) { s["addons"][name]["status"] = "destroying"; }); !ok) return ok;
      auto r = call_plugin(*p, p->addon->destroy, "destroy", e.addon_request(a, e.snapshot(), plan), addon_hooks(name, cancel));
      if (r.status == FLT_RETRYABLE) return std::unexpected(call_error(*p, "destroy", r));  // the executor retries
      if (r.status != FLT_OK && r.status != FLT_NOT_FOUND) errors.push_back(call_error(*p, "destroy", r).message);
    } else {
      spdlog::warn("addon {}: plugin {} is not installed; stopping its recorded components directly", name, plugin);
    }
    // Whatever the addon left running, the engine stops: it recorded every component.
    for (const json components_view = e.snapshot()["addons"][name].value("components", json::object()); const auto& [key, c] : components_view.items())
      if (auto ok = stop_component(name, key); !ok) errors.push_back(ok.error().message);
    if (!errors.empty()) return fail(join(errors, "; "));
    std::error_code ec;
    std::filesystem::remove_all(e.state_dir_ / "addons" / name, ec);
    return e.commit([&](json& s) { s["addons"].erase(name); });
  }
};

Result<ApplyReport> Engine::apply(const Plan& plan, CancelToken& cancel, ExecutionObserver* observer) {
  ApplyReport report;
  if (plan.graph.steps.empty()) return report;
  if (auto ok = commit([](json&) {}); !ok) return std::unexpected(ok.error());
  Runner runner(*this, plan);
  ExecOptions opts;
  opts.parallelism = options_.parallelism;
  if (driver_ && driver_->max_parallel() > 0) opts.pool_limits["driver:" + topo_.driver] = driver_->max_parallel();
  for (const auto& a : addons_)
    if (a.max_parallel > 0) opts.pool_limits["addon:" + a.plugin] = a.max_parallel;
  report.results = execute(plan.graph, runner, opts, cancel, observer);
  report.interrupted = cancel.stop_scheduling();
  return report;
}

void Engine::cleanup_after_down() {
  json s = snapshot();
  const bool empty = s.value("nodes", json::object()).empty() && s.value("instances", json::object()).empty() &&
                     s.value("addons", json::object()).empty();
  if (!empty) return;
  std::error_code ec;
  for (const char* sub : {"nodes", "addons"}) std::filesystem::remove_all(state_dir_ / sub, ec);
  for (const char* f : {"state.json", "state.json.bak", "events.jsonl"}) std::filesystem::remove(state_dir_ / f, ec);
  // The lock file is removed by its holder; the directory goes once it is empty.
}

Result<void> Engine::set_replicas(const std::string& service, int replicas) {
  const ServiceSpec* s = topo_.find_service(service);
  if (!s) {
    std::vector<std::string> names;
    for (const auto& x : topo_.services) names.push_back(x.name);
    return fail("service \"" + service + "\" is not in " + topo_.file.string() + "; services: " + join(names, ", "));
  }
  if (auto st = load_state(); !st) return std::unexpected(st.error());
  return commit([&](json& st) {
    st["overrides"]["replicas"][service] = {{"replicas", replicas}, {"file_replicas", s->replicas}};
  });
}

json Engine::status(const json& state, const json& live) const {
  json out = {{"cluster", topo_.cluster_name}, {"state_dir", state_dir_.string()}};
  json nodes = json::array();
  for (const json nodes_view = state.value("nodes", json::object()); const auto& [name, rec] : nodes_view.items())
    nodes.push_back({{"name", name}, {"address", str_or(rec, "address")}, {"roles", rec.value("roles", json::array())},
                     {"runtime", str_or(rec, "runtime")}, {"state", str_or(rec, "status") == "ready" ? "running" : str_or(rec, "status")}});
  std::sort(nodes.begin(), nodes.end(), [](const json& a, const json& b) { return a["address"] < b["address"]; });
  out["nodes"] = nodes;
  const json st_nodes = state.value("nodes", json::object());
  const auto replicas = effective_replicas(topo_, state);
  json services = json::array();
  std::set<std::string> names;
  for (const auto& s : topo_.services) names.insert(s.name);
  for (const json instances_view = state.value("instances", json::object()); const auto& [id, rec] : instances_view.items()) names.insert(str_or(rec, "service"));
  for (const auto& name : names) {
    json instances = json::array();
    for (const json instances_view = state.value("instances", json::object()); const auto& [id, rec] : instances_view.items()) {
      if (str_or(rec, "service") != name) continue;
      std::string st = str_or(rec, "status");
      if (auto l = live["instances"].find(id); l != live["instances"].end() && st == "running") st = l->get<std::string>();
      const std::string node = str_or(rec, "node");
      instances.push_back({{"id", id}, {"instance", rec.value("instance", 0)}, {"node", node},
                           {"address", st_nodes.contains(node) ? str_or(st_nodes[node], "address") : ""},
                           {"port", rec.value("port", 0)}, {"state", st}, {"pid", rec.value("record", json::object()).value("pid", 0)}});
    }
    std::sort(instances.begin(), instances.end(), [](const json& a, const json& b) { return a["instance"] < b["instance"]; });
    auto r = replicas.find(name);
    services.push_back({{"name", name}, {"replicas", r != replicas.end() ? r->second : 0}, {"instances", instances}});
  }
  out["services"] = services;
  json addons = json::array();
  json endpoints = json::object();
  for (const json addons_view = state.value("addons", json::object()); const auto& [name, rec] : addons_view.items()) {
    json comps = json::array();
    for (const json components_view = rec.value("components", json::object()); const auto& [key, c] : components_view.items()) {
      std::string st = str_or(c, "status");
      const json live_comps = live.value("components", json::object()).value(name, json::object());
      if (auto l = live_comps.find(key); l != live_comps.end()) st = l->get<std::string>();
      comps.push_back({{"node", str_or(c, "node")}, {"name", str_or(c, "name")}, {"state", st},
                       {"pid", c.value("record", json::object()).value("pid", 0)}});
    }
    addons.push_back({{"name", name}, {"plugin", str_or(rec, "plugin")}, {"state", str_or(rec, "status")}, {"components", comps},
                      {"messages", rec.value("messages", json::array())}});
    for (const json endpoints_view = rec.value("endpoints", json::object()); const auto& [k, v] : endpoints_view.items()) endpoints[k] = v;
  }
  out["addons"] = addons;
  out["endpoints"] = endpoints;
  return out;
}

}  // namespace flotilla
