#include "catalog.hpp"

#include <catch2/catch.hpp>

using namespace flotilla;

TEST_CASE("base64 round-trips and matches the standard alphabet", "[catalog]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("/flotilla/c/services/hello-v1/") == "L2Zsb3RpbGxhL2Mvc2VydmljZXMvaGVsbG8tdjEv");
  const std::string binary("\x00\xff\x10 text\n", 9);
  CHECK(base64_decode(base64_encode(binary)) == binary);
  CHECK(base64_decode("Zm9v\n") == "foo");
}

TEST_CASE("an unreachable catalog is an error that names it", "[catalog]") {
  json q = {{"type", "etcd"}, {"endpoints", "http://127.0.0.1:1"}, {"key", "/x/{name}/"}};
  auto r = query_catalog(q, "hello-v1", std::chrono::milliseconds(500));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("http://127.0.0.1:1"));
  CHECK_FALSE(query_catalog({{"type", "zookeeper"}}, "x", std::chrono::milliseconds(100)));
}
