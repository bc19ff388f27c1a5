#include "planner.hpp"

#include "util.hpp"

#include <algorithm>
#include <set>
#include <unordered_set>

namespace flotilla {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string str_or(const json& j, const char* key, const std::string& def = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

const json& obj(const json& j, const char* key) {
  static const json empty = json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

std::string instance_spec_hash(const ServiceSpec& s, const std::string& node, int port) {
  json spec = {{"command", s.command}, {"image", s.image}, {"env", s.env}, {"port", port}, {"node", node}, {"health", s.health}};
  return stable_hash(spec.dump());
}

}  // namespace

bool AddonPlan::needs_services() const { return contains(requires_, "services"); }

std::string InstancePlan::workload_name() const { return "service-" + service_dns_label(service) + "-" + std::to_string(instance); }

bool Plan::empty() const {
  return std::all_of(actions.begin(), actions.end(), [](const PlanAction& a) { return a.symbol == '='; });
}

int Plan::count(char symbol) const {
  return static_cast<int>(std::count_if(actions.begin(), actions.end(), [&](const PlanAction& a) { return a.symbol == symbol; }));
}

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

Plan make_plan(const PlanInput& in) {
  Plan plan;
  const Topology& topo = *in.topology;
  const json& state = in.state;
  const json& st_nodes = obj(state, "nodes");
  const json& st_instances = obj(state, "instances");
  const json& st_addons = obj(state, "addons");
  const json& live_instances = obj(in.live, "instances");
  const json& live_components = obj(in.live, "components");
  plan.state_serial = state.value("serial", 0LL);

  auto add_step = [&](Step s) -> Step& {
    plan.graph.steps.push_back(std::move(s));
    return plan.graph.steps.back();
  };
  auto add_action = [&](char sym, std::string type, std::string name, std::string verb, std::string detail, std::string step) {
    plan.actions.push_back({sym, std::move(type), std::move(name), std::move(verb), std::move(detail), std::move(step)});
  };

  // ---- nodes
  std::set<std::string> desired_nodes;
  if (!in.destroy_all)
    for (const auto& n : topo.nodes) desired_nodes.insert(n.name);
  std::set<int> used_slots;
  for (const auto& [name, rec] : st_nodes.items()) used_slots.insert(rec.value("slot", -1));
  // Slots are only taken, never freed, while planning, so the lowest free slot only grows:
  // searching on from the last one keeps 10,000 new nodes linear instead of quadratic.
  int next_free_slot = 0;
  std::vector<std::string> node_create_steps;
  std::unordered_set<std::string> nodes_created;  // names of the nodes in node_create_steps
  std::vector<std::string> node_destroy;
  if (!in.destroy_all) {
    for (const auto& n : topo.nodes) {
      auto it = st_nodes.find(n.name);
      const bool exists = it != st_nodes.end();
      const bool ready = exists && str_or(*it, "status") == "ready";
      if (ready) {
        std::vector<std::string> roles = it->value("roles", std::vector<std::string>{});
        std::map<std::string, std::string> labels = it->value("labels", std::map<std::string, std::string>{});
        if (roles != n.roles || labels != n.labels) {
          const std::string id = "node.update:" + n.name;
          add_step({id, "update node " + n.name, "", {}, {{"type", "node"}, {"action", "update"}, {"name", n.name}}});
          add_action('~', "node", n.name, "update", "roles or labels changed", id);
        }
        continue;
      }
      int slot = exists ? it->value("slot", -1) : -1;
      if (slot < 0) {
        while (used_slots.count(next_free_slot)) ++next_free_slot;
        slot = next_free_slot;
        used_slots.insert(slot);
      }
      const std::string id = "node.create:" + n.name;
      add_step({id, "create node " + n.name, in.driver_pool, {},
                {{"type", "node"}, {"action", "create"}, {"name", n.name}, {"slot", slot}}});
      add_action(exists ? '!' : '+', "node", n.name, "create", exists ? "last create did not finish" : "", id);
      node_create_steps.push_back(id);
      nodes_created.insert(n.name);
    }
  }
  for (const auto& [name, rec] : st_nodes.items())
    if (!desired_nodes.count(name)) node_destroy.push_back(name);
  const bool nodes_change = !node_create_steps.empty() || !node_destroy.empty();

  // ---- instances
  std::vector<std::string> instance_start_steps;
  std::vector<std::pair<std::string, std::string>> instance_stops;  // id, node
  if (!in.destroy_all) {
    plan.replicas = effective_replicas(topo, state, &plan.notes);
    plan.instances = desired_instances(topo, plan.replicas);
  }
  std::set<std::string> desired_ids;
  for (const auto& ip : plan.instances) {
    desired_ids.insert(ip.id);
    auto it = st_instances.find(ip.id);
    std::string verb, detail;
    char sym = '+';
    if (it == st_instances.end()) {
      verb = "start";
      detail = "on " + ip.node;
    } else if (str_or(*it, "node") != ip.node || str_or(*it, "spec_hash") != ip.spec_hash) {
      verb = "replace", sym = '~';
      detail = str_or(*it, "node") != ip.node ? "moves to " + ip.node : "spec changed";
    } else if (str_or(*it, "status") != "running") {
      verb = "restart", sym = '!';
      detail = "last start did not finish";
    } else if (auto l = live_instances.find(ip.id); l != live_instances.end() && l->is_string() && *l != "running") {
      verb = "restart", sym = '!';
      detail = "it is " + l->get<std::string>();
    } else {
      continue;
    }
    const std::string id = "instance.start:" + ip.id;
    Step s{id, verb + " " + ip.id + " on " + ip.node, "", {},
           {{"type", "instance"}, {"action", verb}, {"name", ip.id}, {"service", ip.service}, {"instance", ip.instance},
            {"node", ip.node}, {"port", ip.port}, {"spec_hash", ip.spec_hash}, {"workload", ip.workload_name()}}};
    if (nodes_created.count(ip.node)) s.deps.push_back("node.create:" + ip.node);
    add_step(std::move(s));
    add_action(sym, "instance", ip.id, verb, detail, id);
    instance_start_steps.push_back(id);
  }
  for (const auto& [id, rec] : st_instances.items())
    if (!desired_ids.count(id)) instance_stops.emplace_back(id, str_or(rec, "node"));
  const bool instances_change = !instance_start_steps.empty() || !instance_stops.empty();

  // ---- addons: apply in dependency order, cascading changes to dependents
  static const std::vector<AddonPlan> kNoAddons;
  const std::vector<AddonPlan>& addons = in.destroy_all ? kNoAddons : in.addons;
  std::map<std::string, const AddonPlan*> by_name;
  for (const auto& a : addons) by_name[a.name] = &a;
  auto providers_of = [&](const AddonPlan& a) {
    std::vector<std::string> out;
    for (const auto& b : addons) {
      if (b.name == a.name) continue;
      for (const auto& cap : b.provides)
        if (contains(a.requires_, cap) || contains(a.optional, cap)) {
          out.push_back(b.name);
          break;
        }
    }
    return out;
  };
  std::set<std::string> removed_addons;
  for (const auto& [name, rec] : st_addons.items())
    if (!by_name.count(name)) removed_addons.insert(name);
  std::map<std::string, std::string> apply_reason;
  for (const auto& a : addons) {
    auto it = st_addons.find(a.name);
    std::string reason;
    if (it == st_addons.end()) reason = "new";
    else if (str_or(*it, "status") != "ready") reason = "last apply did not finish";
    else if (str_or(*it, "plugin") != a.plugin) reason = "plugin changed";
    else if (str_or(*it, "config_hash") != stable_hash(a.config.dump())) reason = "configuration changed";
    else if (it->value("nodes", std::vector<std::string>{}) != a.nodes) reason = "placement changed";
    else if (nodes_change) reason = "nodes changed";
    else if (a.needs_services() && instances_change) reason = "instances changed";
    else {
      for (const auto& [key, st] : obj(live_components, a.name.c_str()).items())
        if (st != "running") {
          reason = "component " + key + " is " + st.get<std::string>();
          break;
        }
    }
    if (reason.empty())
      for (const auto& [name, rec] : st_addons.items())
        if (removed_addons.count(name)) {
          auto provides = rec.value("provides", std::vector<std::string>{});
          for (const auto& cap : provides)
            if (contains(a.requires_, cap) || contains(a.optional, cap)) reason = name + " is removed";
        }
    if (!reason.empty()) apply_reason[a.name] = reason;
  }
  for (size_t pass = 0; pass < addons.size(); ++pass) {
    bool grew = false;
    for (const auto& a : addons)
      if (!apply_reason.count(a.name))
        for (const auto& p : providers_of(a))
          if (apply_reason.count(p)) {
            apply_reason[a.name] = "depends on " + p + ", which changes";
            grew = true;
            break;
          }
    if (!grew) break;
  }
  // Reconciling addons (the registrator) also run when nothing changed, to repair drift
  // outside Flotilla's view (a stray catalog entry); that is a resync, not a change.
  for (const auto& a : addons)
    if (a.reconcile && !apply_reason.count(a.name)) apply_reason[a.name] = "=resync";
  std::vector<std::string> service_addon_applies, all_addon_steps;
  for (const auto& a : addons) {
    auto r = apply_reason.find(a.name);
    if (r == apply_reason.end()) continue;
    const bool resync = r->second == "=resync";
    const std::string id = "addon.apply:" + a.name;
    Step s{id, "apply addon " + a.name, a.max_parallel > 0 ? "addon:" + a.plugin : "", node_create_steps,
           {{"type", "addon"}, {"action", "apply"}, {"name", a.name}}};
    for (const auto& p : providers_of(a))
      if (apply_reason.count(p)) s.deps.push_back("addon.apply:" + p);
    if (a.needs_services()) {
      s.deps.insert(s.deps.end(), instance_start_steps.begin(), instance_start_steps.end());
      service_addon_applies.push_back(id);
    }
    add_step(std::move(s));
    if (resync) add_action('=', "addon", a.name, "resync", "", id);
    else add_action(st_addons.contains(a.name) ? '~' : '+', "addon", a.name, "apply", r->second, id);
    all_addon_steps.push_back(id);
  }
  // Removed addons: destroyed after the addons that depended on them.
  for (const auto& name : removed_addons) {
    const json& rec = st_addons[name];
    auto provides = rec.value("provides", std::vector<std::string>{});
    const std::string id = "addon.destroy:" + name;
    Step s{id, "destroy addon " + name, "", {}, {{"type", "addon"}, {"action", "destroy"}, {"name", name}}};
    for (const auto& other : removed_addons) {
      if (other == name) continue;
      auto reqs = st_addons[other].value("requires", std::vector<std::string>{});
      auto opts = st_addons[other].value("optional", std::vector<std::string>{});
      for (const auto& cap : provides)
        if (contains(reqs, cap) || contains(opts, cap)) {
          s.deps.push_back("addon.destroy:" + other);
          break;
        }
    }
    add_step(std::move(s));
    add_action('-', "addon", name, "destroy", "", id);
    all_addon_steps.push_back(id);
    // Removed addons that follow the services (ingress, catalog) let go of them first.
    if (contains(rec.value("requires", std::vector<std::string>{}), "services")) service_addon_applies.push_back(id);
  }

  // ---- instance stops: drained by the ingress (addons needing services) first
  std::map<std::string, std::vector<std::string>> stops_on_node;
  for (const auto& [iid, node] : instance_stops) {
    const std::string id = "instance.stop:" + iid;
    add_step({id, "stop " + iid + " on " + node, "", service_addon_applies,
              {{"type", "instance"}, {"action", "stop"}, {"name", iid}, {"node", node}}});
    add_action('-', "instance", iid, "stop", "on " + node, id);
    stops_on_node[node].push_back(id);
  }

  // ---- node destroys: after everything that may still use the node
  for (const auto& name : node_destroy) {
    const std::string id = "node.destroy:" + name;
    Step s{id, "destroy node " + name, in.driver_pool, stops_on_node[name], {{"type", "node"}, {"action", "destroy"}, {"name", name}}};
    s.deps.insert(s.deps.end(), all_addon_steps.begin(), all_addon_steps.end());
    add_step(std::move(s));
    add_action('-', "node", name, "destroy", str_or(st_nodes[name], "address"), id);
  }
  return plan;
}

json plan_to_json(const Plan& plan, const std::string& cluster) {
  json actions = json::array();
  for (const auto& a : plan.actions)
    actions.push_back({{"change", a.symbol == '+'   ? "create"
                                  : a.symbol == '-' ? "destroy"
                                  : a.symbol == '!' ? "repair"
                                  : a.symbol == '=' ? "resync"
                                                    : "update"},
                       {"type", a.type},
                       {"name", a.name},
                       {"action", a.verb},
                       {"detail", a.detail},
                       {"step", a.step}});
  json steps = json::array();
  for (const auto& s : plan.graph.steps) steps.push_back({{"id", s.id}, {"label", s.label}, {"deps", s.deps}});
  return {{"format_version", 1},
          {"cluster", cluster},
          {"state_serial", plan.state_serial},
          {"summary", {{"create", plan.count('+')}, {"change", plan.count('~') + plan.count('!')}, {"destroy", plan.count('-')}}},
          {"actions", actions},
          {"steps", steps},
          {"notes", plan.notes}};
}

std::string plan_to_text(const Plan& plan, const std::string& cluster) {
  std::string out;
  for (const auto& n : plan.notes) out += "note: " + n + "\n";
  if (plan.empty()) return out + "No changes. Cluster \"" + cluster + "\" matches the topology.\n";
  out += "Flotilla will perform these actions on cluster \"" + cluster + "\":\n";
  for (const auto& a : plan.actions) {
    if (a.symbol == '=') continue;
    out += "  ";
    out += a.symbol;
    out += " " + a.type + " " + a.name + ": " + a.verb;
    if (!a.detail.empty()) out += " (" + a.detail + ")";
    out += "\n";
  }
  out += "Plan: " + std::to_string(plan.count('+')) + " to add, " + std::to_string(plan.count('~') + plan.count('!')) +
         " to change, " + std::to_string(plan.count('-')) + " to destroy.\n";
  return out;
}

}  // namespace flotilla
