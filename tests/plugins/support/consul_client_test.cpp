// The Consul HTTP client against recorded Consul API exchanges replayed by a local server
// (Consul is not packaged in Debian). The addons' use of it is tested with the addons.
#include "flotilla/support/consul_client.hpp"

#include "support/consul_replay.hpp"
#include "support/discovery_servers.hpp"

#include <catch2/catch.hpp>

namespace s = flotilla::support;
using flotilla::test::discovery::ConsulReplay;
using nlohmann::json;

namespace {
void check_replayed(const ConsulReplay& replay) {
  for (const auto& m : replay.mismatches()) FAIL_CHECK(m);
  CHECK(replay.served() == replay.recorded());
}
}  // namespace

TEST_CASE("ConsulClient against recorded Consul: register with an HTTP check, list, deregister", "[support][consul]") {
  auto replay = ConsulReplay::from_recording("agent_service");
  const s::ConsulClient consul(replay.url() + "/");
  CHECK(consul.base_url() == replay.url());
  const json definition = {{"ID", "hello-v1-1"},
                           {"Name", "hello-v1"},
                           {"Tags", {"flotilla"}},
                           {"Address", "127.77.0.2"},
                           {"Port", 8000},
                           {"Meta", {{"flotilla-cluster", "local"}, {"flotilla-service", "hello/v1"}, {"flotilla-node", "swarm-1"}}},
                           {"Check",
                            {{"Name", "hello-v1 health"},
                             {"HTTP", "http://127.77.0.2:8000/health"},
                             {"Interval", "5s"},
                             {"Timeout", "2s"},
                             {"DeregisterCriticalServiceAfter", "1m"}}}};
  consul.register_service(definition);
  const json services = consul.agent_services();
  REQUIRE(services.contains("hello-v1-1"));
  CHECK(services["hello-v1-1"]["Port"] == 8000);
  consul.deregister_service("hello-v1-1");
  CHECK_NOTHROW(consul.deregister_service("hello-v1-1"));  // Consul's 404: already gone
  check_replayed(replay);
}

TEST_CASE("ConsulClient against recorded Consul: catalog and health queries with blocking index and wait", "[support][consul]") {
  auto replay = ConsulReplay::from_recording("catalog_health_blocking");
  const s::ConsulClient consul(replay.url());

  const auto catalog = consul.catalog_service("hello-v1");
  CHECK(catalog.index == 120);
  REQUIRE(catalog.body.size() == 2);
  CHECK(catalog.body[1]["ServiceAddress"] == "127.77.0.3");

  auto healthy = consul.health_service("hello-v1", true);
  CHECK(healthy.index == 121);
  REQUIRE(healthy.body.size() == 1);

  // Block until the index moves past 121; the recording answers after 300 ms.
  std::uint64_t index = s::next_blocking_index(0, healthy.index);
  const auto t0 = std::chrono::steady_clock::now();
  healthy = consul.health_service("hello-v1", true, {index, std::chrono::seconds(2)});
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(250));
  CHECK(healthy.index == 125);
  CHECK(healthy.body.size() == 2);
  index = s::next_blocking_index(index, healthy.index);
  CHECK(index == 125);

  // The index went backwards: start over from 0, as Consul's documentation asks.
  healthy = consul.health_service("hello-v1", true, {index, std::chrono::seconds(2)});
  CHECK(healthy.index == 3);
  CHECK(s::next_blocking_index(index, healthy.index) == 0);
  check_replayed(replay);
}

TEST_CASE("ConsulClient against recorded Consul: KV put, get (base64), check-and-set, missing key, delete", "[support][consul]") {
  auto replay = ConsulReplay::from_recording("kv");
  const s::ConsulClient consul(replay.url());
  CHECK(consul.kv_put("flotilla/local/leader", "infra"));
  CHECK(consul.kv_get("flotilla/local/leader") == std::optional<std::string>("infra"));
  CHECK_FALSE(consul.kv_put("flotilla/local/leader", "swarm-1", 129));
  CHECK_FALSE(consul.kv_get("flotilla/local/missing").has_value());
  CHECK(consul.kv_delete("flotilla/local/leader"));
  check_replayed(replay);
}

TEST_CASE("ConsulClient against recorded Consul: refusals carry Consul's own reason and the status", "[support][consul]") {
  auto replay = ConsulReplay::from_recording("errors");
  const s::ConsulClient consul(replay.url());
  try {
    consul.register_service({{"Name", "x"}, {"Check", {{"TTL", "0s"}}}});
    FAIL("a refused registration did not throw");
  } catch (const s::Refused& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("refused PUT /v1/agent/service/register"));
    CHECK_THAT(std::string(e.what()), Catch::Contains("HTTP 400"));
    CHECK_THAT(std::string(e.what()), Catch::Contains("Invalid check: TTL must be > 0"));
    CHECK(e.status() == 400);
  }
  CHECK_THROWS_WITH(consul.catalog_service("hello-v1"), Catch::Contains("HTTP 500") && Catch::Contains("No cluster leader"));
  check_replayed(replay);
}

TEST_CASE("ConsulClient: an unreachable agent is named with what to check", "[support][consul]") {
  const int port = flotilla::test::discovery::free_port();
  const s::ConsulClient consul("http://127.0.0.1:" + std::to_string(port), {std::chrono::milliseconds(300), std::chrono::milliseconds(800)});
  try {
    (void)consul.agent_services();
    FAIL("an unreachable agent answered");
  } catch (const s::Unreachable& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("Consul agent at http://127.0.0.1:" + std::to_string(port) + " is unreachable") &&
                                          Catch::Contains("consul addon"));
    CHECK(e.cause() == s::Unreachable::Cause::transport);
  }
}
