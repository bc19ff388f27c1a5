// `flotilla state`: the recorded state shown (`show`) and restored from its backup
// (`restore-backup`), so that recovering a damaged or lost state file is a documented step.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>

namespace flotilla {

/// What `flotilla state ACTION [FILE]` was asked.
struct StateCommand {
  std::string action;                    ///< "show" or "restore-backup"
  std::filesystem::path topology_file;   ///< empty when only --state-dir names the state
  std::filesystem::path state_dir;       ///< --state-dir; empty: .flotilla/<cluster> beside the file
  bool json = false;                     ///< show: the validated JSON instead of a summary
  bool backup = false;                   ///< show: the backup instead of the state file
  bool force = false;                    ///< restore-backup: even over a valid state file
};

/// Runs it; results go to `out`, errors to `err`. Returns an exit code (cli.hpp).
[[nodiscard]] int run_state_command(const StateCommand& command, std::ostream& out, std::ostream& err);

/// For `down` when the state cannot be read: that nothing was stopped and what the state
/// file (or else its backup) records, read as far as it can be, so the user knows what is
/// still running; ends with what to do (`restore`, the command that restores the backup).
[[nodiscard]] std::string unreadable_state_note(const std::filesystem::path& state_dir, const std::string& restore,
                                                const std::string& down);

}  // namespace flotilla
