#include "runtime_process/spawn.hpp"

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

bool write_report(int fd, int kind, int value) {
  const ChildReport r{kind, value};
  for (;;) {
    const ssize_t n = ::write(fd, &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof r);
  }
}

bool move_fd(int from, int to) {
  if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;
  return ::dup2(from, to) == to;
}

std::optional<ChildReport> read_report(int fd, std::chrono::milliseconds timeout, bool* timed_out) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    const int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) {
      if (timed_out) *timed_out = true;
      return std::nullopt;
    }
    break;
  }
  ChildReport r{};
  for (;;) {
    const ssize_t n = ::read(fd, &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    if (n == static_cast<ssize_t>(sizeof r)) return r;
    return std::nullopt;
  }
}

std::optional<std::string> resolve_program(const std::string& program, const std::string& path_var) {
  if (program.find('/') != std::string::npos) return program;
  std::istringstream dirs(path_var.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_var);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
  }
  return std::nullopt;
}

std::string exec_error(const SpawnSpec& s, int err) {
  const std::string head = "cannot start " + s.workload + " on node " + s.node + ": command `" + s.command.front() + "` ";
  if (err == ENOENT || err == ENOTDIR)
    return head + "not found (" + errno_text(err) + "); install it or fix `command`";
  return head + "cannot be executed (" + errno_text(err) + "); check its permissions and format or fix `command`";
}

Fd open_or_throw(const fs::path& path, int flags, const SpawnSpec& s) {
  Fd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    throw Error(FLT_ERROR, "cannot start " + s.workload + " on node " + s.node + ": cannot open " + path.string() + ": " +
                               errno_text(errno));
  return fd;
}

Target spawn(const SpawnSpec& s, const std::function<void(const Target&)>& on_pid) {
  const auto path_it = s.env.find("PATH");
  const auto program = resolve_program(s.command.front(), path_it == s.env.end() ? std::string() : path_it->second);
  if (!program) throw Invalid(exec_error(s, ENOENT));

  // Everything the children need is prepared here: after fork in a threaded process only
  // async-signal-safe calls are allowed.
  Fd in = open_or_throw("/dev/null", O_RDONLY, s);
  Fd out = open_or_throw(s.stdout_path, O_WRONLY | O_CREAT | O_APPEND, s);
  Fd err = open_or_throw(s.stderr_path, O_WRONLY | O_CREAT | O_APPEND, s);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : s.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const auto& a : s.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string dir = s.dir.string();

  int report[2], go[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw Retryable("cannot create a pipe: " + errno_text(errno));
  Fd report_r(report[0]), report_w(report[1]);
  if (::pipe2(go, O_CLOEXEC) != 0) throw Retryable("cannot create a pipe: " + errno_text(errno));
  Fd go_r(go[0]), go_w(go[1]);

  const pid_t first = ::fork();
  if (first < 0) throw Retryable("cannot start " + s.workload + " on node " + s.node + ": fork failed: " + errno_text(errno));
  if (first == 0) {
    // First child: fork the workload and leave at once, so init adopts it and the engine
    // has no child to reap when it exits.
    ::close(report_r.get());
    ::close(go_w.get());
    const pid_t second = ::fork();
    if (second < 0) {
      write_report(report_w.get(), kReportForkFailed, errno);
      ::_exit(1);
    }
    if (second > 0) {
      write_report(report_w.get(), kReportPid, second);
      ::_exit(0);
    }
    // The workload: its own session and process group, so stop can signal all of it.
    ::setsid();
    char byte = 0;
    ssize_t n;
    do n = ::read(go_r.get(), &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(126);  // the engine gave up on this start
    if (::chdir(dir.c_str()) != 0 || !move_fd(in.get(), 0) || !move_fd(out.get(), 1) || !move_fd(err.get(), 2)) {
      write_report(report_w.get(), kReportSetupFailed, errno);
      ::_exit(126);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Every inherited descriptor closes at exec; the report pipe stays open until then.
    ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
    ::execve(program->c_str(), argv.data(), envp.data());
    write_report(report_w.get(), kReportExecFailed, errno);
    ::_exit(127);
  }

  report_w.reset();
  go_r.reset();
  in.reset();
  out.reset();
  err.reset();
  while (::waitpid(first, nullptr, 0) < 0 && errno == EINTR) {
  }

  const auto first_report = read_report(report_r.get(), std::chrono::duration_cast<std::chrono::milliseconds>(kSpawnReportTimeout));
  if (!first_report || first_report->kind != kReportPid) {
    const int e = first_report ? first_report->value : EAGAIN;
    throw Retryable("cannot start " + s.workload + " on node " + s.node + ": fork failed: " + errno_text(e));
  }
  const pid_t pid = first_report->value;
  const auto st = read_stat(pid);
  if (!st) throw Error(FLT_ERROR, "cannot start " + s.workload + " on node " + s.node + ": the new process vanished");
  const Target target{pid, st->start_time};
  try {
    on_pid(target);
  } catch (...) {
    signal_exact(target, SIGKILL);  // it is waiting for the go byte, so nothing has run yet
    throw;
  }
  const char go_byte = 'g';
  if (::write(go_w.get(), &go_byte, 1) != 1) {
    signal_exact(target, SIGKILL);
    throw Error(FLT_ERROR, "cannot start " + s.workload + " on node " + s.node + ": " + errno_text(errno));
  }
  go_w.reset();

  // EOF means the exec succeeded (the pipe is close-on-exec); a report means it failed.
  bool timed_out = false;
  const auto outcome = read_report(report_r.get(), std::chrono::duration_cast<std::chrono::milliseconds>(kSpawnReportTimeout), &timed_out);
  if (outcome && outcome->kind == kReportExecFailed) throw Invalid(exec_error(s, outcome->value));
  if (outcome && outcome->kind == kReportSetupFailed)
    throw Error(FLT_ERROR, "cannot start " + s.workload + " on node " + s.node + ": cannot set up its directory " + dir +
                               " or log files: " + errno_text(outcome->value));
  return target;
}
}  // namespace flotilla::process_runtime
