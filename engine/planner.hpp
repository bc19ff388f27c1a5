// The planner: compares the desired cluster (topology + plugin manifests) with the recorded
// state and what is alive, and decides the actions and the graph of steps. It does no I/O.
#pragma once

#include "executor.hpp"
#include "topology.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// An addon as the planner needs it: its spec resolved against its plugin.
struct AddonPlan {
  std::string name;
  std::string plugin;
  json config = json::object();     // options with defaults, secrets unresolved
  std::vector<std::string> nodes;   // resolved placement
  std::vector<std::string> provides;
  std::vector<std::string> requires_;
  std::vector<std::string> optional;
  int max_parallel = 0;
  bool reconcile = false;           // applied on every up to repair drift it alone can see
  [[nodiscard]] bool needs_services() const;
};

/// One service instance the topology asks for.
struct InstancePlan {
  std::string id;        // "hello/v1#3"
  std::string service;
  int instance = 0;      // 1-based
  std::string node;
  int port = 0;          // 0 when the service has no port
  std::string spec_hash; // changes when anything that shapes the process changes
  [[nodiscard]] std::string workload_name() const; // "service-hello-v1-3"
};

/// What the planner reads.
struct PlanInput {
  const Topology* topology = nullptr;
  std::vector<AddonPlan> addons;
  json state = json::object();   // recorded state (see docs/architecture.md)
  json live = json::object();    // {"instances": {id: state}, "components": {addon: {key: state}}}
  std::string driver_pool;       // "driver:<name>"
  int driver_max_parallel = 0;
  bool destroy_all = false;      // `down`: desire nothing
};

/// One line of a plan.
struct PlanAction {
  char symbol = '+';  // + create, ~ change, - destroy, ! repair, = resync (not a change)
  std::string type;   // node | instance | addon
  std::string name;
  std::string verb;   // create, start, restart, replace, apply, stop, destroy
  std::string detail; // "on swarm-1", "instances changed", ...
  std::string step;   // id of the step that carries it out
};

struct Plan {
  std::vector<PlanAction> actions;
  StepGraph graph;
  std::vector<InstancePlan> instances;         // desired instances
  std::map<std::string, int> replicas;         // service -> effective replicas
  std::vector<std::string> notes;              // e.g. "hello/v1: 8 replicas set by `flotilla scale`"
  long long state_serial = 0;
  /// True when nothing changes (resyncs of reconciling addons may still run).
  [[nodiscard]] bool empty() const;
  [[nodiscard]] int count(char symbol) const;
};

/// The desired instances of every service, spread round-robin over the service's nodes
/// (instance k on node (k-1) mod n; the j-th instance on a node gets port + j).
[[nodiscard]] std::vector<InstancePlan> desired_instances(const Topology& topo, const std::map<std::string, int>& replicas);

/// Effective replicas: the file's value, or a `flotilla scale` override recorded in state
/// while the file's value is the one the override was made against.
[[nodiscard]] std::map<std::string, int> effective_replicas(const Topology& topo, const json& state,
                                                            std::vector<std::string>* notes = nullptr);

/// Decides the plan. Pure: the same input gives the same plan.
[[nodiscard]] Plan make_plan(const PlanInput& in);

/// Plan as JSON (the `plan --output json` shape and the saved plan file).
[[nodiscard]] json plan_to_json(const Plan& plan, const std::string& cluster);

/// Plan for people, Terraform-style.
[[nodiscard]] std::string plan_to_text(const Plan& plan, const std::string& cluster);

}  // namespace flotilla
