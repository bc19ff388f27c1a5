// Service discovery through the real CLI: `flotilla up/scale/down` on a temporary local
// topology (a reserved loopback /24 and its own state directory, always brought down by a guard),
// with real etcd, etcdctl keepalives, dnsmasq and flotilla-hello instances.
#include "addon_consul/consul_agent.hpp"
#include "support/skip.hpp"
#include "addon_registrator/catalog.hpp"
#include "addon_registrator/dns.hpp"
#include "flotilla/support/etcd_client.hpp"
#include "flotilla/support/process.hpp"
#include "support/discovery_servers.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace d = flotilla::discovery;
namespace support = flotilla::support;
using namespace flotilla::test::discovery;
using flotilla::test::resources::process_subnet;
using flotilla::test::resources::Subnet;
using nlohmann::json;

namespace {

/// A cluster made by the CLI from `topology`; `down` runs when the guard goes, whatever happened.
class CliCluster {
 public:
  explicit CliCluster(const std::string& topology) : dir_("flotilla-disc-it") {
    file_ = dir_.path() / "topology.toml";
    std::ofstream(file_) << topology;
  }
  ~CliCluster() {
    if (!std::filesystem::exists(dir_.path() / "state" / "state.json")) return;  // nothing was made
    const auto r = run({"down"});
    if (r.status != 0) std::fprintf(stderr, "WARN: flotilla down failed in cleanup:\n%s\n", r.output.c_str());
  }
  CliCluster(const CliCluster&) = delete;
  CliCluster& operator=(const CliCluster&) = delete;

  CommandResult run(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla", args.front(), file_.string()};
    argv.insert(argv.end(), args.begin() + 1, args.end());
    argv.push_back("--state-dir=" + (dir_.path() / "state").string());
    return run_command(argv, std::chrono::seconds(180));
  }

  [[nodiscard]] json state() const {
    std::istringstream in(read_file(dir_.path() / "state" / "state.json"));
    std::string first;
    std::getline(in, first);  // the format line
    return json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  }

  [[nodiscard]] pid_t component_pid(const json& st, const std::string& addon, const std::string& key) const {
    return st["addons"][addon]["components"].at(key)["record"].value("pid", 0);
  }

 private:
  TempDir dir_;
  std::filesystem::path file_;
};

std::string topology(const std::string& name, const Subnet& net, int swarm_nodes, int replicas, const std::string& addons) {
  const std::string cidr = net.cidr();
  return "[cluster]\nname = \"" + name + "\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" + cidr +
         "\"\n\n"
         "[[nodes]]\nname = \"infra\"\ncount = 1\nroles = [\"infra\"]\n\n"
         "[[nodes]]\nname = \"swarm\"\ncount = " + std::to_string(swarm_nodes) + "\nroles = [\"swarm\"]\n\n"
         "[[services]]\nname = \"hello/v1\"\ncommand = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]\n"
         "replicas = " + std::to_string(replicas) + "\nport = 8000\nhealth = \"/health\"\nroles = [\"swarm\"]\n\n" + addons;
}

/// The running instances as the engine records them: id -> (address, port, node).
struct Instance {
  std::string address;
  int port = 0;
  std::string node;
};
std::map<std::string, Instance> recorded_instances(const json& st) {
  std::map<std::string, Instance> out;
  for (const auto& [id, rec] : st["instances"].items()) {
    const std::string node = rec.value("node", "");
    out[d::key_safe_id(id)] = {st["nodes"][node].value("address", ""), rec.value("port", 0), node};
  }
  return out;
}

std::vector<std::string> dig(const std::string& server, const std::string& name, const std::string& type = "A") {
  std::istringstream in(run_output({"dig", "+short", "+time=1", "+tries=1", "@" + server, "-p", "8600", name, type}));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> addresses_of(const std::map<std::string, Instance>& instances) {
  std::set<std::string> s;
  for (const auto& [id, i] : instances) s.insert(i.address);
  return {s.begin(), s.end()};
}

/// True when the etcd catalog holds exactly the recorded instances, each at its address and port.
bool catalog_matches(const support::EtcdClient& etcd, const std::string& prefix, const std::map<std::string, Instance>& want,
                     std::string& why) {
  const auto kvs = etcd.range_prefix(prefix);
  std::map<std::string, Instance> have;
  for (const auto& kv : kvs) {
    const json v = json::parse(kv.value, nullptr, false);
    if (!v.is_object()) {
      why = "unparsable entry " + kv.key;
      return false;
    }
    have[v.value("id", "")] = {v.value("address", ""), v.value("port", 0), v.value("node", "")};
    if (kv.key != prefix + "hello-v1/" + v.value("id", "")) {
      why = "entry at unexpected key " + kv.key;
      return false;
    }
  }
  why = std::to_string(have.size()) + " entries, want " + std::to_string(want.size());
  if (have.size() != want.size()) return false;
  for (const auto& [id, i] : want) {
    const auto it = have.find(id);
    if (it == have.end() || it->second.address != i.address || it->second.port != i.port || it->second.node != i.node) {
      why = "entry " + id + " missing or wrong";
      return false;
    }
  }
  return true;
}

/// CHECKs that the catalog under `prefix` lists exactly `want`, saying what differs if not.
void check_catalog(const support::EtcdClient& etcd, const std::string& prefix, const std::map<std::string, Instance>& want) {
  std::string why;
  const bool matches = catalog_matches(etcd, prefix, want, why);
  INFO(why);
  CHECK(matches);
}

}  // namespace

TEST_CASE("discovery with etcd via the CLI: catalog and DNS follow up, scale, stray entries, dead nodes and down",
          "[integration][discovery]") {
  const Subnet& net = process_subnet("discovery");
  CliCluster cluster(topology("disc-it-a", net, 2, 3, "[[addons]]\nplugin = \"etcd\"\n\n[[addons]]\nplugin = \"registrator\"\n[addons.options]\nttl = 3\n"));
  auto r = cluster.run({"up"});
  INFO(r.output);
  REQUIRE(r.status == 0);

  json st = cluster.state();
  const std::string endpoint = st["addons"]["etcd"]["endpoints"].value("etcd", "");
  REQUIRE(endpoint == "http://" + net.address(1) + ":2379");
  CHECK(st["addons"]["registrator"]["endpoints"].value("dns", "") == "dns://" + net.address(1) + ":8600");
  const support::EtcdClient etcd(endpoint);
  const std::string prefix = "/flotilla/disc-it-a/services/";
  auto instances = recorded_instances(st);
  REQUIRE(instances.size() == 3);
  std::string why;
  check_catalog(etcd, prefix, instances);

  // Every instance address by DNS, one SRV record per instance.
  CHECK(dig(net.address(1), "hello-v1.service.consul") == addresses_of(instances));
  CHECK(dig(net.address(1), "hello-v1.service.consul", "SRV").size() == 3);
  CHECK(dig(net.address(1), "swarm-2.node.consul") == std::vector<std::string>{net.address(3)});

  // A stray manual entry is removed by a plain `up` of the unchanged topology (a resync,
  // reported as no change).
  etcd.put(prefix + "hello-v1/manual", json{{"address", net.address(99)}, {"port", 1}}.dump());
  // `flotilla ip` answers from the live catalog, so it sees the stray entry too.
  r = cluster.run({"ip", "hello/v1"});
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains(net.address(99)));
  r = cluster.run({"up"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("No changes"));
  CHECK_FALSE(etcd.get(prefix + "hello-v1/manual").has_value());
  r = cluster.run({"ip", "hello/v1"});
  CHECK(r.status == 0);
  CHECK_THAT(r.output, !Catch::Contains(net.address(99)));
  CHECK_THAT(r.output, Catch::Contains(net.address(2)));

  // Another stray, then a scale-in: the apply removes both the stray and instance 3.
  etcd.put(prefix + "hello-v1/manual", json{{"address", net.address(99)}, {"port", 1}}.dump());
  r = cluster.run({"scale", "hello/v1=2"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  st = cluster.state();
  instances = recorded_instances(st);
  REQUIRE(instances.size() == 2);
  check_catalog(etcd, prefix, instances);
  CHECK_FALSE(etcd.get(prefix + "hello-v1/manual").has_value());
  CHECK(dig(net.address(1), "hello-v1.service.consul", "SRV").size() == 2);

  // Kill everything of ours on swarm-2 (its keepalive and its instance): its entries expire
  // with its lease, and leave DNS, with no apply in between.
  const pid_t keepalive = cluster.component_pid(st, "registrator", "swarm-2/keepalive");
  REQUIRE(keepalive > 0);
  std::vector<pid_t> killed = {keepalive};
  for (const auto& [id, rec] : st["instances"].items())
    if (rec.value("node", "") == "swarm-2") killed.push_back(rec["record"].value("pid", 0));
  REQUIRE(killed.size() == 2);
  for (pid_t p : killed) REQUIRE(::kill(p, SIGKILL) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto survivors = instances;
  for (auto it = survivors.begin(); it != survivors.end();) it = it->second.node == "swarm-2" ? survivors.erase(it) : std::next(it);
  {
    const bool matches = wait_for([&] { return catalog_matches(etcd, prefix, survivors, why); }, std::chrono::seconds(8));
    INFO(why);
    CHECK(matches);
  }
  const double expired_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(expired_s <= 3.0 + 2.0);  // TTL plus etcd's expiry check
  CHECK(wait_for([&] { return dig(net.address(1), "hello-v1.service.consul") == addresses_of(survivors); }, std::chrono::seconds(4)));
  std::printf("discovery: swarm-2 entries left etcd %.2f s after its keepalive died (ttl 3 s)\n", expired_s);

  // The next `up` repairs: instance and keepalive restart, the entries come back.
  r = cluster.run({"up"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  st = cluster.state();
  check_catalog(etcd, prefix, recorded_instances(st));
  CHECK(dig(net.address(1), "hello-v1.service.consul") == addresses_of(recorded_instances(st)));

  // `down` stops etcd, dnsmasq and the keepalives.
  const std::vector<pid_t> parts = {cluster.component_pid(st, "etcd", "infra/etcd"), cluster.component_pid(st, "registrator", "infra/dns"),
                                    cluster.component_pid(st, "registrator", "swarm-1/keepalive")};
  r = cluster.run({"down"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (pid_t p : parts) CHECK(wait_for([&] { return !process_alive(p); }, std::chrono::seconds(5)));
  CHECK(d::dns_probe(net.address(1), 8600, "hello-v1.service.consul", std::chrono::milliseconds(300)) == -1);
}

TEST_CASE("a 3-member etcd via the CLI keeps the catalog served and renewed with its leader killed", "[integration][discovery]") {
  const Subnet& net = process_subnet("discovery");
  // ttl 10: a leader change costs about two election timeouts plus the keepalive's reconnect;
  // with ttl 3 a lease was lost in 1 of 6 leader kills, with ttl 10 in none of 6.
  CliCluster cluster(topology("disc-it-b", net, 3, 2,
                              "[[addons]]\nplugin = \"etcd\"\nroles = [\"swarm\"]\n[addons.options]\nmembers = 3\n\n"
                              "[[addons]]\nplugin = \"registrator\"\n[addons.options]\nttl = 10\n"));
  auto r = cluster.run({"up"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  json st = cluster.state();
  const std::string endpoints = st["addons"]["etcd"]["outputs"].value("etcd_endpoints", "");
  CHECK(endpoints == "http://" + net.address(2) + ":2379,http://" + net.address(3) + ":2379,http://" + net.address(4) + ":2379");
  const support::EtcdClient etcd(endpoints, {std::chrono::milliseconds(500), std::chrono::milliseconds(2000)});
  const std::string prefix = "/flotilla/disc-it-b/services/";
  const auto instances = recorded_instances(st);
  check_catalog(etcd, prefix, instances);

  // The worst member to lose: the leader, which holds every lease's expiry.
  std::string leader_node;
  for (const std::string node : {"swarm-1", "swarm-2", "swarm-3"}) {
    const std::string url = "http://" + st["nodes"][node].value("address", "") + ":2379";
    const json status = support::EtcdClient(url).call("/v3/maintenance/status", json::object());
    if (status.value("leader", "") == status["header"].value("member_id", "-")) leader_node = node;
  }
  REQUIRE_FALSE(leader_node.empty());
  const pid_t leader = cluster.component_pid(st, "etcd", leader_node + "/etcd");
  REQUIRE(::kill(leader, SIGKILL) == 0);
  REQUIRE(wait_for([&] { return !process_alive(leader); }, std::chrono::seconds(5)));

  // The keepalives renew through the surviving members: every lease's remaining TTL goes back
  // up after the kill. Twice, because the new leader extends every lease once when elected; a
  // lease nobody keeps alive would then count down and expire.
  const auto renewals = wait_for_lease_renewals(etcd, 2, std::chrono::seconds(30));
  INFO(renewals.renewed << " of " << renewals.leases << " leases renewed twice after the leader was killed");
  CHECK(renewals.leases >= static_cast<int>(instances.size()));
  CHECK(renewals.all());
  check_catalog(etcd, prefix, instances);
  etcd.put("/flotilla/disc-it-b/probe", "written with the leader down");
  CHECK(etcd.get("/flotilla/disc-it-b/probe")->value == "written with the leader down");
  CHECK(dig(net.address(1), "hello-v1.service.consul") == addresses_of(instances));
}

TEST_CASE("etcd with more members than placed nodes is refused before anything runs", "[integration][discovery]") {
  const Subnet& net = process_subnet("discovery");
  CliCluster cluster(topology("disc-it-c", net, 1, 1, "[[addons]]\nplugin = \"etcd\"\n[addons.options]\nmembers = 3\n"));
  const auto r = cluster.run({"up"});
  CHECK(r.status == 3);
  CHECK_THAT(r.output, Catch::Contains("members = 3 needs 3 nodes, but the placement gives 1 (infra)"));
}

TEST_CASE("the ingress is resolvable as rest.service.consul and serves the service through it", "[integration][discovery]") {
  const Subnet& net = process_subnet("discovery");
  CliCluster cluster(topology("disc-it-d", net, 2, 2,
                              "[[addons]]\nplugin = \"etcd\"\n\n[[addons]]\nplugin = \"haproxy\"\n\n[[addons]]\nplugin = \"registrator\"\n"));
  auto r = cluster.run({"up"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  const json st = cluster.state();
  const std::string rest = st["addons"]["haproxy"]["endpoints"].value("rest", "");
  REQUIRE_FALSE(rest.empty());
  const auto addresses = dig(net.address(1), "rest.service.consul");
  REQUIRE(addresses.size() == 1);
  CHECK(rest == "http://" + addresses[0] + ":8080");
  CHECK(dig(net.address(1), "rest.service.consul", "SRV").size() == 1);
  const std::string body = run_output({"curl", "-s", "-m", "3", "http://" + addresses[0] + ":8080/hello/v1"});
  CHECK_THAT(body, Catch::Contains("\"service\":\"hello/v1\""));
}

TEST_CASE("the consul addon without a consul binary is refused at validate with what to do", "[integration][discovery]") {
  const Subnet& net = process_subnet("discovery");
  if (flotilla::support::find_executable("consul", {.sbin = false})) {
    FLOTILLA_SKIP("a consul binary is on PATH, so the addon validates");
  }
  CliCluster cluster(topology("disc-it-e", net, 1, 1, "[[addons]]\nplugin = \"consul\"\n\n[[addons]]\nplugin = \"registrator\"\n"));
  const auto r = cluster.run({"validate"});
  CHECK(r.status == 3);
  CHECK_THAT(r.output, Catch::Contains("consul not found on PATH: Consul is not packaged in Debian; install it from HashiCorp or use "
                                       "the etcd addon (plugin = \"etcd\")"));
}
