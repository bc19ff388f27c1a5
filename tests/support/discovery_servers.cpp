#include "discovery_servers.hpp"

#include "addon_registrator/dns.hpp"
#include "flotilla/support/etcd_client.hpp"
#include "flotilla/support/wait.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace flotilla::test::discovery {

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  return support::wait_until(timeout, std::chrono::milliseconds(50), done);
}

LeaseRenewals wait_for_lease_renewals(const support::EtcdClient& etcd, int times, std::chrono::milliseconds timeout) {
  struct Seen {
    long long last = std::numeric_limits<long long>::max();  // remaining TTL at the last look
    int renewals = 0;
  };
  const auto int64 = [](const nlohmann::json& v) { return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<long long>(); };
  // While a new leader is elected, a member may hold a request past the client's timeout or
  // refuse it; such a look tells nothing, so it is simply taken again at the next poll.
  const auto look = [&etcd](const std::string& path, const nlohmann::json& body) -> std::optional<nlohmann::json> {
    try {
      return etcd.call(path, body);
    } catch (const support::HttpError&) {
      return std::nullopt;
    }
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::map<std::string, Seen> leases;
  (void)support::wait_until(deadline, std::chrono::milliseconds(50), [&] {
    const auto listed = look("/v3/lease/leases", nlohmann::json::object());
    if (!listed) return false;
    for (const auto& l : listed->value("leases", nlohmann::json::array()))
      leases[l["ID"].is_string() ? l["ID"].get<std::string>() : l["ID"].dump()] = {};
    return true;
  });
  LeaseRenewals result{static_cast<int>(leases.size()), 0};
  (void)support::wait_until(deadline, std::chrono::milliseconds(50), [&] {
    result.renewed = 0;
    for (auto& [id, seen] : leases) {
      const auto ttl = look("/v3/lease/timetolive", {{"ID", id}});
      if (ttl) {
        const long long now = int64(ttl->value("TTL", nlohmann::json(-1)));
        if (now > seen.last) ++seen.renewals;
        seen.last = now;
      }
      result.renewed += seen.renewals >= times;
    }
    return result.all();
  });
  return result;
}

Child::Child(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) throw std::runtime_error("cannot open log " + log.string());
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(out);
    throw std::runtime_error("fork failed for " + argv.front());
  }
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s failed: %d\n", args[0], errno);
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also from the parent, so a signal right away reaches the group
  ::close(out);
}

Child::~Child() { stop(); }

bool Child::alive() {
  if (reaped_) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

void Child::signal(int sig) const {
  if (!reaped_ && pid_ > 0) ::kill(-pid_, sig);
}

void Child::stop() {
  if (reaped_ || pid_ <= 0) return;
  ::kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!alive()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!reaped_) {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
  }
  // The group may hold children of the process; they got the same signals.
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {
CommandResult run_shell(const std::vector<std::string>& argv, std::chrono::seconds timeout, bool merge_stderr) {
  std::string cmd = "timeout " + std::to_string(timeout.count());
  for (const auto& a : argv) {
    std::string quoted = "'";
    for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += " " + quoted + "'";
  }
  if (merge_stderr) cmd += " 2>&1";
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}
}  // namespace

std::string run_output(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  return run_shell(argv, timeout, false).output;
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  return run_shell(argv, timeout, true);
}

bool process_alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

EtcdServer::EtcdServer(const std::vector<std::string>& extra) : dir_("flotilla-etcd") {
  client_port_ = free_port();
  peer_port_ = free_port();
  const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> argv = {"/usr/bin/etcd",
                                   "--name=test",
                                   "--data-dir=" + (dir_.path() / "data").string(),
                                   "--listen-client-urls=" + client,
                                   "--advertise-client-urls=" + client,
                                   "--listen-peer-urls=" + peer,
                                   "--initial-advertise-peer-urls=" + peer,
                                   "--initial-cluster=test=" + peer,
                                   "--logger=zap",
                                   "--log-outputs=stderr"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  child_ = std::make_unique<Child>(argv, dir_.path() / "etcd.log");
  flotilla::support::EtcdClient etcd(client, {std::chrono::milliseconds(300), std::chrono::milliseconds(1000)});
  if (!wait_for([&] { return etcd.healthy(); }, std::chrono::seconds(20))) {
    const std::string text = log();
    child_->stop();
    throw std::runtime_error("etcd did not become healthy at " + client + "; log tail:\n" +
                             text.substr(text.size() > 2000 ? text.size() - 2000 : 0));
  }
}

DnsmasqServer::DnsmasqServer(const std::filesystem::path& hosts_dir, const std::filesystem::path& srv_file,
                             const std::string& domain, const std::filesystem::path& log) {
  port_ = free_port();
  flotilla::discovery::DnsmasqOptions o;
  o.listen_address = "127.0.0.1";
  o.port = port_;
  o.domain = domain;
  o.hosts_dir = hosts_dir.string();
  o.srv_file = srv_file.string();
  o.stay_root = ::geteuid() == 0 && !flotilla::discovery::readable_by_others(hosts_dir);
  child_ = std::make_unique<Child>(flotilla::discovery::dnsmasq_command(o), log);
  const bool ready = wait_for(
      [&] { return flotilla::discovery::dns_probe("127.0.0.1", port_, "probe." + domain, std::chrono::milliseconds(200)) >= 0; },
      std::chrono::seconds(10));
  if (!ready) {
    child_->stop();
    throw std::runtime_error("dnsmasq did not answer on 127.0.0.1:" + std::to_string(port_) + "; log:\n" + read_file(log));
  }
}

std::vector<std::string> DnsmasqServer::dig(const std::string& name, const std::string& type) const {
  const std::string out = run_output({"dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p", std::to_string(port_), name, type});
  std::vector<std::string> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

}  // namespace flotilla::test::discovery
