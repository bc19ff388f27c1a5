// configs/aws.toml end to end against an EC2 stand-in, as root: the fake EC2 of
// support/fake_ec2_cloud answers the aws driver, and each instance it launches boots for real
// as a network namespace on the Docker lab's bridge with a dockerd listening on the Docker TLS
// port, with the CA, server certificate and key taken from the instance's user data (the
// cloud-config user_data.cpp writes), so the driver's wait for Docker, the docker runtime and
// HAProxy all run against real daemons. The namespace's address is the instance's public IP;
// terminating the instance stops its dockerd and removes its namespace, stopping it stops its
// dockerd and starting it boots that again. During the first up
// the stand-in throttles a RunInstances, does not know each new instance at its first describe
// by id and answers listings in pages, and the test checks that it did.
//
// The copy of configs/aws.toml differs only in the cluster's name, the endpoint (the stand-in)
// and the images (the lab registry's, as configs/netns.toml names them): all five addons run,
// and Prometheus and `flotilla logs` are checked as the netns end-to-end test checks them.
#include "support/cleanup_report.hpp"
#include "support/cluster_checks.hpp"
#include "support/docker_addon_host.hpp"
#include "support/docker_lab.hpp"
#include "support/fake_ec2.hpp"
#include "support/fake_ec2_cloud.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <flotilla/support/files.hpp>
#include <flotilla/support/http.hpp>
#include <flotilla/support/process.hpp>
#include <flotilla/support/wait.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
namespace s = flotilla::support;
using nlohmann::json;
using flotilla::test::FakeEc2;
using flotilla::test::FakeEc2Cloud;
using flotilla::test::proc::ScratchDir;
using flotilla::test::proc::Shell;
using flotilla::test::proc::read_text;
using namespace std::chrono_literals;

/// The content of the file `path` that a cloud-config's write_files puts there ("" if none).
std::string written_file(const std::string& cloud_config, const std::string& path) {
  const std::size_t at = cloud_config.find("  - path: " + path + "\n");
  if (at == std::string::npos) return {};
  const std::size_t content = cloud_config.find("    content: |\n", at);
  if (content == std::string::npos) return {};
  std::istringstream in(cloud_config.substr(content + 15));
  std::string out;
  for (std::string line; std::getline(in, line) && line.starts_with("      ");) out += line.substr(6) + "\n";
  return out;
}

/// Longer than dockerd takes to stop its containers (their stop timeout, 10 s by default, and
/// its own shutdown timeout, 15 s) and then containerd.
constexpr std::chrono::seconds kDockerdShutdown{30};

/// The stand-in's machines: one namespace with a dockerd per instance, on the lab's bridge (so
/// it pulls from the lab's registry), booted in the background when EC2 launches the instance
/// and torn down when it is told to terminate it, or when the test ends. Each dockerd keeps its
/// own docker0, as on a netns node, so the docker runtime's published ports work.
class InstanceHosts {
 public:
  InstanceHosts(const flotilla::test::DockerLab& lab, fs::path root, int docker_port)
      : lab_(lab), root_(std::move(root)), docker_port_(docker_port) {}
  ~InstanceHosts() {
    std::lock_guard lock(mu_);
    for (auto& [id, h] : hosts_) {
      // A teardown under way joins the boot itself.
      if (h->teardown.joinable()) h->teardown.join();
      else if (h->boot.joinable()) h->boot.join();
      remove(*h);
    }
  }
  InstanceHosts(const InstanceHosts&) = delete;
  InstanceHosts& operator=(const InstanceHosts&) = delete;

  /// FakeEc2Cloud::on_launch: the instance's address.
  std::string launch(const std::string& id, const std::string& user_data) {
    std::lock_guard lock(mu_);
    auto h = std::make_unique<Host>();
    const std::string prefix = lab_.gateway().substr(0, lab_.gateway().rfind('.'));
    h->net = {.netns = flotilla::test::resources::unique_name("fltec2n"), .host_veth = flotilla::test::resources::unique_name("fltec2v"),
              .bridge = lab_.bridge(), .address = prefix + "." + std::to_string(100 + static_cast<int>(hosts_.size())), .prefix = 24,
              .gateway = lab_.gateway()};
    h->dockerd.netns = h->net.netns;
    h->dockerd.root = root_ / id;
    h->dockerd.insecure_registry = lab_.registry();
    h->dockerd.tcp_address = h->net.address + ":" + std::to_string(docker_port_);
    // The files cloud-init would write, from the instance's own user data.
    const fs::path tls = root_ / (id + "-tls");
    fs::create_directories(tls);
    for (const char* f : {"ca.pem", "server.pem", "server-key.pem"}) {
      const std::string text = written_file(user_data, std::string("/etc/docker/tls/") + f);
      if (text.empty()) h->error = std::string("the user data writes no /etc/docker/tls/") + f;
      s::write_file_atomic(tls / f, text, 0600);
    }
    h->dockerd.tls = flotilla::netns::DockerdTls{.ca = tls / "ca.pem", .cert = tls / "server.pem", .key = tls / "server-key.pem"};
    Host* host = h.get();
    host->boot = std::jthread([host] {
      try {
        flotilla::netns::ensure_namespace(host->net);
        if (host->error.empty()) (void)flotilla::netns::start_dockerd(host->dockerd);
      } catch (const std::exception& e) {
        host->error = e.what();
      }
    });
    const std::string address = host->net.address;
    hosts_[id] = std::move(h);
    return address;
  }

  /// FakeEc2Cloud::on_terminate.
  void terminate(const std::string& id) {
    std::lock_guard lock(mu_);
    const auto it = hosts_.find(id);
    if (it == hosts_.end() || it->second->teardown.joinable()) return;
    Host* host = it->second.get();
    host->teardown = std::jthread([host] {
      if (host->boot.joinable()) host->boot.join();
      remove(*host);
      host->gone = true;
    });
  }

  /// Stops the instance's dockerd, as when EC2 stops it; false when it was not running.
  bool stop(const std::string& id) {
    std::lock_guard lock(mu_);
    const auto it = hosts_.find(id);
    if (it == hosts_.end()) return false;
    Host& h = *it->second;
    if (h.boot.joinable()) h.boot.join();
    // A machine that stops shuts its dockerd down in full: dockerd first stops the running
    // containers, giving each its stop timeout (10 s by default), then containerd. Killed
    // sooner, it leaves containerd and the containers running in the namespace, and the
    // dockerd booted next can hang on them.
    return flotilla::netns::stop_dockerd(h.dockerd, kDockerdShutdown);
  }

  /// FakeEc2Cloud::on_start: boots the stopped instance's dockerd again, in its namespace.
  void start(const std::string& id) {
    std::lock_guard lock(mu_);
    const auto it = hosts_.find(id);
    if (it == hosts_.end() || it->second->teardown.joinable()) return;
    Host* host = it->second.get();
    if (host->boot.joinable()) host->boot.join();
    host->boot = std::jthread([host] {
      try {
        (void)flotilla::netns::start_dockerd(host->dockerd);
      } catch (const std::exception& e) {
        host->error = e.what();
      }
    });
  }

  /// Namespaces booted so far, and whether each one is torn down.
  std::map<std::string, bool> torn_down() {
    std::lock_guard lock(mu_);
    std::map<std::string, bool> out;
    for (const auto& [id, h] : hosts_) out[h->net.netns] = h->gone.load();
    return out;
  }
  /// What went wrong booting an instance, if anything did.
  std::string errors() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& [id, h] : hosts_)
      if (!h->error.empty()) out += id + ": " + h->error + "\n";
    return out;
  }
  /// The dockerd roots, to look for processes left running.
  [[nodiscard]] const fs::path& root() const { return root_; }

 private:
  struct Host {
    flotilla::netns::NamespaceSpec net;
    flotilla::netns::DockerdSpec dockerd;
    std::string error;
    std::atomic<bool> gone{false};
    std::jthread boot, teardown;
  };
  static void remove(Host& h) noexcept {
    try {
      (void)flotilla::netns::stop_dockerd(h.dockerd, kDockerdShutdown);
      flotilla::netns::remove_namespace(h.net);
      flotilla::netns::remove_tree(h.dockerd.root);
    } catch (const std::exception& e) {
      if (h.error.empty()) h.error = std::string("teardown: ") + e.what();
    }
  }

  const flotilla::test::DockerLab& lab_;
  fs::path root_;
  int docker_port_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Host>> hosts_;
};

/// The image options configs/netns.toml gives each addon (plugin -> its "...image = " lines), with
/// `registry` for the netns lab's registry.
std::map<std::string, std::string> netns_addon_images(const std::string& registry) {
  std::istringstream in(read_text(fs::path(FLOTILLA_SOURCE_DIR) / "configs/netns.toml"));
  const std::regex image(R"re(^(\w*image) = "10\.214\.0\.1:5050/(.*)"$)re");
  std::map<std::string, std::string> out;
  std::string plugin;
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("[[")) plugin.clear();
    else if (line.starts_with("plugin = \"")) plugin = line.substr(10, line.size() - 11);
    else if (!plugin.empty() && std::regex_match(line, m, image)) out[plugin] += m.str(1) + " = \"" + registry + "/" + m.str(2) + "\"\n";
  }
  return out;
}

/// configs/aws.toml on the stand-in: its endpoint, and the lab registry's images where
/// configs/netns.toml names them.
std::string topology(const std::string& endpoint, const std::string& registry) {
  std::string text = read_text(fs::path(FLOTILLA_SOURCE_DIR) / "configs/aws.toml");
  text = std::regex_replace(text, std::regex(R"(name = "aws")"), R"(name = "awse2e")");
  text = std::regex_replace(text, std::regex(R"(\[driver\.aws\]\n)"),
                            "[driver.aws]\nendpoint = \"" + endpoint + "\"\nfiles_image = \"" + registry + "/busybox:flotilla\"\n");
  text = std::regex_replace(text, std::regex(R"(image = "sirile/node-test")"), "image = \"" + registry + "/flotilla-hello:flotilla\"");
  const auto images = netns_addon_images(registry);
  for (const char* addon : {"etcd", "registrator", "haproxy", "prometheus-cadvisor", "syslog"}) {
    const std::string line = std::string("plugin = \"") + addon + "\"\n";
    const auto at = text.find(line);
    REQUIRE(at != std::string::npos);
    if (!images.contains(addon)) continue;
    const bool has_options = text.compare(at + line.size(), 17, "[addons.options]\n") == 0;
    text.insert(at + line.size() + (has_options ? 17 : 0), (has_options ? "" : "[addons.options]\n") + images.at(addon));
  }
  REQUIRE(text.find("endpoint = ") != std::string::npos);
  REQUIRE(text.find(registry + "/flotilla-hello") != std::string::npos);
  for (const char* image : {"haproxy", "etcd", "dnsmasq", "prometheus", "node-exporter"})
    REQUIRE(text.find(registry + "/" + image + ":flotilla") != std::string::npos);
  return text;
}

/// Runs `script` in `dir` with the stand-in's keys in the environment and nothing else of AWS's.
Shell sh(const fs::path& dir, const std::string& script) {
  return flotilla::test::proc::run_flotilla_script(dir, ". ./aws-env.sh\n" + script);
}

/// Instances of each node that are not terminated.
std::map<std::string, int> live_instances(FakeEc2Cloud& cloud) {
  std::lock_guard lock(cloud.mu);
  std::map<std::string, int> out;
  for (const auto& [id, i] : cloud.instances)
    if (i.state != "terminated" && i.tags.count("flotilla:node")) ++out[i.tags.at("flotilla:node")];
  return out;
}

}  // namespace

TEST_CASE("flotilla up configs/aws.toml against an EC2 stand-in that boots a netns Docker host per instance, "
          "serves through HAProxy with all five addons, starts an instance stopped behind its back, survives a kill -9 during "
          "create and down leaves nothing",
          "[engine][cli][docker][driver_aws][integration]") {
  if (const std::string why = flotilla::test::DockerLab::unavailable_reason(); !why.empty()) FLOTILLA_SKIP(why);
  auto* lab = flotilla::test::DockerLab::get();
  REQUIRE(lab);
  if (lab->registry().empty()) FLOTILLA_SKIP("docker-registry is not installed; scripts/install-deps.sh installs it");
  for (const char* program : {"haproxy", "prometheus", "prometheus-node-exporter", "etcd", "dnsmasq"})
    if (!s::find_executable(program)) FLOTILLA_SKIP(std::string(program) + " is not installed; scripts/install-deps.sh installs it");
  ScratchDir dir("flt-ec2");  // short: containerd's socket paths under it must fit 107 bytes
  // The images the topology names, in the lab's registry (pushed once for the whole suite).
  const std::string pushed = flotilla::test::build_lab_images(*lab, {"busybox", "haproxy", "prometheus", "node-exporter", "etcd", "dnsmasq", "flotilla-hello"}, 0);
  INFO(pushed);
  REQUIRE(pushed.empty());

  FakeEc2Cloud cloud;
  InstanceHosts hosts(*lab, dir.path() / "i", 2376);
  cloud.on_launch = [&](const std::string& id, const std::string& user_data) { return hosts.launch(id, user_data); };
  cloud.on_terminate = [&](const std::string& id) { hosts.terminate(id); };
  cloud.on_start = [&](const std::string& id) { hosts.start(id); };
  FakeEc2 fake{[&](const FakeEc2::Params& p, int call) { return cloud(p, call); }};

  std::ofstream(dir.path() / "aws-env.sh") << "export AWS_ACCESS_KEY_ID=" << flotilla::test::kFakeEc2KeyId << " AWS_SECRET_ACCESS_KEY='"
                                           << flotilla::test::kFakeEc2Secret << "'\nexport AWS_SHARED_CREDENTIALS_FILE="
                                           << (dir.path() / "none").string() << " AWS_CONFIG_FILE=" << (dir.path() / "none").string()
                                           << " AWS_EC2_METADATA_DISABLED=true\nunset AWS_PROFILE AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION\n";
  std::ofstream(dir.path() / "topology.toml") << topology(fake.url(), lab->registry());
  const flotilla::test::proc::DownOnExit down(dir.path(), ". ./aws-env.sh\n");
  const std::map<std::string, int> one_each = {{"infra", 1}, {"swarm-1", 1}, {"swarm-2", 1}, {"swarm-3", 1}};

  SECTION("up, through throttling, eventual consistency and paginated describes, serves hello/v1 through HAProxy on the "
          "instances with Prometheus and logs, a second up starts an instance stopped behind its back, and down terminates "
          "them and removes their hosts") {
    {
      // What EC2 does to clients now and then, during this same up: one RequestLimitExceeded,
      // each new instance unknown to the first describe by id after RunInstances, and listings
      // that come in pages (an empty one first, then one reservation per page).
      std::lock_guard lock(cloud.mu);
      cloud.throttle_run_instances = 1;
      cloud.empty_pages = 1;
    }
    const Shell up = sh(dir.path(), "$FLOTILLA up $TOPOLOGY");
    INFO(up.out << up.err << "\ninstances: " << hosts.errors());
    REQUIRE(up.code == 0);
    {
      std::lock_guard lock(cloud.mu);
      CHECK(cloud.injected.throttled == 1);
      CHECK(cloud.injected.not_yet_known == 4);
      CHECK(cloud.injected.next_pages >= 4);  // at least each node's search for its instance
    }
    CHECK(fake.bad_signatures() == 0);
    CHECK(live_instances(cloud) == one_each);
    std::smatch m;
    const std::string printed = up.out + up.err;
    REQUIRE(std::regex_search(printed, m, std::regex(R"(http://[0-9.]+:8080/hello/v1)")));
    const std::string url = m.str();
    s::HttpClient http;
    std::set<std::string> serving_nodes;
    for (int i = 0; i < 20; ++i) {
      const auto r = http.get(url);
      CHECK(r.status == 200);
      serving_nodes.insert(json::parse(r.body, nullptr, false).value("node", ""));
    }
    INFO("nodes that answered: " << json(serving_nodes).dump());
    CHECK(serving_nodes.size() > 1);
    CHECK_FALSE(serving_nodes.contains(""));
    const flotilla::test::cluster::RunScript run = [&](const std::string& script) { return sh(dir.path(), script); };
    flotilla::test::cluster::check_prometheus(flotilla::test::cluster::addresses(run));
    flotilla::test::cluster::check_logs(run);

    // swarm-2's instance stopped behind Flotilla's back: EC2 reports it stopped and its dockerd,
    // with the containers on it, is gone. The next up starts that same instance again.
    std::string stopped;
    {
      std::lock_guard lock(cloud.mu);
      for (auto& [id, i] : cloud.instances)
        if (i.state == "running" && i.tags["flotilla:node"] == "swarm-2") stopped = id;
      REQUIRE_FALSE(stopped.empty());
      cloud.instances[stopped].state = "stopped";
    }
    REQUIRE(hosts.stop(stopped));
    const Shell repair = sh(dir.path(), "$FLOTILLA up $TOPOLOGY");
    INFO(repair.out << repair.err << "\ninstances: " << hosts.errors());
    REQUIRE(repair.code == 0);
    CHECK(fake.calls_of("StartInstances") == 1);
    {
      std::lock_guard lock(cloud.mu);
      CHECK(cloud.instances.size() == 4);  // started, not replaced
      CHECK(cloud.instances[stopped].state == "running");
    }
    // hello/v1 on swarm-2 answers through HAProxy again.
    std::string last;
    const bool back = flotilla::test::proc::wait_until(
        [&] {
          try {
            const auto r = http.get(url);
            last = r.body;
            return r.status == 200 && json::parse(r.body, nullptr, false).value("node", "") == "swarm-2";
          } catch (const s::HttpError& e) {
            last = e.what();
            return false;
          }
        },
        60s);
    INFO("last answer: " << last);
    CHECK(back);

    const Shell gone = sh(dir.path(), "$FLOTILLA down $TOPOLOGY -q");
    INFO(gone.out << gone.err);
    REQUIRE(gone.code == 0);
    CHECK(live_instances(cloud).empty());
    CHECK(cloud.groups.empty());
    CHECK(cloud.keys.empty());
    REQUIRE(flotilla::test::proc::wait_until(
        [&] {
          for (const auto& [ns, done] : hosts.torn_down())
            if (!done) return false;
          return true;
        },
        60s));
    CHECK(hosts.torn_down().size() == 4);
    for (const auto& [ns, done] : hosts.torn_down()) CHECK_FALSE(flotilla::netns::netns_exists(ns));
    CHECK(flotilla::test::proc::shell_output("ps -eo args | grep -F '" + hosts.root().string() + "' | grep -v grep || true").empty());
  }

  SECTION("up killed with SIGKILL while it creates instances leaves, after another up, exactly one instance per node") {
    flotilla::test::proc::Child killed({"/bin/sh", "-c", "cd " + dir.path().string() + " && . ./aws-env.sh && exec " FLOTILLA_BINARY_DIR
                                        "/bin/flotilla up topology.toml -q >up-killed.txt 2>&1"});
    // Killed once EC2 has launched a first instance: the others are being created.
    REQUIRE(flotilla::test::proc::wait_until(
        [&] {
          std::lock_guard lock(cloud.mu);
          return !cloud.instances.empty();
        },
        120s));
    REQUIRE(::kill(killed.pid(), SIGKILL) == 0);
    const auto status = killed.wait_exit(10s);
    REQUIRE(status);
    CHECK(WIFSIGNALED(*status));
    const Shell again = sh(dir.path(), "$FLOTILLA up $TOPOLOGY -q");
    INFO(read_text(dir.path() / "up-killed.txt") << again.out << again.err << "\ninstances: " << hosts.errors());
    REQUIRE(again.code == 0);
    CHECK(live_instances(cloud) == one_each);
    CHECK(cloud.instances.size() == 4);  // the ClientTokens made the resumed RunInstances return the same instances
  }
}
