#include "runtime_process/spawn.hpp"

#include "flotilla/support/request.hpp"

#include <flotilla/plugin.hpp>

#include <unistd.h>

#include <cerrno>

namespace flotilla::process_runtime {

using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::Retryable;
using flotilla::support::errno_text;
using flotilla::support::SpawnError;

std::string exec_error(const SpawnSpec& s, int err) {
  const std::string head = "cannot start " + s.workload + " on node " + s.node + ": command `" + s.command.front() + "` ";
  if (err == ENOENT || err == ENOTDIR)
    return head + "not found (" + errno_text(err) + "); install it or fix `command`";
  return head + "cannot be executed (" + errno_text(err) + "); check its permissions and format or fix `command`";
}

Target spawn(const SpawnSpec& s, const std::function<void(const Target&)>& on_pid) {
  support::SpawnOptions o;
  o.argv = s.command;
  o.env = s.env;
  o.cwd = s.dir;
  o.stdout_path = s.stdout_path;
  o.stderr_path = s.stderr_path;
  o.new_session = true;  // its own session and process group, so stop can signal all of it
  o.detach = true;       // init adopts it: the engine is a short-lived CLI
  o.before_exec = on_pid;
  try {
    return support::spawn(o);
  } catch (const SpawnError& e) {
    switch (e.stage()) {
      case SpawnError::Stage::not_found: {
        // A path that exists but cannot be run is not "not found": say why it cannot be run.
        const std::string& program = s.command.front();
        const int err = program.find('/') != std::string::npos && ::access(program.c_str(), X_OK) != 0 ? errno : ENOENT;
        throw Invalid(exec_error(s, err));
      }
      case SpawnError::Stage::exec:
        throw Invalid(exec_error(s, e.error()));
      case SpawnError::Stage::fork:
        throw Retryable("workload " + s.workload + " on node " + s.node + ": " + e.what());
      case SpawnError::Stage::setup:
        break;
    }
    // Its directory or log files: the message names the path.
    throw Error(FLT_ERROR, "workload " + s.workload + " on node " + s.node + ": " + e.what());
  }
}

}  // namespace flotilla::process_runtime
