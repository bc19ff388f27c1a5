// The registrator's image mode (gliderlabs/registrator on every Docker node): the registry
// URIs and the container's spec as its README documents them, and the refusal of an etcd
// that does not serve the v2 API the image's etcd backend speaks. The container itself, on
// real dockerds, is checked in registrator_image_contract_test.cpp.
#include "addon_registrator/registrator_image.hpp"
#include "support/plugin_harness.hpp"

#include <catch2/catch.hpp>

namespace d = flotilla::discovery;
using flotilla::test::PluginHarness;
using nlohmann::json;

TEST_CASE("registrator image mode: registry URIs, arguments and the container spec", "[registrator]") {
  // backends.md: consul://<address>:<port>; the node's own agent, else a server.
  const json agents = {{"infra", "http://10.0.0.1:8500"}, {"swarm-1", "http://10.0.0.2:8500"}};
  CHECK(d::consul_registry_uri(agents, "http://10.0.0.1:8500", "swarm-1") == "consul://10.0.0.2:8500");
  CHECK(d::consul_registry_uri(agents, "http://10.0.0.1:8500", "swarm-9") == "consul://10.0.0.1:8500");
  // backends.md: etcd://<address>:<port>/<prefix>; the member on the node's address, else the first.
  const std::string members = "http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379";
  CHECK(d::etcd_registry_uri(members, "10.0.0.3", "/flotilla/lab/services") == "etcd://10.0.0.3:2379/flotilla/lab/services");
  CHECK(d::etcd_registry_uri(members, "10.0.0.7", "/flotilla/lab/services") == "etcd://10.0.0.1:2379/flotilla/lab/services");
  CHECK(d::etcd_registry_uri("http://10.0.0.1:2379", "10.0.0.1", "/p") == "etcd://10.0.0.1:2379/p");

  // run.md: [options] <registry uri>, -ip first.
  CHECK(d::registrator_args("10.0.0.2", {"-cleanup"}, "consul://10.0.0.2:8500") ==
        std::vector<std::string>{"-ip", "10.0.0.2", "-cleanup", "consul://10.0.0.2:8500"});

  // README: --net=host --volume=/var/run/docker.sock:/tmp/docker.sock; the node dockerd's own socket.
  const json netns_node = {{"name", "swarm-1"}, {"runtime_config", {{"host", "unix:///run/flotilla/lab/swarm-1/docker.sock"}}}};
  const json w = d::registrator_workload(netns_node, "gliderlabs/registrator:v7", {"-ip", "10.0.0.2", "consul://10.0.0.2:8500"});
  CHECK(w["name"] == "registrator");
  CHECK(w["image"] == "gliderlabs/registrator:v7");
  CHECK(w["network"] == "host");
  CHECK(w["cmd"] == json::array({"-ip", "10.0.0.2", "consul://10.0.0.2:8500"}));
  CHECK(w["mounts"] == json::array({{{"source", "/run/flotilla/lab/swarm-1/docker.sock"}, {"target", "/tmp/docker.sock"}, {"type", "bind"}}}));
  const json tcp_node = {{"name", "n"}, {"runtime_config", {{"host", "tcp://10.0.0.5:2376"}}}};
  CHECK(d::registrator_workload(tcp_node, "r", {})["mounts"][0]["source"] == "/var/run/docker.sock");
}

TEST_CASE("registrator image mode refuses an etcd without the v2 API, saying what to set, before writing anything", "[registrator]") {
  PluginHarness plugin("addon_registrator");
  json req = {{"cluster", {{"name", "lab"}, {"state_dir", "/tmp/flotilla-regimg"}}},
              {"addon", {{"name", "registrator"}, {"config", {{"image", "gliderlabs/registrator:v7"}}}, {"nodes", {"infra"}}, {"dir", "/tmp/x"}}},
              {"nodes", {{{"name", "infra"}, {"address", "127.0.0.1"}, {"roles", {"infra"}}, {"runtime", "docker"}}}},
              {"services", json::array()},
              // An unreachable member: the refusal comes before any request to it.
              {"addons",
               {{"etcd",
                 {{"plugin", "etcd"},
                  {"provides", {"discovery"}},
                  {"endpoints", {{"etcd", "http://127.0.0.1:1"}}},
                  {"outputs", {{"etcd_endpoints", "http://127.0.0.1:1"}, {"v2_api", false}}}}}}},
              {"components", json::array()}};
  const auto out = plugin.call("apply", req);
  INFO(out.describe());
  CHECK(out.status == FLT_INVALID);
  CHECK_THAT(out.error, Catch::Contains("enable_v2 = true") && Catch::Contains("etcd addon \"etcd\"") && Catch::Contains("v2 API"));
  // An etcd from before the option (no v2_api output) is refused the same way.
  req["addons"]["etcd"]["outputs"].erase("v2_api");
  CHECK(plugin.call("apply", req).status == FLT_INVALID);
}
