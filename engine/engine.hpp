// The engine: ties topology, plugins, planner, executor and state together for one cluster.
#pragma once

#include "executor.hpp"
#include "planner.hpp"
#include "plugin_host.hpp"
#include "state_store.hpp"
#include "topology.hpp"

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
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

/// What `up` (or `down`) did.
struct ApplyReport {
  std::vector<StepResult> results;
  bool interrupted = false;
  [[nodiscard]] int failed() const;
  [[nodiscard]] int skipped() const;
  [[nodiscard]] int succeeded() const;
};

/// One cluster, opened from its topology file.
class Engine {
 public:
  /// Loads the topology and the plugins and checks everything that can be checked without
  /// touching the cluster: engine keys, plugin names, plugin options against their schemas,
  /// capabilities (every `requires` provided), the plugins' own validate operations.
  [[nodiscard]] static Result<std::unique_ptr<Engine>> open(const EngineOptions& options);

  [[nodiscard]] const Topology& topology() const { return topo_; }
  [[nodiscard]] const PluginHost& plugins() const { return host_; }
  [[nodiscard]] const std::filesystem::path& state_dir() const { return state_dir_; }
  [[nodiscard]] const std::vector<AddonPlan>& addons() const { return addons_; }

  /// The recorded state ({} when the cluster was never brought up).
  [[nodiscard]] Result<json> load_state();
  /// Asks the runtimes whether recorded instances and components still run.
  [[nodiscard]] json refresh(const json& state);
  /// Plans `up` (or `down` when destroy_all) against recorded state and what is alive.
  [[nodiscard]] Result<Plan> plan(bool destroy_all = false);
  /// Runs a plan. The caller holds the state lock.
  [[nodiscard]] Result<ApplyReport> apply(const Plan& plan, CancelToken& cancel, ExecutionObserver* observer);
  /// After a successful `down`: removes the state directory if nothing is left in it.
  void cleanup_after_down();

  /// Records a `flotilla scale` override (see effective_replicas) and saves state.
  [[nodiscard]] Result<void> set_replicas(const std::string& service, int replicas);

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

  // Used by the step runner.
  struct Runner;

 private:
  Engine() = default;
  [[nodiscard]] Result<void> check_plugins();
  /// Port clashes between service instances and addon components on the same node.
  [[nodiscard]] Result<void> check_ports() const;
  [[nodiscard]] json node_view(const json& state, const std::string& name) const;
  [[nodiscard]] json addon_request(const AddonPlan& addon, const json& state, const Plan& plan) const;
  [[nodiscard]] json cluster_view() const;
  [[nodiscard]] json resolved_config(const AddonPlan& addon) const;

  /// Applies `fn` to the state under the lock, bumps the serial and saves it atomically.
  [[nodiscard]] Result<void> commit(const std::function<void(json&)>& fn);
  [[nodiscard]] json snapshot();

  EngineOptions options_;
  Topology topo_;
  PluginHost host_;
  const Plugin* driver_ = nullptr;
  json driver_config_ = json::object();
  std::vector<AddonPlan> addons_;
  std::filesystem::path state_dir_;
  std::unique_ptr<FileStateStore> store_;
  std::mutex mu_;
  json state_ = json::object();
  // Group commit (see commit()), guarded by mu_: changes made, changes saved, and the last
  // failed save, which fails the commits whose changes it held.
  std::condition_variable saved_cv_;
  std::uint64_t changes_ = 0;
  std::uint64_t saved_ = 0;
  std::uint64_t failed_ = 0;
  Error save_error_;
  bool saving_ = false;
};

/// The addon names, topologically sorted by provides/requires; a cycle is an error naming it.
[[nodiscard]] Result<std::vector<std::string>> addon_order(const std::vector<AddonPlan>& addons);

}  // namespace flotilla
