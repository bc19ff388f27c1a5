#include "catalog.hpp"

#include <catch2/catch.hpp>

using namespace flotilla;

TEST_CASE("an unreachable catalog is an error that names it", "[catalog]") {
  json q = {{"type", "etcd"}, {"endpoints", "http://127.0.0.1:1"}, {"key", "/x/{name}/"}};
  auto r = query_catalog(q, "hello-v1", std::chrono::milliseconds(500));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("http://127.0.0.1:1"));
  CHECK_FALSE(query_catalog({{"type", "zookeeper"}}, "x", std::chrono::milliseconds(100)));
}
