#include "flotilla/support/process.hpp"

#include "flotilla/support/files.hpp"
#include "flotilla/support/wait.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <cstdlib>
#include <map>
#include <optional>

namespace s = flotilla::support;
namespace fs = std::filesystem;
using flotilla::test::proc::ScratchDir;
using namespace std::chrono_literals;

namespace {
/// Kills and reaps (or, when detached, only kills) a process this test started, even on failure.
struct Started {
  s::ProcessId id;
  bool detached = false;
  ~Started() {
    if (id.pid <= 0) return;
    s::signal_process(id, SIGKILL);
    if (!detached) (void)s::reap_child(id.pid, 5s);
  }
};

void write_script(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  fs::permissions(path, fs::perms::owner_all);
}
}  // namespace

TEST_CASE("read_proc_stat and process_id describe this process", "[support][process]") {
  const auto st = s::read_proc_stat(::getpid());
  REQUIRE(st);
  CHECK(st->state == 'R');
  CHECK(st->ppid == ::getppid());
  CHECK(st->start_time > 0);
  const auto id = s::process_id(::getpid());
  REQUIRE(id);
  CHECK(id->start_time == st->start_time);
  CHECK(s::is_running(*id));
  CHECK_FALSE(s::is_running({::getpid(), st->start_time + 1}));  // same pid, another process
  CHECK(st->comm == fs::path(fs::read_symlink("/proc/self/exe")).filename().string().substr(0, 15));
  CHECK_FALSE(s::read_proc_stat(0));
  CHECK_FALSE(s::read_proc_stat(-5));
}

TEST_CASE("read_proc_stat reports the controlling terminal in tty_nr, and 0 without one", "[support][process]") {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  REQUIRE(master >= 0);
  REQUIRE(::grantpt(master) == 0);
  REQUIRE(::unlockpt(master) == 0);
  const std::string slave = ::ptsname(master);
  struct stat sb {};
  REQUIRE(::stat(slave.c_str(), &sb) == 0);
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // A new session leader that opens a terminal without O_NOCTTY gets it as its controlling one.
    ::setsid();
    const int fd = ::open(slave.c_str(), O_RDWR);
    (void)!::write(ready[1], "x", 1);
    ::pause();
    ::_exit(fd >= 0 ? 0 : 1);
  }
  ::close(ready[1]);
  char byte = 0;
  CHECK(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  const auto with_tty = s::read_proc_stat(child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(master);
  REQUIRE(with_tty);
  CHECK(with_tty->sid == child);
  CHECK(with_tty->tty_nr == static_cast<int>(sb.st_rdev));

  const pid_t plain = ::fork();
  REQUIRE(plain >= 0);
  if (plain == 0) {
    ::setsid();
    ::pause();
    ::_exit(0);
  }
  REQUIRE(s::wait_until(5s, 10ms, [&] {
    const auto st = s::read_proc_stat(plain);
    return st && st->sid == plain;
  }));
  const auto without = s::read_proc_stat(plain);
  ::kill(plain, SIGKILL);
  ::waitpid(plain, nullptr, 0);
  REQUIRE(without);
  CHECK(without->tty_nr == 0);
}

TEST_CASE("pid files round-trip and accept a daemon's bare pid", "[support][process]") {
  ScratchDir dir("flotilla-support-process");
  const fs::path file = dir.path() / "pid";
  CHECK_FALSE(s::read_pid_file(file));
  s::write_pid_file(file, {1234, 98765});
  CHECK(s::read_file(file) == "1234 98765\n");
  CHECK(s::read_pid_file(file) == s::ProcessId{1234, 98765});
  s::write_file_atomic(file, "4321\n");
  CHECK(s::read_pid_file(file) == s::ProcessId{4321, 0});
  s::write_file_atomic(file, "4321 soon\n");
  CHECK_FALSE(s::read_pid_file(file));
  s::write_file_atomic(file, "-3 1\n");
  CHECK_FALSE(s::read_pid_file(file));
}

TEST_CASE("find_executable searches the given dirs, then PATH, and honours paths", "[support][process]") {
  ScratchDir dir("flotilla-support-process");
  write_script(dir.path() / "my-tool", "#!/bin/sh\nexit 0\n");
  std::ofstream(dir.path() / "not-executable") << "data";
  CHECK(s::find_executable("my-tool", {.first = {dir.path()}}) == dir.path() / "my-tool");
  CHECK(s::find_executable("my-tool", {.path = "/nonexistent:" + dir.path().string()}) == dir.path() / "my-tool");
  CHECK_FALSE(s::find_executable("my-tool", {.path = "/nonexistent", .sbin = false}));
  CHECK_FALSE(s::find_executable("not-executable", {.first = {dir.path()}}));
  CHECK(s::find_executable((dir.path() / "my-tool").string()) == dir.path() / "my-tool");
  CHECK_FALSE(s::find_executable((dir.path() / "not-executable").string()));
  CHECK(s::find_executable("sh", {.path = "/usr/bin:/bin"}));
  CHECK_FALSE(s::find_executable(""));
  CHECK_FALSE(s::find_executable("/tmp"));  // a directory is not an executable
}

TEST_CASE("spawn runs a helper with its environment, directory and log files", "[support][process]") {
  ScratchDir dir("flotilla-support-process");
  const fs::path out = dir.path() / "out.log";
  const fs::path err = dir.path() / "err.log";
  s::SpawnOptions o;
  o.argv = {"sh", "-c", "echo \"$GREETING from $(pwd)\"; echo oops >&2; exit 3"};
  o.env = std::map<std::string, std::string>{{"GREETING", "hello"}, {"PATH", "/usr/bin:/bin"}};
  o.cwd = dir.path();
  o.stdout_path = out;
  o.stderr_path = err;
  s::ProcessId recorded;
  o.before_exec = [&](const s::ProcessId& id) { recorded = id; };
  const auto id = s::spawn(o);
  Started guard{id};
  CHECK(recorded == id);
  const auto status = s::reap_child(id.pid, 10s);
  REQUIRE(status);
  guard.id = {};
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 3);
  CHECK(s::read_file(out) == "hello from " + fs::canonical(dir.path()).string() + "\n");
  CHECK(s::read_file(err) == "oops\n");
}

TEST_CASE("spawn can leave a helper this process's stdout and stderr, and its process group", "[support][process]") {
  ScratchDir dir("flotilla-support-process");
  const fs::path out = dir.path() / "ours-out.log";
  const fs::path err = dir.path() / "ours-err.log";
  // This process's descriptors 1 and 2 point at files for the test, and back afterwards.
  struct Redirected {
    int fd, saved;
    Redirected(int which, const fs::path& file) : fd(which), saved(::dup(which)) {
      std::fflush(nullptr);
      const int f = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ::dup2(f, fd);
      ::close(f);
    }
    ~Redirected() {
      std::fflush(nullptr);
      ::dup2(saved, fd);
      ::close(saved);
    }
  };
  s::SpawnOptions o;
  o.argv = {"sh", "-c", "echo to-out; echo to-err >&2; read -r _ _ _ _ pgid _ < /proc/$$/stat; echo $pgid"};
  o.inherit_stdio = true;
  o.new_session = false;
  std::optional<int> status;
  {
    Redirected keep_out(1, out), keep_err(2, err);
    const auto id = s::spawn(o);
    Started guard{id};
    status = s::reap_child(id.pid, 10s);
    if (status) guard.id = {};
  }
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(s::read_file(out) == "to-out\n" + std::to_string(::getpgrp()) + "\n");
  CHECK(s::read_file(err) == "to-err\n");

  // Keeping this process's output and naming log files contradict each other.
  o.stdout_path = out;
  try {
    (void)s::spawn(o);
    FAIL("spawn accepted inherit_stdio with a stdout_path");
  } catch (const s::SpawnError& e) {
    CHECK(e.stage() == s::SpawnError::Stage::setup);
    CHECK(std::string(e.what()).find("sh") != std::string::npos);
  }
}

TEST_CASE("spawn can detach a helper into its own session, and signal_process ends it", "[support][process]") {
  s::SpawnOptions o;
  o.argv = {"sleep", "30"};
  o.detach = true;
  const auto id = s::spawn(o);
  Started guard{id, true};
  REQUIRE(s::is_running(id));
  const auto st = s::read_proc_stat(id.pid);
  REQUIRE(st);
  CHECK(st->sid == id.pid);
  CHECK(st->ppid != ::getpid());  // adopted by init (or a subreaper), not our child
  CHECK_FALSE(s::signal_process({id.pid, id.start_time + 1}, SIGKILL));  // not that process
  CHECK(s::signal_process(id, SIGKILL));
  CHECK(s::wait_until(5s, 20ms, [&] { return !s::is_running(id); }));
}

TEST_CASE("a spawned child waiting to exec keeps none of the caller's descriptors", "[support][process]") {
  // A caller killed while its child waits for the go byte must not leave its descriptors (a
  // state lock's flock) alive in that child, so the child drops them at once, not at exec.
  ScratchDir dir("flotilla-support-process");
  const fs::path held = dir.path() / "lock";
  const int fd = ::open(held.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  const auto holds_it = [&](pid_t pid) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      std::error_code link_ec;
      if (fs::read_symlink(entry.path(), link_ec) == held) return true;
    }
    return false;
  };
  REQUIRE(holds_it(::getpid()));
  for (const bool detach : {false, true}) {
    INFO("detach: " << detach);
    bool dropped = false;
    s::SpawnOptions o;
    o.argv = {"true"};
    o.detach = detach;
    o.before_exec = [&](const s::ProcessId& id) {
      dropped = s::wait_until(5s, 5ms, [&] { return !holds_it(id.pid); });
    };
    const auto id = s::spawn(o);
    Started guard{id, detach};
    CHECK(dropped);
  }
  ::close(fd);
}

TEST_CASE("spawn reports what went wrong, naming the program", "[support][process]") {
  ScratchDir dir("flotilla-support-process");
  s::SpawnOptions o;
  o.argv = {"flotilla-no-such-program"};
  try {
    (void)s::spawn(o);
    FAIL("spawned a missing program");
  } catch (const s::SpawnError& e) {
    CHECK(e.stage() == s::SpawnError::Stage::not_found);
    CHECK(std::string(e.what()).find("flotilla-no-such-program") != std::string::npos);
  }
  // Executable, but its interpreter does not exist: exec itself fails.
  write_script(dir.path() / "broken", "#!/nonexistent/interpreter\n");
  o.argv = {(dir.path() / "broken").string()};
  try {
    (void)s::spawn(o);
    FAIL("exec of a script without interpreter succeeded");
  } catch (const s::SpawnError& e) {
    CHECK(e.stage() == s::SpawnError::Stage::exec);
    CHECK(e.error() == ENOENT);
    CHECK(std::string(e.what()).find("broken") != std::string::npos);
  }
  o.argv = {"true"};
  o.cwd = dir.path() / "missing-dir";
  CHECK_THROWS_AS(s::spawn(o), s::SpawnError);
  o.cwd.clear();
  o.before_exec = [](const s::ProcessId&) { throw std::runtime_error("cannot record it"); };
  CHECK_THROWS_WITH(s::spawn(o), "cannot record it");
}

TEST_CASE("spawn adds env_add on top of this process's environment, or of the one given", "[support][process]") {
  ScratchDir dir("flotilla-support-process");
  const fs::path out = dir.path() / "out.log";
  const char* home = std::getenv("HOME");
  REQUIRE(home != nullptr);
  auto run = [&](std::optional<std::map<std::string, std::string>> env) {
    std::error_code ec;
    fs::remove(out, ec);
    s::SpawnOptions o;
    o.argv = {"sh", "-c", "echo \"$HOME|$FLOTILLA_ADDED|$TMPDIR\""};
    o.env = std::move(env);
    o.env_add = {{"FLOTILLA_ADDED", "yes"}, {"TMPDIR", dir.path().string()}};
    o.stdout_path = out;
    const auto id = s::spawn(o);
    Started guard{id};
    const auto status = s::reap_child(id.pid, 10s);
    REQUIRE(status);
    guard.id = {};
    return s::read_file(out);
  };
  // Inherited: HOME stays, the additions are set, and an inherited TMPDIR is replaced.
  CHECK(run(std::nullopt) == std::string(home) + "|yes|" + dir.path().string() + "\n");
  // Given: only what was given, plus the additions.
  CHECK(run(std::map<std::string, std::string>{{"PATH", "/usr/bin:/bin"}, {"TMPDIR", "/nowhere"}}) ==
        "|yes|" + dir.path().string() + "\n");
}
