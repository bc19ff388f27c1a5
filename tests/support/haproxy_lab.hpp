// Helpers for tests that run a real HAProxy: reserved loopback addresses and ports, a small
// keep-alive HTTP client, and a guard that stops an HAProxy the test started, by pid.
#pragma once

#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::test::haproxy_lab {

namespace fs = std::filesystem;

/// An address in this test process's own subnet (`resources::process_subnet("haproxy")`):
/// 127.A.B.<host>, the cidr when `host` is 0. Every port on it is the test's.
inline std::string test_address(int host) {
  return resources::process_subnet("haproxy").prefix() + std::to_string(host);
}

/// A port on `address` reserved for this process (see test_resources.hpp).
using resources::free_port;

struct HttpResponse {
  int status = 0;
  std::string body;
};

/// One HTTP/1.1 keep-alive connection, reopened when the server closed it after a response.
/// A request that fails on the wire (reset, EOF before the answer, timeout) throws: it is what a
/// client would report as an error, and what the tests count.
class HttpClient {
 public:
  HttpClient(std::string address, int port, std::chrono::milliseconds timeout = std::chrono::seconds(3))
      : address_(std::move(address)), port_(port), timeout_(timeout) {}
  ~HttpClient() { close(); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// GET `path`; throws std::runtime_error when the request fails on the wire.
  HttpResponse get(const std::string& path) {
    if (fd_ < 0) open();
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + address_ + "\r\n\r\n";
    ssize_t sent = 0;
    do sent = ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != static_cast<ssize_t>(req.size())) fail("send");
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos) read_more(head);
    const auto end = head.find("\r\n\r\n");
    std::string body = head.substr(end + 4);
    head.resize(end);
    HttpResponse r;
    if (head.size() < 12 || !head.starts_with("HTTP/1.")) fail("parse");
    r.status = std::atoi(head.c_str() + 9);
    std::string lower;
    for (char c : head) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto cl = lower.find("\r\ncontent-length:");
    if (cl != std::string::npos) {
      const std::size_t want = std::strtoul(lower.c_str() + cl + 17, nullptr, 10);
      while (body.size() < want) read_more(body);
      r.body = body.substr(0, want);
    } else if (lower.find("transfer-encoding: chunked") != std::string::npos) {
      r.body = read_chunked(body);
    } else {
      try {
        for (;;) read_more(body);
      } catch (const std::runtime_error&) {
      }
      r.body = body;
      close();
    }
    if (lower.find("\r\nconnection: close") != std::string::npos) close();
    return r;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void open() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{static_cast<time_t>(timeout_.count() / 1000), static_cast<suseconds_t>((timeout_.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    ::inet_pton(AF_INET, address_.c_str(), &a.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("connect");
  }

  void read_more(std::string& into) {
    char buf[8192];
    ssize_t n = 0;
    do n = ::recv(fd_, buf, sizeof buf, 0);  // a signal to this process is not the server's doing
    while (n < 0 && errno == EINTR);
    if (n <= 0) fail(n == 0 ? "eof" : "recv");
    into.append(buf, static_cast<std::size_t>(n));
  }

  std::string read_chunked(std::string data) {
    std::string out;
    for (;;) {
      while (data.find("\r\n") == std::string::npos) read_more(data);
      const std::size_t size = std::strtoul(data.c_str(), nullptr, 16);
      data.erase(0, data.find("\r\n") + 2);
      while (data.size() < size + 2) read_more(data);
      out += data.substr(0, size);
      data.erase(0, size + 2);
      if (size == 0) return out;
    }
  }

  [[noreturn]] void fail(const char* what) {
    const std::string why = std::strerror(errno);
    close();
    throw std::runtime_error(std::string("HTTP ") + what + " to " + address_ + ":" + std::to_string(port_) + " failed: " + why);
  }

  std::string address_;
  int port_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
};

/// The haproxy binary the tests run.
inline std::string haproxy_binary() {
  for (const char* p : {"/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  throw std::runtime_error("haproxy not found; apt-get install haproxy");
}

/// An HAProxy this test started, output going to `log`. Stopped on destruction: SIGTERM to the
/// pid it started (the master stops its workers), SIGKILL if it is still there after 5 s.
class HaproxyProcess {
 public:
  HaproxyProcess(const std::vector<std::string>& args, const fs::path& log) : child_(command(args, log)) {}
  ~HaproxyProcess() {
    ::kill(child_.pid(), SIGTERM);
    (void)child_.wait_exit(std::chrono::seconds(5));
  }
  HaproxyProcess(const HaproxyProcess&) = delete;
  HaproxyProcess& operator=(const HaproxyProcess&) = delete;
  [[nodiscard]] pid_t pid() const { return child_.pid(); }

 private:
  // /bin/sh only redirects the output and then becomes haproxy (exec), so the pid is HAProxy's.
  static std::vector<std::string> command(const std::vector<std::string>& args, const fs::path& log) {
    std::vector<std::string> argv{"/bin/sh", "-c", "exec \"$0\" \"$@\" >>'" + log.string() + "' 2>&1", haproxy_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  proc::Child child_;
};

/// Config of an HAProxy standing in for service instances: one frontend per port, each
/// answering every path (health checks included) with 200 and its own id as the body.
inline std::string instances_config(const std::string& address, const std::vector<int>& ports) {
  std::string cfg =
      "global\n    log stderr format raw daemon notice\n"
      "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n";
  for (std::size_t i = 0; i < ports.size(); ++i) {
    cfg += "frontend b" + std::to_string(i + 1) + "\n    bind " + address + ":" + std::to_string(ports[i]) +
           "\n    http-request return status 200 content-type text/plain string b" + std::to_string(i + 1) + "\n";
  }
  return cfg;
}

/// Steady keep-alive GETs of `path` on a thread of its own until stopped (bounded: at most
/// 200,000 requests or `limit`), counting what a client would call a failure: an error on the
/// wire, or a status other than 200. `key` turns each answer's body into what seen() collects.
class LoadClient {
 public:
  using Key = std::function<std::string(const std::string& body)>;
  LoadClient(const std::string& address, int port, std::string path = "/hello/v1/load", Key key = {},
             std::chrono::seconds limit = std::chrono::seconds(60)) {
    thread_ = std::thread([this, address, port, path, key, limit] {
      HttpClient c(address, port, std::chrono::seconds(2));
      const auto deadline = std::chrono::steady_clock::now() + limit;
      while (!stop_ && sent_ < 200000 && std::chrono::steady_clock::now() < deadline) {
        ++sent_;
        try {
          const auto r = c.get(path);
          if (r.status != 200) ++non_2xx_;
          std::string seen = key ? key(r.body) : r.body;
          std::lock_guard lock(mu_);
          ++seen_[seen];
        } catch (const std::exception& e) {  // nothing may escape the thread: the guards must run
          ++errors_;
          std::lock_guard lock(mu_);
          last_error_ = e.what();
        }
      }
    });
  }
  ~LoadClient() { stop(); }
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int sent() const { return sent_; }
  int errors() const { return errors_; }
  int non_2xx() const { return non_2xx_; }
  std::string last_error() {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  /// The keys seen so far.
  std::set<std::string> seen() {
    std::lock_guard lock(mu_);
    std::set<std::string> out;
    for (const auto& [k, n] : seen_) out.insert(k);
    return out;
  }
  /// How often each key was seen so far.
  std::map<std::string, int> counts() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> sent_{0}, errors_{0}, non_2xx_{0};
  std::mutex mu_;
  std::map<std::string, int> seen_;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace flotilla::test::haproxy_lab
