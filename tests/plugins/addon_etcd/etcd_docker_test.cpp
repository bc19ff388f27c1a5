// The etcd addon on Docker nodes of the lab: a 3-member cluster of containers (the image
// scripts/build-images.sh makes from Debian's etcd), one per node, whose members find each
// other through the ports their nodes publish; it serves puts and gets from the host, a
// second apply changes nothing, and destroy removes the containers.
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/etcd_client.hpp"
#include "support/docker_addon_host.hpp"
#include "support/plugin_harness.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

namespace s = flotilla::support;
using flotilla::test::DockerAddonHost;
using flotilla::test::call_ok;
using nlohmann::json;

TEST_CASE("etcd addon on Docker nodes: three member containers serve puts and gets, a rerun changes nothing, destroy removes them",
          "[etcd][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  if (!s::find_executable("etcd")) FLOTILLA_SKIP("etcd is not installed; scripts/install-deps.sh installs it");
  const std::string built = flotilla::test::build_lab_images(*lab, {"etcd"});
  REQUIRE(built.empty());

  DockerAddonHost host("addon_etcd", "etcd", DockerAddonHost::lab_nodes(*lab, {"infra", "swarm", "swarm"}, "lab"));
  const json config = {{"members", 3}, {"image", "etcd:flotilla"}, {"start_timeout", 90}};
  const json req = host.request(config, {"infra", "swarm-1", "swarm-2"}, "/tmp/flotilla-etcd-docker-test");

  auto [vst, vout] = host.call("validate", req);
  REQUIRE(vst == FLT_OK);
  CHECK(json::parse(vout)["errors"].empty());

  const std::string out = call_ok(host, "apply", req);
  const json result = json::parse(out);
  const std::string endpoints = result["outputs"]["etcd_endpoints"];
  CHECK(endpoints == "http://" + lab->nodes()[0].address + ":2379,http://" + lab->nodes()[1].address + ":2379,http://" +
                         lab->nodes()[2].address + ":2379");

  // Each member answers on its own node's address; a write through one is read through another.
  s::EtcdClient first("http://" + lab->nodes()[0].address + ":2379");
  s::EtcdClient third("http://" + lab->nodes()[2].address + ":2379");
  CHECK(first.healthy());
  first.put("/flotilla/test/key", "from-infra");
  const auto got = third.get("/flotilla/test/key");
  REQUIRE(got.has_value());
  CHECK(got->value == "from-infra");

  s::DockerClient docker({.node = lab->nodes()[1].name, .host = lab->nodes()[1].host});
  const auto container = docker.inspect_container(host.workload_name("etcd"));
  REQUIRE(container.has_value());
  CHECK((*container)["Config"]["Image"] == "etcd:flotilla");
  CHECK((*container)["Config"]["Labels"]["io.flotilla.component"] == "addon:etcd");
  const std::string id = (*container)["Id"];

  call_ok(host, "apply", req);
  CHECK((*docker.inspect_container(host.workload_name("etcd")))["Id"] == id);
  CHECK(third.get("/flotilla/test/key").has_value());

  call_ok(host, "destroy", req);
  for (const auto& n : lab->nodes()) {
    s::DockerClient d({.node = n.name, .host = n.host});
    CHECK_FALSE(d.inspect_container(host.workload_name("etcd")).has_value());
  }
}

TEST_CASE("etcd addon: validate names the node for a runtime it cannot run on", "[etcd]") {
  flotilla::test::PluginHarness plugin("addon_etcd");
  const json req = {{"addon", {{"name", "etcd"}, {"config", {{"members", 1}}}, {"nodes", {"infra"}}, {"dir", "/tmp/x"}}},
                    {"nodes", {{{"name", "infra"}, {"address", "10.0.0.1"}, {"runtime", "lxc"}}}}};
  const auto r = plugin.call("validate", req);
  REQUIRE(r.ok());
  REQUIRE(r.result["errors"].size() == 1);
  CHECK_THAT(r.result["errors"][0]["message"].get<std::string>(), Catch::Contains("node infra") && Catch::Contains("`lxc`"));
  json docker = req;
  docker["nodes"][0]["runtime"] = "docker";
  CHECK(plugin.call("validate", docker).result["errors"].empty());
}
