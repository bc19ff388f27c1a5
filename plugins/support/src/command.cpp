#include "flotilla/support/command.hpp"

#include "flotilla/support/process.hpp"
#include "flotilla/support/request.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>

namespace flotilla::support {
namespace fs = std::filesystem;

std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$*?") == std::string::npos;
    out += plain ? a : "'" + a + "'";
  }
  return out;
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  // Output goes to files in a private directory: spawn() redirects to paths, and files cannot
  // fill up and block the child the way an unread pipe can.
  std::string dir_template = (fs::temp_directory_path() / "flotilla-cmd-XXXXXX").string();
  if (!::mkdtemp(dir_template.data())) throw CommandError("cannot run `" + command_line(argv) + "`: no temporary directory");
  const fs::path dir(dir_template);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  SpawnOptions options{.argv = argv, .stdout_path = dir / "out", .stderr_path = dir / "err", .new_session = true};
  ProcessId id;
  try {
    id = spawn(options);
  } catch (const SpawnError& e) {
    throw CommandError("cannot run `" + command_line(argv) + "`: " + e.what());
  }
  auto status = reap_child(id.pid, timeout);
  if (!status) {
    signal_process(id, SIGKILL);
    (void)reap_child(id.pid, std::chrono::seconds(5));
    throw CommandError("`" + command_line(argv) + "` did not finish within " + std::to_string(timeout.count()) + " ms and was killed");
  }
  CommandResult result;
  result.exit_code = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
  result.out = read_text(dir / "out");
  result.err = read_text(dir / "err");
  return result;
}

CommandResult run_checked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandResult r = run_command(argv, timeout);
  if (!r.ok()) {
    std::string err = r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    throw CommandError("`" + command_line(argv) + "` failed (exit " + std::to_string(r.exit_code) + ")" + (err.empty() ? "" : ": " + err));
  }
  return r;
}

}  // namespace flotilla::support
