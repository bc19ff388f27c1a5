// The etcd v3 gateway client against a real etcd 3.4 started by the test.
#include "etcd_client.hpp"
#include "support/discovery_servers.hpp"

#include <catch2/catch.hpp>

#include <thread>

namespace d = flotilla::discovery;
using flotilla::test::discovery::EtcdServer;
using flotilla::test::discovery::free_port;
using flotilla::test::discovery::wait_for;

TEST_CASE("base64 round-trips every byte value and matches RFC 4648 vectors", "[discovery][etcd]") {
  CHECK(d::base64_encode("") == "");
  CHECK(d::base64_encode("f") == "Zg==");
  CHECK(d::base64_encode("fo") == "Zm8=");
  CHECK(d::base64_encode("foo") == "Zm9v");
  CHECK(d::base64_encode("foobar") == "Zm9vYmFy");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  CHECK(d::base64_decode(d::base64_encode(all)) == all);
  CHECK_THROWS_AS(d::base64_decode("Zm9v!"), d::Refused);
}

TEST_CASE("prefix range end is the prefix with its last byte incremented", "[discovery][etcd]") {
  CHECK(d::prefix_range_end("foo") == "fop");
  CHECK(d::prefix_range_end("/flotilla/local/services/") == "/flotilla/local/services0");
  CHECK(d::prefix_range_end(std::string("a\xff", 2)) == "b");
}

TEST_CASE("etcd client puts, reads, lists by prefix and deletes against a real etcd", "[discovery][etcd]") {
  EtcdServer server;
  d::EtcdClient etcd(server.endpoint());
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

TEST_CASE("etcd leases: keys vanish when a lease expires, live on while kept alive, go at revoke", "[discovery][etcd]") {
  EtcdServer server;
  d::EtcdClient etcd(server.endpoint());

  const auto short_lease = etcd.lease_grant(2);
  const auto kept_lease = etcd.lease_grant(2);
  REQUIRE(short_lease != kept_lease);
  CHECK(etcd.lease_ttl(short_lease) > 0);
  etcd.put("/t/expiring", "x", short_lease);
  etcd.put("/t/kept", "y", kept_lease);
  CHECK(etcd.get("/t/expiring")->lease == short_lease);

  // Renew one lease every 500 ms for 4.5 s: the other, never renewed, must expire meanwhile.
  const auto start = std::chrono::steady_clock::now();
  bool expired_seen = false;
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(4500)) {
    CHECK(etcd.lease_keepalive_once(kept_lease) == 2);
    if (!etcd.get("/t/expiring")) expired_seen = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  CHECK(expired_seen);
  CHECK(etcd.lease_ttl(short_lease) == -1);
  CHECK(etcd.get("/t/kept").has_value());

  etcd.lease_revoke(kept_lease);
  CHECK_FALSE(etcd.get("/t/kept").has_value());
  CHECK_NOTHROW(etcd.lease_revoke(kept_lease));  // already gone is fine
  CHECK(etcd.lease_keepalive_once(kept_lease) == 0);
}

TEST_CASE("etcd client reports an unreachable backend with the endpoint and what to check", "[discovery][etcd]") {
  const int port = free_port();  // nothing listens there
  d::EtcdClient etcd("http://127.0.0.1:" + std::to_string(port), {std::chrono::milliseconds(300), std::chrono::milliseconds(800)});
  CHECK_FALSE(etcd.healthy());
  try {
    etcd.put("/k", "v");
    FAIL("put to an unreachable etcd succeeded");
  } catch (const d::Unreachable& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("etcd is unreachable at http://127.0.0.1:" + std::to_string(port)));
    CHECK_THAT(msg, Catch::Contains("flotilla status"));
  }
}

TEST_CASE("etcd client fails over to the next endpoint when the first is down", "[discovery][etcd]") {
  EtcdServer server;
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  d::EtcdClient etcd(dead + "," + server.endpoint(), {std::chrono::milliseconds(300), std::chrono::milliseconds(1000)});
  etcd.put("/failover", "ok");
  CHECK(etcd.get("/failover")->value == "ok");
}

TEST_CASE("etcd refusing a write gives a clear error naming etcd's reason", "[discovery][etcd]") {
  // A real refusal: etcd limits request size, and rejects keys on a lease it does not know.
  EtcdServer server({"--max-request-bytes=2048"});
  d::EtcdClient etcd(server.endpoint());
  try {
    etcd.put("/big", std::string(8192, 'x'));
    FAIL("etcd accepted a request over --max-request-bytes");
  } catch (const d::Refused& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("etcd at " + server.endpoint() + " refused /v3/kv/put"));
    CHECK_THAT(msg, Catch::Contains("too large"));
  }
  try {
    etcd.put("/leased", "x", 0x1234567);
    FAIL("etcd accepted a key on an unknown lease");
  } catch (const d::Refused& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("lease not found"));
  }
}
