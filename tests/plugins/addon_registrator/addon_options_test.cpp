// The syslog, registrator, etcd and consul addons declare their options once: the manifest's
// schema carries the defaults and limits, and validate reports a bad option against its key.
#include "support/plugin_harness.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

using flotilla::test::PluginHarness;
using nlohmann::json;

json request(const std::string& addon, const json& config) {
  return {{"cluster", {{"name", "opts"}}},
          {"addon", {{"name", addon}, {"config", config}, {"nodes", json::array({"infra-1"})}, {"dir", "/tmp/opts"}}},
          {"nodes", json::array({{{"name", "infra-1"}, {"roles", {"infra"}}, {"address", "127.0.0.1"}, {"runtime", "process"}}})},
          {"services", json::array()}};
}

/// The message validate gives for `key`, or "" when it reports nothing against that key.
std::string problem(const std::string& stem, const std::string& addon, const json& config, const std::string& key) {
  PluginHarness plugin(stem);
  const auto out = plugin.call("validate", request(addon, config));
  INFO(out.describe());
  REQUIRE(out.ok());
  for (const auto& e : out.result["errors"])
    if (e.value("key", "") == key) return e.value("message", "");
  return "";
}

}  // namespace

TEST_CASE("the discovery and log addons' manifests carry their options' defaults and limits", "[addon-options]") {
  const json syslog = PluginHarness("addon_syslog").manifest()["schema"];
  CHECK(syslog["port"]["default"] == 2514);
  CHECK(syslog["port"]["maximum"] == 65535);
  CHECK(syslog["max_file_size"]["default"] == "100M");
  CHECK(syslog["queue_max_disk_space"]["default"] == "1G");
  CHECK(syslog["roles"]["type"] == "array");
  const json registrator = PluginHarness("addon_registrator").manifest()["schema"];
  CHECK(registrator["ttl"]["minimum"] == 2);
  CHECK(registrator["ttl"]["maximum"] == 3600);
  CHECK(registrator["backend"]["enum"] == json::array({"auto", "etcd", "consul"}));
  const json etcd = PluginHarness("addon_etcd").manifest()["schema"];
  CHECK(etcd["members"]["enum"] == json::array({1, 3, 5}));
  CHECK(etcd["client_port"]["default"] == 2379);
  const json consul = PluginHarness("addon_consul").manifest()["schema"];
  CHECK(consul["servers"]["enum"] == json::array({1, 3}));
  CHECK(consul["image"]["default"] == "hashicorp/consul:1.17");
}

TEST_CASE("the discovery and log addons report a bad option against its key", "[addon-options]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(problem("addon_syslog", "syslog", {{"port", 70000}}, "port"), Contains("at most 65535"));
  CHECK_THAT(problem("addon_syslog", "syslog", {{"max_file_size", "1K"}}, "max_file_size"), Contains("smaller than 4K"));
  CHECK_THAT(problem("addon_syslog", "syslog", {{"queue_max_disk_space", "lots"}}, "queue_max_disk_space"),
             Contains("K, M or G"));
  CHECK(problem("addon_syslog", "syslog", {{"max_file_size", "4K"}, {"queue_max_disk_space", "1M"}}, "max_file_size").empty());
  CHECK_THAT(problem("addon_registrator", "registrator", {{"ttl", 1}}, "ttl"), Contains("at least 2"));
  CHECK_THAT(problem("addon_registrator", "registrator", {{"prefix", "flotilla"}}, "prefix"), Contains("pattern"));
  CHECK_THAT(problem("addon_registrator", "registrator", {{"domain", "no domain"}}, "domain"), Contains("not a DNS domain"));
  CHECK(problem("addon_registrator", "registrator", {{"ttl", 10}}, "ttl").empty());
  CHECK_THAT(problem("addon_etcd", "etcd", {{"client_port", 0}}, "client_port"), Contains("at least 1"));
  CHECK_THAT(problem("addon_etcd", "etcd", {{"client_port", 2380}}, "peer_port"), Contains("different ports"));
  CHECK_THAT(problem("addon_consul", "consul", {{"servers", 2}}, "servers"), Contains("one of 1, 3"));
  CHECK_THAT(problem("addon_consul", "consul", {{"http_port", 99999}}, "http_port"), Contains("at most 65535"));
}
