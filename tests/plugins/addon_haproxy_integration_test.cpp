// The haproxy addon through the real CLI: `flotilla up` of a small local cluster with
// flotilla-hello behind HAProxy, requests through the ingress, a killed instance, `scale` out
// and in, a hostile service name, and `down`. Every cluster is taken down by a guard, even
// when an assertion fails.
#include "addon_haproxy/runtime_api.hpp"
#include "support/haproxy_lab.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <thread>

extern char** environ;

namespace {

namespace hap = flotilla::haproxy;
namespace lab = flotilla::test::haproxy_lab;
namespace proc = flotilla::test::proc;
namespace resources = flotilla::test::resources;
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

struct CliRun {
  int code = -1;
  std::string out, err;
};

/// Runs the CLI with `args`, output in files under `dir`; killed (by pid) after `timeout`.
CliRun run_cli(const fs::path& dir, const std::vector<std::string>& args, std::chrono::seconds timeout = 120s) {
  const std::string cli = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";
  std::vector<std::string> all{cli};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out_path = (dir / "cli.out").string(), err_path = (dir / "cli.err").string();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, cli.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot run " + cli);
  CliRun r;
  int status = 0;
  const bool done = proc::wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  r.code = done && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = proc::read_text(out_path);
  r.err = proc::read_text(err_path);
  return r;
}

/// Pids of processes whose command line mentions `text` (the cluster's own state directory).
std::vector<pid_t> processes_mentioning(const std::string& text) {
  std::vector<pid_t> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir("/proc"), &::closedir);
  while (const dirent* e = ::readdir(d.get())) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0 || !proc::running(pid)) continue;
    std::string cmd = proc::read_text("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(text) != std::string::npos) out.push_back(pid);
  }
  return out;
}

/// A local cluster of its own (a reserved /24 as its cidr, so every port on its addresses is
/// free for it; state in a scratch directory): infra plus two swarm nodes, hello/v1 behind the
/// haproxy addon. `down` runs on destruction.
struct Cluster {
  proc::ScratchDir dir{"flt-hait"};
  resources::Subnet subnet = resources::reserve_subnet();
  std::string net = subnet.prefix();
  int ingress_port = 0, stats_port = 0, service_port = 0;
  fs::path file = dir.path() / "cluster.toml";
  fs::path state = dir.path() / "state";

  explicit Cluster(const std::string& service_name = "hello/v1", int replicas = 3) {
    const int base = 8000;
    ingress_port = base;
    stats_port = base + 1;
    service_port = base + 2;  // up to 4 instances per node: base+2 .. base+5
    std::ofstream out(file);
    out << "[cluster]\nname = \"ha-it-" << ::getpid() << "\"\ndriver = \"local\"\n\n"
        << "[driver.local]\ncidr = \"" << net << "0/24\"\n\n"
        << "[[nodes]]\nname = \"infra\"\nroles = [\"infra\"]\n\n"
        << "[[nodes]]\nname = \"swarm\"\ncount = 2\nroles = [\"swarm\"]\n\n"
        << "[[addons]]\nplugin = \"haproxy\"\n[addons.options]\nport = " << ingress_port << "\nstats_port = " << stats_port
        << "\n\n[[services]]\nname = " << json(service_name).dump() << "\n"
        << "command = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]\n"
        << "replicas = " << replicas << "\nport = " << service_port << "\nhealth = \"/health\"\n";
  }
  ~Cluster() {
    if (!fs::exists(state)) return;  // never brought up
    (void)cli({"unlock"}, 30s);
    const CliRun down = cli({"down"}, 120s);
    if (down.code != 0) WARN("flotilla down failed: " << down.err);
    // Anything still running from this cluster's state directory was started by this test.
    for (pid_t pid : processes_mentioning(state.string())) ::kill(pid, SIGKILL);
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  CliRun cli(std::vector<std::string> args, std::chrono::seconds timeout = 120s) {
    const std::string verb = args.front();
    args.insert(args.begin() + 1, file.string());
    if (verb != "validate") {
      args.push_back("--state-dir");
      args.push_back(state.string());
    }
    return run_cli(dir.path(), args, timeout);
  }
  json status() {
    const CliRun r = cli({"status", "--output", "json"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    return json::parse(r.out);
  }
  [[nodiscard]] std::string ingress_address() const { return net + "2"; }
  [[nodiscard]] hap::RuntimeApi admin() const { return hap::RuntimeApi((state / "addons" / "haproxy" / "swarm-1" / "admin.sock").string()); }
  /// Servers in HAProxy's hello.v1 backend, by `show servers state`.
  [[nodiscard]] std::size_t live_servers() const {
    std::size_t n = 0;
    for (const auto& s : admin().show_servers_state()) n += s.backend == "hello.v1";
    return n;
  }
};

/// Sends `n` requests through one keep-alive connection; the instances that answered, and the
/// number of requests that failed (an error on the wire or a status other than 200).
struct Sample {
  std::set<std::string> instances;
  int failed = 0;
  std::string last_error;
};
Sample sample(const Cluster& c, int n) {
  Sample s;
  lab::HttpClient client(c.ingress_address(), c.ingress_port, 3s);
  for (int i = 0; i < n; ++i) {
    try {
      const auto r = client.get("/hello/v1/whoami");
      if (r.status != 200) {
        ++s.failed;
        s.last_error = "status " + std::to_string(r.status);
        continue;
      }
      s.instances.insert(json::parse(r.body).value("instance", ""));
    } catch (const std::exception& e) {
      ++s.failed;
      s.last_error = e.what();
    }
  }
  return s;
}

std::set<std::string> ids(int n) {
  std::set<std::string> out;
  for (int i = 1; i <= n; ++i) out.insert("hello/v1#" + std::to_string(i));
  return out;
}

}  // namespace

TEST_CASE("haproxy through the CLI: every instance reached, a killed one leaves routing, scale out and in, down cleans up",
          "[integration][haproxy]") {
  Cluster c;
  CliRun up = c.cli({"up"});
  INFO(up.out << up.err);
  REQUIRE(up.code == 0);
  CHECK(up.out.find("http://" + c.ingress_address() + ":" + std::to_string(c.ingress_port)) != std::string::npos);

  json st = c.status();
  CHECK(st["endpoints"]["rest"] == "http://" + c.ingress_address() + ":" + std::to_string(c.ingress_port));
  Sample s = sample(c, 30);
  INFO(s.last_error);
  CHECK(s.failed == 0);
  CHECK(s.instances == ids(3));

  SECTION("a killed instance is out of routing within seconds, and no request fails") {
    pid_t victim = 0;
    for (const auto& svc : st["services"]) {
      for (const auto& inst : svc["instances"]) {
        if (inst["id"] == "hello/v1#2") victim = inst["pid"].get<pid_t>();
      }
    }
    REQUIRE(victim > 0);
    REQUIRE(::kill(victim, SIGKILL) == 0);
    // Requests right after the kill are redispatched to live instances by HAProxy.
    const auto killed_at = std::chrono::steady_clock::now();
    Sample during = sample(c, 40);
    INFO(during.last_error);
    CHECK(during.failed == 0);
    CHECK(during.instances == std::set<std::string>{"hello/v1#1", "hello/v1#3"});
    // HAProxy's own check marks it DOWN: fall 2 at inter 1 s / fastinter 100 ms.
    const bool down = proc::wait_until(
        [&] {
          for (const auto& row : c.admin().show_stat("hello.v1")) {
            if (row.get("svname").starts_with("i2-") && row.get("status").starts_with("DOWN")) return true;
          }
          return false;
        },
        5s);
    CHECK(down);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
    WARN("killed instance marked DOWN by HAProxy after " << seconds << " s");
    Sample after = sample(c, 40);
    CHECK(after.failed == 0);
    CHECK(after.instances == std::set<std::string>{"hello/v1#1", "hello/v1#3"});
  }

  SECTION("scale to 8 adds backends, scale to 3 removes them, without a reload") {
    const int worker = c.admin().worker_pid();
    CliRun out8 = c.cli({"scale", "hello/v1=8"});
    INFO(out8.out << out8.err);
    REQUIRE(out8.code == 0);
    CHECK(c.live_servers() == 8);
    s = sample(c, 64);
    CHECK(s.failed == 0);
    CHECK(s.instances == ids(8));

    CliRun out3 = c.cli({"scale", "hello/v1=3"});
    INFO(out3.out << out3.err);
    REQUIRE(out3.code == 0);
    CHECK(c.live_servers() == 3);
    s = sample(c, 30);
    CHECK(s.failed == 0);
    CHECK(s.instances == ids(3));
    CHECK(c.admin().worker_pid() == worker);
  }

  SECTION("down leaves no HAProxy behind") {
    std::vector<pid_t> haproxy;
    for (pid_t pid : processes_mentioning(c.state.string())) {
      if (proc::read_text("/proc/" + std::to_string(pid) + "/cmdline").find("haproxy") != std::string::npos) haproxy.push_back(pid);
    }
    CHECK(haproxy.size() >= 2);  // master and worker
    CliRun down = c.cli({"down"});
    INFO(down.out << down.err);
    REQUIRE(down.code == 0);
    for (pid_t pid : haproxy) CHECK_FALSE(proc::running(pid));
    CHECK(processes_mentioning(c.state.string()).empty());
    CHECK_THROWS(lab::HttpClient(c.ingress_address(), c.ingress_port, 1s).get("/hello/v1"));
  }
}

TEST_CASE("haproxy through the CLI: a service name carrying config syntax is refused at validate", "[integration][haproxy]") {
  for (const std::string evil : {"evil\n    server x 127.0.0.1:1", "hello v1", "hello#v1", "hello\"v1"}) {
    Cluster c(evil);
    const CliRun r = c.cli({"validate"});
    INFO(json(evil).dump() << ": " << r.out << r.err);
    CHECK(r.code == 3);
    CHECK(r.err.find("service name") != std::string::npos);
    CHECK_FALSE(fs::exists(c.state));
  }
}
