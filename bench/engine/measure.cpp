// bench_measure: runs one command and writes its wall time, peak resident memory and exit
// status to a file, so the engine benchmark needs nothing beyond what the build makes.
//
//   bench_measure RESULT_FILE TIMEOUT_S -- COMMAND [ARGS...]
//
// RESULT_FILE gets one line "WALL_SECONDS MAX_RSS_KB EXIT_CODE". The command inherits stdin,
// stdout and stderr. It is killed (its pid only) when it runs longer than TIMEOUT_S; the exit
// code is then 124, as timeout(1) reports it. Exits with the command's exit code.
// SIGTERM is passed on to the command and SIGINT ignored (a terminal's Ctrl-C reaches the
// command by itself), so that the command, not this wrapper, decides how to stop and the
// caller's cleanup never races a command that still runs.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {
volatile std::sig_atomic_t g_terminate = 0;
extern "C" void on_terminate(int) { g_terminate = 1; }
}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || std::strcmp(argv[3], "--") != 0) {
    std::fprintf(stderr, "usage: %s RESULT_FILE TIMEOUT_S -- COMMAND [ARGS...]\n", argv[0]);
    return 2;
  }
  const char* result_file = argv[1];
  const double timeout_s = std::atof(argv[2]);
  if (timeout_s <= 0) {
    std::fprintf(stderr, "%s: timeout `%s` is not a positive number of seconds\n", argv[0], argv[2]);
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    return 2;
  }
  if (pid == 0) {
    ::execvp(argv[4], argv + 4);
    std::fprintf(stderr, "%s: cannot run %s: %s\n", argv[0], argv[4], std::strerror(errno));
    ::_exit(127);
  }

  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, &on_terminate);
  const auto deadline = start + std::chrono::duration<double>(timeout_s);
  int status = 0;
  rusage usage{};
  bool timed_out = false;
  bool terminate_sent = false;
  for (;;) {
    if (g_terminate && !terminate_sent) {
      ::kill(pid, SIGTERM);
      terminate_sent = true;
    }
    const pid_t done = ::wait4(pid, &status, WNOHANG, &usage);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      std::perror("wait4");
      return 2;
    }
    if (!timed_out && std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      timed_out = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (timed_out) code = 124;

  std::FILE* out = std::fopen(result_file, "w");
  if (out == nullptr) {
    std::fprintf(stderr, "%s: cannot write %s: %s\n", argv[0], result_file, std::strerror(errno));
    return 2;
  }
  // ru_maxrss is in kilobytes on Linux.
  std::fprintf(out, "%.4f %ld %d\n", wall, usage.ru_maxrss, code);
  std::fclose(out);
  return code;
}
