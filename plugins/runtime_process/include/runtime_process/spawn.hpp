// Starting a workload detached from the engine (double fork, own session), recorded in its
// pid file before it execs.
#pragma once

#include "runtime_process/process_group.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace flotilla::process_runtime {

inline constexpr auto kSpawnReportTimeout = 10s;  // bound on waiting for the spawned child's report

/// Messages from the forked children to the engine; small enough to be written atomically.
struct ChildReport {
  int kind;
  int value;
};
enum : int { kReportPid = 1, kReportForkFailed = 2, kReportSetupFailed = 3, kReportExecFailed = 4 };

bool write_report(int fd, int kind, int value);

/// Puts `from` at descriptor number `to`, open across exec. Async-signal-safe.
bool move_fd(int from, int to);

/// Reads one report; nullopt on EOF or when `timeout` passes.
std::optional<ChildReport> read_report(int fd, std::chrono::milliseconds timeout, bool* timed_out = nullptr);

/// Finds `program` the way a shell would, on the PATH the workload will have.
std::optional<std::string> resolve_program(const std::string& program, const std::string& path_var);

struct SpawnSpec {
  std::string workload;
  std::string node;
  std::filesystem::path dir;
  std::filesystem::path stdout_path;
  std::filesystem::path stderr_path;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
};

std::string exec_error(const SpawnSpec& s, int err);

Fd open_or_throw(const std::filesystem::path& path, int flags, const SpawnSpec& s);

/// Starts the workload detached from the engine and returns its identity once it has exec'd.
/// Over 100 lines on purpose: between fork and exec only async-signal-safe calls may run, so
/// the whole child side stays in one place where that can be checked line by line.
/// `on_pid` runs after the child exists but before it execs, to record it: a workload never
/// runs without a pid file.
Target spawn(const SpawnSpec& s, const std::function<void(const Target&)>& on_pid);

}  // namespace flotilla::process_runtime
