// The step runner: carries out one step of a plan, one function per step kind, recording
// intent in state before each side effect and the outcome after it.
#pragma once

#include "executor.hpp"
#include "planner.hpp"
#include "plugin_host.hpp"
#include "runtime_broker.hpp"
#include "state_records.hpp"

#include <mutex>
#include <string>

namespace flotilla {

class Engine;

class EngineStepRunner final : public StepRunner {
 public:
  EngineStepRunner(Engine& engine, const Plan& plan);

  [[nodiscard]] Result<void> run(const Step& step, const CancelToken& cancel) override;

  [[nodiscard]] Result<void> create_node(const std::string& name, int slot, const CancelToken& cancel);
  [[nodiscard]] Result<void> update_node(const std::string& name);
  [[nodiscard]] Result<void> destroy_node(const std::string& name, const CancelToken& cancel);
  /// Starts (or replaces) an instance as the topology shapes it; `health_timeout` 0 is the engine's.
  [[nodiscard]] Result<void> start_instance(const InstancePlan& instance, const CancelToken& cancel,
                                            std::chrono::seconds health_timeout = std::chrono::seconds(0));
  [[nodiscard]] Result<void> roll_wave(const RollWave& wave, const CancelToken& cancel);
  [[nodiscard]] Result<void> stop_instance(const std::string& id);
  /// Applies addon `name`: one stage of its apply, or ("" stage) the whole apply, which is told
  /// what each stage of this run reported.
  /// `resync`: the addon's record is ready and matches the topology (a reconciling addon's
  /// routine run), so it is not marked `applying` first: a run that dies meanwhile leaves a
  /// record the next plan resyncs again anyway. Its result is saved only when it differs.
  [[nodiscard]] Result<void> apply_addon(const std::string& name, const std::string& stage, bool resync, const CancelToken& cancel);
  [[nodiscard]] Result<void> destroy_addon(const std::string& name, const CancelToken& cancel);

 private:
  [[nodiscard]] Result<void> run_one(const CreateNode& w, const CancelToken& cancel);
  [[nodiscard]] Result<void> run_one(const UpdateNode& w, const CancelToken& cancel);
  [[nodiscard]] Result<void> run_one(const DestroyNode& w, const CancelToken& cancel);
  [[nodiscard]] Result<void> run_one(const StartInstance& w, const CancelToken& cancel);
  [[nodiscard]] Result<void> run_one(const RollWave& w, const CancelToken& cancel);
  [[nodiscard]] Result<void> run_one(const StopInstance& w, const CancelToken& cancel);
  [[nodiscard]] Result<void> run_one(const ApplyAddon& w, const CancelToken& cancel);
  [[nodiscard]] Result<void> run_one(const DestroyAddon& w, const CancelToken& cancel);
  [[nodiscard]] CallHooks hooks_for(const std::string& kind, const std::string& plugin, const std::string& instance,
                                    const CancelToken& cancel);
  [[nodiscard]] CallHooks addon_hooks(const std::string& addon, const std::string& plugin, const CancelToken& cancel);
  [[nodiscard]] json driver_request(const std::string& name, const json& state);
  [[nodiscard]] Result<void> stop_everything_on(const std::string& node);
  /// The resolver address for a service's containers on `node`, as `state` records the node
  /// ("" to leave Docker's default).
  [[nodiscard]] std::string container_resolver(const json& state, const std::string& node) const;
  [[nodiscard]] Result<void> launch(const std::string& id, const InstanceRecord& want, const CancelToken& cancel,
                                    std::chrono::seconds health_timeout);
  /// The URL of a recorded instance's health check ("" when it has none).
  [[nodiscard]] std::string health_url(const json& state, const InstanceRecord& rec) const;
  /// Waits until the instance answers its health check, exits, or `timeout` (0: the engine's) passes.
  [[nodiscard]] Result<void> wait_healthy(const std::string& id, const std::string& node, const std::string& url,
                                          const json& record, const CancelToken& cancel, std::chrono::seconds timeout);
  [[nodiscard]] Result<void> hold_healthy(const std::string& id, const std::string& node, const std::string& url,
                                          const json& record, std::chrono::seconds hold, const CancelToken& cancel);
  [[nodiscard]] Result<void> follow_instances(const CancelToken& cancel);
  [[nodiscard]] Result<void> note_rollout(const ServiceSpec& svc, const std::string& from);
  [[nodiscard]] static std::string join_ids(const std::vector<InstancePlan>& instances);
  [[nodiscard]] std::string versions_of(const std::string& service) const;

  Engine& e_;
  const Plan& plan_;
  RuntimeBroker broker_;
  /// Whether an addon of the topology provides `container-dns`; the addons do not change
  /// during a run.
  bool container_dns_;
  /// What each addon's stages reported in this run: addon -> {stage: outputs}.
  std::mutex stages_mu_;
  /// Serialises the rollout waves' re-applies of the addons that follow the instances.
  std::mutex follow_mu_;
  json stage_outputs_ = json::object();
};

}  // namespace flotilla
