// The built `flotilla` binary as a user runs it, on a throwaway local-driver cluster: commands
// through sh (with a time limit, so a hang fails the test), through a pseudo-terminal, what
// docs/cli.md promises (exit codes, JSON keys) read from the doc itself, and the processes a
// cluster left behind. A Cluster runs `down` when it goes and checks that it succeeded.
#pragma once

#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace flotilla::test::cli {

/// What one command printed and how it ended (exit code, or -1 if it did not exit).
struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

/// A topology file in a scratch directory with a local-driver cluster on a /24 reserved for it
/// (test_resources.hpp) until it goes.
class Cluster {
 public:
  /// `body` follows the [cluster] and [driver.local] tables.
  Cluster(const std::string& name, const std::string& body);
  /// Runs `down -q` and checks that it exited 0 and left no state directory.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  /// Runs the shell words `args` after `flotilla` in the scratch directory, where $TOPOLOGY is
  /// the topology file and $DIR the directory; `env` is put before the command (`NO_COLOR=1`).
  /// stdin is /dev/null; a run longer than 60 s is killed (exit 124).
  [[nodiscard]] Run run(const std::string& args, const std::string& env = "") const;
  /// `status --output json`, parsed; fails the test if it does not exit 0.
  [[nodiscard]] nlohmann::json status() const;
  /// Rewrites the topology file with another body.
  void rewrite(const std::string& body) const;

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }
  [[nodiscard]] std::filesystem::path file() const { return dir_.path() / "topology.toml"; }
  [[nodiscard]] std::filesystem::path state_dir() const { return dir_.path() / ".flotilla" / name_; }
  /// The cluster's /24 as "127.A.B" (append ".host").
  [[nodiscard]] std::string subnet() const { return subnet_.net(); }
  [[nodiscard]] const std::string& name() const { return name_; }
  /// Pids of running processes whose command line mentions this cluster (its addresses or its
  /// directory) or that run in its directory: after `down`, none may be left.
  [[nodiscard]] std::set<pid_t> processes() const;
  /// processes() that are neither in `recorded` nor descended from one of them: what runs
  /// without the state knowing. Fails the test if a recorded pid does not run.
  [[nodiscard]] std::set<pid_t> unaccounted(const std::set<pid_t>& recorded) const;
  /// Options added after every command's arguments and variables put before it, the
  /// destructor's `down` included (`--plugin-path DIR` for a cluster using test plugins).
  void always(const std::string& options, const std::string& env = "") {
    options_ = options;
    env_ = env;
  }

 private:
  resources::Subnet subnet_;
  proc::ScratchDir dir_;
  std::string name_;
  std::string options_;
  std::string env_;
};

/// The pids of `status --output json`'s running instances and addon components.
std::set<pid_t> recorded_pids(const nlohmann::json& status);

/// The exit codes table of docs/cli.md: code by its meaning ("success", "wrong arguments ...").
std::map<int, std::string> documented_exit_codes();
/// The code whose documented meaning starts with `meaning`; fails the test if there is none.
int exit_code(const std::string& meaning);

/// The keys docs/cli.md promises for `COMMAND --output json` in its prose ("`ps --output json`
/// has `workloads[]` (`node`, ...)"): each top-level key ("actions[]" keeps its brackets)
/// with the keys of its elements when the doc lists them.
std::map<std::string, std::vector<std::string>> documented_json_keys(const std::string& command);
/// The example document of the `## \`status --output json\`` section of docs/cli.md.
nlohmann::json documented_status_example();
/// Every key of `documented` (recursively, through objects and the first element of arrays)
/// that `actual` lacks or holds with another JSON type, as jq paths; skips the values of
/// `endpoints`, whose keys are names.
std::vector<std::string> missing_keys(const nlohmann::json& documented, const nlohmann::json& actual, const std::string& at = "");
/// Checks `doc` against documented_json_keys(command): the missing keys, as paths.
std::vector<std::string> missing_documented_keys(const std::string& command, const nlohmann::json& doc);

/// A command run on a pseudo-terminal (stdin, stdout and stderr all the terminal, as in a shell),
/// started in its own session so Ctrl-C typed on the terminal reaches it as from a keyboard.
class Terminal {
 public:
  /// Starts `argv` (argv[0] a path) with `env_add` ("NAME=value") added to this environment.
  Terminal(const std::vector<std::string>& argv, const std::vector<std::string>& env_add, const std::filesystem::path& cwd);
  /// Kills the whole session with SIGKILL if it still runs, and reaps it.
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Writes `bytes` as if typed (e.g. "\x03" for Ctrl-C).
  void type(const std::string& bytes) const;
  /// Reads what is available, waiting up to `timeout` for the first byte; returns all read so far.
  const std::string& read(std::chrono::milliseconds timeout);
  /// Reads until the command exits and the terminal is drained, or `timeout` passes; the exit
  /// code, or nullopt if it still runs.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string output_;
};

}  // namespace flotilla::test::cli
