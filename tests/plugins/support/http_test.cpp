#include "flotilla/support/http.hpp"

#include "flotilla/support/wait.hpp"
#include "support/http_server.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

namespace s = flotilla::support;
namespace fs = std::filesystem;
using flotilla::test::HttpTestServer;
using flotilla::test::ServedRequest;
using flotilla::test::ServedResponse;
using flotilla::test::proc::ScratchDir;
using namespace std::chrono_literals;

TEST_CASE("HttpClient sends method, headers and body and returns status, headers and body", "[support][http]") {
  HttpTestServer server([](const ServedRequest& r) {
    ServedResponse res;
    res.status = r.method == "PUT" ? 201 : 200;
    res.headers["X-Echo-Method"] = r.method;
    res.body = r.method + " " + r.target + " " + r.body;
    return res;
  });
  s::HttpClient client({.headers = {"X-Token: secret"}});
  const auto got = client.get(server.url() + "/v1/thing?x=1");
  CHECK(got.status == 200);
  CHECK(got.body == "GET /v1/thing?x=1 ");
  CHECK(got.header("x-echo-method") == "GET");
  const auto put = client.put(server.url() + "/kv/a", "{\"a\":1}");
  CHECK(put.status == 201);
  CHECK(put.body == "PUT /kv/a {\"a\":1}");
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].headers.at("x-token") == "secret");
  CHECK(requests[1].headers.at("content-type") == "application/json");
  CHECK(requests[1].headers.count("expect") == 0);
  // One client, one connection: the second request reused it.
  CHECK(server.connections() == 1);
}

TEST_CASE("HttpClient's errors carry the status, the body and the URL", "[support][http]") {
  HttpTestServer server([](const ServedRequest&) { return ServedResponse{.status = 404, .body = "no such key\n"}; });
  s::HttpClient client;
  const std::string url = server.url() + "/missing";
  const auto raw = client.send({.url = url});
  CHECK(raw.status == 404);
  CHECK(raw.body == "no such key\n");
  try {
    (void)client.get(url);
    FAIL("a 404 was taken for success");
  } catch (const s::Refused& e) {
    CHECK(e.status() == 404);
    CHECK(e.body() == "no such key\n");
    CHECK(e.url() == url);
    CHECK(std::string(e.what()) == "GET " + url + " answered HTTP 404: no such key");
  }
}

TEST_CASE("HttpClient reports an unreachable server and a timeout, naming the URL", "[support][http]") {
  const std::string closed = "http://127.0.0.1:" + std::to_string(flotilla::test::resources::free_port()) + "/health";
  s::HttpClient client({.timeouts = {500ms, 1000ms}});
  try {
    (void)client.get(closed);
    FAIL("no error from a closed port");
  } catch (const s::Unreachable& e) {
    CHECK(e.cause() == s::Unreachable::Cause::transport);
    CHECK(e.status() == 0);
    CHECK(std::string(e.what()).find("GET " + closed) == 0);
  }
  HttpTestServer slow([](const ServedRequest&) { return ServedResponse{.body = "late", .delay = 1500ms}; });
  try {
    (void)client.send({.url = slow.url() + "/slow", .timeouts = s::HttpTimeouts{500ms, 300ms}});
    FAIL("no timeout");
  } catch (const s::Unreachable& e) {
    CHECK(e.cause() == s::Unreachable::Cause::timeout);
  }
}

TEST_CASE("HttpClient streams a body chunk by chunk and the reader can stop it", "[support][http]") {
  HttpTestServer server([](const ServedRequest&) {
    return ServedResponse{.chunks = {"{\"a\":1}\n", "{\"b\":2}\n", "{\"c\":3}\n", "{\"d\":4}\n"}, .pause = 50ms};
  });
  s::HttpClient client;
  std::vector<std::string> seen;
  const auto r = client.send({.url = server.url() + "/events", .on_chunk = [&](std::string_view c) {
                                seen.emplace_back(c);
                                return true;
                              }});
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  std::string all;
  for (const auto& c : seen) all += c;
  CHECK(all == "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n");
  CHECK(seen.size() >= 2);  // it did arrive in pieces
  int calls = 0;
  const auto stopped = client.send({.url = server.url() + "/events", .on_chunk = [&](std::string_view) { return ++calls < 2; }});
  CHECK(stopped.status == 200);
  CHECK(calls == 2);
}

TEST_CASE("HttpClient stops a long stream when the host cancels", "[support][http]") {
  HttpTestServer server([](const ServedRequest&) {
    return ServedResponse{.chunks = std::vector<std::string>(100, "tick\n"), .pause = 100ms};
  });
  std::atomic<bool> cancel{false};
  std::atomic<int> chunks{0};
  s::HttpClient client({.timeouts = {1000ms, 0ms}, .cancelled = [&] { return cancel.load(); }});
  // The host cancels once the stream is under way (the first chunk came).
  std::thread canceller([&] {
    (void)s::wait_until(10s, 10ms, [&] { return chunks > 0; });
    cancel = true;
  });
  try {
    (void)client.send({.url = server.url() + "/logs?follow=1", .on_chunk = [&](std::string_view) {
                         ++chunks;
                         return true;
                       }});
    FAIL("a cancelled stream ran to its end");
  } catch (const s::Unreachable& e) {
    CHECK(e.cause() == s::Unreachable::Cause::cancelled);
    CHECK(std::string(e.what()).find("cancelled") != std::string::npos);
  }
  canceller.join();
  CHECK(chunks > 0);
  CHECK(chunks < 100);  // stopped mid-stream, not at its end
  CHECK_THROWS_AS(client.get(server.url() + "/again"), s::Unreachable);  // still cancelled: not even sent
}

TEST_CASE("HttpClient talks HTTP over a unix socket", "[support][http]") {
  ScratchDir dir("flotilla-support-http");
  const fs::path sock = dir.path() / "api.sock";
  HttpTestServer server(sock, [](const ServedRequest& r) {
    return ServedResponse{.body = "{\"host\":\"" + r.headers.at("host") + "\",\"path\":\"" + r.target + "\"}"};
  });
  s::HttpClient client({.unix_socket = sock});
  CHECK(client.get("http://localhost/v1.43/version").body == "{\"host\":\"localhost\",\"path\":\"/v1.43/version\"}");
  CHECK(client.get("http://localhost/_ping").status == 200);
  CHECK(server.connections() == 1);
  s::HttpClient nowhere({.unix_socket = dir.path() / "absent.sock"});
  CHECK_THROWS_WITH(nowhere.get("http://localhost/_ping"), Catch::Contains("absent.sock"));
}

TEST_CASE("url_encode keeps unreserved characters and escapes the rest", "[support][http]") {
  CHECK(s::url_encode("abc-_.~XYZ09") == "abc-_.~XYZ09");
  CHECK(s::url_encode("a b/c?d=é") == "a%20b%2Fc%3Fd%3D%C3%A9");
}
