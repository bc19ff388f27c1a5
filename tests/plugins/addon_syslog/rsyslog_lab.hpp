// Helpers for tests that run real rsyslogd instances: a temporary directory, a child process
// that is stopped (and its process group killed) on destruction, and a free loopback address.
#pragma once

#include "support/process_util.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::test {

/// Scratch directories come from the shared test support (FLOTILLA_KEEP_TEST_DIRS=1 keeps them).
using TempDir = proc::ScratchDir;
using proc::read_text;
using proc::wait_until;

/// A child process in its own process group, with stdout/stderr in files. stop() sends TERM to
/// the process, then to what is left of its group once it has exited, and KILLs the group after
/// the grace, as the process runtime stops a workload with `stop_mode = "leader"` (the syslog
/// addon's collector); the destructor stops it if still running.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(); }

  void start(const std::vector<std::string>& argv, const std::filesystem::path& out, const std::filesystem::path& err) {
    if (pid_ > 0) throw std::logic_error("process already running");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::setpgid(0, 0);
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      const int in = ::open("/dev/null", O_RDONLY);
      if (o < 0 || e < 0 || in < 0) ::_exit(126);
      ::dup2(in, 0);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    pid_ = pid;
  }

  [[nodiscard]] bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      ::kill(-pid_, SIGKILL);  // whatever it left in its group
      pid_ = -1;
      return false;
    }
    return true;
  }

  /// Stops the process (TERM, then KILL after `grace`); returns its exit status or -1.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(15000)) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = -1;
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        // The group may still hold a child (omprog's program) finishing up; give it a moment.
        ::kill(-pid_, SIGTERM);
        for (int i = 0; i < 50 && ::kill(-pid_, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ::kill(-pid_, SIGKILL);
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  /// Reaps the process once something else has ended it; its wait status.
  int reap() {
    if (pid_ <= 0) return -1;
    int status = -1;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  /// Kills the whole group at once (SIGKILL), as a crash or the OOM killer would.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

/// True if a TCP listener can bind address:port now: whether a server there is listening yet,
/// not a way to choose an address (test_resources.hpp does that).
inline bool can_bind(const std::string& address, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

inline void append_text(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::app);
  out << text;
}

/// Runs a shell command; returns its exit status and its stdout and stderr together.
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "cannot run " + command};
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// Where the build put flotilla-logstore (the collector's output program).
inline std::filesystem::path logstore_binary() {
#ifdef FLOTILLA_BINARY_DIR
  return std::filesystem::path(FLOTILLA_BINARY_DIR) / "bin" / "flotilla-logstore";
#else
  return "flotilla-logstore";
#endif
}

}  // namespace flotilla::test
