#include "flotilla/support/http_wait.hpp"

#include "support/http_server.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

namespace s = flotilla::support;
using flotilla::test::HttpTestServer;
using flotilla::test::ServedRequest;
using flotilla::test::ServedResponse;
using namespace std::chrono_literals;

TEST_CASE("wait_for_http polls until an answer of 200 is accepted, through errors and refusals", "[support][http]") {
  std::atomic<int> served{0};
  HttpTestServer server([&](const ServedRequest&) {
    const int n = ++served;
    if (n <= 2) return ServedResponse{.status = 503, .body = "starting"};
    return ServedResponse{.body = n <= 3 ? "{\"ready\":false}" : "{\"ready\":true}"};
  });
  s::HttpClient client;
  std::vector<std::string> seen;
  const auto r = s::wait_for_http(client, server.url() + "/ready", 10s, 10ms, [&](const std::string& body) {
    seen.push_back(body);
    return body == "{\"ready\":true}";
  });
  CHECK(r.ok);
  CHECK(r.last_answer.empty());
  CHECK(served == 4);
  // Only the answers of status 200 reach the predicate.
  CHECK(seen == std::vector<std::string>{"{\"ready\":false}", "{\"ready\":true}"});
}

TEST_CASE("wait_for_http returns the last answer it saw when the deadline passes or the caller cancels", "[support][http]") {
  SECTION("an answer never accepted") {
    HttpTestServer server([](const ServedRequest&) { return ServedResponse{.status = 503, .body = std::string(300, 'x')}; });
    s::HttpClient client;
    const auto r = s::wait_for_http(client, server.url() + "/ready", 200ms, 20ms, [](const std::string&) { return true; });
    CHECK_FALSE(r.ok);
    CHECK(r.last_answer == "HTTP 503: " + std::string(200, 'x'));  // the body cut at 200 bytes
  }
  SECTION("nothing listening: why nothing answered, naming the URL") {
    const std::string url = "http://127.0.0.1:" + std::to_string(flotilla::test::resources::free_port()) + "/ready";
    s::HttpClient client({.timeouts = {1000ms, 1000ms}});
    const auto r = s::wait_for_http(client, url, 200ms, 20ms, [](const std::string&) { return true; });
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.last_answer, Catch::Contains(url));
  }
  SECTION("cancelled after the first try: that try's answer") {
    std::atomic<int> served{0};
    HttpTestServer server([&](const ServedRequest&) {
      ++served;
      return ServedResponse{.body = "not yet"};
    });
    s::HttpClient client;
    const auto r = s::wait_for_http(client, server.url() + "/ready", 60s, 10ms, [](const std::string& body) { return body == "ready"; },
                                    [&] { return served > 0; });
    CHECK_FALSE(r.ok);
    CHECK(r.last_answer == "HTTP 200: not yet");
    CHECK(server.requests().size() == 1);
  }
  SECTION("a predicate that throws ends the wait with its exception") {
    HttpTestServer server([](const ServedRequest&) { return ServedResponse{.body = "rejected"}; });
    s::HttpClient client;
    CHECK_THROWS_WITH(s::wait_for_http(client, server.url() + "/ready", 10s, 10ms,
                                       [](const std::string& body) -> bool { throw std::runtime_error("the server says " + body); }),
                      "the server says rejected");
  }
}
