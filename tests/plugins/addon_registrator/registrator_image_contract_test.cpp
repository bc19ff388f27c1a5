// The registrator's image mode checked at its contract on real dockerds of the Docker lab. The
// gliderlabs/registrator image cannot be pulled here (no network), so each lab dockerd gets a
// stand-in tagged `gliderlabs/registrator:v7`: the lab's busybox with an entrypoint that plays
// the part. What is checked is what Flotilla asks of the daemons, against what the image
// documents (github.com/gliderlabs/registrator, v7):
//
//   README.md and docs/user/run.md: `docker run -d --name=registrator --net=host
//   --volume=/var/run/docker.sock:/tmp/docker.sock gliderlabs/registrator:latest
//   consul://localhost:8500`; "docker run [docker options] gliderlabs/registrator[:tag]
//   [options] <registry uri>"; the volume is required ("Allows Registrator to access Docker
//   API"), --net=host recommended; `-ip <ip address>` "Force IP address used for registering
//   services"; `-cleanup` (v7) "Cleanup dangling services"; `-ttl <seconds>` and
//   `-ttl-refresh <seconds>` for backends with TTL expiry.
//   docs/user/backends.md: `consul://<address>:<port>`; `etcd://<address>:<port>/<prefix>`,
//   entries stored as <prefix>/<service-name>/<service-id> = <ip>:<port>, through etcd's v2
//   API (which etcd 3.4 serves only with --enable-v2).
//
// The stand-in: it prints its arguments, whether /tmp/docker.sock is a socket, and what the
// backend of its registry URI answers from inside the container (a consul URI: GET
// /v1/agent/services of the consul stand-in; an etcd URI: GET /v2/keys of a real etcd 3.4 run
// by the etcd addon as a process on the lab's bridge address). Never run here: registrator
// itself (reading Docker's events, registering containers).
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/process.hpp"
#include "flotilla/support/wait.hpp"
#include "support/consul_stand_in.hpp"
#include "support/docker_addon_host.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace {

namespace s = flotilla::support;
using flotilla::test::addon_containers;
using flotilla::test::call_ok;
using flotilla::test::DockerAddonHost;
using flotilla::test::StandIn;
using flotilla::test::StandInImages;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kRegistrator = "gliderlabs/registrator:v7";
constexpr const char* kConsul = "hashicorp/consul:1.17";

StandIn registrator_stand_in() {
  return {kRegistrator,
          "echo \"stand-in args: $*\"; [ \"$1\" = -ip ] || { echo 'stand-in: -ip is not the first option'; exit 2; }; "
          "for a in \"$@\"; do uri=$a; done; "
          "if [ -S /tmp/docker.sock ]; then echo docker.sock=socket; else echo docker.sock=missing; fi; "
          "hp=${uri#*://}; hp=${hp%%/*}; "
          "case \"$uri\" in consul://*) path=/v1/agent/services;; etcd://*) path=/v2/keys;; *) echo \"unknown backend: $uri\"; exit 2;; esac; "
          "n=0; until ans=$(wget -q -O - http://$hp$path); do n=$((n+1)); [ $n -gt 30 ] && break; sleep 1; done; "
          "echo \"backend answered: $ans\"; "
          "trap 'exit 0' TERM; sleep 100000 & wait"};
}

/// The addon view the registrator gets of a discovery addon that applied with `result`.
json view_of(const std::string& plugin, const json& result) {
  return {{"plugin", plugin}, {"provides", {"discovery"}}, {"endpoints", result["endpoints"]}, {"outputs", result["outputs"]}};
}

/// The stdout of container `name` on `node` once it holds "backend answered" (at most 40 s).
std::string backend_line(const flotilla::test::LabNode& node, const std::string& name) {
  s::DockerClient docker({.node = node.name, .host = node.host});
  std::string out;
  (void)s::wait_until(std::chrono::seconds(40), std::chrono::milliseconds(250), [&] {
    out = docker.logs(name, 20).out;
    return out.find("backend answered") != std::string::npos;
  });
  return out;
}

void check_container(const flotilla::test::LabNode& node, const std::string& node_name, const std::string& name, const json& cmd) {
  INFO(node_name);
  s::DockerClient docker({.node = node.name, .host = node.host});
  const auto c = docker.inspect_container(name);
  REQUIRE(c.has_value());
  CHECK((*c)["Config"]["Image"] == kRegistrator);
  CHECK((*c)["State"]["Running"] == true);
  // The image's entrypoint (the registrator binary) is kept; the command is [options] <uri>.
  const auto image = docker.call("GET", std::string("/images/") + kRegistrator + "/json");
  REQUIRE(image.status == 200);
  CHECK((*c)["Config"]["Entrypoint"] == json::parse(image.body)["Config"]["Entrypoint"]);
  CHECK((*c)["Config"]["Cmd"] == cmd);
  // --net=host, and the node dockerd's socket at /tmp/docker.sock (read-write, as --volume).
  CHECK((*c)["HostConfig"]["NetworkMode"] == "host");
  const std::string socket = node.host.substr(std::string("unix://").size());
  bool docker_sock = false;
  for (const auto& m : (*c)["Mounts"]) {
    INFO(m.dump());
    if (m["Destination"] == "/tmp/docker.sock") {
      docker_sock = m["Type"] == "bind" && m["Source"] == socket && m["RW"] == true;
    } else {
      CHECK(m["Destination"] == "/flotilla/files/registrator");
      CHECK(m["RW"] == false);
    }
  }
  CHECK(docker_sock);
  CHECK_FALSE((*c)["Config"].contains("Healthcheck"));
  CHECK((*c)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped");
  const json labels = (*c)["Config"]["Labels"];
  CHECK(labels["io.flotilla.managed"] == "true");
  CHECK(labels["io.flotilla.node"] == node_name);
  CHECK(labels["io.flotilla.workload"] == name);
  CHECK(labels["io.flotilla.component"] == "addon:registrator");
}

}  // namespace

TEST_CASE("registrator image containers at their contract on real dockerds (stand-in image): consul and etcd v2 backends",
          "[registrator][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const StandInImages images(*lab, {registrator_stand_in(), flotilla::test::consul_stand_in(kConsul, true)});
  const std::string dir = (std::filesystem::temp_directory_path() / ("flotilla-regimg-contract-" + std::to_string(::getpid()))).string();

  SECTION("consul backend: every Docker node, its own agent's URI, a node that leaves loses it, destroy removes all") {
    const json nodes = DockerAddonHost::lab_nodes(*lab, {"infra", "swarm", "swarm"}, "lab");
    const std::vector<std::string> names = {"infra", "swarm-1", "swarm-2"};
    DockerAddonHost consul("addon_consul", "consul", nodes);
    const json consul_req = consul.request(json::object(), names, dir + "/consul");
    const json consul_result = json::parse(call_ok(consul, "apply", consul_req));

    DockerAddonHost host("addon_registrator", "registrator", nodes);
    json req = host.request({{"image", kRegistrator}, {"backend", "consul"}}, {"infra"}, dir + "/registrator");
    req["addons"]["consul"] = view_of("consul", consul_result);
    const json result = json::parse(call_ok(host, "apply", req));
    CHECK(result["outputs"]["registrator_nodes"] == json(names));

    std::vector<std::string> ids;
    for (size_t i = 0; i < names.size(); ++i) {
      const auto& node = lab->nodes()[i];
      const std::string agent = node.address + ":8500";
      check_container(node, names[i], host.workload_name("registrator"), json::array({"-ip", node.address, "-cleanup", "consul://" + agent}));
      const std::string out = backend_line(node, host.workload_name("registrator"));
      INFO(out);
      CHECK_THAT(out, Catch::Contains("docker.sock=socket") && Catch::Contains("backend answered: {}"));
      s::DockerClient docker({.node = node.name, .host = node.host});
      ids.push_back((*docker.inspect_container(host.workload_name("registrator")))["Id"]);
    }

    // Unchanged: nothing replaced.
    (void)call_ok(host, "apply", req);
    for (size_t i = 0; i < names.size(); ++i) {
      s::DockerClient docker({.node = lab->nodes()[i].name, .host = lab->nodes()[i].host});
      CHECK((*docker.inspect_container(host.workload_name("registrator")))["Id"] == ids[i]);
    }

    // swarm-2 leaves the cluster: its container goes at the next apply.
    json two = req;
    two["nodes"].erase(2);
    CHECK(json::parse(call_ok(host, "apply", two))["outputs"]["registrator_nodes"] == json::array({"infra", "swarm-1"}));
    CHECK(addon_containers(lab->nodes()[2], "registrator").empty());
    CHECK(addon_containers(lab->nodes()[1], "registrator").size() == 1);

    (void)call_ok(host, "destroy", two);
    for (const auto& node : lab->nodes()) CHECK(addon_containers(node, "registrator").empty());
    (void)call_ok(consul, "destroy", consul_req);
  }

  SECTION("etcd backend: refused without enable_v2, then every Docker node reaches the real etcd's v2 API through its URI") {
    if (!s::find_executable("etcd")) FLOTILLA_SKIP("etcd is not installed; scripts/install-deps.sh installs it (Debian etcd-server)");
    // infra: a process node on the lab's bridge address, running Debian's etcd; two Docker nodes.
    json nodes = json::array({{{"name", "infra"}, {"address", lab->gateway()}, {"roles", {"infra"}}, {"runtime", "process"},
                               {"workdir", dir + "/nodes/infra"}, {"state", "running"}}});
    for (auto& n : DockerAddonHost::lab_nodes(*lab, {"swarm", "swarm"}, "lab")) nodes.push_back(n);
    DockerAddonHost etcd("addon_etcd", "etcd", nodes);
    DockerAddonHost host("addon_registrator", "registrator", nodes);
    const json config = {{"image", kRegistrator}, {"backend", "etcd"}, {"dns", false}, {"ttl", 30}};

    const json v3_only = etcd.request(json::object(), {"infra"}, dir + "/etcd");
    json req = host.request(config, {"infra"}, dir + "/registrator");
    req["addons"]["etcd"] = view_of("etcd", json::parse(call_ok(etcd, "apply", v3_only)));
    auto [st, out] = host.call("apply", req);
    INFO(out);
    CHECK(st == FLT_INVALID);
    CHECK_THAT(out, Catch::Contains("enable_v2 = true") && Catch::Contains("etcd addon \"etcd\""));
    for (size_t i = 0; i < 2; ++i) CHECK(addon_containers(lab->nodes()[i], "registrator").empty());

    const json with_v2 = etcd.request({{"enable_v2", true}}, {"infra"}, dir + "/etcd");
    req["addons"]["etcd"] = view_of("etcd", json::parse(call_ok(etcd, "apply", with_v2)));
    const json result = json::parse(call_ok(host, "apply", req));
    CHECK(result["outputs"]["registrator_nodes"] == json::array({"swarm-0", "swarm-1"}));
    const std::string uri = "etcd://" + lab->gateway() + ":2379/flotilla/lab/services";
    for (size_t i = 0; i < 2; ++i) {
      const auto& node = lab->nodes()[i];
      const std::string name = nodes[i + 1]["name"];
      check_container(node, name, host.workload_name("registrator"), json::array({"-ip", node.address, "-ttl", "30", "-ttl-refresh", "10", uri}));
      const std::string log = backend_line(node, host.workload_name("registrator"));
      INFO(log);
      CHECK_THAT(log, Catch::Contains("docker.sock=socket") && Catch::Contains("backend answered: {\"action\":\"get\""));
    }
    (void)call_ok(host, "destroy", req);
    for (const auto& node : lab->nodes()) CHECK(addon_containers(node, "registrator").empty());
    (void)call_ok(etcd, "destroy", with_v2);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
