#include "runtime_process/workload_files.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/files.hpp"
#include "flotilla/support/request.hpp"

#include <flotilla/plugin.hpp>

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <system_error>

namespace flotilla::process_runtime {

namespace fs = std::filesystem;
using flotilla::sdk::Invalid;
using flotilla::support::str_or;

std::string tail_lines(const fs::path& path, std::uintmax_t from, int lines) {
  constexpr std::uintmax_t kMaxBytes = 64 * 1024;
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) return {};
  const std::uintmax_t start = std::max(from, size > kMaxBytes ? size - kMaxBytes : 0);
  if (start >= size) return {};
  std::string text;
  try {
    text = support::read_from(path, start, static_cast<std::size_t>(size - start)).data;
  } catch (const std::system_error&) {
    return {};
  }
  while (!text.empty() && text.back() == '\n') text.pop_back();
  std::size_t pos = text.size();
  for (int n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

NodeInfo node_of(const json& req) {
  const json node = req.value("node", json::object());
  NodeInfo n{str_or(node, "name"), str_or(node, "address"), fs::path(str_or(node, "workdir"))};
  if (n.name.empty()) n.name = "?";
  if (n.workdir.empty())
    throw Invalid("node " + n.name + " has no workdir; the driver must create the node before workloads run on it");
  if (!n.workdir.is_absolute())
    throw Invalid("node " + n.name + " has a relative workdir `" + n.workdir.string() + "`; drivers must report an absolute path");
  return n;
}

std::string check_workload_name(const std::string& name, const NodeInfo& node) {
  const bool ok = !name.empty() && name != "." && name != ".." && name.size() <= 200 &&
                  name.find_first_of("/\\") == std::string::npos && name.find('\0') == std::string::npos;
  if (!ok)
    throw Invalid("workload name `" + name + "` on node " + node.name +
                  " is not usable as a file name; use letters, digits, '-', '_' or '.'");
  return name;
}

std::uint64_t to_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, v.get<std::int64_t>()));
  if (v.is_string()) return std::stoull(v.get<std::string>());
  return 0;
}

std::optional<Target> target_of_record(const json& record) {
  if (!record.is_object() || !record.contains("pid") || !record.contains("start_time")) return std::nullopt;
  try {
    Target t{static_cast<pid_t>(to_u64(record["pid"])), to_u64(record["start_time"])};
    if (t.pid > 0) return t;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<Target> read_pid_file(const fs::path& dir) {
  // The runtime always writes the start time; a pid alone could name a stranger.
  auto t = support::read_pid_file(dir / "pid");
  if (!t || t->start_time == 0) return std::nullopt;
  return t;
}

std::string spec_hash(const json& workload, const NodeInfo& node) {
  // The node's name and address reach the process through its environment, so they are part
  // of what it runs with.
  return support::stable_hash(json{{"workload", workload}, {"node", node.name}, {"address", node.address}}.dump());
}

std::mutex& workload_mutex(const fs::path& dir) {
  static std::mutex guard;
  static std::map<std::string, std::unique_ptr<std::mutex>> locks;
  std::lock_guard lock(guard);
  auto& m = locks[dir.string()];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

int signal_number(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
  static const std::map<std::string, int> kSignals = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
                                                      {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
                                                      {"USR2", SIGUSR2}};
  const auto it = kSignals.find(name);
  return it == kSignals.end() ? 0 : it->second;
}

json make_record(const std::string& name, const fs::path& dir, const Target& t, const std::string& hash) {
  return json{{"name", name},
              {"pid", t.pid},
              {"start_time", t.start_time},
              {"spec_hash", hash},
              {"dir", dir.string()},
              {"stdout", (dir / "stdout.log").string()},
              {"stderr", (dir / "stderr.log").string()}};
}

std::string name_of(const json& req) {
  std::string name = str_or(req.value("record", json::object()), "name");
  if (name.empty()) name = str_or(req, "name");
  if (name.empty()) name = str_or(req.value("workload", json::object()), "name");
  return name;
}

std::vector<Target> targets_of(const json& req, const fs::path& dir) {
  std::vector<Target> out;
  if (auto t = target_of_record(req.value("record", json::object()))) out.push_back(*t);
  if (auto t = read_pid_file(dir); t && std::find(out.begin(), out.end(), *t) == out.end()) out.push_back(*t);
  return out;
}

std::vector<std::string> validate_workload(const json& workload) {
  std::vector<std::string> errors;
  const std::string name = str_or(workload, "name");
  const json command = workload.value("command", json());
  const bool has_command = command.is_array() && !command.empty();
  if (!has_command) {
    if (workload.contains("image") && !str_or(workload, "image").empty())
      errors.push_back("workload " + name +
                       " has no command: the process runtime runs commands, not images; add `command` (the program and "
                       "its arguments) or use a driver with a Docker runtime");
    else
      errors.push_back("workload " + name + " has no command; add `command` (the program and its arguments)");
  } else if (!std::all_of(command.begin(), command.end(), [](const json& a) { return a.is_string(); }) ||
             command.front().get<std::string>().empty()) {
    errors.push_back("workload " + name + " has a bad command: every element must be a string and the first names the program");
  }
  if (const auto mode = workload.find("stop_mode");
      mode != workload.end() && !(mode->is_string() && (*mode == "group" || *mode == "leader")))
    errors.push_back("workload " + name + " has stop_mode " + mode->dump() +
                     "; use \"group\" (TERM to every process of the workload) or \"leader\" (TERM to its main process first)");
  return errors;
}

StopMode stop_mode_of(const json& workload) {
  return workload.is_object() && workload.value("stop_mode", json()) == "leader" ? StopMode::leader : StopMode::group;
}

StopMode stored_stop_mode(const fs::path& dir) {
  const auto text = support::read_file_if_exists(dir / "spec.json");
  if (!text) return StopMode::group;
  const json spec = json::parse(*text, nullptr, false);
  return spec.is_object() ? stop_mode_of(spec.value("workload", json::object())) : StopMode::group;
}
}  // namespace flotilla::process_runtime
