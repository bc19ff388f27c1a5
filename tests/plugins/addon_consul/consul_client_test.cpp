// The registrator's Consul sync and the consul addon's agents, against recorded Consul API
// exchanges replayed by a local server (Consul is not packaged in Debian), and against a real
// Consul when a `consul` binary is on PATH.
#include "addon_consul/consul_agent.hpp"
#include "support/skip.hpp"
#include "flotilla/support/consul_client.hpp"
#include "flotilla/support/process.hpp"
#include "addon_registrator/catalog.hpp"
#include "support/consul_replay.hpp"
#include "support/discovery_servers.hpp"

#include <catch2/catch.hpp>

#include <cstdio>

namespace d = flotilla::discovery;
namespace support = flotilla::support;
using flotilla::test::discovery::ConsulReplay;
using nlohmann::json;

namespace {

d::Registration hello(int n, const std::string& node, const std::string& address) {
  d::Registration r;
  r.name = "hello-v1";
  r.id = "hello-v1-" + std::to_string(n);
  r.service = "hello/v1";
  r.node = node;
  r.address = address;
  r.port = 8000;
  r.tags = {"flotilla"};
  r.health = "/health";
  r.source = "service";
  return r;
}

void check_replayed(const ConsulReplay& replay) {
  for (const auto& m : replay.mismatches()) FAIL_CHECK(m);
  CHECK(replay.served() == replay.recorded());
}

}  // namespace

TEST_CASE("recorded Consul: agent service register with an HTTP check, list, deregister", "[discovery][consul]") {
  auto replay = ConsulReplay::from_recording("agent_service");
  support::ConsulClient consul(replay.url());
  consul.register_service(d::consul_service_definition(hello(1, "swarm-1", "127.77.0.2"), "local"));
  const json services = consul.agent_services();
  REQUIRE(services.contains("hello-v1-1"));
  CHECK(services["hello-v1-1"]["Port"] == 8000);
  CHECK(services["hello-v1-1"]["Meta"][d::kConsulOwnerMeta] == "local");
  CHECK(d::consul_service_matches(services["hello-v1-1"], d::consul_service_definition(hello(1, "swarm-1", "127.77.0.2"), "local")));
  CHECK_FALSE(d::consul_service_matches(services["hello-v1-1"], d::consul_service_definition(hello(1, "swarm-2", "127.77.0.3"), "local")));
  consul.deregister_service("hello-v1-1");
  CHECK_NOTHROW(consul.deregister_service("hello-v1-1"));  // Consul's 404: already gone
  check_replayed(replay);
}

TEST_CASE("recorded Consul: registrator sync registers the missing, deregisters its stale, leaves others' services", "[discovery][consul]") {
  auto replay = ConsulReplay::from_recording("registrator_sync");
  const std::vector<d::Registration> desired = {hello(1, "swarm-1", "127.77.0.2"), hello(2, "swarm-1", "127.77.0.2")};
  const auto report = d::sync_consul({{"swarm-1", replay.url()}}, "", "local", desired);
  CHECK(report.unchanged == 1);
  CHECK(report.added == 1);
  CHECK(report.removed == 1);
  CHECK(report.removed_ids == std::vector<std::string>{"hello-v1-9"});
  check_replayed(replay);
}

TEST_CASE("consul agents: a server on infra, clients elsewhere, every agent retry-joins the servers", "[discovery][consul]") {
  const json req = {{"addon", {{"nodes", {"swarm-1", "infra", "swarm-2"}}, {"dir", "/state/addons/consul"}}},
                    {"nodes",
                     {{{"name", "swarm-1"}, {"address", "127.77.0.2"}, {"roles", {"swarm"}}, {"runtime", "process"}},
                      {{"name", "infra"}, {"address", "127.77.0.1"}, {"roles", {"infra"}}, {"runtime", "process"}},
                      {{"name", "swarm-2"}, {"address", "127.77.0.3"}, {"roles", {"swarm"}}, {"runtime", "process"}}}}};
  auto agents = d::plan_agents(req, 1);
  REQUIRE(agents.size() == 3);
  CHECK_FALSE(agents[0].server);
  CHECK(agents[1].server);
  CHECK(agents[1].node == "infra");
  d::ConsulSettings s;
  s.data_root = "/state/addons/consul";
  const auto client = d::consul_agent_args(agents[0], agents, s);
  CHECK(std::find(client.begin(), client.end(), "-retry-join=127.77.0.1") != client.end());
  CHECK(std::find(client.begin(), client.end(), "-server") == client.end());
  CHECK(std::find(client.begin(), client.end(), "-client=127.77.0.2") != client.end());
  CHECK(std::find(client.begin(), client.end(), "-dns-port=8600") != client.end());
  CHECK(std::find(client.begin(), client.end(), "-data-dir=/state/addons/consul/swarm-1") != client.end());
  const auto server = d::consul_agent_args(agents[1], agents, s);
  CHECK(std::find(server.begin(), server.end(), "-server") != server.end());
  CHECK(std::find(server.begin(), server.end(), "-bootstrap-expect=1") != server.end());

  agents = d::plan_agents(req, 3);
  CHECK(std::count_if(agents.begin(), agents.end(), [](const d::ConsulAgent& a) { return a.server; }) == 3);
  CHECK(d::plan_agents(req, 5).empty());  // too few nodes
}

TEST_CASE("real Consul agent (runs only where a consul binary is on PATH)", "[discovery][consul]") {
  const auto consul_bin = support::find_executable("consul", {.sbin = false});
  if (!consul_bin) {
    FLOTILLA_SKIP("no `consul` on PATH (Consul is not packaged in Debian); the recorded Consul tests cover the client");
  }
  using namespace flotilla::test::discovery;
  TempDir dir("flotilla-consul");
  const int http = free_port(), dns = free_port(), serf = free_port(), server = free_port(), grpc = free_port();
  Child agent({consul_bin->string(), "agent", "-dev", "-node=test", "-bind=127.0.0.1", "-client=127.0.0.1",
               "-http-port=" + std::to_string(http), "-dns-port=" + std::to_string(dns), "-serf-lan-port=" + std::to_string(serf),
               "-server-port=" + std::to_string(server), "-grpc-port=" + std::to_string(grpc), "-serf-wan-port=-1",
               "-data-dir=" + (dir.path() / "data").string()},
              dir.path() / "consul.log");
  support::ConsulClient consul("http://127.0.0.1:" + std::to_string(http), {std::chrono::milliseconds(500), std::chrono::milliseconds(2000)});
  REQUIRE(wait_for(
      [&] {
        try {
          return !consul.leader().empty();
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(30)));
  const auto report = d::sync_consul({{"swarm-1", consul.base_url()}}, "", "local", {hello(1, "swarm-1", "127.0.0.1")});
  CHECK(report.added == 1);
  const auto catalog = consul.catalog_service("hello-v1");
  REQUIRE(catalog.body.size() == 1);
  CHECK(catalog.body[0]["ServiceID"] == "hello-v1-1");
  CHECK(consul.kv_put("flotilla/test", "v"));
  CHECK(consul.kv_get("flotilla/test") == std::optional<std::string>("v"));
  const auto removed = d::sync_consul({{"swarm-1", consul.base_url()}}, "", "local", {});
  CHECK(removed.removed == 1);
  CHECK(wait_for([&] { return consul.catalog_service("hello-v1").body.empty(); }, std::chrono::seconds(10)));
}
