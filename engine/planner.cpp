#include "planner.hpp"

#include "addon_graph.hpp"
#include "json_access.hpp"
#include "state_records.hpp"
#include "util.hpp"

#include <algorithm>
#include <set>
#include <unordered_set>

namespace flotilla {

bool AddonPlan::needs_services() const { return contains(requires_, "services"); }

std::string InstancePlan::workload_name() const { return "service-" + service_dns_label(service) + "-" + std::to_string(instance); }

char change_symbol(Change c) {
  switch (c) {
    case Change::create: return '+';
    case Change::update: return '~';
    case Change::repair: return '!';
    case Change::destroy: return '-';
    case Change::resync: return '=';
  }
  return '?';
}

const char* change_name(Change c) {
  switch (c) {
    case Change::create: return "create";
    case Change::update: return "update";
    case Change::repair: return "repair";
    case Change::destroy: return "destroy";
    case Change::resync: return "resync";
  }
  return "unknown";
}

bool Plan::empty() const {
  return std::all_of(actions.begin(), actions.end(), [](const PlanAction& a) { return a.change == Change::resync; });
}

int Plan::count(Change change) const {
  return static_cast<int>(std::count_if(actions.begin(), actions.end(), [&](const PlanAction& a) { return a.change == change; }));
}

const StepAction* Plan::action_of(const std::string& id) const {
  auto it = work.find(id);
  return it != work.end() ? &it->second : nullptr;
}

json instance_spec(const ServiceSpec& s, const std::string& node, int port) {
  return {{"command", s.command}, {"image", s.image}, {"env", s.env}, {"port", port}, {"node", node}, {"health", s.health}};
}

std::string instance_spec_hash(const ServiceSpec& s, const std::string& node, int port) { return stable_hash(instance_spec(s, node, port).dump()); }

json service_version_spec(const ServiceSpec& s) {
  return {{"command", s.command}, {"image", s.image}, {"env", s.env}, {"health", s.health}};
}

std::string service_version(const json& version_spec) { return stable_hash(version_spec.dump()).substr(0, 8); }

std::vector<std::string> changed_keys(const json& before, const json& after) {
  std::vector<std::string> out;
  for (const char* key : {"command", "image", "health"})
    if (before.value(key, json()) != after.value(key, json())) out.emplace_back(key);
  const json& a = obj(before, "env");
  const json& b = obj(after, "env");
  std::set<std::string> names;
  for (const auto& [k, v] : a.items()) names.insert(k);
  for (const auto& [k, v] : b.items()) names.insert(k);
  for (const auto& k : names)
    if (a.value(k, json()) != b.value(k, json())) out.push_back("env." + k);
  return out;
}

json swarm_service_spec(const ServiceSpec& s, int replicas) {
  return {{"image", s.image}, {"env", s.env}, {"port", s.port}, {"health", s.health}, {"replicas", replicas}};
}

json swarm_service_specs(const Topology& topo, const std::map<std::string, int>& replicas) {
  json out = json::object();
  for (const auto& s : topo.services) {
    if (!s.swarm_mode) continue;
    const auto it = replicas.find(s.name);
    out[s.name] = swarm_service_spec(s, it != replicas.end() ? it->second : s.replicas);
  }
  return out;
}

std::string addon_stage_step(const std::string& addon, const std::string& stage) { return "addon.apply:" + addon + "/" + stage; }

std::string parse_addon_stages(const json& manifest, std::vector<AddonStage>& out) {
  out.clear();
  const auto it = manifest.find("stages");
  if (it == manifest.end()) return "";
  const std::string how = "; each stage is {\"name\": \"a-z0-9-\", \"after\": [earlier stage names]} (see docs/sdk-reference.md)";
  if (!it->is_array()) return "its manifest's \"stages\" is " + std::string(it->type_name()) + ", not an array" + how;
  std::set<std::string> seen;
  for (const auto& st : *it) {
    const std::string at = "stage " + std::to_string(out.size() + 1) + " of its manifest's \"stages\"";
    if (!st.is_object() || !st.contains("name") || !st["name"].is_string()) return at + " has no string \"name\"" + how;
    AddonStage stage;
    stage.name = st["name"].get<std::string>();
    const bool good_name = !stage.name.empty() && stage.name.size() <= 32 && std::all_of(stage.name.begin(), stage.name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    });
    if (!good_name) return at + " is named \"" + stage.name + "\", which is not 1 to 32 of a-z, 0-9 and -" + how;
    if (seen.count(stage.name)) return at + " repeats the name \"" + stage.name + "\"" + how;
    const std::string named = "stage " + std::to_string(out.size() + 1) + " (\"" + stage.name + "\") of its manifest's \"stages\"";
    if (const auto after = st.find("after"); after != st.end()) {
      if (!after->is_array()) return named + " has an \"after\" that is not an array" + how;
      for (const auto& a : *after) {
        if (!a.is_string() || !seen.count(a.get<std::string>()))
          return named + " runs after " + a.dump() + ", which is not an earlier stage" + how;
        stage.after.push_back(a.get<std::string>());
      }
    }
    seen.insert(stage.name);
    out.push_back(std::move(stage));
  }
  return "";
}

std::string addon_config_hash(const AddonPlan& addon) { return stable_hash(addon.config.dump()); }

std::map<std::string, int> effective_replicas(const Topology& topo, const json& state, std::vector<std::string>* notes) {
  std::map<std::string, int> out;
  const json& overrides = obj(obj(state, "overrides"), "replicas");
  for (const auto& s : topo.services) {
    int replicas = s.replicas;
    if (auto it = overrides.find(s.name); it != overrides.end() && it->is_object()) {
      const int file_replicas = it->value("file_replicas", -1);
      const int scaled = it->value("replicas", s.replicas);
      if (file_replicas == s.replicas) {
        replicas = scaled;
        if (notes && scaled != s.replicas)
          notes->push_back(s.name + ": " + std::to_string(scaled) + " replicas, set by `flotilla scale` (the file says " +
                           std::to_string(s.replicas) + "; change `replicas` in the file to take it back)");
      }
    }
    out[s.name] = replicas;
  }
  return out;
}

std::vector<InstancePlan> desired_instances(const Topology& topo, const std::map<std::string, int>& replicas) {
  std::vector<InstancePlan> out;
  for (const auto& s : topo.services) {
    if (s.swarm_mode) continue;  // Swarm schedules its replicas (the swarm addon)
    auto nodes = topo.place(s.placement);
    if (nodes.empty()) continue;
    auto it = replicas.find(s.name);
    const int count = it != replicas.end() ? it->second : s.replicas;
    const int n = static_cast<int>(nodes.size());
    for (int k = 1; k <= count; ++k) {
      InstancePlan ip;
      ip.service = s.name;
      ip.instance = k;
      ip.id = s.name + "#" + std::to_string(k);
      ip.node = nodes[static_cast<size_t>((k - 1) % n)]->name;
      ip.port = s.port > 0 ? s.port + (k - 1) / n : 0;
      ip.spec_hash = instance_spec_hash(s, ip.node, ip.port);
      out.push_back(std::move(ip));
    }
  }
  return out;
}

namespace {

// Why an addon is applied: a change, a repair, or a reconciling addon's routine resync.
struct ApplyReason {
  Change change = Change::update;
  std::string detail;
};

// The decisions of one make_plan, in the order they depend on each other: nodes, instances,
// addons (with the cascade to their dependents), then the teardown of what is no longer
// wanted (addons, instances, nodes).
class Planning {
 public:
  Planning(const PlanInput& in, Plan& plan)
      : in_(in), plan_(plan), topo_(*in.topology), st_nodes_(records_of<NodeRecord>(in.state, "nodes")),
        st_instances_(records_of<InstanceRecord>(in.state, "instances")), st_addons_(records_of<AddonRecord>(in.state, "addons")) {
    static const std::vector<AddonPlan> kNoAddons;
    addons_ = in.destroy_all ? &kNoAddons : &in.addons;
  }

  void run() {
    plan_.state_serial = in_.state.value("serial", 0LL);
    decide_nodes();
    decide_instances();
    decide_addons();
    order_rollouts();
    decide_addon_teardown();
    decide_instance_stops();
    decide_node_destroys();
  }

 private:
  void add(Step s, StepAction work, Change change, std::string type, std::string name, std::string verb, std::string detail) {
    plan_.actions.push_back({change, std::move(type), std::move(name), std::move(verb), std::move(detail), s.id});
    plan_.work.emplace(s.id, std::move(work));
    plan_.graph.steps.push_back(std::move(s));
  }

  void decide_nodes();
  void decide_existing_node(const NodeSpec& n, const NodeRecord& rec);
  void create_node(const NodeSpec& n, int slot, bool replace, Change change, const std::string& verb, const std::string& detail);
  [[nodiscard]] int free_slot();
  void decide_instances();
  [[nodiscard]] bool rolls(const InstancePlan& ip, const InstanceRecord& rec) const;
  void plan_rollout(const std::string& service, std::vector<InstancePlan> instances);
  void hold_for_canary(const ServiceSpec& svc, std::vector<InstancePlan>& instances, Rollout& r) const;
  void order_rollouts();
  void decide_addons();
  [[nodiscard]] std::map<std::string, ApplyReason> addon_reasons() const;
  [[nodiscard]] std::string addon_change(const AddonPlan& a) const;
  void cascade(std::map<std::string, ApplyReason>& reasons) const;
  void decide_addon_teardown();
  void decide_instance_stops();
  void decide_node_destroys();

  const PlanInput& in_;
  Plan& plan_;
  const Topology& topo_;
  const std::map<std::string, NodeRecord> st_nodes_;
  const std::map<std::string, InstanceRecord> st_instances_;
  const std::map<std::string, AddonRecord> st_addons_;
  const std::vector<AddonPlan>* addons_ = nullptr;

  std::set<int> used_slots_;
  // Slots are only taken, never freed, while planning, so the lowest free slot only grows:
  // searching on from the last one keeps 10,000 new nodes linear instead of quadratic.
  int next_free_slot_ = 0;
  std::vector<std::string> node_create_steps_;
  std::unordered_set<std::string> nodes_created_;  // names of the nodes in node_create_steps_
  std::unordered_set<std::string> nodes_remade_;   // recorded nodes whose machine is made again (repair or replacement)
  std::vector<std::string> node_destroy_;
  bool nodes_change_ = false;
  std::vector<std::string> instance_start_steps_;
  std::map<std::string, std::vector<InstancePlan>> rolled_;  // service -> its instances a rollout replaces
  std::vector<std::string> roll_steps_;
  std::vector<std::pair<std::string, std::string>> instance_stops_;  // id, node
  bool instances_change_ = false;
  std::set<std::string> removed_addons_;
  std::vector<std::string> service_addon_steps_, all_addon_steps_;
  std::map<std::string, std::vector<std::string>> stops_on_node_;
};

int Planning::free_slot() {
  while (used_slots_.count(next_free_slot_)) ++next_free_slot_;
  used_slots_.insert(next_free_slot_);
  return next_free_slot_;
}

void Planning::create_node(const NodeSpec& n, int slot, bool replace, Change change, const std::string& verb, const std::string& detail) {
  const std::string id = "node.create:" + n.name;
  add({id, (replace ? "replace node " : "create node ") + n.name, in_.driver_pool, {}, json::object()}, CreateNode{n.name, slot, replace},
      change, "node", n.name, verb, detail);
  node_create_steps_.push_back(id);
  nodes_created_.insert(n.name);
}

void Planning::decide_nodes() {
  for (const auto& [name, rec] : st_nodes_) used_slots_.insert(rec.slot);
  if (!in_.destroy_all)
    for (const auto& n : topo_.nodes) {
      auto it = st_nodes_.find(n.name);
      if (it != st_nodes_.end()) decide_existing_node(n, it->second);
      else create_node(n, free_slot(), false, Change::create, "create", "");
    }
  std::set<std::string> desired;
  if (!in_.destroy_all)
    for (const auto& n : topo_.nodes) desired.insert(n.name);
  for (const auto& [name, rec] : st_nodes_)
    if (!desired.count(name)) node_destroy_.push_back(name);
  nodes_change_ = !node_create_steps_.empty() || !node_destroy_.empty();
}

// The driver options recorded for a node (as hashes, see driver_option_hashes) that differ
// from the topology's now. A node recorded without them (before they were recorded) has none.
std::vector<std::string> changed_driver_options(const NodeRecord& rec, const DriverPlan& driver) {
  std::vector<std::string> changed;
  const json& recorded = rec.driver_options;
  if (!recorded.is_object() || (!rec.driver.empty() && rec.driver != driver.name)) return changed;
  std::set<std::string> keys;
  for (const auto& [k, v] : recorded.items()) keys.insert(k);
  for (const auto& [k, v] : driver.config.items()) keys.insert(k);
  for (const auto& k : keys) {
    const std::string now = driver.config.contains(k) ? stable_hash(driver.config[k].dump()) : "";
    if (str_or(recorded, k.c_str()) != now) changed.push_back(k);
  }
  return changed;
}

void Planning::decide_existing_node(const NodeSpec& n, const NodeRecord& rec) {
  const int slot = rec.slot >= 0 ? rec.slot : free_slot();
  if (rec.status != NodeStatus::ready) return create_node(n, slot, false, Change::repair, "create", "last create did not finish");
  const json& live = obj(in_.live, "nodes");
  if (auto l = live.find(n.name); l != live.end() && l->is_string() && (*l == "stopped" || *l == "missing")) {
    nodes_remade_.insert(n.name);
    return create_node(n, slot, false, Change::repair, "create", "it is " + l->get<std::string>());
  }
  std::vector<std::string> details;
  if (const auto changed = changed_driver_options(rec, in_.driver); !changed.empty()) {
    const bool forces = std::any_of(changed.begin(), changed.end(), [&](const std::string& k) { return !contains(in_.driver.mutable_options, k); });
    const std::string what = "driver option" + std::string(changed.size() > 1 ? "s " : " ") + join(changed, ", ") + " changed";
    if (forces) {
      nodes_remade_.insert(n.name);
      return create_node(n, slot, true, Change::update, "replace", what + "; forces replacement");
    }
    details.push_back(what + "; changes in place");
  }
  if (rec.roles != n.roles || rec.labels != n.labels)
    details.push_back("roles or labels changed");
  if (details.empty()) return;
  const std::string id = "node.update:" + n.name;
  add({id, "update node " + n.name, "", {}, json::object()}, UpdateNode{n.name}, Change::update, "node", n.name, "update", join(details, "; "));
}

void Planning::decide_instances() {
  if (!in_.destroy_all) {
    plan_.replicas = effective_replicas(topo_, in_.state, &plan_.notes);
    plan_.instances = desired_instances(topo_, plan_.replicas);
  }
  const json& live = obj(in_.live, "instances");
  std::set<std::string> desired_ids;
  for (const auto& ip : plan_.instances) {
    desired_ids.insert(ip.id);
    auto it = st_instances_.find(ip.id);
    std::string verb = "restart", detail;
    Change change = Change::repair;
    if (it == st_instances_.end()) verb = "start", detail = "on " + ip.node, change = Change::create;
    else if (it->second.node != ip.node || it->second.spec_hash != ip.spec_hash) {
      verb = "replace", change = Change::update;
      detail = it->second.node != ip.node ? "moves to " + ip.node : "spec changed";
    } else if (it->second.status != WorkloadStatus::running) detail = "last start did not finish";
    else if (nodes_remade_.count(ip.node)) detail = "node " + ip.node + " is made anew";
    else if (auto l = live.find(ip.id); l != live.end() && l->is_string() && *l != "running") detail = "it is " + l->get<std::string>();
    else continue;
    if (change == Change::update && rolls(ip, it->second)) {
      rolled_[ip.service].push_back(ip);
      continue;
    }
    const std::string id = "instance.start:" + ip.id;
    Step s{id, verb + " " + ip.id + " on " + ip.node, "", {}, json::object()};
    if (nodes_created_.count(ip.node)) s.deps.push_back("node.create:" + ip.node);
    add(std::move(s), StartInstance{ip}, change, "instance", ip.id, verb, detail);
    instance_start_steps_.push_back(id);
  }
  for (const auto& [service, instances] : rolled_) plan_rollout(service, instances);
  for (const auto& [id, rec] : st_instances_)
    if (!desired_ids.count(id)) instance_stops_.emplace_back(id, rec.node);
  instances_change_ = !instance_start_steps_.empty() || !instance_stops_.empty();
}

// A recorded instance whose spec changed is replaced by a rollout unless the machines it runs
// on or moves to are made anew or removed in this plan: then there is nothing to keep serving.
bool Planning::rolls(const InstancePlan& ip, const InstanceRecord& rec) const {
  if (rec.status == WorkloadStatus::unknown) return false;
  for (const std::string& node : {ip.node, rec.node})
    if (nodes_created_.count(node) || nodes_remade_.count(node) ||
        std::find(node_destroy_.begin(), node_destroy_.end(), node) != node_destroy_.end())
      return false;
  return true;
}

// The waves of a service's rollout: max_parallel instances each, in instance order, one
// after another.
void Planning::plan_rollout(const std::string& service, std::vector<InstancePlan> instances) {
  const ServiceSpec* svc = topo_.find_service(service);
  Rollout r;
  r.service = service;
  r.strategy = svc ? svc->update : UpdateStrategy{};
  if (svc && r.strategy.canary > 0) hold_for_canary(*svc, instances, r);
  if (r.held > 0)
    plan_.notes.push_back(service + ": canary: " + std::to_string(instances.size()) + " more instance(s) get version " + r.version +
                          "; the other " + std::to_string(r.held) + " wait for `flotilla promote FILE " + service +
                          "` (or put the file back and run `flotilla up` to roll back)");
  if (instances.empty()) {
    plan_.rollouts.push_back(std::move(r));
    return;
  }
  const auto per_wave = static_cast<size_t>(std::max(1, r.strategy.max_parallel));
  r.waves = static_cast<int>((instances.size() + per_wave - 1) / per_wave);
  std::string previous;
  for (int w = 1; w <= r.waves; ++w) {
    RollWave wave{service, w, r.waves, {}};
    for (size_t k = (w - 1) * per_wave; k < std::min(instances.size(), w * per_wave); ++k) wave.instances.push_back(instances[k]);
    const std::string id = "instance.roll:" + service + "@" + std::to_string(w);
    Step s{id, "roll " + service + ", wave " + std::to_string(w) + " of " + std::to_string(r.waves), "", {}, json::object()};
    if (!previous.empty()) s.deps.push_back(previous);
    for (const auto& ip : wave.instances) {
      const auto& rec = st_instances_.at(ip.id);
      r.instances.push_back(ip.id);
      std::vector<std::string> what;
      if (rec.node != ip.node) what.push_back("moves to " + ip.node);
      else if (rec.port != ip.port && rec.port != 0) what.push_back("port " + std::to_string(rec.port) + " -> " + std::to_string(ip.port));
      if (svc && rec.spec.contains("service"))
        for (auto& k : changed_keys(rec.spec["service"], service_version_spec(*svc))) what.push_back(k + " changed");
      if (what.empty()) what.push_back("spec changed");
      plan_.actions.push_back({Change::update, "instance", ip.id, "replace",
                               join(what, ", ") + "; rolling, wave " + std::to_string(w) + " of " + std::to_string(r.waves), id});
    }
    plan_.work.emplace(id, std::move(wave));
    plan_.graph.steps.push_back(std::move(s));
    instance_start_steps_.push_back(id);
    roll_steps_.push_back(id);
    previous = id;
  }
  plan_.notes.push_back(service + ": rolling update of " + std::to_string(r.instances.size()) + " instance(s) in " +
                        std::to_string(r.waves) + " wave(s) (max_parallel " + std::to_string(r.strategy.max_parallel) +
                        ", min_healthy_time " + std::to_string(r.strategy.min_healthy_time.count()) + "s, auto_revert " +
                        (r.strategy.auto_revert ? "on" : "off") + ")");
  plan_.rollouts.push_back(std::move(r));
}

// `canary = N`: a version neither promoted (`flotilla promote`) nor the one a rollout started
// from (going back to it is a rollback, never held) runs on at most N instances; the rest of
// the rollout is held.
void Planning::hold_for_canary(const ServiceSpec& svc, std::vector<InstancePlan>& instances, Rollout& r) const {
  r.version = service_version(service_version_spec(svc));
  const RolloutRecord rec = rollout_record(in_.state, svc.name);
  if (rec.promoted == r.version || rec.from == r.version) return;
  int on_version = 0;
  for (const auto& ip : plan_.instances)
    if (ip.service == svc.name)
      if (auto it = st_instances_.find(ip.id); it != st_instances_.end() && it->second.spec_hash == ip.spec_hash) ++on_version;
  const auto allowed = static_cast<size_t>(std::max(0, r.strategy.canary - on_version));
  if (instances.size() <= allowed) return;
  r.held = static_cast<int>(instances.size() - allowed);
  instances.resize(allowed);
}

// A rollout's waves re-apply the addons that follow the instances (ingress, catalog), so they
// start once the addons those depend on are applied; the addons that follow the instances, and
// those depending on them, are applied after the waves anyway.
void Planning::order_rollouts() {
  if (roll_steps_.empty()) return;
  std::set<std::string> bound;
  for (const auto& a : *addons_)
    if (a.needs_services()) bound.insert(a.name);
  for (size_t pass = 0; pass < addons_->size(); ++pass)
    for (const auto& a : *addons_)
      for (const auto& p : addon_providers(a, *addons_))
        if (bound.count(p)) bound.insert(a.name);
  std::set<std::string> before;
  for (const auto& a : *addons_)
    if (a.needs_services())
      for (const auto& p : addon_providers(a, *addons_))
        if (!bound.count(p) && plan_.work.count("addon.apply:" + p)) before.insert("addon.apply:" + p);
  for (auto& s : plan_.graph.steps)
    if (std::find(roll_steps_.begin(), roll_steps_.end(), s.id) != roll_steps_.end()) s.deps.insert(s.deps.end(), before.begin(), before.end());
}

// Why an addon changes by itself (not through a provider it depends on), or "" when it does not.
std::string Planning::addon_change(const AddonPlan& a) const {
  auto it = st_addons_.find(a.name);
  if (it == st_addons_.end()) return "new";
  const AddonRecord& rec = it->second;
  if (rec.status != AddonStatus::ready) return "last apply did not finish";
  if (rec.plugin != a.plugin) return "plugin changed";
  if (rec.config_hash != addon_config_hash(a)) return "configuration changed";
  if (rec.nodes != a.nodes) return "placement changed";
  if (nodes_change_) return "nodes changed";
  if (a.needs_services() && instances_change_) return "instances changed";
  if (contains(a.provides, "services")) {
    // The swarm-mode services it deploys, as it last reported them, against the topology's.
    json deployed = json::object();
    for (const auto& [name, svc] : obj(rec.outputs, "services").items())
      if (svc.is_object()) deployed[name] = svc.value("spec", json());
    if (deployed != swarm_service_specs(topo_, plan_.replicas)) return "swarm services changed";
  }
  for (const auto& [key, st] : obj(obj(in_.live, "components"), a.name.c_str()).items())
    if (st.is_string() && st != "running") return "component " + key + " is " + st.get<std::string>();
  for (const auto& name : removed_addons_)
    if (uses_any(a.requires_, a.optional, st_addons_.at(name).provides))
      return name + " is removed";
  return "";
}

// A change of an addon re-applies every addon that depends on it, transitively.
void Planning::cascade(std::map<std::string, ApplyReason>& reasons) const {
  for (size_t pass = 0; pass < addons_->size(); ++pass) {
    bool grew = false;
    for (const auto& a : *addons_)
      if (!reasons.count(a.name))
        for (const auto& p : addon_providers(a, *addons_))
          if (reasons.count(p)) {
            reasons[a.name] = {Change::update, "depends on " + p + ", which changes"};
            grew = true;
            break;
          }
    if (!grew) break;
  }
}

std::map<std::string, ApplyReason> Planning::addon_reasons() const {
  std::map<std::string, ApplyReason> reasons;
  for (const auto& a : *addons_)
    if (auto why = addon_change(a); !why.empty()) reasons[a.name] = {st_addons_.count(a.name) ? Change::update : Change::create, why};
  cascade(reasons);
  // Reconciling addons (the registrator) also run when nothing changed, to repair drift
  // outside Flotilla's view (a stray catalog entry); that is a resync, not a change.
  for (const auto& a : *addons_)
    if (a.reconcile && !reasons.count(a.name)) reasons[a.name] = {Change::resync, ""};
  return reasons;
}

void Planning::decide_addons() {
  std::set<std::string> wanted;
  for (const auto& a : *addons_) wanted.insert(a.name);
  for (const auto& [name, rec] : st_addons_)
    if (!wanted.count(name)) removed_addons_.insert(name);
  const auto reasons = addon_reasons();
  for (const auto& a : *addons_) {
    auto r = reasons.find(a.name);
    if (r == reasons.end()) continue;
    const std::string id = "addon.apply:" + a.name;
    Step s{id, "apply addon " + a.name, a.max_parallel > 0 ? "addon:" + a.plugin : "", node_create_steps_, json::object()};
    for (const auto& p : addon_providers(a, *addons_))
      if (reasons.count(p)) s.deps.push_back("addon.apply:" + p);
    if (a.needs_services()) {
      s.deps.insert(s.deps.end(), instance_start_steps_.begin(), instance_start_steps_.end());
      service_addon_steps_.push_back(id);
    }
    // Its stages (Elasticsearch before Logstash and Kibana) are steps of their own, each after
    // what the whole apply waits for and after the stages it names; the whole apply follows them.
    const std::vector<std::string> before = s.deps;
    for (const auto& st : a.stages) {
      Step stage{addon_stage_step(a.name, st.name), "apply addon " + a.name + ": " + st.name, s.pool, before, json::object()};
      for (const auto& after : st.after) stage.deps.push_back(addon_stage_step(a.name, after));
      s.deps.push_back(stage.id);
      plan_.work.emplace(stage.id, ApplyAddon{a.name, st.name});
      plan_.graph.steps.push_back(std::move(stage));
    }
    const bool resync = r->second.change == Change::resync;
    add(std::move(s), ApplyAddon{a.name, "", resync}, r->second.change, "addon", a.name, resync ? "resync" : "apply", r->second.detail);
    all_addon_steps_.push_back(id);
  }
}

// Removed addons: destroyed after the addons that depended on them.
void Planning::decide_addon_teardown() {
  for (const auto& name : removed_addons_) {
    const AddonRecord& rec = st_addons_.at(name);
    const std::string id = "addon.destroy:" + name;
    Step s{id, "destroy addon " + name, "", {}, json::object()};
    for (const auto& other : removed_addons_)
      if (other != name && uses_any(st_addons_.at(other).requires_, st_addons_.at(other).optional, rec.provides))
        s.deps.push_back("addon.destroy:" + other);
    add(std::move(s), DestroyAddon{name}, Change::destroy, "addon", name, "destroy", "");
    all_addon_steps_.push_back(id);
    // Removed addons that follow the services (ingress, catalog) let go of them first; one that
    // provides services (the swarm addon) is done with the nodes' dockerds before the instances
    // on them are removed, so no node leaves its swarm while its containers are being deleted.
    if (contains(rec.requires_, "services") || contains(rec.provides, "services")) service_addon_steps_.push_back(id);
  }
}

// Instance stops: drained by the ingress (addons needing services) first.
void Planning::decide_instance_stops() {
  for (const auto& [iid, node] : instance_stops_) {
    const std::string id = "instance.stop:" + iid;
    add({id, "stop " + iid + " on " + node, "", service_addon_steps_, json::object()}, StopInstance{iid, node}, Change::destroy,
        "instance", iid, "stop", "on " + node);
    stops_on_node_[node].push_back(id);
  }
}

// Node destroys: after everything that may still use the node.
void Planning::decide_node_destroys() {
  for (const auto& name : node_destroy_) {
    const std::string id = "node.destroy:" + name;
    Step s{id, "destroy node " + name, in_.driver_pool, stops_on_node_[name], json::object()};
    s.deps.insert(s.deps.end(), all_addon_steps_.begin(), all_addon_steps_.end());
    add(std::move(s), DestroyNode{name}, Change::destroy, "node", name, "destroy", st_nodes_.at(name).address);
  }
}

}  // namespace

Plan make_plan(const PlanInput& in) {
  Plan plan;
  Planning(in, plan).run();
  return plan;
}

json plan_to_json(const Plan& plan, const std::string& cluster) {
  json actions = json::array();
  for (const auto& a : plan.actions)
    actions.push_back({{"change", change_name(a.change)}, {"type", a.type}, {"name", a.name}, {"action", a.verb}, {"detail", a.detail}, {"step", a.step}});
  json steps = json::array();
  for (const auto& s : plan.graph.steps) steps.push_back({{"id", s.id}, {"label", s.label}, {"deps", s.deps}});
  json rollouts = json::array();
  for (const auto& r : plan.rollouts)
    rollouts.push_back({{"service", r.service},
                        {"instances", r.instances},
                        {"waves", r.waves},
                        {"strategy",
                         {{"max_parallel", r.strategy.max_parallel},
                          {"min_healthy_time_s", r.strategy.min_healthy_time.count()},
                          {"healthy_deadline_s", r.strategy.healthy_deadline.count()},
                          {"auto_revert", r.strategy.auto_revert},
                          {"canary", r.strategy.canary}}},
                        {"version", r.version},
                        {"held_for_promote", r.held}});
  return {{"format_version", 1},
          {"cluster", cluster},
          {"state_serial", plan.state_serial},
          {"summary",
           {{"create", plan.count(Change::create)},
            {"change", plan.count(Change::update) + plan.count(Change::repair)},
            {"destroy", plan.count(Change::destroy)}}},
          {"actions", actions},
          {"steps", steps},
          {"rollouts", rollouts},
          {"notes", plan.notes}};
}

std::string plan_to_text(const Plan& plan, const std::string& cluster) {
  std::string out;
  for (const auto& n : plan.notes) out += "note: " + n + "\n";
  if (plan.empty()) return out + "No changes. Cluster \"" + cluster + "\" matches the topology.\n";
  out += "Flotilla will perform these actions on cluster \"" + cluster + "\":\n";
  for (const auto& a : plan.actions) {
    if (a.change == Change::resync) continue;
    out += "  ";
    out += change_symbol(a.change);
    out += " " + a.type + " " + a.name + ": " + a.verb;
    if (!a.detail.empty()) out += " (" + a.detail + ")";
    out += "\n";
  }
  out += "Plan: " + std::to_string(plan.count(Change::create)) + " to add, " +
         std::to_string(plan.count(Change::update) + plan.count(Change::repair)) + " to change, " +
         std::to_string(plan.count(Change::destroy)) + " to destroy.\n";
  return out;
}

}  // namespace flotilla
