#include "addon_haproxy/haproxy_binary.hpp"

namespace flotilla::haproxy {

std::optional<std::filesystem::path> find_haproxy() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string all(path);
    std::size_t start = 0;
    for (;;) {
      const auto end = all.find(':', start);
      dirs.push_back(all.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (const char* d : {"/usr/sbin", "/usr/local/sbin", "/sbin"}) dirs.emplace_back(d);
  for (const auto& d : dirs) {
    if (d.empty()) continue;
    const std::filesystem::path candidate = std::filesystem::path(d) / "haproxy";
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

ConfigCheck check_config(const std::filesystem::path& binary, const std::filesystem::path& file,
                                std::chrono::milliseconds timeout) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("cannot create a pipe to run haproxy -c");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
  const std::string bin = binary.string(), cfg = file.string();
  std::vector<char*> argv{const_cast<char*>(bin.c_str()), const_cast<char*>("-c"), const_cast<char*>("-f"), const_cast<char*>(cfg.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    throw std::runtime_error("cannot run " + bin + ": " + std::to_string(rc));
  }

  ConfigCheck result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    const ssize_t got = ::read(pipefd[0], buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (result.output.size() < 65536) result.output.append(buf, static_cast<std::size_t>(got));
  }
  ::close(pipefd[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.valid = !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  // `-q` would hide the alerts too; drop only the version notices instead.
  std::string kept;
  std::size_t start = 0;
  while (start < result.output.size()) {
    auto end = result.output.find('\n', start);
    if (end == std::string::npos) end = result.output.size();
    const std::string_view line(result.output.data() + start, end - start);
    if (line.find("[NOTICE]") == std::string_view::npos && !line.empty()) kept.append(line).append("\n");
    start = end + 1;
  }
  result.output = std::move(kept);
  if (timed_out) result.output += "\nhaproxy -c did not finish within " + std::to_string(timeout.count()) + " ms";
  return result;
}
}  // namespace flotilla::haproxy
