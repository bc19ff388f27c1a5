// The etcd addon's `enable_v2` option, run for real: Debian's etcd (3.4) as a process-runtime
// member, applied through the addon's C ABI with the real `process` runtime plugin. etcd 3.4
// serves its v2 API only with --enable-v2=true (the default changed to false in 3.4, see
// etcd's CHANGELOG-3.4 and `etcd --help`: "--enable-v2 ... Accept etcd V2 client requests");
// gliderlabs/registrator's etcd backend speaks only v2, which is why the option exists.
#include "flotilla/support/etcd_client.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/process.hpp"
#include "support/discovery_servers.hpp"
#include "support/docker_addon_host.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <chrono>

namespace {

namespace s = flotilla::support;
using flotilla::test::call_ok;
using flotilla::test::DockerAddonHost;
using nlohmann::json;
using namespace std::chrono_literals;

s::HttpResponse send(const std::string& method, const std::string& url, const std::string& body = {}) {
  s::HttpClient http({.timeouts = {2000ms, 5000ms}});
  return http.send({.method = method, .url = url, .body = body, .content_type = "application/x-www-form-urlencoded"});
}

}  // namespace

TEST_CASE("etcd addon enable_v2 on a real etcd: the v2 keys API answers with it and not without it", "[etcd][discovery][integration]") {
  if (!s::find_executable("etcd")) FLOTILLA_SKIP("etcd is not installed; scripts/install-deps.sh installs it (Debian etcd-server)");
  flotilla::test::discovery::TempDir dir("flotilla-etcd-v2");
  const std::string address = flotilla::test::resources::process_subnet("etcd-v2").address(1);
  const json nodes = json::array({{{"name", "infra"}, {"address", address}, {"roles", {"infra"}}, {"runtime", "process"},
                                   {"workdir", (dir.path() / "nodes" / "infra").string()}, {"state", "running"}}});
  DockerAddonHost host("addon_etcd", "etcd", nodes);
  const std::string url = "http://" + address + ":2379";

  SECTION("enable_v2 = true: GET and PUT on /v2/keys, and the v3 API still serves") {
    const json req = host.request({{"enable_v2", true}}, {"infra"}, (dir.path() / "addon").string());
    const json result = json::parse(call_ok(host, "apply", req));
    CHECK(result["outputs"]["v2_api"] == true);
    const auto put = send("PUT", url + "/v2/keys/flotilla/v2-test", "value=from-v2");
    INFO(put.body);
    CHECK(put.status == 201);
    const auto got = send("GET", url + "/v2/keys/flotilla/v2-test");
    REQUIRE(got.status == 200);
    const json doc = json::parse(got.body);
    CHECK(doc["action"] == "get");
    CHECK(doc["node"]["value"] == "from-v2");
    CHECK(s::EtcdClient(url).healthy());
    (void)call_ok(host, "destroy", req);
  }

  SECTION("the default: /v2/keys is not served, the v3 API is") {
    const json req = host.request(json::object(), {"infra"}, (dir.path() / "addon").string());
    const json result = json::parse(call_ok(host, "apply", req));
    CHECK(result["outputs"]["v2_api"] == false);
    const auto got = send("GET", url + "/v2/keys");
    INFO(got.body);
    CHECK(got.status == 404);
    CHECK(s::EtcdClient(url).healthy());
    (void)call_ok(host, "destroy", req);
  }
}
