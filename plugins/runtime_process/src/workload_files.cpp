#include "runtime_process/workload_files.hpp"

#include "flotilla/support/request.hpp"

#include <flotilla/plugin.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <system_error>
#include <thread>

extern char** environ;

namespace flotilla::process_runtime {

namespace fs = std::filesystem;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::Retryable;
using flotilla::support::errno_text;
using flotilla::support::pidfd_open;
using flotilla::support::str_or;

void write_file_atomic(const fs::path& path, std::string_view content, mode_t mode) {
  std::string tmpl = (path.parent_path() / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  Fd fd(::mkstemp(tmpl.data()));
  if (fd.get() < 0) throw Error(FLT_ERROR, "cannot create a temporary file next to " + path.string() + ": " + errno_text(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    throw Error(FLT_ERROR, std::string("cannot ") + what + " " + path.string() + ": " + errno_text(err));
  };
  if (::fchmod(fd.get(), mode) != 0) fail("set the mode of");
  for (std::size_t done = 0; done < content.size();) {
    const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail("sync");
  fd.reset();
  if (::rename(tmpl.c_str(), path.c_str()) != 0) fail("rename into place");
  Fd dir(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail_lines(const fs::path& path, std::uintmax_t from, int lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uintmax_t>(in.tellg());
  constexpr std::uintmax_t kMaxBytes = 64 * 1024;
  const std::uintmax_t start = std::max(from, size > kMaxBytes ? size - kMaxBytes : 0);
  if (start >= size) return {};
  in.seekg(static_cast<std::streamoff>(start));
  std::string text(size - start, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
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
  const auto text = read_file(dir / "pid");
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  long long pid = 0;
  std::uint64_t start = 0;
  if (!(in >> pid >> start) || pid <= 0) return std::nullopt;
  return Target{static_cast<pid_t>(pid), start};
}

std::string spec_hash(const json& workload, const NodeInfo& node) {
  // The node's name and address reach the process through its environment, so they are part
  // of what it runs with. FNV-1a: this detects change, it does not defend against anyone.
  const std::string text = json{{"workload", workload}, {"node", node.name}, {"address", node.address}}.dump();
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
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
  return errors;
}
}  // namespace flotilla::process_runtime
