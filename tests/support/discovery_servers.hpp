// Real servers for the discovery tests: etcd and dnsmasq started on 127.0.0.1 reserved ports with
// scratch directories, and always stopped (by pid) and cleaned up when the guard goes away,
// even when the test fails.
#pragma once

#include "support/test_resources.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace flotilla::support {
class EtcdClient;
}

namespace flotilla::test::discovery {

/// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "flotilla-disc");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A TCP+UDP port on `address` reserved for this process (see test_resources.hpp).
using resources::free_port;

/// Polls `done` every 50 ms until it is true or `timeout` passes; returns its last answer.
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout);

/// A child process in its own process group, stdout and stderr to `log`. Destruction sends
/// TERM to the group, then KILL after 3 s, and reaps it.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::filesystem::path& log);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  [[nodiscard]] pid_t pid() const { return pid_; }
  /// True while the process has not exited.
  [[nodiscard]] bool alive();
  /// Sends `sig` to the process group.
  void signal(int sig) const;
  /// Stops it now (TERM, then KILL) and reaps it; safe to call twice.
  void stop();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

/// The text of a file ("" if unreadable).
[[nodiscard]] std::string read_file(const std::filesystem::path& path);

/// Runs `argv` (bounded by `timeout`, via coreutils' timeout) and returns its stdout.
[[nodiscard]] std::string run_output(const std::vector<std::string>& argv, std::chrono::seconds timeout = std::chrono::seconds(10));

/// What a command printed (stdout and stderr together) and its exit status (124: timed out).
struct CommandResult {
  int status = -1;
  std::string output;
};

/// Runs `argv` bounded by `timeout` and returns its exit status and combined output.
[[nodiscard]] CommandResult run_command(const std::vector<std::string>& argv, std::chrono::seconds timeout = std::chrono::seconds(120));

/// True while process `pid` exists and is not a zombie.
[[nodiscard]] bool process_alive(pid_t pid);

/// How many of the leases etcd held when the wait began were seen renewed often enough.
struct LeaseRenewals {
  int leases = 0;
  int renewed = 0;
  [[nodiscard]] bool all() const { return leases > 0 && renewed == leases; }
};

/// Polls every lease `etcd` holds now until each has been renewed `times` times (its remaining
/// TTL went up between two looks) or `timeout` passes. A new leader extends every lease once
/// when elected, so after a leader change only `times` >= 2 shows that keepalives renew them.
[[nodiscard]] LeaseRenewals wait_for_lease_renewals(const support::EtcdClient& etcd, int times, std::chrono::milliseconds timeout);

/// A single-member etcd on 127.0.0.1 with a scratch data dir, healthy when constructed.
class EtcdServer {
 public:
  /// `extra` flags are appended (e.g. "--max-request-bytes=1024"). Throws with the log's tail
  /// if it is not healthy within 20 s.
  explicit EtcdServer(const std::vector<std::string>& extra = {});
  [[nodiscard]] std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  [[nodiscard]] std::string log() const { return read_file(dir_.path() / "etcd.log"); }
  [[nodiscard]] Child& process() { return *child_; }

 private:
  TempDir dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::unique_ptr<Child> child_;
};

/// dnsmasq as the registrator runs it (same command line), serving `hosts_dir` and `srv_file`
/// on 127.0.0.1:port; ready (answering queries) when constructed.
class DnsmasqServer {
 public:
  DnsmasqServer(const std::filesystem::path& hosts_dir, const std::filesystem::path& srv_file, const std::string& domain,
                const std::filesystem::path& log);
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] Child& process() { return *child_; }
  /// `dig +short @127.0.0.1 -p PORT NAME TYPE`, one answer per line, sorted.
  [[nodiscard]] std::vector<std::string> dig(const std::string& name, const std::string& type = "A") const;

 private:
  int port_ = 0;
  std::unique_ptr<Child> child_;
};

}  // namespace flotilla::test::discovery
