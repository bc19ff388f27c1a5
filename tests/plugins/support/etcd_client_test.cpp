// The etcd v3 gateway client against a real etcd 3.4 started by the test.
#include "flotilla/support/etcd_client.hpp"

#include "flotilla/support/encoding.hpp"
#include "support/discovery_servers.hpp"
#include "support/http_server.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

namespace s = flotilla::support;
using flotilla::test::discovery::EtcdServer;
using flotilla::test::discovery::free_port;
using flotilla::test::HttpTestServer;
using flotilla::test::ServedRequest;
using flotilla::test::ServedResponse;

namespace {
/// What etcd 3.4's gateway answers while its cluster has no leader.
ServedResponse no_leader() { return {.status = 503, .body = R"({"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"})"}; }
}  // namespace

TEST_CASE("EtcdClient: the prefix range end is the prefix with its last byte incremented", "[support][etcd]") {
  CHECK(s::prefix_range_end("foo") == "fop");
  CHECK(s::prefix_range_end("/flotilla/local/services/") == "/flotilla/local/services0");
  CHECK(s::prefix_range_end(std::string("a\xff", 2)) == "b");
  CHECK(s::prefix_range_end(std::string("\xff", 1)) == std::string(1, '\0'));
  CHECK(s::lease_hex(0x694d7a1b2c3d4e5f) == "694d7a1b2c3d4e5f");
  CHECK(s::json_int64({{"ID", "7587869513522532360"}}, "ID") == 7587869513522532360);
  CHECK(s::json_int64({{"TTL", -1}}, "TTL") == -1);
  CHECK(s::json_int64({{"other", 1}}, "TTL") == 0);
  CHECK_THROWS_AS(s::json_int64({{"ID", "x1"}}, "ID"), s::Refused);
  CHECK_THROWS_AS(s::EtcdClient(" , "), std::invalid_argument);
}

TEST_CASE("EtcdClient puts, reads, lists by prefix and deletes against a real etcd", "[support][etcd]") {
  EtcdServer server;
  const s::EtcdClient etcd(server.endpoint() + "/");
  CHECK(etcd.endpoint_list() == server.endpoint());
  REQUIRE(etcd.healthy());

  etcd.put("/t/services/a/1", R"({"x":1})");
  etcd.put("/t/services/a/2", "two");
  etcd.put("/t/services/b/1", std::string("bin\0ary", 7));
  etcd.put("/t/other", "outside");

  const auto one = etcd.get("/t/services/a/1");
  REQUIRE(one.has_value());
  CHECK(one->value == R"({"x":1})");
  CHECK(one->lease == 0);
  CHECK(one->mod_revision > 0);
  CHECK_FALSE(etcd.get("/t/missing").has_value());

  const auto listed = etcd.range_prefix("/t/services/");
  REQUIRE(listed.size() == 3);
  CHECK(listed[0].key == "/t/services/a/1");
  CHECK(listed[1].key == "/t/services/a/2");
  CHECK(listed[2].key == "/t/services/b/1");
  CHECK(listed[2].value == std::string("bin\0ary", 7));

  CHECK(etcd.erase("/t/services/a/2") == 1);
  CHECK(etcd.erase("/t/services/a/2") == 0);
  CHECK(etcd.erase_prefix("/t/services/") == 2);
  CHECK(etcd.range_prefix("/t/services/").empty());
  CHECK(etcd.get("/t/other")->value == "outside");
}

TEST_CASE("EtcdClient leases: keys vanish when a lease expires, live on while kept alive, go at revoke", "[support][etcd]") {
  EtcdServer server;
  const s::EtcdClient etcd(server.endpoint());

  const auto short_lease = etcd.lease_grant(2);
  const auto kept_lease = etcd.lease_grant(2);
  REQUIRE(short_lease != kept_lease);
  CHECK(etcd.lease_ttl(short_lease) > 0);
  etcd.put("/t/expiring", "x", short_lease);
  etcd.put("/t/kept", "y", kept_lease);
  CHECK(etcd.get("/t/expiring")->lease == short_lease);

  // Renew one lease every 500 ms until the other, never renewed, has expired (its 2 s TTL and
  // etcd's expiry sweep; 15 s at most).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  bool expired_seen = false;
  while (!expired_seen && std::chrono::steady_clock::now() < deadline) {
    CHECK(etcd.lease_keepalive_once(kept_lease) == 2);
    expired_seen = !etcd.get("/t/expiring");
    if (!expired_seen) std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the renewal cadence
  }
  INFO("awaited: /t/expiring gone with its 2 s lease while the other lease was renewed");
  CHECK(expired_seen);
  CHECK(etcd.lease_keepalive_once(kept_lease) == 2);
  CHECK(etcd.lease_ttl(short_lease) == -1);
  CHECK(etcd.get("/t/kept").has_value());

  etcd.lease_revoke(kept_lease);
  CHECK_FALSE(etcd.get("/t/kept").has_value());
  CHECK_NOTHROW(etcd.lease_revoke(kept_lease));  // already gone is fine
  CHECK(etcd.lease_keepalive_once(kept_lease) == 0);
}

TEST_CASE("EtcdClient reports an unreachable backend with the endpoint and what to check", "[support][etcd]") {
  const int port = free_port();  // nothing listens there
  const s::EtcdClient etcd("http://127.0.0.1:" + std::to_string(port), {std::chrono::milliseconds(300), std::chrono::milliseconds(800)});
  CHECK_FALSE(etcd.healthy());
  try {
    etcd.put("/k", "v");
    FAIL("put to an unreachable etcd succeeded");
  } catch (const s::Unreachable& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("etcd is unreachable at http://127.0.0.1:" + std::to_string(port)));
    CHECK_THAT(msg, Catch::Contains("flotilla status"));
  }
}

TEST_CASE("EtcdClient fails over to the next endpoint when the first is down", "[support][etcd]") {
  EtcdServer server;
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  const s::EtcdClient etcd(std::vector<std::string>{dead, server.endpoint()},
                           {std::chrono::milliseconds(300), std::chrono::milliseconds(1000)});
  etcd.put("/failover", "ok");
  CHECK(etcd.get("/failover")->value == "ok");
}

TEST_CASE("EtcdClient: etcd refusing a write gives a clear error naming etcd's reason and status", "[support][etcd]") {
  // A real refusal: etcd limits request size, and rejects keys on a lease it does not know.
  EtcdServer server({"--max-request-bytes=2048"});
  const s::EtcdClient etcd(server.endpoint());
  try {
    etcd.put("/big", std::string(8192, 'x'));
    FAIL("etcd accepted a request over --max-request-bytes");
  } catch (const s::Refused& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("etcd at " + server.endpoint() + " refused /v3/kv/put"));
    CHECK_THAT(msg, Catch::Contains("too large"));
    CHECK(e.status() >= 400);
    CHECK(e.url() == server.endpoint() + "/v3/kv/put");
  }
  try {
    etcd.put("/leased", "x", 0x1234567);
    FAIL("etcd accepted a key on an unknown lease");
  } catch (const s::Refused& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("lease not found"));
  }
}

TEST_CASE("EtcdClient sends a request refused for want of a leader to the next member (stand-in member mid-election)", "[support][etcd]") {
  EtcdServer server;
  HttpTestServer electing([](const ServedRequest&) { return no_leader(); });
  const s::EtcdClient etcd(std::vector<std::string>{electing.url(), server.endpoint()});
  etcd.put("/elected", "yes");
  CHECK(etcd.get("/elected")->value == "yes");
  CHECK(electing.requests().size() == 1);  // the member that answered stays preferred
}

TEST_CASE("EtcdClient retries while every member is mid-election, then gives etcd's reason (stand-in members)", "[support][etcd]") {
  std::atomic<int> answered{0};
  HttpTestServer member([&](const ServedRequest&) -> ServedResponse {
    if (++answered <= 2) return no_leader();
    return {.body = R"({"header":{},"kvs":[{"key":")" + s::base64_encode("/k") + R"(","value":")" + s::base64_encode("v") + R"("}],"count":"1"})"};
  });
  const s::EtcdClient etcd(member.url());
  const auto kv = etcd.get("/k");
  REQUIRE(kv.has_value());
  CHECK(kv->value == "v");
  CHECK(answered == 3);

  HttpTestServer leaderless([](const ServedRequest&) { return no_leader(); });
  const s::EtcdClient stuck(leaderless.url());
  try {
    stuck.put("/k", "v");
    FAIL("a put to a cluster without a leader succeeded");
  } catch (const s::Refused& e) {
    CHECK(e.status() == 503);
    CHECK_THAT(std::string(e.what()), Catch::Contains("refused /v3/kv/put (HTTP 503): etcdserver: no leader"));
  }
  CHECK(leaderless.requests().size() > 1);
}
