// The consul addon's containers on Docker nodes, checked at their contract on real dockerds of
// the Docker lab. The hashicorp/consul image cannot be pulled here (no network), so each lab
// dockerd gets a stand-in tagged `hashicorp/consul:1.17` (the addon's default image): the
// lab's busybox with an entrypoint that plays the part. What is checked is what Flotilla asks
// of the daemons, against what the image documents:
//
//   The image's description (Docker Hub, hub.docker.com/r/hashicorp/consul and the official
//   `consul` image; source github.com/docker-library/docs, consul/content.md):
//   - "Consul should always be run with --net=host in Docker", with `-bind=<external ip>`
//     for the cluster address and `-client` for the HTTP and DNS interfaces;
//   - a server: `docker run -d --net=host ... agent -server -bind=<external ip>
//     -retry-join=<root agent ip> -bootstrap-expect=<number of server agents>`;
//   - a client: `docker run -d --net=host ... agent -bind=<external ip> -retry-join=<root agent ip>`;
//   - "The container exposes VOLUME /consul/data ... where Consul will place its persisted state";
//   - CONSUL_BIND_INTERFACE / CONSUL_CLIENT_INTERFACE, when set, make the entrypoint add its own
//     -bind / -client, so Flotilla sets neither.
//   The image's entrypoint (docker-entrypoint.sh of github.com/hashicorp/consul, earlier
//   github.com/hashicorp/docker-consul): a command starting with `agent` runs
//   `consul agent -data-dir=/consul/data -config-dir=/consul/config <the rest>`, so the command
//   carries no -data-dir of its own. The image declares no HEALTHCHECK; the addon's readiness is
//   the agent's GET /v1/status/leader (Consul's HTTP API), which names the leader's server
//   address, or "" while there is none.
//
// The stand-in (tests/support/consul_stand_in.hpp): called with the command as its arguments,
// it takes -bind, -client, -http-port, -retry-join and -server from them, serves them back
// (/args), and answers GET /v1/status/leader on <-client>:<-http-port>: a server with
// "<-bind>:8300", a client with what it fetched from its -retry-join address (so a client only
// becomes ready through its server, over the node network). Never run here: Consul itself (gossip, Raft, the catalog,
// DNS); tests/plugins/addon_consul/consul_client_test.cpp runs a real agent where a consul
// binary is on the PATH.
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/http.hpp"
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
using flotilla::test::get_body;
using flotilla::test::StandIn;
using flotilla::test::StandInImages;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kImage = "hashicorp/consul:1.17";
/// An agent that never sees a leader; not a real reference on purpose.
constexpr const char* kLeaderless = "flotilla-consul-test/consul:leaderless";

std::vector<StandIn> stand_ins() { return {flotilla::test::consul_stand_in(kImage, true), flotilla::test::consul_stand_in(kLeaderless, false)}; }

bool has(const json& args, const std::string& arg) { return std::find(args.begin(), args.end(), arg) != args.end(); }
bool has_prefix(const json& args, const std::string& prefix) {
  return std::any_of(args.begin(), args.end(), [&](const json& a) { return a.get<std::string>().starts_with(prefix); });
}

}  // namespace

TEST_CASE("consul containers at their contract on real dockerds (stand-in image): a server on infra, agents that retry-join it, host network",
          "[consul][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const json nodes = DockerAddonHost::lab_nodes(*lab, {"infra", "swarm", "swarm"}, "lab");
  const StandInImages images(*lab, stand_ins());
  const std::string dir = (std::filesystem::temp_directory_path() / ("flotilla-consul-contract-" + std::to_string(::getpid()))).string();
  DockerAddonHost host("addon_consul", "consul", nodes);
  const std::vector<std::string> placed = {"infra", "swarm-1", "swarm-2"};
  const auto& infra = lab->nodes()[0];

  SECTION("no leader within start_timeout: the error names node and URL, and destroy removes what started") {
    const json req = host.request({{"image", kLeaderless}, {"start_timeout", 2}}, placed, dir);
    auto [st, out] = host.call("apply", req);
    INFO(out);
    CHECK(st == FLT_RETRYABLE);
    CHECK_THAT(out, Catch::Contains("node infra") && Catch::Contains("http://" + infra.address + ":8500") &&
                        Catch::Contains("no leader after 2 s"));
    (void)call_ok(host, "destroy", req);
    for (const auto& node : lab->nodes()) CHECK(addon_containers(node, "consul").empty());
  }

  SECTION("apply, inspect every agent, apply unchanged, destroy") {
    const json req = host.request(json::object(), placed, dir);
    auto [vst, vout] = host.call("validate", req);
    REQUIRE(vst == FLT_OK);
    CHECK(json::parse(vout)["errors"].empty());  // Docker nodes only: no consul binary needed

    const json result = json::parse(call_ok(host, "apply", req));
    CHECK(result["endpoints"]["consul"] == "http://" + infra.address + ":8500");
    CHECK(result["endpoints"]["dns"] == "dns://" + infra.address + ":8600");
    CHECK(result["outputs"]["servers"] == json::array({"infra"}));

    std::vector<std::string> ids;
    for (size_t i = 0; i < placed.size(); ++i) {
      const auto& node = lab->nodes()[i];
      const bool server = placed[i] == "infra";
      INFO(placed[i]);
      CHECK(result["outputs"]["agents"][placed[i]] == "http://" + node.address + ":8500");
      s::DockerClient docker({.node = node.name, .host = node.host});
      const auto c = docker.inspect_container(host.workload_name("consul"));
      REQUIRE(c.has_value());
      ids.push_back((*c)["Id"]);
      CHECK((*c)["Config"]["Image"] == kImage);
      CHECK((*c)["State"]["Running"] == true);

      // The image's entrypoint is kept; the command is the `agent` subcommand and its flags.
      const auto image = docker.call("GET", std::string("/images/") + kImage + "/json");
      REQUIRE(image.status == 200);
      CHECK((*c)["Config"]["Entrypoint"] == json::parse(image.body)["Config"]["Entrypoint"]);
      const json cmd = (*c)["Config"]["Cmd"];
      REQUIRE(cmd.is_array());
      CHECK(cmd[0] == "agent");
      CHECK(has(cmd, "-node=" + placed[i]));
      CHECK(has(cmd, "-datacenter=dc1"));
      CHECK(has(cmd, "-bind=" + node.address));
      CHECK(has(cmd, "-advertise=" + node.address));
      CHECK(has(cmd, "-client=" + node.address));
      CHECK(has(cmd, "-http-port=8500"));
      CHECK(has(cmd, "-dns-port=8600"));
      CHECK_FALSE(has_prefix(cmd, "-data-dir"));  // the entrypoint's /consul/data
      CHECK_FALSE(has_prefix(cmd, "-dev"));
      CHECK(has(cmd, "-server") == server);
      CHECK(has(cmd, "-bootstrap-expect=1") == server);
      CHECK(has(cmd, "-retry-join=" + infra.address) == !server);
      CHECK_FALSE(has(cmd, "-retry-join=" + node.address));

      // What the entrypoint was given, as the stand-in read it.
      std::string given;
      for (const auto& a : cmd) given += (given.empty() ? "" : " ") + a.get<std::string>();
      CHECK(get_body("http://" + node.address + ":8500/args") == given + "\n");
      // A client's leader came through its -retry-join address from the server.
      CHECK(get_body("http://" + node.address + ":8500/v1/status/leader") == "\"" + infra.address + ":8300\"\n");

      // --net=host: nothing published, nothing exposed by Flotilla.
      CHECK((*c)["HostConfig"]["NetworkMode"] == "host");
      const json bindings = (*c)["HostConfig"].value("PortBindings", json::object());
      CHECK((bindings.is_null() || bindings.empty()));
      // The image's volume holds the data; the addon's files volume is mounted read-only.
      bool data_volume = false;
      for (const auto& m : (*c)["Mounts"]) {
        INFO(m.dump());
        if (m["Destination"] == "/consul/data") {
          data_volume = m["Type"] == "volume" && m["RW"] == true;
        } else {
          CHECK(m["Destination"] == "/flotilla/files/consul");
          CHECK(m["RW"] == false);
        }
      }
      CHECK(data_volume);
      // Neither interface variable, which would add a second -bind or -client.
      for (const auto& e : (*c)["Config"]["Env"]) {
        CHECK_FALSE(e.get<std::string>().starts_with("CONSUL_BIND_INTERFACE="));
        CHECK_FALSE(e.get<std::string>().starts_with("CONSUL_CLIENT_INTERFACE="));
      }
      CHECK_FALSE((*c)["Config"].contains("Healthcheck"));
      CHECK((*c)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped");
      const json labels = (*c)["Config"]["Labels"];
      CHECK(labels["io.flotilla.managed"] == "true");
      CHECK(labels["io.flotilla.node"] == placed[i]);
      CHECK(labels["io.flotilla.workload"] == host.workload_name("consul"));
      CHECK(labels["io.flotilla.component"] == "addon:consul");
    }

    // Unchanged: no container is replaced.
    (void)call_ok(host, "apply", req);
    for (size_t i = 0; i < placed.size(); ++i) {
      s::DockerClient docker({.node = lab->nodes()[i].name, .host = lab->nodes()[i].host});
      CHECK((*docker.inspect_container(host.workload_name("consul")))["Id"] == ids[i]);
    }

    (void)call_ok(host, "destroy", req);
    for (const auto& node : lab->nodes()) CHECK(addon_containers(node, "consul").empty());
    CHECK(host.state() == json::object());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
