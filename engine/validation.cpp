// Engine::open's checks: everything that can be checked without touching the cluster.
#include "engine.hpp"
#include "json_access.hpp"
#include "schema.hpp"
#include "util.hpp"

#include <map>

namespace flotilla {
namespace {

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

const AddonSpec* spec_of(const Topology& topo, const std::string& addon) {
  for (const auto& s : topo.addons)
    if (s.name == addon) return &s;
  return nullptr;
}

// The addon as the planner needs it: options checked and defaulted, placement resolved.
Result<AddonPlan> resolve_addon(const Topology& topo, const AddonSpec& spec, const Plugin& p, std::vector<std::string>& errors) {
  AddonPlan a;
  a.name = spec.name;
  a.plugin = spec.plugin;
  a.provides = p.provides();
  a.requires_ = p.requires_();
  a.optional = p.optional();
  a.max_parallel = p.max_parallel();
  a.reconcile = p.manifest.value("reconcile", false);
  (void)parse_addon_stages(p.manifest, a.stages);  // checked when the plugin was loaded
  const std::string who = "addon \"" + spec.name + "\" (plugin " + spec.plugin + ")";
  const json schema = p.manifest.value("schema", json::object());
  auto cfg = apply_schema(schema, spec.options, spec.option_pos, spec.pos, who);
  if (!cfg) return std::unexpected(cfg.error());
  a.config = *cfg;
  if (auto sec = resolve_secrets(schema, a.config, spec.option_pos, spec.pos, who); !sec) errors.push_back(sec.error().message);
  Placement placement = spec.placement;
  std::string mode = "all";
  if (auto pl = p.manifest.find("placement"); pl != p.manifest.end() && pl->is_object()) {
    mode = pl->value("mode", std::string("all"));
    if (placement.empty()) placement.roles = pl->value("roles", std::vector<std::string>{});
  }
  for (const auto* n : topo.place(placement)) a.nodes.push_back(n->name);
  if (a.nodes.empty() && !topo.nodes.empty())
    return fail(spec.pos.located("addon \"" + spec.name + "\" is placed on roles [" + join(placement.roles, ", ") + "] / nodes [" +
                                 join(placement.nodes, ", ") + "], which match no node; set `roles` or `nodes` in its [[addons]] table"));
  if (mode == "first" && a.nodes.size() > 1) a.nodes.resize(1);
  return a;
}

// Every required capability must be provided by another addon.
void check_capabilities(const Topology& topo, const PluginHost& host, const std::vector<AddonPlan>& addons,
                        std::vector<std::string>& errors) {
  for (const auto& a : addons)
    for (const auto& cap : a.requires_) {
      if (cap == "services") continue;
      bool found = std::any_of(addons.begin(), addons.end(), [&](const AddonPlan& b) { return b.name != a.name && contains(b.provides, cap); });
      if (found) continue;
      const AddonSpec* spec = spec_of(topo, a.name);
      std::string providers;
      for (const auto& p : host.plugins())
        if (p.kind == "addon" && contains(p.provides(), cap)) providers += (providers.empty() ? "" : ", ") + p.name;
      const std::string text = "addon \"" + a.name + "\" requires \"" + cap + "\", which no addon in the topology provides; add one of: " +
                               (providers.empty() ? "(no installed plugin provides it)" : providers);
      errors.push_back(spec ? spec->pos.located(text) : text);
    }
}

// Port clashes between service instances and addon components on the same node: service
// instances, and every addon option named *port on the nodes the addon is placed on.
void check_ports(const Topology& topo, const std::vector<AddonPlan>& addons, std::vector<std::string>& errors) {
  struct User {
    std::string what;
    SourcePos pos;
  };
  std::map<std::pair<std::string, int>, User> used;
  auto claim = [&](const std::string& node, int port, User u) {
    auto [it, fresh] = used.emplace(std::make_pair(node, port), u);
    if (!fresh)
      errors.push_back(u.pos.located(u.what + " uses port " + std::to_string(port) + " on node " + node + ", which " + it->second.what +
                                     " (" + it->second.pos.str() + ") uses too; change one of the ports"));
  };
  std::map<std::string, int> replicas;
  for (const auto& s : topo.services) replicas[s.name] = s.replicas;
  for (const auto& ip : desired_instances(topo, replicas))
    if (ip.port > 0) claim(ip.node, ip.port, {"instance " + ip.id, topo.find_service(ip.service)->pos});
  for (const auto& a : addons) {
    const AddonSpec* spec = spec_of(topo, a.name);
    for (const auto& [key, value] : a.config.items()) {
      if (key.size() < 4 || key.compare(key.size() - 4, 4, "port") != 0 || !value.is_number_integer() || value.get<int>() <= 0) continue;
      auto pos = spec->option_pos.find(key);
      for (const auto& node : a.nodes)
        claim(node, value.get<int>(), {"addon \"" + a.name + "\" (option " + key + ")", pos != spec->option_pos.end() ? pos->second : spec->pos});
    }
  }
}

// The position of a key a plugin named in an error: the key's own, else that of the nearest
// enclosing key ("registries[1].password" -> "registries[1]" -> "registries"), else the table's.
SourcePos position_of_key(const std::map<std::string, SourcePos>& positions, std::string key, const SourcePos& table_pos) {
  while (!key.empty()) {
    if (auto it = positions.find(key); it != positions.end()) return it->second;
    const auto cut = key.find_last_of(".[");
    if (cut == std::string::npos) break;
    key.resize(cut);
  }
  return table_pos;
}

}  // namespace

// [runtime.NAME] tables: the runtime must be installed, the options must fit its schema and
// pass its validate (given {config} alone, without a workload).
void Engine::check_runtimes(std::vector<std::string>& errors) {
  for (const auto& [name, r] : topo_.runtime_options) {
    auto plugin = host_.get("runtime", name);
    if (!plugin) {
      errors.push_back(r.pos.located("[runtime." + name + "]: " + plugin.error().message));
      continue;
    }
    const Plugin& p = **plugin;
    const std::string who = "runtime \"" + name + "\"";
    auto cfg = apply_schema(p.manifest.value("schema", json::object()), r.options, r.option_pos, r.pos, who);
    if (!cfg) {
      errors.push_back(cfg.error().message);
      continue;
    }
    runtime_configs_[name] = *cfg;
    if (!p.runtime->validate) continue;
    CallHooks hooks;
    hooks.instance = "validate";
    auto v = call_plugin(p, p.runtime->validate, "validate", {{"cluster", cluster_view()}, {"config", *cfg}}, hooks);
    if (v.status != FLT_OK) errors.push_back(r.pos.located(call_error(p, "validate", v).message));
    if (auto it = v.result.find("errors"); it != v.result.end() && it->is_array())
      for (const auto& e : *it) {
        const std::string key = e.is_object() ? str_or(e, "key") : std::string();
        const std::string message = e.is_object() ? str_or(e, "message") : e.is_string() ? e.get<std::string>() : e.dump();
        errors.push_back(position_of_key(r.option_pos, key, r.pos).located("[runtime." + name + "]: " + message));
      }
  }
}

Result<void> Engine::check_driver(std::vector<std::string>& errors) {
  auto driver = host_.get("driver", topo_.driver);
  if (!driver) return fail(topo_.driver_pos.located(driver.error().message));
  driver_ = *driver;
  const std::string who = "driver \"" + topo_.driver + "\"";
  const json schema = driver_->manifest.value("schema", json::object());
  auto dcfg = apply_schema(schema, topo_.driver_config, topo_.driver_option_pos, topo_.driver_pos, who);
  driver_plan_.name = topo_.driver;
  driver_plan_.max_parallel = driver_->max_parallel();
  if (auto m = driver_->manifest.find("mutable_options"); m != driver_->manifest.end() && m->is_array())
    for (const auto& k : *m)
      if (k.is_string()) driver_plan_.mutable_options.push_back(k.get<std::string>());
  if (!dcfg) errors.push_back(dcfg.error().message);
  else if (auto sec = resolve_secrets(schema, *dcfg, topo_.driver_option_pos, topo_.driver_pos, who); !sec)
    errors.push_back(sec.error().message);
  else {
    driver_plan_.config = *dcfg;
    driver_config_ = *sec;
    for (const auto& v : secret_values(schema, *sec)) add_secret(v);
  }
  if (!topo_.runtime.empty())
    if (auto rt = host_.get("runtime", topo_.runtime); !rt) errors.push_back(topo_.driver_pos.located(rt.error().message));
  return {};
}

Result<void> Engine::check_plugins() {
  std::vector<std::string> errors;
  if (auto ok = check_driver(errors); !ok) return ok;
  check_runtimes(errors);
  for (const auto& spec : topo_.addons) {
    auto plugin = host_.get("addon", spec.plugin);
    if (!plugin) {
      errors.push_back(spec.pos.located("addon \"" + spec.name + "\": " + plugin.error().message));
      continue;
    }
    auto a = resolve_addon(topo_, spec, **plugin, errors);
    if (!a) errors.push_back(a.error().message);
    else addons_.push_back(std::move(*a));
  }
  check_capabilities(topo_, host_, addons_, errors);
  if (auto order = addon_order(addons_); !order) errors.push_back(order.error().message);
  if (!errors.empty()) return fail(join(errors, "\n"));
  errors = validate_with_plugins();
  if (!errors.empty()) return fail(join(errors, "\n"));
  return {};
}

// The plugins' own checks (their validate operations), and port clashes.
std::vector<std::string> Engine::validate_with_plugins() {
  std::vector<std::string> errors;
  CallHooks hooks;
  hooks.instance = "validate";
  json nodes = json::array();
  // The runtime the nodes will have (the topology's override, else the one the driver declares),
  // so addons can refuse one they cannot run on before anything is made.
  const std::string runtime = !topo_.runtime.empty() ? topo_.runtime : driver_->manifest.value("runtime", std::string());
  for (const auto& n : topo_.nodes) {
    nodes.push_back({{"name", n.name}, {"group", n.group}, {"index", n.index}, {"roles", n.roles}, {"labels", n.labels}});
    if (!runtime.empty()) nodes.back()["runtime"] = runtime;
  }
  if (driver_->driver->validate) {
    auto r = call_plugin(*driver_, driver_->driver->validate, "validate",
                         {{"cluster", cluster_view()}, {"config", driver_config_}, {"nodes", nodes}}, hooks);
    if (r.status != FLT_OK) errors.push_back(topo_.driver_pos.located(call_error(*driver_, "validate", r).message));
    for (const auto& m : errors_of(r.result)) errors.push_back(topo_.driver_pos.located("driver \"" + topo_.driver + "\": " + m));
  }
  check_ports(topo_, addons_, errors);
  const json empty_state = json::object();
  const Plan empty_plan;
  for (const auto& a : addons_) {
    const Plugin* p = host_.find("addon", a.plugin);
    if (!p->addon->validate) continue;  // nothing to check
    const AddonSpec* spec = spec_of(topo_, a.name);
    hooks.instance = a.name;
    json req = addon_request(a, empty_state, empty_plan);
    req["nodes"] = nodes;
    auto r = call_plugin(*p, p->addon->validate, "validate", req, hooks);
    if (r.status != FLT_OK) errors.push_back(spec->pos.located(call_error(*p, "validate", r).message));
    for (const auto& m : errors_of(r.result)) errors.push_back(spec->pos.located("addon \"" + a.name + "\": " + m));
  }
  check_service_workloads(runtime, errors);
  return errors;
}

// Each service's workload as the nodes' runtime will be asked to run it (a Docker runtime needs
// an image, the process runtime a command): refused by `validate` and `plan`, not by the
// runtime half-way through `up`.
void Engine::check_service_workloads(const std::string& runtime, std::vector<std::string>& errors) {
  if (runtime.empty() || topo_.services.empty()) return;
  auto rt = host_.get("runtime", runtime);
  if (!rt || !(*rt)->runtime->validate) return;  // a missing runtime is reported with the driver
  const Plugin& p = **rt;
  const auto cfg = runtime_configs_.find(runtime);
  CallHooks hooks;
  for (const auto& svc : topo_.services) {
    if (svc.swarm_mode) continue;  // not run by the runtime: the swarm addon deploys it
    json env = json::object();
    for (const auto& [k, v] : svc.env) env[k] = v;
    const json workload = {{"name", "service-" + service_dns_label(svc.name) + "-1"}, {"owner", "service:" + svc.name},
                           {"command", svc.command}, {"image", svc.image}, {"env", env},
                           {"ports", svc.port > 0 ? json::array({svc.port}) : json::array()}};
    hooks.instance = svc.name;
    auto r = call_plugin(p, p.runtime->validate, "validate",
                         {{"workload", workload}, {"config", cfg != runtime_configs_.end() ? cfg->second : json::object()}}, hooks);
    if (r.status != FLT_OK) errors.push_back(svc.pos.located(call_error(p, "validate", r).message));
    for (const auto& m : errors_of(r.result))
      errors.push_back(svc.pos.located("service \"" + svc.name + "\" on runtime \"" + runtime + "\": " + m));
  }
}

}  // namespace flotilla
