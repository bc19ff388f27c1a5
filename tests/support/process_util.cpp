#include "support/process_util.hpp"

#include "support/cleanup_report.hpp"

#include "flotilla/support/process.hpp"
#include "flotilla/support/wait.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace flotilla::test::proc {

namespace fs = std::filesystem;

ScratchDir::ScratchDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a scratch directory: " + std::string(std::strerror(errno)));
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  if (std::getenv("FLOTILLA_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::optional<Stat> read_stat(pid_t pid) {
  const auto st = support::read_proc_stat(pid);
  if (!st) return std::nullopt;
  return Stat{st->state, st->ppid, st->pgid, st->sid, st->start_time};
}

bool running(pid_t pid) {
  const auto st = read_stat(pid);
  return st && st->state != 'Z' && st->state != 'X';
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  return support::wait_until(timeout, std::chrono::milliseconds(20), done);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

support::CommandResult run_tool(const std::string& name, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {name};
  argv.insert(argv.end(), args.begin(), args.end());
  return support::run_command(argv, std::chrono::seconds(20));
}

Shell run_flotilla_script(const fs::path& dir, const std::string& script) {
  static std::atomic<int> calls{0};
  const std::string n = std::to_string(calls++);
  const fs::path file = dir / ("script-" + n + ".sh"), out = dir / ("out-" + n + ".txt"), err = dir / ("err-" + n + ".txt");
  std::ofstream(file) << "cd " << dir.string() << "\nFLOTILLA=" << FLOTILLA_BINARY_DIR << "/bin/flotilla\nBIN=" << FLOTILLA_BINARY_DIR
                      << "/bin\nSOURCE=" << FLOTILLA_SOURCE_DIR << "\nTOPOLOGY=" << (dir / "topology.toml").string() << "\n"
                      << script << "\n";
  const int status = std::system(("sh " + file.string() + " >" + out.string() + " 2>" + err.string() + " </dev/null").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out), read_text(err)};
}

std::string shell_output(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  while (p && std::fgets(buf, sizeof buf, p)) out += buf;
  if (p) ::pclose(p);
  return out;
}

DownOnExit::~DownOnExit() {
  if (const Shell r = run_flotilla_script(dir_, prefix_ + "$FLOTILLA down \"$TOPOLOGY\" -q"); r.code != 0)
    report_cleanup_failure("flotilla down exited " + std::to_string(r.code) + ": " + r.out + r.err);
}

Child::Child(const std::vector<std::string>& argv, const std::vector<std::string>& env_add, bool capture_stdout) {
  if (argv.empty()) throw std::invalid_argument("Child needs a program");
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  env.insert(env.end(), env_add.begin(), env_add.end());
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int out[2] = {-1, -1};
  if (capture_stdout && ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (capture_stdout) ::dup2(out[1], 1);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  if (capture_stdout) {
    ::close(out[1]);
    stdout_fd_ = out[0];
  }
}

Child::~Child() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);  // still our unreaped child, so the pid cannot have been reused
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (stdout_fd_ < 0 || left.count() <= 0) return std::nullopt;
    pollfd p{stdout_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<int> Child::wait_exit(std::chrono::milliseconds timeout) {
  if (reaped_) return std::nullopt;
  int status = 0;
  std::optional<int> result;
  wait_until(
      [&] {
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) result = status;
        return r == pid_ || r < 0;
      },
      timeout);
  if (result) reaped_ = true;
  return result;
}

}  // namespace flotilla::test::proc
