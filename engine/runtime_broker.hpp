// The runtime broker: runtime operations an addon asks for through the host API (start,
// stop, inspect, signal, put_file, remove_file, list, and batch: several of those at once).
// Each component is recorded in state before it is started and after, so a crashed run adopts
// it instead of starting it twice: one recorded only as intent (`starting`, no runtime
// record) is looked up through its runtime by its workload name (workload_ref), never taken
// for a stranger.
#pragma once

#include "result.hpp"
#include "state_records.hpp"

#include <flotilla/plugin.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

class Engine;

/// What a runtime is told to find a workload by: its record, or, when only the intent was
/// recorded (the run died before the start returned), a record holding just the workload's
/// name, which runtimes look up by name (docs/sdk-reference.md). Null when neither is known.
[[nodiscard]] json workload_ref(const json& record, const std::string& workload);
/// workload_ref of an instance; its workload name is derived when an old state lacks it.
[[nodiscard]] json workload_ref(const InstanceRecord& instance);
/// workload_ref of a component of `addon`; the same fallback.
[[nodiscard]] json workload_ref(const std::string& addon, const ComponentRecord& component);

class RuntimeBroker {
 public:
  explicit RuntimeBroker(Engine& engine) : e_(engine) {}

  /// Runs `req` (see docs/sdk-reference.md, "runtime operations") for `addon`; fills `out`
  /// with the result or {"error": message}.
  [[nodiscard]] flt_status handle(const std::string& addon, const json& req, json& out);

  /// The operations of the batch `req.ops`, each run by `one` (handle, or a host that records
  /// what it forwards), at once on up to the engine's parallelism (bounded by the addon's
  /// plugin's max_parallel) threads; each result in its place with its own status.
  [[nodiscard]] flt_status batch(const std::string& addon, const json& req, json& out,
                                 const std::function<flt_status(const json& op, json& result)>& one);

  /// Stops a recorded component (if it has a runtime record) and forgets it.
  [[nodiscard]] Result<void> stop_component(const std::string& addon, const std::string& key);
  /// stop_component of each of `keys` at once, as batch runs its operations; the errors.
  [[nodiscard]] std::vector<std::string> stop_components(const std::string& addon, const std::vector<std::string>& keys);

 private:
  struct Call {
    const std::string& addon;
    const json& req;
    json& out;
    json state;        // the records the call reads (records_for), copied when it began
    std::string node;
  };
  /// The records one runtime operation reads, copied under the journal's lock and shaped as
  /// a state (record_of and node_view read it): `node`'s record and, when `key` is given, that
  /// one component of `addon`'s record, whose node it is when `node` is empty. A snapshot would
  /// copy the whole state for every operation: work that grew with the cluster, per node.
  json records_for(std::string node, const std::string& addon, const std::string& key);
  flt_status list(Call& c);
  /// fn(0) .. fn(n - 1) on up to the engine's parallelism (bounded by `addon`'s plugin's
  /// max_parallel) threads, this one among them; returns when all have returned.
  void in_parallel(const std::string& addon, size_t n, const std::function<void(size_t)>& fn);

  flt_status put_file(Call& c, bool remove);
  flt_status start(Call& c, const std::string& name, const std::string& key, const ComponentRecord* before);
  flt_status stop(Call& c, const std::string& key, const ComponentRecord* component);
  // `component` is null when the addon never started one of that name.
  flt_status inspect_or_signal(Call& c, const std::string& op, const std::string& name, const ComponentRecord* component);

  Engine& e_;
};

}  // namespace flotilla
