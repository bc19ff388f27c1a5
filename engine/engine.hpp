// The engine: ties topology, plugins, planner, executor and state together for one cluster.
// Its parts live beside it: validation.cpp (checks before anything runs), plugin_views.hpp and
// addon_request.hpp (what plugins are told), state_journal.hpp (group commit), step_runner.hpp
// (one function per step kind), runtime_broker.hpp (runtime operations asked for by addons)
// and status.hpp.
#pragma once

#include "addon_graph.hpp"
#include "json_access.hpp"
#include "executor.hpp"
#include "health_probe.hpp"
#include "planner.hpp"
#include "plugin_host.hpp"
#include "state_journal.hpp"
#include "state_records.hpp"
#include "state_store.hpp"
#include "topology.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace flotilla {

struct EngineOptions {
  std::filesystem::path topology_file;
  std::string plugin_path;                  // --plugin-path
  std::filesystem::path state_dir;          // --state-dir (empty: .flotilla/<cluster> beside the file)
  int parallelism = 10;
  std::chrono::seconds health_timeout{60};  // how long a new instance may take to answer its health check
  std::chrono::seconds stop_timeout{10};    // TERM, then KILL after this
};

/// What the engine works through; each defaults to the real thing when left empty.
struct EngineDeps {
  std::unique_ptr<StateStore> store;      // default: FileStateStore in the state directory
  std::optional<PluginHost> host;         // default: the plugins on the search path
  std::shared_ptr<HealthProbe> health;    // default: HTTP GET of the service's health path
};

/// What `up` (or `down`) did.
struct ApplyReport {
  std::vector<StepResult> results;
  bool interrupted = false;
  [[nodiscard]] int failed() const;
  [[nodiscard]] int skipped() const;
  [[nodiscard]] int succeeded() const;
};

class EngineStepRunner;
class RuntimeBroker;

/// The command that restores a cluster's state from its backup, for messages:
/// "flotilla state restore-backup FILE [--state-dir DIR]".
[[nodiscard]] std::string restore_command(const std::filesystem::path& topology_file, const std::filesystem::path& state_dir);

/// One cluster, opened from its topology file.
class Engine {
 public:
  /// Loads the topology and the plugins and checks everything that can be checked without
  /// touching the cluster: engine keys, plugin names, plugin options against their schemas,
  /// capabilities (every `requires` provided), the plugins' own validate operations.
  [[nodiscard]] static Result<std::unique_ptr<Engine>> open(const EngineOptions& options, EngineDeps deps = {});
  /// The state directory of a topology: `state_dir` (made absolute) when given, else
  /// `.flotilla/<cluster>` beside the topology file.
  [[nodiscard]] static std::filesystem::path state_dir_for(const Topology& topo, const std::filesystem::path& state_dir);

  [[nodiscard]] const Topology& topology() const { return topo_; }
  [[nodiscard]] const PluginHost& plugins() const { return host_; }
  [[nodiscard]] const std::filesystem::path& state_dir() const { return state_dir_; }
  [[nodiscard]] const std::vector<AddonPlan>& addons() const { return addons_; }

  /// The recorded state ({} when the cluster was never brought up).
  [[nodiscard]] Result<json> load_state();
  /// Asks the driver whether recorded nodes still run, and the runtimes whether recorded
  /// instances and components do: {"nodes": {name: state}, "instances": {id: state},
  /// "components": {addon: {key: state}}}. Nodes are inspected in parallel (bounded by the
  /// parallelism and the driver's max_parallel).
  [[nodiscard]] json refresh(const json& state);
  /// Plans `up` (or `down` when destroy_all) against recorded state and what is alive.
  [[nodiscard]] Result<Plan> plan(bool destroy_all = false);
  /// Runs a plan. The caller holds the state lock.
  [[nodiscard]] Result<ApplyReport> apply(const Plan& plan, CancelToken& cancel, ExecutionObserver* observer);
  /// After a successful `down`: removes the state directory if nothing is left in it.
  void cleanup_after_down();
  /// Removes the temp files of atomic writes in the state directory that a run killed
  /// mid-write left (their writer is dead). Call with the lock held.
  void remove_stale_temp_files() const;

  /// The topology's service `service`, or an error naming the services it has.
  [[nodiscard]] Result<const ServiceSpec*> service_named(const std::string& service) const;
  /// Records a `flotilla scale` override (see effective_replicas) and saves state.
  [[nodiscard]] Result<void> set_replicas(const std::string& service, int replicas);
  /// Marks the version the topology gives `service` promoted, so the rollout its canary held
  /// goes on at the next apply; fails unless such a canary runs.
  [[nodiscard]] Result<void> promote(const std::string& service);

  /// `status --output json`: nodes, services with instances, addons, endpoints.
  [[nodiscard]] json status(const json& state, const json& live) const;

  /// Runs a runtime operation on a node's runtime (for ps, logs, tests).
  [[nodiscard]] Result<json> runtime_call(const json& state, const std::string& node, const char* op, json request);

  /// The first addon of the topology whose plugin answers `question` (flotilla.query/1), or null.
  [[nodiscard]] const AddonPlan* answerer(const std::string& question) const;
  /// Asks that addon `question` with `args` (queries.cpp); parts of the answer go to `on_part`
  /// as they come, and `stop` ends an open-ended answer. Fails when no addon answers it.
  [[nodiscard]] Result<CallResult> ask(const std::string& question, const json& args, const std::function<bool()>& stop,
                                       const std::function<void(std::string_view)>& on_part);

 private:
  friend class EngineStepRunner;
  friend class RuntimeBroker;
  Engine() = default;

  // validation.cpp
  [[nodiscard]] Result<void> check_plugins();
  [[nodiscard]] Result<void> check_driver(std::vector<std::string>& errors);
  void check_runtimes(std::vector<std::string>& errors);
  [[nodiscard]] std::vector<std::string> validate_with_plugins();
  void check_service_workloads(const std::string& runtime, std::vector<std::string>& errors);

  [[nodiscard]] json node_view(const json& state, const std::string& name) const;
  [[nodiscard]] json addon_request(const AddonPlan& addon, const json& state, const Plan& plan) const;
  [[nodiscard]] json cluster_view() const;
  [[nodiscard]] json resolved_config(const AddonPlan& addon) const;
  [[nodiscard]] const AddonPlan* find_addon(const std::string& name) const;
  /// {option: hash of its value} of the driver's options as the topology gives them (secrets
  /// unresolved), recorded with each node to tell which nodes a changed option affects.
  [[nodiscard]] json driver_option_hashes() const;
  /// The driver's live view of every ready node ({} for a driver without inspect).
  [[nodiscard]] json inspect_nodes(const json& state);

  /// Applies `fn` to the state, stamps it and saves it (see StateJournal::commit).
  [[nodiscard]] Result<void> commit(const std::function<void(json&)>& fn) { return journal_->commit(fn); }
  /// See StateJournal::commit_if.
  [[nodiscard]] Result<void> commit_if(const std::function<bool(json&)>& fn) { return journal_->commit_if(fn); }
  [[nodiscard]] json snapshot() { return journal_->snapshot(); }
  /// See StateJournal::read.
  void read_state(const std::function<void(const json&)>& fn) { journal_->read(fn); }
  /// Commits a change of one record of a state section (created when missing).
  template <class Record>
  [[nodiscard]] Result<void> update_record(const char* section, const std::string& key, const std::function<void(Record&)>& fn) {
    return commit([&](json& s) {
      Record r = record_of<Record>(s, section, key);
      fn(r);
      if (!s.contains(section) || !s[section].is_object()) s[section] = json::object();
      s[section][key] = r;
    });
  }
  /// Commits the removal of one record of a state section.
  [[nodiscard]] Result<void> erase_record(const char* section, const std::string& key) {
    return commit([&](json& s) {
      if (auto it = s.find(section); it != s.end() && it->is_object()) it->erase(key);
    });
  }
  /// Commits a change to the component `key` of `addon`'s record. Only that component is read
  /// and written back, so the change costs the same however many components the addon has
  /// (update_record would convert the whole record, both ways).
  [[nodiscard]] Result<void> update_component(const std::string& addon, const std::string& key,
                                              const std::function<void(ComponentRecord&)>& fn) {
    return commit([&](json& s) {
      json& components = addon_slot(s, addon)["components"];
      if (!components.is_object()) components = json::object();
      auto it = components.find(key);
      ComponentRecord c = it != components.end() && it->is_object() ? it->get<ComponentRecord>() : ComponentRecord{};
      fn(c);
      components[key] = c;
    });
  }
  /// Commits the removal of the component `key` from `addon`'s record, if both are there.
  [[nodiscard]] Result<void> erase_component(const std::string& addon, const std::string& key) {
    return commit([&](json& s) {
      auto addons = s.find("addons");
      if (addons == s.end() || !addons->is_object()) return;
      auto record = addons->find(addon);
      if (record == addons->end() || !record->is_object()) return;
      if (auto components = record->find("components"); components != record->end() && components->is_object()) components->erase(key);
    });
  }

  EngineOptions options_;
  Topology topo_;
  PluginHost host_;
  const Plugin* driver_ = nullptr;
  json driver_config_ = json::object();  // secrets resolved: for the driver's requests only
  DriverPlan driver_plan_;                 // secrets unresolved: for planning
  // [runtime.NAME] options with defaults, by runtime; references unresolved (the runtime
  // resolves a secret when it needs it), sent as `config` with every runtime operation.
  std::map<std::string, json> runtime_configs_;
  std::vector<AddonPlan> addons_;
  std::filesystem::path state_dir_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<StateJournal> journal_;
  std::shared_ptr<HealthProbe> health_;
};

}  // namespace flotilla
