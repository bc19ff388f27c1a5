// configs/netns.toml end to end, as root, with the service and all six addons: `flotilla up`
// makes 3+1 netns nodes with a dockerd each and the lab's registry, the images are pushed there
// once with scripts/build-images.sh through `flotilla env`, and a second `up` runs hello/v1 as
// containers (pulled from that registry) behind HAProxy in a container, with etcd, the
// registrator, Prometheus with node_exporter, syslog and Swarm mode. Then, on that one cluster: requests through HAProxy reach instances on several nodes;
// Prometheus reports every exporter up; the hello containers' lines come out of `flotilla logs`;
// the registrator's catalog in etcd holds every instance and its dnsmasq answers
// hello-v1.service.consul, also from inside a hello container through its node's forwarder,
// from which instances on other nodes and rest.service.consul answer HTTP; the swarm's manager
// lists the three swarm nodes ready; Debian's docker CLI pointed by `flotilla env` lists the node's
// containers; a second `up` changes nothing; a container removed by hand comes back with the
// next `up`; scaling out and in under a bounded request loop fails no request; a route change
// reloads HAProxy; `down` leaves no dockerd, registry, namespace, bridge, veth, mount or file,
// and this machine's iptables rules as they were.
//
// The copy of configs/netns.toml differs only in the cluster's name and subnet (and so the
// registry's address), and keeps the registry's images in the build tree across runs.
#include "support/cleanup_report.hpp"
#include "support/cluster_checks.hpp"
#include "support/docker_lab.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <flotilla/support/command.hpp>
#include <flotilla/support/docker_client.hpp>
#include <flotilla/support/etcd_client.hpp>
#include <flotilla/support/http.hpp>
#include <flotilla/support/wait.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
namespace s = flotilla::support;
using nlohmann::json;
using flotilla::test::proc::ScratchDir;
using flotilla::test::proc::Shell;
using flotilla::test::proc::read_text;
using namespace std::chrono_literals;

/// "10.214.K": the cluster's subnet, one no other test process holds (its bridge and routes are
/// machine-wide), the same for every test of this process.
const std::string& net() {
  static const std::string subnet = flotilla::test::resources::netns_subnet();
  static const std::string prefix = subnet.substr(0, subnet.rfind('.'));
  return prefix;
}

Shell sh(const fs::path& dir, const std::string& script) { return flotilla::test::proc::run_flotilla_script(dir, script); }

/// configs/netns.toml on its own subnet and name; up to the first [[services]] when `nodes_only`.
std::string topology(bool nodes_only) {
  std::string text = read_text(fs::path(FLOTILLA_SOURCE_DIR) / "configs/netns.toml");
  text = std::regex_replace(text, std::regex(R"(name = "netns")"), R"(name = "e2e")");
  text = std::regex_replace(text, std::regex(R"(subnet = "10\.214\.0\.0/24")"), "subnet = \"" + net() + ".0/24\"");
  // The lab's registry on this subnet's bridge, its images cached in the build tree across runs.
  text = std::regex_replace(text, std::regex(R"(10\.214\.0\.1:5050/)"), net() + ".1:5050/");
  text = std::regex_replace(text, std::regex(R"(registry_port = 5050)"),
                            "registry_port = 5050\nregistry_cache = \"" FLOTILLA_BINARY_DIR "/e2e-registry-cache\"");
  const auto services = text.find("[[services]]");
  REQUIRE(services != std::string::npos);
  for (const char* addon : {"etcd", "registrator", "haproxy", "prometheus-cadvisor", "syslog", "swarm"})
    REQUIRE(text.find(std::string("plugin = \"") + addon + "\"") != std::string::npos);
  if (nodes_only) return text.substr(0, services);
  // hello/v2 as a Swarm service: the swarm addon deploys it, HAProxy routes /hello/v2 to its tasks.
  return text + "\n[[services]]\nname = \"hello/v2\"\nimage = \"" + net() +
         ".1:5050/flotilla-hello:flotilla\"\nreplicas = 2\nport = 8000\nmode = \"swarm\"\n";
}

/// The node's Engine API over TLS, from `flotilla env --output json`.
s::DockerEndpoint endpoint_of(const fs::path& dir, const std::string& node) {
  const Shell env = sh(dir, "$FLOTILLA env $TOPOLOGY " + node + " --output json");
  REQUIRE(env.code == 0);
  const json e = json::parse(env.out)["env"];
  const fs::path certs = e["DOCKER_CERT_PATH"].get<std::string>();
  s::DockerEndpoint ep{.node = node, .host = e["DOCKER_HOST"].get<std::string>(), .use_tls = true};
  ep.tls.ca_file = (certs / "ca.pem").string();
  ep.tls.cert_file = (certs / "cert.pem").string();
  ep.tls.key_file = (certs / "key.pem").string();
  return ep;
}

/// Pushes the images configs/netns.toml names to the lab's registry once, through infra's
/// dockerd, as the README says.
void push_images(const fs::path& dir) {
  const Shell images = sh(dir, "eval \"$($FLOTILLA env $TOPOLOGY infra)\"\n$SOURCE/scripts/build-images.sh --registry " + net() +
                               ".1:5050 --hello $BIN/flotilla-hello busybox haproxy prometheus node-exporter etcd dnsmasq flotilla-hello");
  INFO(images.out << images.err);
  REQUIRE(images.code == 0);
}

/// The registrator's catalog in etcd holds each hello instance, and the dnsmasq on infra answers
/// hello-v1.service.consul with the swarm nodes' addresses.
void check_catalog(const std::map<std::string, std::string>& at) {
  const s::EtcdClient etcd("http://" + at.at("infra") + ":2379");
  std::set<std::string> keys;
  for (const auto& kv : etcd.range_prefix("/flotilla/e2e/services/hello-v1/")) {
    keys.insert(kv.key);
    INFO(kv.key << " = " << kv.value);
    CHECK((kv.value.find(at.at("swarm-1")) != std::string::npos || kv.value.find(at.at("swarm-2")) != std::string::npos ||
           kv.value.find(at.at("swarm-3")) != std::string::npos));
  }
  std::set<std::string> expected;
  for (int i = 1; i <= 5; ++i) expected.insert("/flotilla/e2e/services/hello-v1/hello-v1-" + std::to_string(i));
  CHECK(keys == expected);

  const std::vector<std::string> swarm = {at.at("swarm-1"), at.at("swarm-2"), at.at("swarm-3")};
  std::vector<std::string> answer;
  const bool answered = s::wait_until(20s, 250ms, [&] {
    const auto r = s::run_command({"dig", "+short", "+time=1", "+tries=1", "@" + at.at("infra"), "-p", "8600", "hello-v1.service.consul", "A"}, 5s);
    answer.clear();
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) answer.push_back(line);
    std::sort(answer.begin(), answer.end());
    return answer == swarm;
  });
  INFO("dig answered: " << json(answer).dump());
  CHECK(answered);
}

/// Debian's docker CLI, pointed at swarm-1 by `eval $(flotilla env ...)`, lists exactly the
/// containers the Engine API lists there (helpers that place files included), hello instances
/// and addon containers among them.
void check_docker_ps(const fs::path& dir, s::DockerClient& swarm1) {
  const Shell ps = sh(dir, "eval \"$($FLOTILLA env $TOPOLOGY swarm-1)\"\n/usr/bin/docker ps -a --format '{{.Names}}'");
  INFO(ps.out << ps.err);
  REQUIRE(ps.code == 0);
  std::set<std::string> listed, running;
  std::istringstream in(ps.out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) listed.insert(line);
  for (const auto& c : swarm1.list_containers({"io.flotilla.cluster=e2e"})) running.insert(c.name);
  CHECK(listed == running);
  CHECK(listed.contains("service-hello-v1-1"));
  CHECK(listed.contains("addon-haproxy-haproxy"));
  CHECK(listed.contains("addon-prometheus-cadvisor-node-exporter"));
}

/// Swarm mode: the manager swarm-1 lists the three swarm nodes, every one ready.
void check_swarm(s::DockerClient& swarm1) {
  const auto r = swarm1.call("GET", "/nodes");
  INFO(r.body);
  REQUIRE(r.status == 200);
  const json nodes = json::parse(r.body);
  CHECK(nodes.size() == 3);
  int managers = 0;
  for (const auto& n : nodes) {
    CHECK(n["Status"]["State"] == "ready");
    managers += n["Spec"]["Role"] == "manager";
  }
  CHECK(managers == 1);
}

/// Names inside containers, as in the original: from a hello container on swarm-2 (Debian's
/// docker CLI, `docker exec` through `flotilla env`), its resolver is swarm-2's Docker bridge
/// gateway, where the registrator's forwarder sends *.service.consul to the cluster's dnsmasq
/// on infra; hello-v1.service.consul resolves to the swarm nodes (A) and the instances' ports
/// (SRV); an instance on another node answers at its catalog address and port, and
/// rest.service.consul:8080/hello/v1 (HAProxy on swarm-1) answers by its name.
void check_container_dns(const fs::path& dir, s::DockerClient& swarm2, const std::map<std::string, std::string>& at) {
  const auto mine = swarm2.list_containers({"io.flotilla.component=service:hello/v1"});
  REQUIRE_FALSE(mine.empty());
  const std::string container = mine.front().name;
  const auto in_container = [&](const std::string& command) {
    return sh(dir, "eval \"$($FLOTILLA env $TOPOLOGY swarm-2)\"\n/usr/bin/docker exec " + container + " " + command);
  };
  // An HTTP GET from inside the container with busybox's nc (the image's busybox wget crashes in
  // its static resolver setup; nc resolves through the same resolv.conf); the response's body.
  const auto get_in_container = [&](const std::string& host, int port, const std::string& path) {
    const Shell r = in_container("/bin/sh -c 'printf \"GET " + path + " HTTP/1.0\\r\\n\\r\\n\" | /bin/busybox nc -w 5 " + host + " " +
                                 std::to_string(port) + "'");
    INFO("GET http://" << host << ":" << port << path << " in " << container << ": " << r.out << r.err);
    REQUIRE(r.code == 0);
    const auto body = r.out.find("\r\n\r\n");
    REQUIRE(body != std::string::npos);
    CHECK((r.out.starts_with("HTTP/1.0 200") || r.out.starts_with("HTTP/1.1 200")));
    return json::parse(r.out.substr(body + 4));
  };
  const Shell resolv = in_container("cat /etc/resolv.conf");
  INFO("resolv.conf of " << container << ": " << resolv.out << resolv.err);
  std::smatch ns;
  REQUIRE(std::regex_search(resolv.out, ns, std::regex(R"(nameserver (\d+\.\d+\.\d+\.\d+))")));
  const std::string gateway = ns[1];
  CHECK_FALSE(gateway.starts_with(net() + "."));  // the container's own node, on its Docker bridge

  // The forwarder starts with the registrator's apply; names answer as soon as it does.
  Shell a;
  const bool resolved = s::wait_until(20s, 250ms, [&] {
    a = in_container("/bin/busybox nslookup -type=a hello-v1.service.consul");
    return a.out.find(at.at("swarm-1")) != std::string::npos && a.out.find(at.at("swarm-2")) != std::string::npos &&
           a.out.find(at.at("swarm-3")) != std::string::npos;
  });
  INFO("nslookup in " << container << ": " << a.out << a.err);
  CHECK(resolved);
  CHECK_THAT(a.out, Catch::Contains(gateway));  // asked of the node's forwarder
  const Shell srv = in_container("/bin/busybox nslookup -type=srv hello-v1.service.consul");
  INFO("SRV: " << srv.out << srv.err);
  CHECK_THAT(srv.out, Catch::Contains(" 8000 "));

  // An instance on another node, at the address and port the catalog gives it.
  const s::EtcdClient etcd("http://" + at.at("infra") + ":2379");
  json other;
  for (const auto& kv : etcd.range_prefix("/flotilla/e2e/services/hello-v1/"))
    if (const json entry = json::parse(kv.value); entry.value("node", "") != "swarm-2") other = entry;
  REQUIRE(other.is_object());
  CHECK(get_in_container(other.value("address", ""), other.value("port", 0), "/hello/v1").value("node", "") == other.value("node", ""));
  CHECK_FALSE(get_in_container("rest.service.consul", 8080, "/hello/v1").value("node", "").empty());
}

}  // namespace

TEST_CASE("configs/netns.toml: hello/v1 in containers on several netns nodes behind HAProxy with all six addons, checked "
          "end to end, kept and scaled without failed requests, and down leaves nothing",
          "[engine][cli][docker][integration]") {
  if (const std::string why = flotilla::test::DockerLab::unavailable_reason(); !why.empty()) FLOTILLA_SKIP(why);
  if (!fs::exists("/usr/bin/docker")) FLOTILLA_SKIP("Debian's docker CLI (/usr/bin/docker, package docker.io) is not installed");
  for (const char* program : {"haproxy", "prometheus", "prometheus-node-exporter", "etcd", "dnsmasq", "dig"})
    if (!s::find_executable(program)) FLOTILLA_SKIP(std::string(program) + " is not installed; scripts/install-deps.sh installs it");
  ScratchDir dir("flt-e2e");  // short: containerd's socket paths under it must fit 107 bytes
  const auto objects = [] {
    std::set<std::string> out;
    std::istringstream in(flotilla::test::proc::shell_output("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1; ip netns list | cut -d' ' -f1"));
    for (std::string line; std::getline(in, line);) out.insert(line);
    return out;
  };
  const std::set<std::string> before = objects();
  const std::string host_rules = flotilla::test::host_iptables_rules();
  const flotilla::test::proc::DownOnExit down(dir.path());

  std::ofstream(dir.path() / "topology.toml") << topology(true);
  const Shell nodes = sh(dir.path(), "$FLOTILLA up $TOPOLOGY -q");
  INFO(nodes.out << nodes.err);
  REQUIRE(nodes.code == 0);
  // What the driver made: the bridge, the veths and the namespaces. Each name carries the
  // cluster's tag, and the bridge holding the subnet's gateway is flt<tag>; objects of other
  // clusters and labs made meanwhile (tests running at the same time) are not ours to check.
  std::string bridge = flotilla::test::proc::shell_output("ip -o -4 addr show to " + net() + ".1/32 | awk '{print $2}'");
  bridge.erase(bridge.find_last_not_of(" \n") + 1);
  INFO("the bridge on " << net() << ".1: " << bridge);
  REQUIRE(bridge.starts_with("flt"));
  const std::string tag = bridge.substr(3);
  REQUIRE(tag.size() >= 8);
  std::set<std::string> made;
  for (const auto& name : objects())
    if (!before.contains(name) && name.find(tag) != std::string::npos) made.insert(name);
  CHECK(made.size() >= 1 + 4 + 4);
  push_images(dir.path());
  const flotilla::test::cluster::RunScript run = [&](const std::string& script) { return sh(dir.path(), script); };
  const auto at = flotilla::test::cluster::addresses(run);

  std::ofstream(dir.path() / "topology.toml") << topology(false);
  const Shell up = sh(dir.path(), "$FLOTILLA up $TOPOLOGY");
  INFO(up.out << up.err);
  REQUIRE(up.code == 0);
  std::smatch m;
  const std::string printed = up.out + up.err;
  REQUIRE(std::regex_search(printed, m, std::regex("http://" + std::regex_replace(net(), std::regex(R"(\.)"), R"(\.)") + R"(\.\d+:8080/hello/v1)")));
  const std::string url = m.str();

  s::HttpClient http;
  std::set<std::string> serving_nodes;
  for (int i = 0; i < 30; ++i) {
    const auto r = http.get(url);
    serving_nodes.insert(json::parse(r.body).value("node", ""));
  }
  INFO("nodes that answered: " << json(serving_nodes).dump());
  CHECK(serving_nodes.size() > 1);
  CHECK_FALSE(serving_nodes.contains(""));

  // hello/v2, a mode = "swarm" service: its two Swarm tasks answer through HAProxy, each naming
  // itself with the slot Swarm gave it.
  std::set<std::string> swarm_instances;
  const std::string url_v2 = std::regex_replace(url, std::regex("/hello/v1$"), "/hello/v2");
  for (int i = 0; i < 20; ++i) swarm_instances.insert(json::parse(http.get(url_v2).body).value("instance", ""));
  INFO("hello/v2 instances that answered: " << json(swarm_instances).dump());
  CHECK(swarm_instances == std::set<std::string>{"hello/v2#1", "hello/v2#2"});

  flotilla::test::cluster::check_prometheus(at);
  check_catalog(at);
  flotilla::test::cluster::check_logs(run);
  s::DockerClient swarm2(endpoint_of(dir.path(), "swarm-2"));
  s::DockerClient swarm1(endpoint_of(dir.path(), "swarm-1"));
  check_docker_ps(dir.path(), swarm1);
  check_swarm(swarm1);
  check_container_dns(dir.path(), swarm2, at);

  const Shell again = sh(dir.path(), "$FLOTILLA up $TOPOLOGY");
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  CHECK_THAT(again.out, Catch::Contains("No changes"));

  // A container removed by hand comes back with the next `up`.
  const auto mine = swarm2.list_containers({"io.flotilla.component=service:hello/v1"});
  REQUIRE_FALSE(mine.empty());
  const std::string removed = mine.front().name;
  swarm2.remove_container(removed);
  const Shell heal = sh(dir.path(), "$FLOTILLA up $TOPOLOGY -q");
  INFO(heal.out << heal.err);
  REQUIRE(heal.code == 0);
  const auto back = swarm2.inspect_container(removed);
  REQUIRE(back);
  CHECK((*back)["State"].value("Running", false));

  // Scaling out and in under a bounded request loop: no request fails.
  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_failure;
  const auto start_load = [&] {
    done = false;
    ok = 0;
    failed = 0;
    return std::thread([&] {
      s::HttpClient client;
      for (int i = 0; i < 20000 && !done; ++i) {
        try {
          (void)client.get(url);
          ++ok;
        } catch (const s::HttpError& e) {
          if (failed++ == 0) first_failure = e.what();
        }
      }
    });
  };
  std::thread load = start_load();
  const Shell out = sh(dir.path(), "$FLOTILLA scale $TOPOLOGY hello/v1=8 -q");
  const Shell in = sh(dir.path(), "$FLOTILLA scale $TOPOLOGY hello/v1=3 -q");
  done = true;
  load.join();
  INFO(out.out << out.err << in.out << in.err);
  CHECK(out.code == 0);
  CHECK(in.code == 0);
  INFO("first failure: " << first_failure);
  CHECK(ok > 0);
  CHECK(failed == 0);
  CHECK(swarm2.list_containers({"io.flotilla.component=service:hello/v1"}).size() <= 2);

  // A route change reloads the HAProxy in its container (SIGUSR2 through the runtime), which keeps serving.
  std::string text = topology(false);
  text.replace(text.find("image = \"" + net() + ".1:5050/haproxy:flotilla\""), 0, "strip_prefix = false\n");
  std::ofstream(dir.path() / "topology.toml") << text;
  const Shell reload = sh(dir.path(), "$FLOTILLA up $TOPOLOGY -v");
  INFO(reload.out << reload.err);
  REQUIRE(reload.code == 0);
  CHECK_THAT(reload.out + reload.err, Catch::Contains("reloaded, worker"));
  for (int i = 0; i < 10; ++i) CHECK(http.get(url).status == 200);

  // A new version of hello/v1 (its env) rolls over its containers wave by wave under a bounded
  // request loop: no request fails, and every container ends up with the new env.
  text.replace(text.find("name = \"hello/v1\"\n"), 0, "env = { RELEASE = \"v2\" }\n");
  std::ofstream(dir.path() / "topology.toml") << text;
  std::thread rolling_load = start_load();
  const Shell roll = sh(dir.path(), "$FLOTILLA up $TOPOLOGY");
  done = true;
  rolling_load.join();
  INFO(roll.out << roll.err << "\nfirst failure: " << first_failure);
  REQUIRE(roll.code == 0);
  CHECK_THAT(roll.err, Catch::Contains("rolling, wave 3 of 3"));
  CHECK(ok > 0);
  CHECK(failed == 0);
  for (auto* docker : {&swarm1, &swarm2})
    for (const auto& c : docker->list_containers({"io.flotilla.component=service:hello/v1"})) {
      const auto inspected = docker->inspect_container(c.name);
      REQUIRE(inspected);
      const json env = (*inspected)["Config"].value("Env", json::array());
      CHECK(std::find(env.begin(), env.end(), "RELEASE=v2") != env.end());
    }

  const std::string state_dir = (dir.path() / ".flotilla" / "e2e").string();
  const Shell gone = sh(dir.path(), "$FLOTILLA down $TOPOLOGY -q");
  INFO(gone.out << gone.err);
  REQUIRE(gone.code == 0);
  for (const auto& name : objects()) CHECK_FALSE(made.contains(name));
  // The containers' NAT rules were the namespaces' own: this machine's firewall is as it was.
  CHECK(flotilla::test::host_iptables_rules() == host_rules);
  // No dockerd, containerd, container shim or registry of the cluster runs, nothing stays mounted.
  CHECK(flotilla::test::proc::shell_output("ps -eo args | grep -F '" + state_dir + "' | grep -v grep || true").empty());
  CHECK(flotilla::test::proc::shell_output("grep -F '" + dir.path().string() + "' /proc/self/mounts || true").empty());
  // No node directory, certificate or state file: the state directory holds nothing.
  std::vector<std::string> left;
  if (fs::exists(state_dir))
    for (const auto& e : fs::recursive_directory_iterator(state_dir)) left.push_back(e.path().string());
  INFO("left in the state directory: " << json(left).dump());
  CHECK(left.empty());
  CHECK_FALSE(fs::exists(fs::path(state_dir) / "netns-tls"));
  CHECK_FALSE(fs::exists(fs::path(state_dir) / "netns-registry"));
}
