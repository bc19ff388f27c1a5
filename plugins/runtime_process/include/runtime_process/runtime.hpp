// The `process` runtime: runs workloads as native process groups on this machine.
//
// Each workload lives in <node.workdir>/workloads/<name>/ (spec.json, which names the
// environment's variables but keeps none of their values, pid, stdout.log, stderr.log).
// Workloads outlive the engine, which is a short-lived CLI, so they are started detached
// (double fork, own session) and found again through the pid file. A pid alone is not an
// identity: the kernel reuses pids, so every record carries the process start time from
// /proc/PID/stat and nothing is ever signalled unless that start time still matches.
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::process_runtime {

/// The runtime's operations (docs/sdk-reference.md, flotilla.runtime/1).
class ProcessRuntime final : public flotilla::sdk::Runtime {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json start(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json inspect(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json stop(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json signal(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json put_file(sdk::Context& ctx, const sdk::json& request) override;
};

/// The manifest (JSON text; the runtime takes no options); lives as long as the process.
[[nodiscard]] const char* manifest();

}  // namespace flotilla::process_runtime
