// Process groups: a workload is its process group, and a pid names a process only together
// with its start time (flotilla::support::ProcessId), so a reused pid is never signalled.
#pragma once

#include "flotilla/support/process.hpp"

#include <sys/types.h>

#include <chrono>
#include <vector>

namespace flotilla::process_runtime {

using namespace std::chrono_literals;

inline constexpr auto kPollInterval = 20ms;
inline constexpr auto kKillGrace = 5s;  // after SIGKILL, how long the kernel may take

/// One process, identified by pid and start time together.
using Target = support::ProcessId;

/// True when `t` still runs: alive, not a zombie, and started when recorded.
[[nodiscard]] bool still_runs(const Target& t);

/// Live members of the workload's process group whose leader has exited. Only processes that
/// are in session and group `leader.pid` and started no earlier than the leader qualify: the
/// kernel does not hand out a pid that is still in use as a group or session id, so while such
/// processes exist, the number still names the session the leader made.
std::vector<Target> orphaned_members(const Target& leader);

/// What is left of a workload's process group, as far as it can be told apart from strangers.
enum class GroupState { gone, leader, orphans };

GroupState group_state(const Target& leader);

/// Sends `sig` to the whole process group of `leader`, never to a reused pid.
void signal_group(const Target& leader, int sig);

/// Waits until every group in `leaders` is gone; false if `timeout` passed first.
bool wait_gone(const std::vector<Target>& leaders, std::chrono::milliseconds timeout);

/// Who gets the TERM that starts a stop. `group`: the whole process group at once. `leader`:
/// the main process only, which stops its own children in its own order (rsyslogd closes its
/// omprog program's input and lets it finish), then whatever is left of the group once the
/// main process has exited; `docker stop` signals a container's main process the same way.
/// KILL always goes to the whole group.
enum class StopMode { group, leader };

/// TERM (as `mode` says), wait up to `timeout_s`, then KILL the group. Returns false if
/// something survived even KILL.
bool terminate_groups(const std::vector<Target>& leaders, double timeout_s, StopMode mode = StopMode::group);

}  // namespace flotilla::process_runtime
