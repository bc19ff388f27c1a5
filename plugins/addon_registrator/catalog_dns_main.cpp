// flotilla-catalog-dns: keeps dnsmasq's records equal to the etcd catalog.
//
// The registrator writes the catalog at every apply, but entries also leave on their own:
// when a node dies its lease expires and etcd deletes its keys. This process polls the
// catalog prefix (every --interval-ms), rewrites the hosts file when the A records change
// (dnsmasq re-reads it by itself), and restarts its dnsmasq child when the SRV records
// change (dnsmasq reads srv-host lines only at start). It also restarts dnsmasq if it dies.
// While etcd is unreachable the last known records stay served.
//
// Usage:
//   flotilla-catalog-dns --etcd URLS --prefix PREFIX --domain DOMAIN --hosts-file PATH
//                        --srv-file PATH [--node NAME=ADDRESS]... [--interval-ms N] -- DNSMASQ ARGS...
#include "flotilla/support/request.hpp"
#include "addon_registrator/catalog.hpp"
#include "addon_registrator/dns.hpp"
#include "flotilla/support/etcd_client.hpp"
#include "flotilla/support/files.hpp"
#include "flotilla/support/process.hpp"
#include "flotilla/support/wait.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

namespace d = flotilla::discovery;
namespace support = flotilla::support;
using nlohmann::json;
using flotilla::support::read_text;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

void log_line(const std::string& text) {
  std::fprintf(stderr, "flotilla-catalog-dns: %s\n", text.c_str());
  std::fflush(stderr);
}

/// Writes `text` to `path` atomically; the temporary lives in the parent of the watched
/// directory so dnsmasq never sees it. False (and a log line) when it cannot be written: the
/// next poll tries again.
bool write_records(const std::filesystem::path& path, const std::string& text) {
  try {
    support::write_file_atomic(path, text, 0644, path.parent_path().parent_path());
    return true;
  } catch (const std::system_error& e) {
    log_line(std::string(e.what()) + " (trying again at the next poll)");
    return false;
  }
}

class DnsmasqChild {
 public:
  explicit DnsmasqChild(std::vector<std::string> argv) : argv_(std::move(argv)) {}
  ~DnsmasqChild() { stop(); }

  /// Starts dnsmasq in this process's group (so whoever stops this process stops it too),
  /// logging where this process logs. A failed start is logged and retried by the caller.
  void start() {
    started_ = std::chrono::steady_clock::now();
    support::SpawnOptions o;
    o.argv = argv_;
    o.new_session = false;
    o.inherit_stdio = true;
    try {
      pid_ = support::spawn(o).pid;
    } catch (const support::SpawnError& e) {
      pid_ = -1;
      log_line(e.what());
    }
  }

  /// True if the child has exited since the last call (it is then reaped).
  bool exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      log_line("dnsmasq exited (" + (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                                         : "signal " + std::to_string(WTERMSIG(status))) + ")");
      pid_ = -1;
      return true;
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!support::reap_child(pid_, std::chrono::seconds(3))) {
      ::kill(pid_, SIGKILL);
      (void)support::reap_child(pid_, std::chrono::seconds(10));
    }
    pid_ = -1;
  }

  [[nodiscard]] std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point started_{};
};

int usage(const char* why) {
  std::fprintf(stderr,
               "flotilla-catalog-dns: %s\n"
               "usage: flotilla-catalog-dns --etcd URLS --prefix PREFIX --domain DOMAIN --hosts-file PATH --srv-file PATH\n"
               "                            [--node NAME=ADDRESS]... [--interval-ms N] -- DNSMASQ ARGS...\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string etcd_urls, prefix, domain = "consul", hosts_file, srv_file;
  int interval_ms = 1000;
  json nodes = json::array();
  std::vector<std::string> dnsmasq;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (a == "--") {
      for (++i; i < argc; ++i) dnsmasq.emplace_back(argv[i]);
      break;
    }
    if (a == "--etcd") etcd_urls = next();
    else if (a == "--prefix") prefix = next();
    else if (a == "--domain") domain = next();
    else if (a == "--hosts-file") hosts_file = next();
    else if (a == "--srv-file") srv_file = next();
    else if (a == "--interval-ms") interval_ms = std::max(100, std::atoi(next().c_str()));
    else if (a == "--node") {
      const std::string v = next();
      const auto eq = v.find('=');
      if (eq == std::string::npos) return usage("--node takes NAME=ADDRESS");
      nodes.push_back({{"name", v.substr(0, eq)}, {"address", v.substr(eq + 1)}});
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
  if (etcd_urls.empty() || prefix.empty() || hosts_file.empty() || srv_file.empty() || dnsmasq.empty()) {
    return usage("missing arguments");
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  const support::EtcdClient etcd(etcd_urls, {std::chrono::milliseconds(500), std::chrono::milliseconds(2000)});
  std::string hosts = read_text(hosts_file);
  std::string srv = read_text(srv_file);
  DnsmasqChild child(dnsmasq);
  child.start();
  bool etcd_ok = true;
  while (!g_stop) {
    try {
      const auto regs = d::read_etcd_catalog(etcd, prefix);
      if (!etcd_ok) log_line("etcd reachable again");
      etcd_ok = true;
      const std::string new_hosts = d::render_hosts(regs, domain, nodes);
      const std::string new_srv = d::render_srv_conf(regs, domain);
      if (new_hosts != hosts && write_records(hosts_file, new_hosts)) {
        hosts = new_hosts;
        log_line("A records now: " + std::to_string(regs.size()) + " catalog entries");
      }
      if (new_srv != srv && write_records(srv_file, new_srv)) {
        srv = new_srv;
        log_line("SRV records changed; restarting dnsmasq");
        child.stop();
        child.start();
      }
    } catch (const std::exception& e) {
      if (etcd_ok) log_line(std::string("cannot read the catalog (serving the last records): ") + e.what());
      etcd_ok = false;
    }
    // A dnsmasq that dies is restarted, at most every 2 s so a bad flag cannot spin.
    if (child.exited() && std::chrono::steady_clock::now() - child.started() > std::chrono::seconds(2)) child.start();
    (void)support::sleep_for(std::chrono::milliseconds(interval_ms), [] { return g_stop.load(); });
  }
  child.stop();
  return 0;
}
