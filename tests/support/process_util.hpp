// Helpers for tests that start real processes: scratch directories, /proc identity checks,
// bounded waits, and a child process guard that never leaves anything running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flotilla/support/command.hpp"

namespace flotilla::test::proc {

/// A fresh directory under /tmp, removed with everything in it when destroyed, unless
/// FLOTILLA_KEEP_TEST_DIRS is set (to look at it after a failure).
class ScratchDir {
 public:
  /// Throws std::runtime_error if the directory cannot be made.
  explicit ScratchDir(const std::string& prefix = "flotilla-test");
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

/// Fields of /proc/PID/stat the tests look at; nullopt if there is no such process.
struct Stat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  std::uint64_t start_time = 0;
};
[[nodiscard]] std::optional<Stat> read_stat(pid_t pid);

/// True if `pid` exists and has not finished (a zombie counts as finished).
[[nodiscard]] bool running(pid_t pid);

/// Polls `done` every 20 ms until it returns true or `timeout` passes; returns its last answer.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

/// The whole file, or "" if it cannot be read.
[[nodiscard]] std::string read_text(const std::filesystem::path& path);

/// Runs the tool `name` (found on PATH) with `args`, for at most 20 s: how a test checks what
/// Flotilla wrote with the program its users would use (openssl, ssh-keygen).
support::CommandResult run_tool(const std::string& name, const std::vector<std::string>& args);

/// What a shell script printed and how it ended.
struct Shell {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `script` with sh in `dir`, where the built `flotilla` is $FLOTILLA, its directory $BIN,
/// the source tree $SOURCE and `dir`/topology.toml $TOPOLOGY; stdin is /dev/null. Safe to call
/// from several threads at once (each call has its own files in `dir`).
Shell run_flotilla_script(const std::filesystem::path& dir, const std::string& script);

/// What `command` (run by sh) printed on stdout; "" if it could not run.
std::string shell_output(const std::string& command);

/// Brings the test's cluster down when destroyed, failed or not: runs `prefix` (say, a line that
/// sets the environment) and `$FLOTILLA down "$TOPOLOGY" -q` in `dir` with run_flotilla_script.
/// A failed down is reported (report_cleanup_failure): it would leave processes behind.
class DownOnExit {
 public:
  explicit DownOnExit(std::filesystem::path dir, std::string prefix = {}) : dir_(std::move(dir)), prefix_(std::move(prefix)) {}
  ~DownOnExit();
  DownOnExit(const DownOnExit&) = delete;
  DownOnExit& operator=(const DownOnExit&) = delete;

 private:
  std::filesystem::path dir_;
  std::string prefix_;
};

/// A process this test started with fork/exec. Killed (SIGKILL) and reaped when destroyed.
class Child {
 public:
  /// Starts `argv` with `env_add` added to this process's environment. With `capture_stdout`,
  /// stdout is a pipe read by read_line(). Throws std::runtime_error if it cannot start.
  explicit Child(const std::vector<std::string>& argv, const std::vector<std::string>& env_add = {},
                 bool capture_stdout = false);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// One line of stdout without the newline; nullopt on EOF or after `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  /// Waits up to `timeout` for the child to exit; its wait status, or nullopt if it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffered_;
  bool reaped_ = false;
};

}  // namespace flotilla::test::proc
