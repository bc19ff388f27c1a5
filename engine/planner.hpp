// The planner: compares the desired cluster (topology + plugin manifests) with the recorded
// state and what is alive, and decides the actions and the graph of steps. It does no I/O.
#pragma once

#include "executor.hpp"
#include "topology.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <variant>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// A stage of an addon's apply (the manifest's "stages"): its own step in the plan, after the
/// stages it names in `after`; the addon's whole apply follows every stage.
struct AddonStage {
  std::string name;
  std::vector<std::string> after;
};

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
  std::vector<AddonStage> stages;   // in the manifest's order; each `after` names earlier ones
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

/// The driver as the planner needs it: its options and which of them change in place.
struct DriverPlan {
  std::string name;
  json config = json::object();            // options with defaults, secrets unresolved
  std::vector<std::string> mutable_options; // the manifest's "mutable_options"
  int max_parallel = 0;
};

/// What a live check of a node found: "running", "stopped", "missing" or "unknown".
using NodeLiveness = std::map<std::string, std::string>;

/// What the planner reads.
struct PlanInput {
  const Topology* topology = nullptr;
  std::vector<AddonPlan> addons;
  DriverPlan driver;
  json state = json::object();   // recorded state (see docs/architecture.md)
  json live = json::object();    // {"nodes": {name: state}, "instances": {id: state}, "components": {addon: {key: state}}}
  std::string driver_pool;       // "driver:<name>"
  int driver_max_parallel = 0;
  bool destroy_all = false;      // `down`: desire nothing
};

/// What a plan line does to its resource.
enum class Change {
  create,   // "+": a new resource
  update,   // "~": a change of an existing one
  repair,   // "!": finishing or redoing what is broken
  destroy,  // "-": a removal
  resync,   // "=": a reconciling addon's routine run; not a change
};

/// The plan-line character of a change ('+', '~', '!', '-', '=').
[[nodiscard]] char change_symbol(Change c);
/// The `plan --output json` name of a change ("create", "update", "repair", "destroy", "resync").
[[nodiscard]] const char* change_name(Change c);

/// One line of a plan.
struct PlanAction {
  Change change = Change::create;
  std::string type;   // node | instance | addon
  std::string name;
  std::string verb;   // create, update, replace, start, restart, apply, resync, stop, destroy
  std::string detail; // "on swarm-1", "instances changed", ...
  std::string step;   // id of the step that carries it out
};

// What a step does: one type per step kind (the step runner has one function for each).
struct CreateNode {
  std::string node;
  int slot = 0;
  bool replace = false;  // destroy the recorded machine first (a driver option that forces it)
};
struct UpdateNode {
  std::string node;
};
struct DestroyNode {
  std::string node;
};
struct StartInstance {
  InstancePlan instance;
};
/// One wave of a service's rolling update: its instances leave the ingress and the catalog,
/// are replaced, stay healthy for the strategy's `min_healthy_time`, and come back.
struct RollWave {
  std::string service;
  int wave = 1;   // 1-based
  int waves = 1;  // of the service's rollout in this plan
  std::vector<InstancePlan> instances;
};
struct StopInstance {
  std::string id;
  std::string node;
};
struct ApplyAddon {
  std::string addon;
  std::string stage;  // one stage of its apply; "" for the whole apply (after every stage)
  bool resync = false;  // a reconciling addon's routine run: its record already matches the topology
};
struct DestroyAddon {
  std::string addon;
};
using StepAction = std::variant<CreateNode, UpdateNode, DestroyNode, StartInstance, RollWave, StopInstance, ApplyAddon, DestroyAddon>;

/// A service's rolling update in a plan: which instances, in how many waves, under which strategy.
struct Rollout {
  std::string service;
  std::vector<std::string> instances;  // replaced in this plan
  int waves = 0;
  UpdateStrategy strategy;
  std::string version;                 // the version rolled out (set with a canary)
  int held = 0;                        // instances that wait for `flotilla promote` (canary)
};

struct Plan {
  std::vector<PlanAction> actions;
  StepGraph graph;
  std::map<std::string, StepAction> work;      // step id -> what it does
  std::vector<InstancePlan> instances;         // desired instances
  std::map<std::string, int> replicas;         // service -> effective replicas
  std::vector<std::string> notes;              // e.g. "hello/v1: 8 replicas set by `flotilla scale`"
  std::vector<Rollout> rollouts;               // services whose running instances are replaced wave by wave
  long long state_serial = 0;
  /// True when nothing changes (resyncs of reconciling addons may still run).
  [[nodiscard]] bool empty() const;
  [[nodiscard]] int count(Change change) const;
  /// What step `id` does; null for an unknown id.
  [[nodiscard]] const StepAction* action_of(const std::string& id) const;
};

/// What shapes an instance: its service's command, image, env and health path, its node and port.
[[nodiscard]] json instance_spec(const ServiceSpec& s, const std::string& node, int port);
/// The hash of instance_spec recorded as an instance's spec_hash.
[[nodiscard]] std::string instance_spec_hash(const ServiceSpec& s, const std::string& node, int port);
/// What a service's instances share, before placeholders are filled in: command, image, env
/// and health path. Recorded with each instance, so a plan can say which keys a change touches.
[[nodiscard]] json service_version_spec(const ServiceSpec& s);
/// The short hash of service_version_spec: the same on every instance of one version.
[[nodiscard]] std::string service_version(const json& version_spec);
/// The keys that differ between two service_version_specs ("env.RELEASE", "command", ...).
[[nodiscard]] std::vector<std::string> changed_keys(const json& before, const json& after);

/// What shapes a `mode = "swarm"` service: its image, env, port, health path and replicas. The
/// addon that deploys it (it provides "services") echoes it in its outputs, under
/// services.NAME.spec; a difference re-applies that addon.
[[nodiscard]] json swarm_service_spec(const ServiceSpec& s, int replicas);
/// The specs of the swarm-mode services by name, with the effective `replicas`.
[[nodiscard]] json swarm_service_specs(const Topology& topo, const std::map<std::string, int>& replicas);

/// The id of the step that applies stage `stage` of addon `addon` ("addon.apply:elk/logstash").
[[nodiscard]] std::string addon_stage_step(const std::string& addon, const std::string& stage);

/// Reads a manifest's "stages"; returns "" or what is wrong with them, with what to do.
[[nodiscard]] std::string parse_addon_stages(const json& manifest, std::vector<AddonStage>& out);

/// The hash recorded as an addon's config_hash.
[[nodiscard]] std::string addon_config_hash(const AddonPlan& addon);

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
