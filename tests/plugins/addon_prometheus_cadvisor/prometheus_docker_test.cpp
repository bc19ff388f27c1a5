// The prometheus-cadvisor addon on Docker nodes of the lab: a node_exporter container on each
// of three nodes and a Prometheus container on infra, whose configuration and file_sd files
// come through the docker runtime's put_file. Prometheus, asked from the host over the bridge,
// reports every exporter up; a second apply changes no container; destroy removes them all. A
// mixed cluster (infra on the process runtime at the lab bridge's address, the swarm nodes on
// Docker) gets processes on infra and containers elsewhere, all scraped by one Prometheus.
#include "flotilla/support/docker_client.hpp"
#include "support/docker_addon_host.hpp"
#include "support/prometheus_fixture.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

namespace s = flotilla::support;
namespace fx = flotilla::test::prom;
using flotilla::test::DockerAddonHost;
using flotilla::test::call_ok;
using flotilla::test::DockerLab;
using nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("prometheus-cadvisor on Docker nodes: exporter containers on every node, Prometheus in a container sees them all up",
          "[prometheus-cadvisor][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  if (!s::find_executable("prometheus") || !s::find_executable("prometheus-node-exporter"))
    FLOTILLA_SKIP("prometheus or prometheus-node-exporter is not installed; scripts/install-deps.sh installs them");
  REQUIRE(flotilla::test::build_lab_images(*lab, {"node-exporter"}).empty());
  REQUIRE(flotilla::test::build_lab_images(*lab, {"prometheus"}, 1).empty());

  json nodes = DockerAddonHost::lab_nodes(*lab, {"infra", "swarm", "swarm"}, "lab");
  for (auto& n : nodes) n["runtime_config"]["files_image"] = DockerLab::kImage;
  DockerAddonHost host("addon_prometheus_cadvisor", "prometheus-cadvisor", nodes);
  const json config = {{"prometheus_image", "prometheus:flotilla"},
                       {"node_exporter_image", "node-exporter:flotilla"},
                       {"scrape_interval", "2s"},
                       {"scrape_services", false}};
  const json req = host.request(config, {"infra"}, "/tmp/flotilla-prom-docker-test");

  auto [vst, vout] = host.call("validate", req);
  REQUIRE(vst == FLT_OK);
  CHECK(json::parse(vout)["errors"].empty());

  const std::string out = call_ok(host, "apply", req);
  const std::string base_url = "http://" + lab->nodes()[0].address + ":9090";
  CHECK(json::parse(out)["endpoints"]["prometheus"] == base_url);

  std::vector<std::string> exporters;
  for (const auto& n : lab->nodes()) exporters.push_back(n.address + ":9100");
  const std::map<std::string, std::vector<std::string>> expected = {{"node", exporters}, {"prometheus", {lab->nodes()[0].address + ":9090"}}};
  const bool all_up = fx::wait_until([&] { return fx::all_healthy(base_url, expected); }, 60s).count() >= 0;
  INFO(fx::http(base_url + "/api/v1/targets").body);
  CHECK(all_up);

  s::DockerClient infra({.node = lab->nodes()[0].name, .host = lab->nodes()[0].host});
  const auto prometheus = infra.inspect_container(host.workload_name("prometheus"));
  REQUIRE(prometheus.has_value());
  CHECK((*prometheus)["Config"]["Image"] == "prometheus:flotilla");
  CHECK((*prometheus)["HostConfig"]["NetworkMode"] == "host");
  const std::string id = (*prometheus)["Id"];

  call_ok(host, "apply", req);
  CHECK((*infra.inspect_container(host.workload_name("prometheus")))["Id"] == id);

  call_ok(host, "destroy", req);
  for (const auto& n : lab->nodes()) {
    s::DockerClient d({.node = n.name, .host = n.host});
    CHECK_FALSE(d.inspect_container(host.workload_name("node-exporter")).has_value());
  }
  CHECK_FALSE(infra.inspect_container(host.workload_name("prometheus")).has_value());
}

TEST_CASE("prometheus-cadvisor on a mixed cluster: Prometheus and an exporter as processes on infra, exporter containers on Docker nodes",
          "[prometheus-cadvisor][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  if (!s::find_executable("prometheus") || !s::find_executable("prometheus-node-exporter"))
    FLOTILLA_SKIP("prometheus or prometheus-node-exporter is not installed; scripts/install-deps.sh installs them");
  REQUIRE(flotilla::test::build_lab_images(*lab, {"node-exporter"}).empty());

  // infra is this machine at the bridge's address, which every namespace reaches.
  fx::TempDir dir("flotilla-prom-mixed");
  json nodes = json::array({{{"name", "infra"}, {"address", lab->gateway()}, {"roles", {"infra"}}, {"runtime", "process"},
                             {"workdir", (dir.path() / "nodes" / "infra").string()}, {"state", "running"}}});
  for (auto& n : DockerAddonHost::lab_nodes(*lab, {"swarm", "swarm", "swarm"}, "lab")) {
    n["runtime_config"]["files_image"] = DockerLab::kImage;
    nodes.push_back(n);
  }
  DockerAddonHost host("addon_prometheus_cadvisor", "prometheus-cadvisor", nodes);
  const json config = {{"node_exporter_image", "node-exporter:flotilla"}, {"scrape_interval", "2s"}, {"scrape_services", false}};
  const json req = host.request(config, {"infra"}, (dir.path() / "addon").string());
  call_ok(host, "apply", req);

  const std::string base_url = "http://" + lab->gateway() + ":9090";
  std::vector<std::string> exporters{lab->gateway() + ":9100"};
  for (const auto& n : lab->nodes()) exporters.push_back(n.address + ":9100");
  const bool all_up = fx::wait_until([&] { return fx::all_healthy(base_url, {{"node", exporters}}); }, 60s).count() >= 0;
  INFO(fx::http(base_url + "/api/v1/targets").body);
  CHECK(all_up);
  s::DockerClient swarm({.node = lab->nodes()[0].name, .host = lab->nodes()[0].host});
  CHECK(swarm.inspect_container(host.workload_name("node-exporter")).has_value());
  CHECK_FALSE(swarm.inspect_container(host.workload_name("prometheus")).has_value());

  auto [st2, out2] = host.call("destroy", req);
  INFO(out2);
  CHECK(st2 == FLT_OK);
  CHECK_FALSE(swarm.inspect_container(host.workload_name("node-exporter")).has_value());
  CHECK(fx::http(base_url + "/-/ready").status == 0);
}
