// Helpers for the prometheus-cadvisor tests: child processes that are always stopped, a small
// HTTP client, bounded polling, and readers of Prometheus' targets and query APIs.
#pragma once

#include "flotilla/support/files.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/wait.hpp"
#include "support/test_resources.hpp"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::test::prom {

using json = nlohmann::json;
namespace fs = std::filesystem;

/// A temporary directory removed (with its contents) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// A child process with stdout and stderr in `log`; TERM, then KILL after 10 s, on destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const fs::path& log) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Dies with the test process even when that is killed before any destructor runs.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// True while the process has not exited.
  [[nodiscard]] bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

/// A TCP+UDP port on `address` reserved for this process (see test_resources.hpp).
using resources::free_port;

struct HttpReply {
  long status = 0;
  std::string body;
};

/// GET (or POST with an empty body) with a 5 s timeout; status 0 when nothing answered.
inline HttpReply http(const std::string& url, bool post = false) {
  try {
    support::HttpClient client({.timeouts = {std::chrono::milliseconds(5000), std::chrono::milliseconds(5000)}});
    auto r = client.send({.method = post ? "POST" : "GET", .url = url});
    return {r.status, std::move(r.body)};
  } catch (const support::Unreachable&) {
    return {};
  }
}

/// Polls `ok` every 100 ms until it holds or `timeout` passes; returns the time it took, or
/// a negative duration on timeout.
inline std::chrono::duration<double> wait_until(const std::function<bool()>& ok, std::chrono::duration<double> timeout) {
  const auto start = std::chrono::steady_clock::now();
  if (!support::wait_until(std::chrono::duration_cast<std::chrono::milliseconds>(timeout), std::chrono::milliseconds(100), ok))
    return std::chrono::duration<double>(-1);
  return std::chrono::steady_clock::now() - start;
}

/// Active targets as job -> (instance -> health), from /api/v1/targets.
inline std::map<std::string, std::map<std::string, std::string>> target_health(const std::string& base_url) {
  std::map<std::string, std::map<std::string, std::string>> out;
  const HttpReply r = http(base_url + "/api/v1/targets?state=active");
  if (r.status != 200) return out;
  const json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object() || !doc.contains("data")) return out;
  for (const auto& t : doc["data"].value("activeTargets", json::array())) {
    const json labels = t.value("labels", json::object());
    out[labels.value("job", "")][labels.value("instance", "")] = t.value("health", "");
  }
  return out;
}

/// True when every instance of every job in `expected` is listed and healthy ("up").
inline bool all_healthy(const std::string& base_url, const std::map<std::string, std::vector<std::string>>& expected) {
  const auto seen = target_health(base_url);
  for (const auto& [job, instances] : expected) {
    const auto it = seen.find(job);
    if (it == seen.end()) return false;
    for (const auto& inst : instances) {
      const auto h = it->second.find(inst);
      if (h == it->second.end() || h->second != "up") return false;
    }
  }
  return true;
}

/// Result of the instant query `up` as (job, instance) -> value.
inline std::map<std::pair<std::string, std::string>, std::string> query_up(const std::string& base_url) {
  std::map<std::pair<std::string, std::string>, std::string> out;
  const HttpReply r = http(base_url + "/api/v1/query?query=up");
  if (r.status != 200) return out;
  const json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object() || !doc.contains("data")) return out;
  for (const auto& s : doc["data"].value("result", json::array())) {
    const json m = s.value("metric", json::object());
    out[{m.value("job", ""), m.value("instance", "")}] = s["value"][1].get<std::string>();
  }
  return out;
}

/// True once every instance of every job is "up" on /api/v1/targets and its `up` sample reads 1
/// in a query. Prometheus marks a target up before the scrape's samples are committed, so a
/// query right after the targets page turned up can still lack the new series.
inline bool all_up(const std::string& base_url, const std::map<std::string, std::vector<std::string>>& expected) {
  if (!all_healthy(base_url, expected)) return false;
  const auto up = query_up(base_url);
  for (const auto& [job, instances] : expected)
    for (const auto& inst : instances) {
      const auto it = up.find({job, inst});
      if (it == up.end() || it->second != "1") return false;
    }
  return true;
}

/// Value of an unlabelled sample (e.g. prometheus_config_last_reload_success_timestamp_seconds)
/// from a server's /metrics, or -1 when absent.
inline double metric_value(const std::string& base_url, const std::string& name) {
  const std::string body = "\n" + http(base_url + "/metrics").body;
  const std::string key = "\n" + name + " ";
  const auto pos = body.find(key);
  if (pos == std::string::npos) return -1;
  return std::stod(body.substr(pos + key.size(), body.find('\n', pos + key.size()) - pos - key.size()));
}

/// Runs a command through the shell; returns its exit code and combined output.
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

/// Writes a file through a temporary name and rename, as the runtime's put_file does.
inline void write_atomically(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  support::write_file_atomic(path, content);
}

/// True while a process with this pid exists and is not a zombie.
inline bool pid_alive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close_paren = line.rfind(')');
  return close_paren == std::string::npos || line.size() < close_paren + 3 || line[close_paren + 2] != 'Z';
}

}  // namespace flotilla::test::prom
