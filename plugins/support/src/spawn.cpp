// spawn(): fork and exec with the child's failures reported back through a pipe, and a "go"
// byte so the caller can record the child before it runs anything.
#include "flotilla/support/process.hpp"

#include "flotilla/support/fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <utility>
#include <system_error>

extern char** environ;

namespace flotilla::support {
namespace fs = std::filesystem;

namespace {

constexpr int kReportTimeoutMs = 10000;  // bound on waiting for a child's report


/// Messages from the children to the caller; small enough for one atomic pipe write.
struct Report {
  int kind;
  int value;
};
enum : int { kPid = 1, kForkFailed = 2, kSetupFailed = 3, kExecFailed = 4 };

void write_report(int fd, int kind, int value) {
  const Report r{kind, value};
  while (::write(fd, &r, sizeof r) < 0 && errno == EINTR) {
  }
}

/// One report, or nullopt on EOF (the exec succeeded: the pipe is close-on-exec) or timeout.
std::optional<Report> read_report(int fd) {
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = ::poll(&p, 1, kReportTimeoutMs);
  while (rc < 0 && errno == EINTR);
  if (rc <= 0) return std::nullopt;
  Report r{};
  ssize_t n;
  do n = ::read(fd, &r, sizeof r);
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof r)) return r;
  return std::nullopt;
}

std::string errno_message(int err) { return std::error_code(err, std::generic_category()).message(); }

/// Everything the child needs, prepared before fork: after fork in a threaded process only
/// async-signal-safe calls are allowed, so no allocation happens there.
struct ChildPlan {
  std::string program;
  std::vector<std::string> env_strings;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string cwd;
  UniqueFd in, out, err;
  bool new_session = true;
  bool detach = false;
  int report_w = -1;
  int report_r = -1;
  int go_r = -1;
  int go_w = -1;
};

bool move_fd(int from, int to) {
  if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;
  return ::dup2(from, to) == to;
}

// Closes every descriptor above 2 but the ones the child still needs, first thing after fork.
// Close-on-exec would close them only at exec, and a child waiting for the go byte may outlive a
// caller killed meanwhile: it must not keep the caller's descriptors (a state lock's flock above
// all, which would make a dead run look alive) while it notices and leaves. It also closes the
// caller's pipe ends: holding go_w would keep the child's read from ever seeing EOF.
void close_all_but_needed(const ChildPlan& plan) {
  int keep[] = {plan.report_w, plan.go_r, plan.in.get(), plan.out.get(), plan.err.get()};
  for (std::size_t i = 1; i < std::size(keep); ++i)
    for (std::size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  unsigned from = 3;
  for (const int fd : keep) {
    if (fd < static_cast<int>(from)) continue;
    if (static_cast<unsigned>(fd) > from) ::close_range(from, static_cast<unsigned>(fd) - 1, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  ::close_range(from, ~0u, 0);
}

// The process that will exec. Only async-signal-safe calls from here on; this is one
// straight sequence so it can be checked against signal-safety(7) in one read.
[[noreturn]] void exec_child(const ChildPlan& plan) {
  close_all_but_needed(plan);
  if (plan.new_session) ::setsid();
  char byte = 0;
  ssize_t n;
  do n = ::read(plan.go_r, &byte, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(126);  // the caller gave up on this start
  // Without descriptors of its own (inherit_stdio) the child keeps the caller's 0-2.
  const bool redirect = plan.in.get() >= 0;
  if ((!plan.cwd.empty() && ::chdir(plan.cwd.c_str()) != 0) ||
      (redirect && (!move_fd(plan.in.get(), 0) || !move_fd(plan.out.get(), 1) || !move_fd(plan.err.get(), 2)))) {
    write_report(plan.report_w, kSetupFailed, errno);
    ::_exit(126);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Every inherited descriptor above 2 closes at exec; the report pipe stays open until then.
  ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
  ::execve(plan.program.c_str(), plan.argv.data(), plan.envp.data());
  write_report(plan.report_w, kExecFailed, errno);
  ::_exit(127);
}

// The first child when detaching: forks the process that execs and leaves at once, so init
// adopts it. Async-signal-safe like exec_child.
[[noreturn]] void detach_child(const ChildPlan& plan) {
  close_all_but_needed(plan);
  const pid_t second = ::fork();
  if (second < 0) {
    write_report(plan.report_w, kForkFailed, errno);
    ::_exit(1);
  }
  if (second == 0) exec_child(plan);
  write_report(plan.report_w, kPid, second);
  ::_exit(0);
}

UniqueFd open_or_throw(const fs::path& path, int flags, const std::string& program) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    throw SpawnError(SpawnError::Stage::setup, errno, "cannot start " + program + ": cannot open " + path.string() + ": " +
                                                          errno_message(errno));
  return fd;
}

void prepare(ChildPlan& plan, const SpawnOptions& o) {
  if (o.argv.empty()) throw SpawnError(SpawnError::Stage::not_found, ENOENT, "cannot start a helper: no command given");
  const std::string& name = o.argv.front();
  ExecutableSearch search;
  search.sbin = false;
  if (o.env) {
    const auto it = o.env->find("PATH");
    search.path = it == o.env->end() ? std::string("/usr/local/bin:/usr/bin:/bin") : it->second;
  }
  const auto program = find_executable(name, search);
  if (!program)
    throw SpawnError(SpawnError::Stage::not_found, ENOENT,
                     "cannot start `" + name + "`: not found on PATH or not executable; install it or give its full path");
  plan.program = program->string();
  if (o.inherit_stdio) {
    if (!o.stdout_path.empty() || !o.stderr_path.empty())
      throw SpawnError(SpawnError::Stage::setup, EINVAL,
                       "cannot start " + name + ": it was asked to keep this process's output and to write to log files at once");
  } else {
    plan.in = open_or_throw("/dev/null", O_RDONLY, name);
    plan.out = open_or_throw(o.stdout_path.empty() ? fs::path("/dev/null") : o.stdout_path, O_WRONLY | O_CREAT | O_APPEND, name);
    plan.err = open_or_throw(o.stderr_path.empty() ? fs::path("/dev/null") : o.stderr_path, O_WRONLY | O_CREAT | O_APPEND, name);
  }
  for (const auto& a : o.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  std::map<std::string, std::string> env;
  if (o.env) {
    env = *o.env;
  } else {
    for (char** e = environ; e && *e; ++e) {
      const std::string_view entry(*e);
      const auto eq = entry.find('=');
      if (eq != std::string_view::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
  }
  for (const auto& [k, v] : o.env_add) env[k] = v;
  for (const auto& [k, v] : env) plan.env_strings.push_back(k + "=" + v);
  // Built completely first: env_strings must not reallocate once envp points into it.
  for (auto& e : plan.env_strings) plan.envp.push_back(e.data());
  plan.envp.push_back(nullptr);
  plan.cwd = o.cwd.string();
  plan.new_session = o.new_session;
  plan.detach = o.detach;
}

}  // namespace

ProcessId spawn(const SpawnOptions& o) {
  ChildPlan plan;
  prepare(plan, o);
  const std::string& name = o.argv.front();
  int report[2], go[2];
  if (::pipe2(report, O_CLOEXEC) != 0)
    throw SpawnError(SpawnError::Stage::fork, errno, "cannot start " + name + ": cannot create a pipe: " + errno_message(errno));
  UniqueFd report_r(report[0]), report_w(report[1]);
  if (::pipe2(go, O_CLOEXEC) != 0)
    throw SpawnError(SpawnError::Stage::fork, errno, "cannot start " + name + ": cannot create a pipe: " + errno_message(errno));
  UniqueFd go_r(go[0]), go_w(go[1]);
  plan.report_w = report_w.get();
  plan.report_r = report_r.get();
  plan.go_r = go_r.get();
  plan.go_w = go_w.get();

  const pid_t first = ::fork();
  if (first < 0) throw SpawnError(SpawnError::Stage::fork, errno, "cannot start " + name + ": fork failed: " + errno_message(errno));
  if (first == 0) {
    if (plan.detach) detach_child(plan);
    exec_child(plan);
  }
  report_w.reset();
  go_r.reset();
  plan.in.reset();
  plan.out.reset();
  plan.err.reset();

  pid_t pid = first;
  if (plan.detach) {
    while (::waitpid(first, nullptr, 0) < 0 && errno == EINTR) {
    }
    const auto r = read_report(report_r.get());
    if (!r || r->kind != kPid) {
      const int e = r ? r->value : EAGAIN;
      throw SpawnError(SpawnError::Stage::fork, e, "cannot start " + name + ": fork failed: " + errno_message(e));
    }
    pid = r->value;
  }
  // Not yet exec'd (it waits for the go byte), so its start time is already final.
  const auto id = process_id(pid);
  const auto give_up = [&] {
    ::kill(pid, SIGKILL);
    if (!plan.detach) (void)reap_child(pid, std::chrono::milliseconds(kReportTimeoutMs));
  };
  if (!id) {
    give_up();
    throw SpawnError(SpawnError::Stage::fork, ESRCH, "cannot start " + name + ": the new process vanished");
  }
  if (o.before_exec) {
    try {
      o.before_exec(*id);
    } catch (...) {
      give_up();
      throw;
    }
  }
  const char go_byte = 'g';
  if (::write(go_w.get(), &go_byte, 1) != 1) {
    const int e = errno;
    give_up();
    throw SpawnError(SpawnError::Stage::fork, e, "cannot start " + name + ": " + errno_message(e));
  }
  go_w.reset();
  const auto outcome = read_report(report_r.get());
  if (outcome && (outcome->kind == kExecFailed || outcome->kind == kSetupFailed)) {
    if (!plan.detach) (void)reap_child(pid, std::chrono::milliseconds(kReportTimeoutMs));
    const int e = outcome->value;
    if (outcome->kind == kSetupFailed)
      throw SpawnError(SpawnError::Stage::setup, e, "cannot start " + name + ": cannot enter " + plan.cwd + " or open its log files: " + errno_message(e));
    throw SpawnError(SpawnError::Stage::exec, e, "cannot start " + name + ": exec of " + plan.program + " failed: " + errno_message(e));
  }
  return *id;
}

}  // namespace flotilla::support
