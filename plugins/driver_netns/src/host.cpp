#include "driver_netns/host.hpp"

#include <flotilla/support/command.hpp>
#include <flotilla/support/docker_client.hpp>
#include <flotilla/support/files.hpp>
#include <flotilla/support/http.hpp>
#include <flotilla/support/wait.hpp>

#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/mount.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace flotilla::netns {
namespace fs = std::filesystem;
using support::run_checked;

namespace {

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo).
std::vector<std::string> mounts_below(const fs::path& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  const std::string prefix = dir.string();
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point == prefix || point.starts_with(prefix + "/")) out.push_back(point);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

std::string log_tail(const fs::path& log) {
  if (!fs::exists(log)) return "(no log)";
  std::string out;
  for (const auto& line : support::tail_lines(log, 8)) out += "\n  " + line;
  return out;
}

}  // namespace

bool link_exists(const std::string& name) { return fs::exists(fs::path("/sys/class/net") / name); }

fs::path netns_path(const std::string& name) { return fs::path("/var/run/netns") / name; }

bool netns_exists(const std::string& name) { return fs::exists(netns_path(name)); }

void ensure_bridge(const std::string& name, const std::string& gateway, int prefix) {
  if (!link_exists(name)) {
    run_checked({"ip", "link", "add", name, "type", "bridge"});
    run_checked({"ip", "addr", "add", gateway + "/" + std::to_string(prefix), "dev", name});
  }
  run_checked({"ip", "link", "set", name, "up"});
}

void remove_bridge(const std::string& name) {
  if (link_exists(name)) run_checked({"ip", "link", "del", name});
}

void ensure_namespace(const NamespaceSpec& s) {
  if (!netns_exists(s.netns)) run_checked({"ip", "netns", "add", s.netns});
  if (!link_exists(s.host_veth)) run_checked({"ip", "link", "add", s.host_veth, "type", "veth", "peer", "name", "eth0", "netns", s.netns});
  run_checked({"ip", "link", "set", s.host_veth, "master", s.bridge, "up"});
  const std::string cidr = s.address + "/" + std::to_string(s.prefix);
  const auto shown = run_checked({"ip", "-n", s.netns, "-4", "-o", "addr", "show", "dev", "eth0"});
  if (shown.out.find(" " + cidr + " ") == std::string::npos) run_checked({"ip", "-n", s.netns, "addr", "add", cidr, "dev", "eth0"});
  run_checked({"ip", "-n", s.netns, "link", "set", "eth0", "up"});
  run_checked({"ip", "-n", s.netns, "link", "set", "lo", "up"});
  // Traffic stays on the bridge: no default route (an older layout added one).
  const auto routes = run_checked({"ip", "-n", s.netns, "-4", "route", "show", "default"});
  if (!routes.out.empty()) run_checked({"ip", "-n", s.netns, "-4", "route", "flush", "exact", "0.0.0.0/0"});
}

void remove_namespace(const NamespaceSpec& s) {
  if (link_exists(s.host_veth)) run_checked({"ip", "link", "del", s.host_veth});
  if (netns_exists(s.netns)) run_checked({"ip", "netns", "del", s.netns});
}

ClientTls ensure_client_tls(const fs::path& dir, const std::string& cluster) {
  const ClientTls tls{dir, support::ensure_certificate_authority(dir, ("Flotilla netns CA " + cluster).substr(0, 64))};
  support::ensure_certificate(tls.authority, {.common_name = ("flotilla client " + cluster).substr(0, 64), .use = support::CertificateUse::client},
                              tls.cert(), tls.key());
  return tls;
}

DockerdTls ensure_server_tls(const ClientTls& ca, const fs::path& dir, const std::string& node, const std::string& address) {
  const DockerdTls tls{ca.ca(), dir / "server.pem", dir / "server-key.pem"};
  support::ensure_certificate(ca.authority,
                              {.common_name = node.substr(0, 64), .ip_addresses = {address, "127.0.0.1"}, .use = support::CertificateUse::server},
                              tls.cert, tls.key);
  return tls;
}

std::vector<std::string> dockerd_argv(const DockerdSpec& s) {
  std::vector<std::string> argv = {"nsenter", "--net=" + netns_path(s.netns).string(), "dockerd",
                                   "--config-file=" + (s.root / "daemon.json").string(),
                                   "--data-root=" + (s.root / "data").string(),
                                   "--exec-root=" + (s.root / "exec").string(),
                                   "--pidfile=" + s.pid_file().string(),
                                   "--host=" + s.unix_host(),
                                   "--storage-driver=" + s.storage_driver,
                                   "--iptables=false",
                                   "--ip-masq=false"};
  if (s.bridge_none) argv.push_back("--bridge=none");
  if (!s.insecure_registry.empty()) argv.push_back("--insecure-registry=" + s.insecure_registry);
  if (!s.tcp_address.empty()) {
    argv.push_back("--host=tcp://" + s.tcp_address);
    if (s.tls) {
      argv.insert(argv.end(), {"--tlsverify", "--tlscacert=" + s.tls->ca.string(), "--tlscert=" + s.tls->cert.string(),
                               "--tlskey=" + s.tls->key.string()});
    }
  }
  return argv;
}

support::ProcessId start_dockerd(const DockerdSpec& s) {
  if (const auto id = support::read_pid_file(s.identity_file()); id && support::is_running(*id)) return *id;
  fs::create_directories(s.root);
  // Its own (empty) config file, so the machine's /etc/docker/daemon.json cannot change it.
  support::write_file_atomic(s.root / "daemon.json", "{}\n", 0600);
  support::SpawnOptions options{.argv = dockerd_argv(s), .stdout_path = s.log_file(), .stderr_path = s.log_file(), .detach = true};
  // containerd, which dockerd starts, writes a stack dump to TMPDIR when dockerd kills it for
  // failing its health checks: kept under the node's root, it goes away with the node.
  fs::create_directories(s.root / "tmp");
  options.env_add = {{"TMPDIR", (s.root / "tmp").string()}};
  options.before_exec = [&](const support::ProcessId& id) { support::write_pid_file(s.identity_file(), id); };
  const support::ProcessId id = support::spawn(options);
  support::DockerClient client({.node = s.netns, .host = s.unix_host(), .timeouts = {std::chrono::milliseconds(500), std::chrono::seconds(2)}});
  bool exited = false;
  const bool up = support::wait_until(s.start_timeout, std::chrono::milliseconds(50), [&] {
    if (!support::is_running(id)) return exited = true;
    if (!fs::exists(s.socket())) return false;
    try {
      return client.call("GET", "/_ping").status == 200;
    } catch (const support::DockerError&) {
      return false;
    }
  });
  if (up && !exited) return id;
  if (!exited) support::signal_process(id, SIGKILL);
  throw std::runtime_error("dockerd in namespace " + s.netns + (exited ? " exited at start" : " did not answer on " + s.socket().string() + " in time") +
                           "; its log " + s.log_file().string() + " ends with:" + log_tail(s.log_file()));
}

DockerBridge docker_bridge(const DockerdSpec& s) {
  support::DockerClient client({.node = s.netns, .host = s.unix_host(), .timeouts = {std::chrono::milliseconds(500), std::chrono::seconds(5)}});
  try {
    const auto r = client.call("GET", "/networks/bridge");
    const auto network = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status == 200 && network.is_object())
      for (const auto& c : network.value("IPAM", nlohmann::json::object()).value("Config", nlohmann::json::array())) {
        if (!c.is_object() || c.value("Subnet", "").empty()) continue;
        DockerBridge out{c.value("Gateway", ""), c.value("Subnet", "")};
        // The default bridge states no gateway: it is the address of its interface (docker0).
        const std::string device = network.value("Options", nlohmann::json::object()).value("com.docker.network.bridge.name", "docker0");
        if (out.gateway.empty()) {
          const auto shown = run_checked({"ip", "-n", s.netns, "-4", "-o", "addr", "show", "dev", device});
          const auto inet = shown.out.find(" inet ");
          if (inet != std::string::npos) out.gateway = shown.out.substr(inet + 6, shown.out.find('/', inet) - inet - 6);
        }
        if (!out.gateway.empty()) return out;
      }
    throw std::runtime_error("HTTP " + std::to_string(r.status) + " without a subnet and gateway");
  } catch (const std::exception& e) {
    throw std::runtime_error("dockerd in namespace " + s.netns + " reports no bridge network: " + e.what() +
                             "; see its log " + s.log_file().string());
  }
}

std::vector<std::string> masquerade_argv(const std::string& netns, const DockerBridge& bridge, const std::string& op) {
  return {"nsenter", "--net=" + netns_path(netns).string(), "iptables", "-w", "-t", "nat", op, "POSTROUTING",
          "-s",      bridge.subnet,                          "-o",       "eth0", "-j", "MASQUERADE"};
}

void ensure_masquerade(const std::string& netns, const DockerBridge& bridge) {
  if (support::run_command(masquerade_argv(netns, bridge, "-C")).exit_code == 0) return;
  run_checked(masquerade_argv(netns, bridge, "-A"));
}

namespace {

/// Stops the process recorded in `identity`namespace {

/// Stops the process recorded in `identity` (SIGTERM, SIGKILL after `grace`); false when none runs.
bool stop_recorded(const fs::path& identity, std::chrono::milliseconds grace) {
  const auto id = support::read_pid_file(identity);
  if (!id || !support::is_running(*id)) return false;
  support::signal_process(*id, SIGTERM);
  if (!support::wait_until(grace, std::chrono::milliseconds(50), [&] { return !support::is_running(*id); })) {
    support::signal_process(*id, SIGKILL);
    (void)support::wait_until(std::chrono::seconds(5), std::chrono::milliseconds(50), [&] { return !support::is_running(*id); });
  }
  return true;
}

}  // namespace

bool stop_dockerd(const DockerdSpec& s, std::chrono::milliseconds grace) { return stop_recorded(s.identity_file(), grace); }

std::string registry_config(const RegistrySpec& s) {
  // No auth: only the namespaces on the bridge and this machine reach the address.
  return "version: 0.1\n"
         "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
         "storage:\n  filesystem:\n    rootdirectory: " + s.storage.string() + "\n  delete:\n    enabled: true\n"
         "http:\n  addr: " + s.address + "\n";
}

bool registry_running(const RegistrySpec& s) {
  const auto id = support::read_pid_file(s.identity_file());
  return id && support::is_running(*id);
}

support::ProcessId start_registry(const RegistrySpec& s) {
  if (const auto id = support::read_pid_file(s.identity_file()); id && support::is_running(*id)) return *id;
  fs::create_directories(s.root);
  fs::create_directories(s.storage);
  support::write_file_atomic(s.config_file(), registry_config(s), 0600);
  support::SpawnOptions options{.argv = {"docker-registry", "serve", s.config_file().string()},
                                .stdout_path = s.log_file(), .stderr_path = s.log_file(), .detach = true};
  options.before_exec = [&](const support::ProcessId& id) { support::write_pid_file(s.identity_file(), id); };
  const support::ProcessId id = support::spawn(options);
  support::HttpClient http({.timeouts = {std::chrono::milliseconds(500), std::chrono::seconds(2)}});
  bool exited = false;
  const bool up = support::wait_until(s.start_timeout, std::chrono::milliseconds(50), [&] {
    if (!support::is_running(id)) return exited = true;
    try {
      return http.send({.url = "http://" + s.address + "/v2/"}).status == 200;
    } catch (const support::HttpError&) {
      return false;
    }
  });
  if (up && !exited) return id;
  if (!exited) support::signal_process(id, SIGKILL);
  throw std::runtime_error("the lab's registry (docker-registry on " + s.address + ")" +
                           (exited ? " exited at start" : " did not answer in time") + "; its log " + s.log_file().string() +
                           " ends with:" + log_tail(s.log_file()) +
                           "\n  (an address already in use: set another [driver.netns] registry_port)");
}

bool stop_registry(const RegistrySpec& s, std::chrono::milliseconds grace) { return stop_recorded(s.identity_file(), grace); }

void remove_tree(const fs::path& dir) {
  if (!fs::exists(dir)) return;
  for (const auto& point : mounts_below(dir)) ::umount2(point.c_str(), MNT_DETACH);
  fs::remove_all(dir);
}

}  // namespace flotilla::netns
