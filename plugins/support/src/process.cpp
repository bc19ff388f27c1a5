#include "flotilla/support/process.hpp"

#include "flotilla/support/fd.hpp"
#include "flotilla/support/files.hpp"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace flotilla::support {
namespace fs = std::filesystem;

namespace {


bool live_state(char state) { return state != 'Z' && state != 'X' && state != 'x'; }

}  // namespace

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  // The command name is in parentheses and may itself contain ") ": parse after the last one.
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  ProcStat st;
  st.comm = text.substr(open + 1, close - open - 1);
  long long ppid = 0, pgid = 0, sid = 0;
  std::string skip;
  fields >> st.state >> ppid >> pgid >> sid >> st.tty_nr;
  for (int i = 0; i < 14 && fields; ++i) fields >> skip;  // tpgid .. itrealvalue
  fields >> st.start_time;
  if (!fields) return std::nullopt;
  st.ppid = static_cast<pid_t>(ppid);
  st.pgid = static_cast<pid_t>(pgid);
  st.sid = static_cast<pid_t>(sid);
  return st;
}

std::optional<ProcessId> process_id(pid_t pid) {
  const auto st = read_proc_stat(pid);
  if (!st || !live_state(st->state)) return std::nullopt;
  return ProcessId{pid, st->start_time};
}

bool is_running(const ProcessId& id) {
  const auto st = read_proc_stat(id.pid);
  return st && live_state(st->state) && (id.start_time == 0 || st->start_time == id.start_time);
}

bool signal_process(const ProcessId& id, int sig) {
  // Debian 12's glibc has no C++ declarations of the pidfd calls: use the system calls.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, id.pid, 0)));
  if (pidfd.get() < 0) return false;
  // The pidfd pins the process: if it is still `id` now, the signal reaches it and no other.
  if (!is_running(id)) return false;
  return ::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) == 0;
}

std::optional<int> reap_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t rc = ::waitpid(pid, &status, WNOHANG);
    if (rc == pid) return status;
    if (rc < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void write_pid_file(const fs::path& path, const ProcessId& id) {
  write_file_atomic(path, std::to_string(id.pid) + " " + std::to_string(id.start_time) + "\n", 0644);
}

std::optional<ProcessId> read_pid_file(const fs::path& path) {
  std::ifstream in(path);
  long long pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  std::uint64_t start = 0;
  if (!(in >> start)) {
    if (!in.eof()) return std::nullopt;
    start = 0;
  }
  return ProcessId{static_cast<pid_t>(pid), start};
}

std::optional<fs::path> find_executable(std::string_view name, const ExecutableSearch& search) {
  const auto executable = [](const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string_view::npos) {
    if (executable(fs::path(name))) return fs::path(name);
    return std::nullopt;
  }
  std::vector<fs::path> dirs = search.first;
  const char* env_path = std::getenv("PATH");
  std::istringstream path_list(search.path ? *search.path : std::string(env_path ? env_path : ""));
  for (std::string dir; std::getline(path_list, dir, ':');)
    if (!dir.empty()) dirs.emplace_back(dir);
  if (search.sbin) {
    dirs.emplace_back("/usr/sbin");
    dirs.emplace_back("/sbin");
  }
  for (const auto& dir : dirs)
    if (executable(dir / name)) return dir / name;
  return std::nullopt;
}

}  // namespace flotilla::support
