#include "driver_local/node_processes.hpp"

#include "flotilla/support/request.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>

namespace flotilla::local {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Stat {
  char state = '?';
  pid_t sid = 0;
  int tty = 0;
  std::uint64_t start_time = 0;
  std::string name;
};

// /proc/PID/stat: "pid (comm) state ppid pgrp session tty_nr tpgid flags ... starttime(22)".
std::optional<Stat> read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  Stat s;
  s.name = text.substr(open + 1, close - open - 1);
  std::istringstream fields(text.substr(close + 1));
  pid_t ppid = 0, pgrp = 0;
  fields >> s.state >> ppid >> pgrp >> s.sid >> s.tty;
  std::string skip;
  for (int i = 0; i < 14 && fields; ++i) fields >> skip;  // tpgid .. nice, itrealvalue
  if (!(fields >> s.start_time)) return std::nullopt;
  return s;
}

bool alive(const NodeProcess& p) {
  const auto s = read_stat(p.pid);
  return s && s->start_time == p.start_time && s->state != 'Z' && s->state != 'X' && s->state != 'x';
}

bool inside(const fs::path& dir, const fs::path& root) {
  auto d = dir.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++d) {
    if (r->empty()) continue;  // a trailing separator
    if (d == dir.end() || *d != *r) return false;
  }
  return true;
}

// A pidfd pins the process while it is checked and signalled, so a pid reused in between is
// never hit.
void signal_group(const NodeProcess& p, int sig) {
  const int pidfd = flotilla::support::pidfd_open(p.pid, 0);
  if (pidfd < 0) return;
  if (alive(p)) ::kill(-p.pid, sig);
  ::close(pidfd);
}

bool wait_gone(const std::vector<NodeProcess>& found, std::chrono::milliseconds limit, const std::function<bool()>& cancelled) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (std::none_of(found.begin(), found.end(), alive)) return true;
    if (std::chrono::steady_clock::now() >= deadline || (cancelled && cancelled())) return false;
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace

std::vector<NodeProcess> node_processes(const fs::path& workdir) {
  std::vector<NodeProcess> out;
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(workdir, ec);
  if (ec) return out;
  const pid_t self = ::getpid();
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.empty() || !std::all_of(file.begin(), file.end(), ::isdigit)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(file));
    if (pid == self) continue;
    const auto stat = read_stat(pid);
    if (!stat || stat->sid != pid || stat->tty != 0 || stat->state == 'Z') continue;
    std::error_code cwd_ec;
    const fs::path cwd = fs::read_symlink(entry.path() / "cwd", cwd_ec);  // fails for others' processes: not ours to end
    if (cwd_ec || !inside(cwd, root)) continue;
    out.push_back({pid, stat->start_time, stat->name});
  }
  return out;
}

bool end_processes(const std::vector<NodeProcess>& found, std::chrono::milliseconds grace, const std::function<bool()>& cancelled) {
  for (const auto& p : found) signal_group(p, SIGTERM);
  if (wait_gone(found, grace, cancelled)) return true;
  for (const auto& p : found) signal_group(p, SIGKILL);
  return wait_gone(found, 5s, {});
}

}  // namespace flotilla::local
