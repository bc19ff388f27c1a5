// The registrator on Docker nodes of the lab: etcd in a container on infra (the etcd addon),
// service instances at the swarm nodes' addresses, keepalive containers on those nodes that
// keep their leases alive across nodes, and dnsmasq in a container on infra answering for the
// catalog's names, asked from the host with dig.
#include "flotilla/support/command.hpp"
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/etcd_client.hpp"
#include "flotilla/support/wait.hpp"
#include "support/discovery_servers.hpp"
#include "support/docker_addon_host.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <thread>

namespace s = flotilla::support;
using flotilla::test::DockerAddonHost;
using flotilla::test::call_ok;
using flotilla::test::DockerLab;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> dig(const std::string& server, int port, const std::string& name) {
  const auto r = s::run_command({"dig", "+short", "+time=1", "+tries=1", "@" + server, "-p", std::to_string(port), name, "A"}, 5s);
  std::vector<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("registrator on Docker nodes: keepalive containers hold the leases, dnsmasq in a container on infra serves the names",
          "[registrator][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  if (!s::find_executable("etcd") || !s::find_executable("dnsmasq") || !s::find_executable("dig"))
    FLOTILLA_SKIP("etcd, dnsmasq or dig is not installed; scripts/install-deps.sh installs them");
  REQUIRE(flotilla::test::build_lab_images(*lab, {"etcd"}).empty());
  REQUIRE(flotilla::test::build_lab_images(*lab, {"dnsmasq"}, 1).empty());

  json nodes = DockerAddonHost::lab_nodes(*lab, {"infra", "swarm", "swarm"}, "lab");
  for (auto& n : nodes) n["runtime_config"]["files_image"] = DockerLab::kImage;
  DockerAddonHost etcd_host("addon_etcd", "etcd", nodes);
  const std::string eout =
      call_ok(etcd_host, "apply", etcd_host.request({{"image", "etcd:flotilla"}}, {"infra"}, "/tmp/flotilla-reg-docker-etcd"));
  const json etcd_result = json::parse(eout);

  DockerAddonHost host("addon_registrator", "registrator", nodes);
  json req = host.request({{"ttl", 4}, {"dns_image", "dnsmasq:flotilla"}, {"etcdctl_image", "etcd:flotilla"}}, {"infra"},
                          "/tmp/flotilla-reg-docker");
  req["addons"]["etcd"] = {{"plugin", "etcd"}, {"provides", {"discovery"}}, {"endpoints", etcd_result["endpoints"]}, {"outputs", etcd_result["outputs"]}};
  json instances = json::array();
  for (int i = 1; i <= 2; ++i)
    instances.push_back({{"id", "hello/v1#" + std::to_string(i)}, {"instance", i}, {"node", nodes[i]["name"]},
                         {"address", nodes[i]["address"]}, {"port", 8001}, {"state", "running"}});
  req["services"] = json::array({{{"name", "hello/v1"}, {"dns", "hello-v1"}, {"port", 8001}, {"health", "/health"}, {"instances", instances}}});

  auto [vst, vout] = host.call("validate", req);
  REQUIRE(vst == FLT_OK);
  CHECK(json::parse(vout)["errors"].empty());
  call_ok(host, "apply", req);

  const std::string infra = lab->nodes()[0].address;
  const std::vector<std::string> expected = {lab->nodes()[1].address, lab->nodes()[2].address};
  CHECK(s::wait_until(10s, 200ms, [&] { return dig(infra, 8600, "hello-v1.service.consul") == expected; }));
  CHECK(dig(infra, 8600, "swarm-1.node.consul") == std::vector<std::string>{lab->nodes()[1].address});

  // The keepalive containers on the swarm nodes reach etcd on infra and renew their nodes'
  // leases (each seen renewed twice), and the entries stay.
  const s::EtcdClient etcd(etcd_result["outputs"]["etcd_endpoints"].get<std::string>());
  const auto renewals = flotilla::test::discovery::wait_for_lease_renewals(etcd, 2, 20s);
  INFO(renewals.renewed << " of " << renewals.leases << " leases renewed twice");
  CHECK(renewals.leases >= 2);
  CHECK(renewals.all());
  CHECK(etcd.range_prefix("/flotilla/lab/services/hello-v1/").size() == 2);
  s::DockerClient swarm1({.node = lab->nodes()[1].name, .host = lab->nodes()[1].host});
  const auto keepalive = swarm1.inspect_container(host.workload_name("keepalive"));
  REQUIRE(keepalive.has_value());
  CHECK((*keepalive)["State"]["Running"] == true);

  // One instance goes: the next apply rewrites the hosts file, and dnsmasq answers without it.
  req["services"][0]["instances"].erase(1);
  call_ok(host, "apply", req);
  CHECK(s::wait_until(10s, 200ms, [&] { return dig(infra, 8600, "hello-v1.service.consul") == std::vector<std::string>{expected[0]}; }));

  call_ok(host, "destroy", req);
  CHECK(etcd.range_prefix("/flotilla/lab/services/").empty());
  s::DockerClient infra_docker({.node = lab->nodes()[0].name, .host = lab->nodes()[0].host});
  CHECK_FALSE(infra_docker.inspect_container(host.workload_name("dns")).has_value());
  CHECK_FALSE(swarm1.inspect_container(host.workload_name("keepalive")).has_value());
  (void)etcd_host.call("destroy", etcd_host.request({{"image", "etcd:flotilla"}}, {"infra"}, "/tmp/flotilla-reg-docker-etcd"));
}
