// The `process` runtime: runs workloads as native process groups on this machine.
//
// Each workload lives in <node.workdir>/workloads/<name>/ (spec.json, pid, stdout.log,
// stderr.log). Workloads outlive the engine, which is a short-lived CLI, so they are started
// detached (double fork, own session) and found again through the pid file. A pid alone is not
// an identity: the kernel reuses pids, so every record carries the process start time from
// /proc/PID/stat and nothing is ever signalled unless that start time still matches.
#include "flotilla/support/request.hpp"

#include <flotilla/plugin.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::sdk::NotFound;
using flotilla::sdk::NotSupported;
using flotilla::sdk::Retryable;
using flotilla::support::errno_text;
using flotilla::support::pidfd_open;
using flotilla::support::str_or;
using namespace std::chrono_literals;

// Debian 12's glibc declares the pidfd functions without C linkage for C++, so call the
// system call directly (pidfd_open comes from flotilla::support for the same reason).
int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned int flags) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

constexpr auto kPollInterval = 20ms;
constexpr auto kStartupGrace = 150ms;      // a workload that dies this fast failed to start
constexpr auto kKillGrace = 5s;            // after SIGKILL, how long the kernel may take
constexpr auto kSpawnReportTimeout = 10s;  // bound on waiting for the spawned child's report
constexpr double kDefaultStopTimeout = 10.0;
constexpr int kStderrTailLines = 20;

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
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// ---------------------------------------------------------------------------------------------
// /proc: process identity and groups

struct ProcStat {
  char state = '?';
  pid_t pgid = 0;
  pid_t sid = 0;
  std::uint64_t start_time = 0;  // clock ticks since boot
};

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

/// A zombie has finished running; nothing may reap it here (the engine is not its parent).
bool is_live(const ProcStat& st) { return st.state != 'Z' && st.state != 'X' && st.state != 'x'; }

/// One process, identified by pid and start time together.
struct Target {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  bool operator==(const Target&) const = default;
};

bool is_running(const Target& t) {
  const auto st = read_stat(t.pid);
  return st && is_live(*st) && st->start_time == t.start_time;
}

/// Sends `sig` to one process, but only if it is still the one identified by `t`. The pidfd
/// pins the process, so the start-time check and the signal reach the same one.
bool signal_exact(const Target& t, int sig) {
  Fd pidfd(pidfd_open(t.pid, 0));
  if (pidfd.get() < 0) return false;
  const auto st = read_stat(t.pid);
  if (!st || st->start_time != t.start_time) return false;
  return pidfd_send_signal(pidfd.get(), sig, nullptr, 0) == 0;
}

/// Live members of the workload's process group whose leader has exited. Only processes that
/// are in session and group `leader.pid` and started no earlier than the leader qualify: the
/// kernel does not hand out a pid that is still in use as a group or session id, so while such
/// processes exist, the number still names the session the leader made.
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

/// What is left of a workload's process group, as far as it can be told apart from strangers.
enum class GroupState { gone, leader, orphans };

GroupState group_state(const Target& leader) {
  const auto st = read_stat(leader.pid);
  if (st) {
    if (st->start_time != leader.start_time) return GroupState::gone;  // the pid belongs to someone else now
    if (is_live(*st)) return GroupState::leader;
  }
  // Leader exited (or is an unreaped zombie): children it left behind may still run.
  return orphaned_members(leader).empty() ? GroupState::gone : GroupState::orphans;
}

/// Sends `sig` to the whole process group of `leader`, never to a reused pid.
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

/// Waits until every group in `leaders` is gone; false if `timeout` passed first.
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

/// TERM, wait up to `timeout_s`, then KILL. Returns false if something survived even KILL.
bool terminate_groups(const std::vector<Target>& leaders, double timeout_s) {
  for (const Target& t : leaders) signal_group(t, SIGTERM);
  const auto grace = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::max(0.0, timeout_s)));
  if (wait_gone(leaders, grace)) return true;
  for (const Target& t : leaders) signal_group(t, SIGKILL);
  return wait_gone(leaders, kKillGrace);
}

// ---------------------------------------------------------------------------------------------
// Files

/// Writes `content` to `path` so readers see the old or the new file, never a torn one.
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

/// The last `lines` lines of `path`, starting no earlier than byte `from`.
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

// ---------------------------------------------------------------------------------------------
// Requests

struct NodeInfo {
  std::string name;
  std::string address;
  fs::path workdir;
};

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

/// A workload name becomes a directory name, so it must be one plain path component.
std::string check_workload_name(const std::string& name, const NodeInfo& node) {
  const bool ok = !name.empty() && name != "." && name != ".." && name.size() <= 200 &&
                  name.find_first_of("/\\") == std::string::npos && name.find('\0') == std::string::npos;
  if (!ok)
    throw Invalid("workload name `" + name + "` on node " + node.name +
                  " is not usable as a file name; use letters, digits, '-', '_' or '.'");
  return name;
}

fs::path workload_dir(const NodeInfo& node, const std::string& name) { return node.workdir / "workloads" / name; }

std::uint64_t to_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, v.get<std::int64_t>()));
  if (v.is_string()) return std::stoull(v.get<std::string>());
  return 0;
}

/// The process a record names, if it names one completely.
std::optional<Target> target_of_record(const json& record) {
  if (!record.is_object() || !record.contains("pid") || !record.contains("start_time")) return std::nullopt;
  try {
    Target t{static_cast<pid_t>(to_u64(record["pid"])), to_u64(record["start_time"])};
    if (t.pid > 0) return t;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

/// The pid file holds "PID START_TIME".
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

/// Serialises operations on one workload within this engine process.
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

// ---------------------------------------------------------------------------------------------
// Spawning

/// Messages from the forked children to the engine; small enough to be written atomically.
struct ChildReport {
  int kind;
  int value;
};
enum : int { kReportPid = 1, kReportForkFailed = 2, kReportSetupFailed = 3, kReportExecFailed = 4 };

bool write_report(int fd, int kind, int value) {
  const ChildReport r{kind, value};
  for (;;) {
    const ssize_t n = ::write(fd, &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof r);
  }
}

/// Puts `from` at descriptor number `to`, open across exec. Async-signal-safe.
bool move_fd(int from, int to) {
  if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;
  return ::dup2(from, to) == to;
}

/// Reads one report; nullopt on EOF or when `timeout` passes.
std::optional<ChildReport> read_report(int fd, std::chrono::milliseconds timeout, bool* timed_out = nullptr) {
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

/// Finds `program` the way a shell would, on the PATH the workload will have.
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

struct SpawnSpec {
  std::string workload;
  std::string node;
  fs::path dir;
  fs::path stdout_path;
  fs::path stderr_path;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
};

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

/// Starts the workload detached from the engine and returns its identity once it has exec'd.
/// `on_pid` runs after the child exists but before it execs, to record it: a workload never
/// runs without a pid file.
template <class OnPid>
Target spawn(const SpawnSpec& s, OnPid&& on_pid) {
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

// ---------------------------------------------------------------------------------------------
// The plugin

json make_record(const std::string& name, const fs::path& dir, const Target& t, const std::string& hash) {
  return json{{"name", name},
              {"pid", t.pid},
              {"start_time", t.start_time},
              {"spec_hash", hash},
              {"dir", dir.string()},
              {"stdout", (dir / "stdout.log").string()},
              {"stderr", (dir / "stderr.log").string()}};
}

/// The workload name a request is about: its record's, or a bare `name`.
std::string name_of(const json& req) {
  std::string name = str_or(req.value("record", json::object()), "name");
  if (name.empty()) name = str_or(req, "name");
  if (name.empty()) name = str_or(req.value("workload", json::object()), "name");
  return name;
}

/// Every process a request may refer to: the record's, and whatever the pid file names now
/// (a record from an older start may be stale, and both belong to this workload).
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

class ProcessRuntime : public flotilla::sdk::Runtime {
 public:
  json validate(Context&, const json& req) override {
    json errors = json::array();
    const json workload = req.value("workload", json::object());
    for (const auto& msg : validate_workload(workload)) errors.push_back({{"message", msg}, {"key", "command"}});
    const std::string name = str_or(workload, "name");
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
      errors.push_back({{"message", "workload name `" + name + "` is not usable as a file name"}, {"key", "name"}});
    return json{{"errors", errors}};
  }

  json start(Context& ctx, const json& req) override {
    const NodeInfo node = node_of(req);
    const json workload = req.value("workload", json::object());
    const std::string name = check_workload_name(str_or(workload, "name"), node);
    if (const auto errors = validate_workload(workload); !errors.empty()) {
      if (!workload.contains("command") && workload.contains("image")) throw NotSupported(errors.front());
      throw Invalid(errors.front());
    }
    const fs::path dir = workload_dir(node, name);
    std::lock_guard lock(workload_mutex(dir));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error(FLT_ERROR, "cannot create " + dir.string() + " for workload " + name + " on node " + node.name + ": " + ec.message());

    const std::string hash = spec_hash(workload, node);
    if (const auto old = read_pid_file(dir)) {
      if (is_running(*old)) {
        const auto spec = read_file(dir / "spec.json");
        const json old_spec = spec ? json::parse(*spec, nullptr, false) : json();
        if (old_spec.is_object() && old_spec.value("spec_hash", "") == hash)
          return json{{"record", make_record(name, dir, *old, hash)}, {"changed", false}};
        ctx.info("spec of " + name + " on node " + node.name + " changed; replacing pid " + std::to_string(old->pid));
      }
      // Also reaps what a crashed leader left behind in its group.
      if (!terminate_groups({*old}, kDefaultStopTimeout))
        throw Retryable("cannot replace " + name + " on node " + node.name + ": pid " + std::to_string(old->pid) +
                        " survived SIGKILL");
      fs::remove(dir / "pid", ec);
    }
    ctx.check_cancelled();

    SpawnSpec spec;
    spec.workload = name;
    spec.node = node.name;
    spec.dir = dir;
    spec.stdout_path = dir / "stdout.log";
    spec.stderr_path = dir / "stderr.log";
    spec.command = workload.at("command").get<std::vector<std::string>>();
    for (char** e = environ; e && *e; ++e) {
      const std::string kv(*e);
      const auto eq = kv.find('=');
      if (eq != std::string::npos) spec.env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    if (const auto env = workload.value("env", json::object()); env.is_object())
      for (const auto& [k, v] : env.items()) spec.env[k] = v.is_string() ? v.get<std::string>() : v.dump();
    spec.env["FLOTILLA_NODE"] = node.name;
    spec.env["FLOTILLA_NODE_ADDRESS"] = node.address;
    spec.env["FLOTILLA_WORKLOAD"] = name;

    write_file_atomic(dir / "spec.json", json{{"workload", workload}, {"spec_hash", hash}}.dump(2) + "\n", 0644);
    const std::uintmax_t stderr_from = fs::exists(spec.stderr_path, ec) ? fs::file_size(spec.stderr_path, ec) : 0;

    ctx.progress("starting " + name);
    Target t;
    try {
      t = spawn(spec, [&](const Target& child) {
        write_file_atomic(dir / "pid", std::to_string(child.pid) + " " + std::to_string(child.start_time) + "\n", 0644);
      });
    } catch (...) {
      fs::remove(dir / "pid", ec);  // nothing runs under that pid
      throw;
    }

    const auto deadline = std::chrono::steady_clock::now() + kStartupGrace;
    while (std::chrono::steady_clock::now() < deadline && is_running(t)) std::this_thread::sleep_for(kPollInterval);
    if (!is_running(t)) {
      terminate_groups({t}, 0);  // children it may have left
      fs::remove(dir / "pid", ec);
      std::string tail = tail_lines(spec.stderr_path, stderr_from, kStderrTailLines);
      throw Error(FLT_ERROR, "workload " + name + " on node " + node.name + " exited right after it started (command `" +
                                 spec.command.front() + "`); last lines of " + spec.stderr_path.string() + ":\n" +
                                 (tail.empty() ? std::string("(empty)") : tail));
    }
    ctx.info("started " + name + " on node " + node.name + " (pid " + std::to_string(t.pid) + ")");
    return json{{"record", make_record(name, dir, t, hash)}, {"changed", true}};
  }

  json inspect(Context&, const json& req) override {
    const NodeInfo node = node_of(req);
    const std::string name = name_of(req);
    std::vector<Target> targets;
    fs::path dir;
    if (!name.empty()) dir = workload_dir(node, check_workload_name(name, node));
    if (auto t = target_of_record(req.value("record", json::object()))) targets.push_back(*t);
    else if (!dir.empty()) {
      if (auto p = read_pid_file(dir)) targets.push_back(*p);
    }
    for (const Target& t : targets)
      if (is_running(t)) return json{{"state", "running"}, {"pid", t.pid}, {"start_time", t.start_time}};
    std::error_code ec;
    const bool known = !dir.empty() && (fs::exists(dir / "pid", ec) || fs::exists(dir / "spec.json", ec));
    return json{{"state", known ? "exited" : "missing"}};
  }

  json stop(Context& ctx, const json& req) override {
    const NodeInfo node = node_of(req);
    const std::string name = name_of(req);
    if (name.empty()) {
      // Without a name there is no directory; a bare record can still be stopped.
      if (auto t = target_of_record(req.value("record", json::object())); t && !terminate_groups({*t}, timeout_of(req)))
        throw Retryable("pid " + std::to_string(t->pid) + " on node " + node.name + " survived SIGKILL");
      return json::object();
    }
    const fs::path dir = workload_dir(node, check_workload_name(name, node));
    std::lock_guard lock(workload_mutex(dir));
    const auto targets = targets_of(req, dir);
    if (!targets.empty()) ctx.progress("stopping " + name);
    if (!terminate_groups(targets, timeout_of(req)))
      throw Retryable("cannot stop " + name + " on node " + node.name + ": its processes survived SIGKILL");
    std::error_code ec;
    if (req.value("purge", false)) {
      fs::remove_all(dir, ec);
    } else {
      // The logs stay for `flotilla logs`; what says "this runs" goes.
      fs::remove(dir / "pid", ec);
      fs::remove(dir / "spec.json", ec);
    }
    if (ec) throw Error(FLT_ERROR, "stopped " + name + " on node " + node.name + " but cannot clean " + dir.string() + ": " + ec.message());
    return json::object();
  }

  json signal(Context& ctx, const json& req) override {
    const NodeInfo node = node_of(req);
    const std::string sig_name = str_or(req, "signal");
    const int sig = signal_number(sig_name);
    if (sig == 0)
      throw Invalid("unknown signal `" + sig_name + "`; use one of HUP, INT, QUIT, TERM, KILL, USR1, USR2");
    const std::string name = name_of(req);
    const fs::path dir = name.empty() ? fs::path() : workload_dir(node, check_workload_name(name, node));
    std::vector<Target> targets;
    if (auto t = target_of_record(req.value("record", json::object()))) targets.push_back(*t);
    else if (!dir.empty()) {
      if (auto p = read_pid_file(dir)) targets.push_back(*p);
    }
    for (const Target& t : targets) {
      if (!is_running(t)) continue;
      signal_group(t, sig);
      ctx.debug("sent signal " + std::to_string(sig) + " to " + name + " (pid " + std::to_string(t.pid) + ")");
      return json::object();
    }
    throw NotFound("cannot signal " + (name.empty() ? std::string("workload") : name) + " on node " + node.name +
                   ": it is not running; start it first (flotilla up)");
  }

  json put_file(Context&, const json& req) override {
    const NodeInfo node = node_of(req);
    const std::string rel = str_or(req, "path");
    const fs::path p(rel);
    if (rel.empty() || p.is_absolute() || rel.find('\0') != std::string::npos)
      throw Invalid("put_file path `" + rel + "` on node " + node.name + " must be relative to the node's files directory");
    for (const auto& part : p)
      if (part == "..")
        throw Invalid("put_file path `" + rel + "` on node " + node.name + " must not contain `..`; name a file inside the node's files directory");
    const fs::path target = (node.workdir / "files" / p).lexically_normal();
    if (req.value("remove", false)) {
      // Removal rides on put_file so the frozen v1 table needs no new entry.
      std::lock_guard lock(workload_mutex(target));
      std::error_code ec;
      const bool removed = fs::remove(target, ec);
      if (ec) throw Error(FLT_ERROR, "cannot remove " + target.string() + " on node " + node.name + ": " + ec.message());
      return json{{"path", target.string()}, {"changed", removed}};
    }
    if (!req.contains("content") || !req["content"].is_string())
      throw Invalid("put_file of `" + rel + "` on node " + node.name + " needs `content` as a string");
    const std::string content = req["content"].get<std::string>();
    mode_t mode = 0644;
    if (const auto m = req.find("mode"); m != req.end()) {
      if (m->is_number_integer()) mode = static_cast<mode_t>(m->get<std::int64_t>());
      else if (m->is_string()) mode = static_cast<mode_t>(std::stoul(m->get<std::string>(), nullptr, 8));
      else throw Invalid("put_file mode of `" + rel + "` must be an integer (420 for 0644) or an octal string");
      if (mode > 07777) throw Invalid("put_file mode of `" + rel + "` is out of range; use e.g. 420 (0644)");
    }
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) throw Error(FLT_ERROR, "cannot create " + target.parent_path().string() + " on node " + node.name + ": " + ec.message());

    std::lock_guard lock(workload_mutex(target));
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) throw Invalid("put_file path `" + rel + "` on node " + node.name + " is a directory");
      if (read_file(target) == content) {
        if ((st.st_mode & 07777) == mode) return json{{"path", target.string()}, {"changed", false}};
        if (::chmod(target.c_str(), mode) != 0) throw Error(FLT_ERROR, "cannot chmod " + target.string() + ": " + errno_text(errno));
        return json{{"path", target.string()}, {"changed", true}};
      }
    }
    write_file_atomic(target, content, mode);
    return json{{"path", target.string()}, {"changed", true}};
  }

 private:
  static double timeout_of(const json& req) {
    const auto it = req.find("timeout_s");
    return it != req.end() && it->is_number() ? it->get<double>() : kDefaultStopTimeout;
  }
};

}  // namespace

FLOTILLA_PLUGIN(ProcessRuntime, "process", "1.0.0",
                "Runs workloads as native process groups on this machine, supervised through pid files",
                R"json({"schema": {}})json")
