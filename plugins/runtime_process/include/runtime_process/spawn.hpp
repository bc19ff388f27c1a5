// Starting a workload detached from the engine (double fork, own session), recorded in its
// pid file before it execs: flotilla::support::spawn with the runtime's error messages.
#pragma once

#include "runtime_process/process_group.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace flotilla::process_runtime {

struct SpawnSpec {
  std::string workload;
  std::string node;
  std::filesystem::path dir;
  std::filesystem::path stdout_path;
  std::filesystem::path stderr_path;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
};

/// What a user reads when the command cannot be run (`err` from exec or the PATH search).
[[nodiscard]] std::string exec_error(const SpawnSpec& s, int err);

/// Starts the workload detached from the engine in its own session and returns its identity
/// once it has exec'd. `on_pid` runs after the child exists but before it execs, to record it:
/// a workload never runs without a pid file. Throws sdk::Invalid when the command cannot be
/// found or executed, sdk::Retryable when fork fails, sdk::Error for the rest.
[[nodiscard]] Target spawn(const SpawnSpec& s, const std::function<void(const Target&)>& on_pid);

}  // namespace flotilla::process_runtime
