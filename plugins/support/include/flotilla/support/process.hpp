// Processes: identity from /proc (a pid plus its start time, so a recycled pid is never taken
// for the process that had it), pid files, PATH search, and the one way helpers are started.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::support {

/// One process: its pid and its start time in clock ticks since boot (0 = not known).
struct ProcessId {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  bool operator==(const ProcessId&) const = default;
};

/// The fields of /proc/PID/stat that identify and place a process.
struct ProcStat {
  std::string comm;  ///< the command name (without the parentheses)
  char state = '?';  ///< R, S, D, Z, T, ...
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  int tty_nr = 0;  ///< the controlling terminal's device number; 0 = none
  std::uint64_t start_time = 0;  ///< clock ticks since boot
};

/// Reads /proc/PID/stat; nullopt when the process does not exist or the file cannot be parsed.
[[nodiscard]] std::optional<ProcStat> read_proc_stat(pid_t pid);

/// The identity of a live process, or nullopt when it does not exist.
[[nodiscard]] std::optional<ProcessId> process_id(pid_t pid);

/// True when `id.pid` exists, is not a zombie, and (when id.start_time is not 0) started then.
[[nodiscard]] bool is_running(const ProcessId& id);

/// Sends `sig` to the process only if it still is `id` (through a pidfd, so the pid cannot be
/// reused in between); false when it is gone or the signal cannot be sent.
bool signal_process(const ProcessId& id, int sig);

/// Waits up to `timeout` for the child `pid` of this process to exit and reaps it; its wait
/// status, or nullopt when it is still running (or is not our child).
[[nodiscard]] std::optional<int> reap_child(pid_t pid, std::chrono::milliseconds timeout);

/// Writes "PID START_TIME\n" atomically (write_file_atomic); throws std::system_error naming the file.
void write_pid_file(const std::filesystem::path& path, const ProcessId& id);

/// Reads a pid file of "PID START_TIME" or just "PID" (start_time 0, as daemons write them);
/// nullopt when it is missing, unreadable or malformed.
[[nodiscard]] std::optional<ProcessId> read_pid_file(const std::filesystem::path& path);

/// Where find_executable looks.
struct ExecutableSearch {
  std::vector<std::filesystem::path> first;  ///< searched before PATH
  std::optional<std::string> path;           ///< the PATH value to use; nullopt = this process's PATH
  bool sbin = true;                          ///< then /usr/sbin and /sbin
};

/// A name containing '/' is itself if it is an executable file; any other name is looked up
/// in `search` (empty PATH entries are skipped). nullopt when nothing executable is found.
[[nodiscard]] std::optional<std::filesystem::path> find_executable(std::string_view name, const ExecutableSearch& search = {});

/// How to start a helper.
struct SpawnOptions {
  std::vector<std::string> argv;                           ///< argv[0] is found with find_executable
  std::optional<std::map<std::string, std::string>> env;   ///< nullopt = this process's environment
  std::map<std::string, std::string> env_add;              ///< set on top of env (or this process's)
  std::filesystem::path cwd;                               ///< empty = this process's directory
  std::filesystem::path stdout_path;                       ///< appended to (created 0644); empty = /dev/null
  std::filesystem::path stderr_path;                       ///< the same; empty = /dev/null
  /// Keep this process's stdin, stdout and stderr instead (e.g. a supervisor whose child logs
  /// where it logs); stdout_path and stderr_path must then be empty.
  bool inherit_stdio = false;
  bool new_session = true;                                 ///< setsid(): its own session and process group
  bool detach = false;  ///< double fork: init adopts it, the caller never reaps it
  /// Runs in the caller once the child exists and before it execs (e.g. to write its pid file,
  /// so it never runs unrecorded). If it throws, the child is killed and the exception passes on.
  std::function<void(const ProcessId&)> before_exec;
};

/// Why spawn failed.
class SpawnError : public std::runtime_error {
 public:
  enum class Stage { not_found, fork, setup, exec };
  SpawnError(Stage stage, int error, const std::string& message) : std::runtime_error(message), stage_(stage), error_(error) {}
  [[nodiscard]] Stage stage() const { return stage_; }
  /// The errno of the failure (ENOENT for not_found).
  [[nodiscard]] int error() const { return error_; }

 private:
  Stage stage_;
  int error_;
};

/// Starts a helper and returns once it has exec'd. Signals are reset to their defaults and the
/// signal mask cleared in the child; only descriptors 0-2 stay open; stdin is /dev/null unless
/// inherit_stdio. A
/// child that is not detached must be reaped by the caller (reap_child). Throws SpawnError
/// whose message names the program and what failed (not found, fork, cwd/log files, exec).
[[nodiscard]] ProcessId spawn(const SpawnOptions& options);

}  // namespace flotilla::support
