// The command line: one table of subcommands, each with its options, help and example.
#pragma once

#include <string>
#include <vector>

namespace flotilla {

/// Exit codes, documented in `flotilla --help` and docs/cli.md.
enum ExitCode : int {
  kExitOk = 0,           // success
  kExitFailed = 1,       // the command ran and something failed (a step, a lookup)
  kExitUsage = 2,        // wrong arguments or options
  kExitInvalid = 3,      // the topology or a plugin is invalid; nothing was touched
  kExitLocked = 4,       // another run holds the cluster's lock
  kExitInterrupted = 130 // stopped by Ctrl-C
};

/// Runs the CLI; returns the process exit code.
[[nodiscard]] int run_cli(const std::vector<std::string>& args);

}  // namespace flotilla
