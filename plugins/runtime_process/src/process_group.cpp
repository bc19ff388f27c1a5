#include "runtime_process/process_group.hpp"

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

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned int flags) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

std::optional<ProcStat> read_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  // The command name is in parentheses and may itself contain ") ", so parse after the last one.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  ProcStat st;
  std::string skip;
  long long ppid = 0, pgid = 0, sid = 0;
  fields >> st.state >> ppid >> pgid >> sid;
  for (int i = 0; i < 15 && fields; ++i) fields >> skip;  // tty_nr .. itrealvalue
  fields >> st.start_time;
  if (!fields) return std::nullopt;
  st.pgid = static_cast<pid_t>(pgid);
  st.sid = static_cast<pid_t>(sid);
  return st;
}

bool is_running(const Target& t) {
  const auto st = read_stat(t.pid);
  return st && is_live(*st) && st->start_time == t.start_time;
}

bool signal_exact(const Target& t, int sig) {
  Fd pidfd(pidfd_open(t.pid, 0));
  if (pidfd.get() < 0) return false;
  const auto st = read_stat(t.pid);
  if (!st || st->start_time != t.start_time) return false;
  return pidfd_send_signal(pidfd.get(), sig, nullptr, 0) == 0;
}

std::vector<Target> orphaned_members(const Target& leader) {
  std::vector<Target> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc"), &::closedir);
  if (!dir) return out;
  while (const dirent* entry = ::readdir(dir.get())) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    const auto st = read_stat(static_cast<pid_t>(pid));
    if (st && is_live(*st) && st->pgid == leader.pid && st->sid == leader.pid && st->start_time >= leader.start_time)
      out.push_back({static_cast<pid_t>(pid), st->start_time});
  }
  return out;
}

GroupState group_state(const Target& leader) {
  const auto st = read_stat(leader.pid);
  if (st) {
    if (st->start_time != leader.start_time) return GroupState::gone;  // the pid belongs to someone else now
    if (is_live(*st)) return GroupState::leader;
  }
  // Leader exited (or is an unreaped zombie): children it left behind may still run.
  return orphaned_members(leader).empty() ? GroupState::gone : GroupState::orphans;
}

void signal_group(const Target& leader, int sig) {
  switch (group_state(leader)) {
    case GroupState::gone:
      return;
    case GroupState::leader: {
      Fd pidfd(pidfd_open(leader.pid, 0));
      const auto st = read_stat(leader.pid);
      if (pidfd.get() < 0 || !st || st->start_time != leader.start_time) return;
      // While the leader is pinned and verified, the group id is ours.
      if (::kill(-leader.pid, sig) != 0) pidfd_send_signal(pidfd.get(), sig, nullptr, 0);
      return;
    }
    case GroupState::orphans:
      for (const Target& member : orphaned_members(leader)) signal_exact(member, sig);
      return;
  }
}

bool wait_gone(const std::vector<Target>& leaders, std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool any = std::any_of(leaders.begin(), leaders.end(),
                                 [](const Target& t) { return group_state(t) != GroupState::gone; });
    if (!any) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

bool terminate_groups(const std::vector<Target>& leaders, double timeout_s) {
  for (const Target& t : leaders) signal_group(t, SIGTERM);
  const auto grace = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::max(0.0, timeout_s)));
  if (wait_gone(leaders, grace)) return true;
  for (const Target& t : leaders) signal_group(t, SIGKILL);
  return wait_gone(leaders, kKillGrace);
}
}  // namespace flotilla::process_runtime
