// Running a tool to completion (`ip`, `openssl`, `docker`) and collecting what it printed: the
// one way plugins run short commands, on top of spawn().
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace flotilla::support {

/// What a finished command did.
struct CommandResult {
  int exit_code = -1;  ///< its exit status; 128+N when killed by signal N
  std::string out;     ///< its stdout
  std::string err;     ///< its stderr
  [[nodiscard]] bool ok() const { return exit_code == 0; }
};

/// A command that could not be run, timed out, or (from run_checked) failed.
class CommandError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Runs `argv` (argv[0] found as spawn finds it) with stdin from /dev/null and waits for it,
/// killing it after `timeout`. Throws CommandError when it cannot start or times out.
[[nodiscard]] CommandResult run_command(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// run_command, and throws CommandError "`ARGV` failed (exit N): STDERR" unless it exits 0.
CommandResult run_checked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// The command line as a shell would show it, for messages.
[[nodiscard]] std::string command_line(const std::vector<std::string>& argv);

}  // namespace flotilla::support
