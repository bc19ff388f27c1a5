// Process identity and process groups through /proc: a workload is its process group, and
// a pid names a process only together with its start time, so a reused pid is never signalled.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace flotilla::process_runtime {

using namespace std::chrono_literals;

inline constexpr auto kPollInterval = 20ms;
inline constexpr auto kKillGrace = 5s;  // after SIGKILL, how long the kernel may take

/// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Debian 12's glibc declares the pidfd functions without C linkage for C++, so call the
// system call directly (pidfd_open comes from flotilla::support for the same reason).
int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned int flags);

struct ProcStat {
  char state = '?';
  pid_t pgid = 0;
  pid_t sid = 0;
  std::uint64_t start_time = 0;  // clock ticks since boot
};

std::optional<ProcStat> read_stat(pid_t pid);

/// A zombie has finished running; nothing may reap it here (the engine is not its parent).
inline bool is_live(const ProcStat& st) { return st.state != 'Z' && st.state != 'X' && st.state != 'x'; }

/// One process, identified by pid and start time together.
struct Target {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  bool operator==(const Target&) const = default;
};

bool is_running(const Target& t);

/// Sends `sig` to one process, but only if it is still the one identified by `t`. The pidfd
/// pins the process, so the start-time check and the signal reach the same one.
bool signal_exact(const Target& t, int sig);

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
bool wait_gone(const std::vector<Target>& leaders, std::chrono::steady_clock::duration timeout);

/// TERM, wait up to `timeout_s`, then KILL. Returns false if something survived even KILL.
bool terminate_groups(const std::vector<Target>& leaders, double timeout_s);

}  // namespace flotilla::process_runtime
