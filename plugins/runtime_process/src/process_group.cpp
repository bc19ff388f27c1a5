#include "runtime_process/process_group.hpp"

#include "flotilla/support/fd.hpp"
#include "flotilla/support/request.hpp"
#include "flotilla/support/wait.hpp"

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace flotilla::process_runtime {

namespace {

bool is_live(const support::ProcStat& st) { return st.state != 'Z' && st.state != 'X' && st.state != 'x'; }

}  // namespace

bool still_runs(const Target& t) {
  // A record always carries the start time; without one it cannot be told from a stranger.
  return t.start_time != 0 && support::is_running(t);
}

std::vector<Target> orphaned_members(const Target& leader) {
  std::vector<Target> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc"), &::closedir);
  if (!dir) return out;
  while (const dirent* entry = ::readdir(dir.get())) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    const auto st = support::read_proc_stat(static_cast<pid_t>(pid));
    if (st && is_live(*st) && st->pgid == leader.pid && st->sid == leader.pid && st->start_time >= leader.start_time)
      out.push_back({static_cast<pid_t>(pid), st->start_time});
  }
  return out;
}

GroupState group_state(const Target& leader) {
  const auto st = support::read_proc_stat(leader.pid);
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
      // While the leader is pinned by the pidfd and verified, the group id is ours.
      support::UniqueFd pidfd(support::pidfd_open(leader.pid, 0));
      if (!pidfd || !support::is_running(leader)) return;
      if (::kill(-leader.pid, sig) != 0) support::signal_process(leader, sig);
      return;
    }
    case GroupState::orphans:
      for (const Target& member : orphaned_members(leader)) support::signal_process(member, sig);
      return;
  }
}

bool wait_gone(const std::vector<Target>& leaders, std::chrono::milliseconds timeout) {
  return support::wait_until(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(kPollInterval), [&] {
    return std::none_of(leaders.begin(), leaders.end(), [](const Target& t) { return group_state(t) != GroupState::gone; });
  });
}

bool terminate_groups(const std::vector<Target>& leaders, double timeout_s, StopMode mode) {
  const auto grace = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(std::max(0.0, timeout_s)));
  if (mode == StopMode::group) {
    for (const Target& t : leaders) signal_group(t, SIGTERM);
    if (wait_gone(leaders, grace)) return true;
  } else {
    // The main process first; the rest of its group only once it has exited (its children may
    // be finishing work it handed them, and a TERM could cut that short).
    std::vector<bool> rest_signalled(leaders.size(), false);
    for (std::size_t i = 0; i < leaders.size(); ++i) {
      if (group_state(leaders[i]) == GroupState::leader) {
        support::signal_process(leaders[i], SIGTERM);
      } else {
        signal_group(leaders[i], SIGTERM);
        rest_signalled[i] = true;
      }
    }
    const bool gone = support::wait_until(grace, std::chrono::duration_cast<std::chrono::milliseconds>(kPollInterval), [&] {
      bool all_gone = true;
      for (std::size_t i = 0; i < leaders.size(); ++i) {
        const GroupState state = group_state(leaders[i]);
        if (state == GroupState::orphans && !rest_signalled[i]) {
          signal_group(leaders[i], SIGTERM);
          rest_signalled[i] = true;
        }
        all_gone = all_gone && state == GroupState::gone;
      }
      return all_gone;
    });
    if (gone) return true;
  }
  for (const Target& t : leaders) signal_group(t, SIGKILL);
  return wait_gone(leaders, std::chrono::duration_cast<std::chrono::milliseconds>(kKillGrace));
}

}  // namespace flotilla::process_runtime
