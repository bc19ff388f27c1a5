// The registrator's model (desired entries from an addon request) and its sync algorithm
// against a real etcd: adds, updates, removes stale and stray entries, leases per node.
#include "addon_registrator/catalog.hpp"
#include "support/discovery_servers.hpp"

#include <catch2/catch.hpp>

namespace d = flotilla::discovery;
namespace support = flotilla::support;
using flotilla::test::discovery::EtcdServer;
using nlohmann::json;

namespace {

json instance(const std::string& id, int n, const std::string& node, const std::string& address, int port) {
  return {{"id", id}, {"instance", n}, {"node", node}, {"address", address}, {"port", port}, {"state", "running"}};
}

json request_with(json instances, json addons = json::object()) {
  return {{"addon", {{"name", "registrator"}, {"nodes", {"infra"}}}},
          {"cluster", {{"name", "local"}}},
          {"nodes",
           {{{"name", "infra"}, {"address", "127.77.0.1"}},
            {{"name", "swarm-1"}, {"address", "127.77.0.2"}},
            {{"name", "swarm-2"}, {"address", "127.77.0.3"}}}},
          {"services", {{{"name", "hello/v1"}, {"dns", "hello-v1"}, {"port", 8000}, {"health", "/health"}, {"instances", instances}}}},
          {"addons", addons}};
}

json three_instances() {
  return {instance("hello/v1#1", 1, "swarm-1", "127.77.0.2", 8000), instance("hello/v1#2", 2, "swarm-2", "127.77.0.3", 8000),
          instance("hello/v1#3", 3, "swarm-1", "127.77.0.2", 8001)};
}

json haproxy_view() {
  return {{"haproxy",
           {{"plugin", "haproxy"},
            {"provides", {"ingress"}},
            {"outputs", {{"registrations", {{{"name", "rest"}, {"address", "127.77.0.2"}, {"port", 8080}, {"health", "/health"}}}}}}}}};
}

}  // namespace

TEST_CASE("desired registrations cover every instance and every addon registration", "[discovery][registrator]") {
  const auto regs = d::desired_registrations(request_with(three_instances(), haproxy_view()), "infra");
  REQUIRE(regs.size() == 4);
  // Sorted by name, then id.
  CHECK(regs[0].id == "hello-v1-1");
  CHECK(regs[0].name == "hello-v1");
  CHECK(regs[0].service == "hello/v1");
  CHECK(regs[0].node == "swarm-1");
  CHECK(regs[0].address == "127.77.0.2");
  CHECK(regs[0].port == 8000);
  CHECK(regs[0].health == "/health");
  CHECK(regs[2].id == "hello-v1-3");
  CHECK(regs[2].port == 8001);
  // The component's node comes from its address.
  CHECK(regs[3].name == "rest");
  CHECK(regs[3].id == "rest-swarm-1");
  CHECK(regs[3].node == "swarm-1");
  CHECK(regs[3].source == "addon:haproxy");
  CHECK(std::find(regs[3].tags.begin(), regs[3].tags.end(), "addon=haproxy") != regs[3].tags.end());
}

TEST_CASE("a service name that is no DNS label is refused with a message saying what to change", "[discovery][registrator]") {
  json req = request_with(three_instances());
  req["services"][0]["name"] = "Hello_v1";
  req["services"][0].erase("dns");
  try {
    (void)d::desired_registrations(req, "infra");
    FAIL("an invalid DNS label was accepted");
  } catch (const d::InvalidName& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("service \"Hello_v1\""));
    CHECK_THAT(msg, Catch::Contains("\"Hello-v1\" is not a valid DNS label"));
    CHECK_THAT(msg, Catch::Contains("rename"));
  }
  json addons = haproxy_view();
  addons["haproxy"]["outputs"]["registrations"][0]["name"] = "Rest";
  CHECK_THROWS_WITH(d::desired_registrations(request_with(three_instances(), addons), "infra"),
                    Catch::Contains("registration \"Rest\" of addon \"haproxy\": \"Rest\" is not a valid DNS label"));
  CHECK(d::dns_name("hello/v1") == "hello-v1");
  CHECK(d::dns_name("hello_v1") == "hello-v1");
  CHECK(d::is_dns_label("hello-v1"));
  CHECK(d::is_dns_label("rest"));
  CHECK_FALSE(d::is_dns_label("-rest"));
  CHECK_FALSE(d::is_dns_label("rest-"));
  CHECK_FALSE(d::is_dns_label(std::string(64, 'a')));
  CHECK_FALSE(d::is_dns_label(""));
  CHECK(d::is_dns_domain("service.consul"));
  CHECK_FALSE(d::is_dns_domain("bad..domain"));
}

TEST_CASE("two entries with one ID are refused", "[discovery][registrator]") {
  json addons = haproxy_view();
  addons["other"] = {{"plugin", "x"}, {"outputs", {{"registrations", {{{"name", "rest"}, {"id", "rest-swarm-1"}, {"address", "127.77.0.3"}, {"port", 1}}}}}}};
  CHECK_THROWS_WITH(d::desired_registrations(request_with(three_instances(), addons), "infra"),
                    Catch::Contains("two catalog entries have the ID \"rest-swarm-1\""));
}

TEST_CASE("registrator sync against a real etcd adds, updates, removes stale and stray entries", "[discovery][registrator][etcd]") {
  EtcdServer server;
  support::EtcdClient etcd(server.endpoint());
  const std::string prefix = d::services_prefix("/flotilla", "local");
  CHECK(prefix == "/flotilla/local/services/");
  std::map<std::string, std::int64_t> leases = {{"swarm-1", etcd.lease_grant(60)}, {"swarm-2", etcd.lease_grant(60)}};
  auto lease_of = [&](const std::string& node) { return leases.at(node); };

  // First sync: everything is new.
  auto desired = d::desired_registrations(request_with(three_instances(), haproxy_view()), "infra");
  auto report = d::sync_etcd(etcd, prefix, desired, lease_of);
  CHECK(report.added == 4);
  CHECK(report.removed == 0);
  auto kvs = etcd.range_prefix(prefix);
  REQUIRE(kvs.size() == 4);
  CHECK(kvs[0].key == "/flotilla/local/services/hello-v1/hello-v1-1");
  CHECK(kvs[0].lease == leases["swarm-1"]);
  const json v = json::parse(kvs[1].value);
  CHECK(v["address"] == "127.77.0.3");
  CHECK(v["port"] == 8000);
  CHECK(v["node"] == "swarm-2");
  CHECK(v["health"] == "/health");
  CHECK(kvs[1].lease == leases["swarm-2"]);

  // Same input again: nothing written.
  const auto rev_before = etcd.get(kvs[0].key)->mod_revision;
  report = d::sync_etcd(etcd, prefix, desired, lease_of);
  CHECK(report.unchanged == 4);
  CHECK_FALSE(report.changed());
  CHECK(etcd.get(kvs[0].key)->mod_revision == rev_before);

  // A stray manual entry under the prefix, a stale entry of a gone instance, another cluster's
  // entry outside the prefix; and instance 3 moved port (an update), instance 2 scaled in.
  etcd.put(prefix + "hello-v1/manual", R"({"address":"10.0.0.1"})");
  etcd.put(prefix + "old-service/old-1", "{}");
  etcd.put("/flotilla/staging/services/hello-v1/x", "{}");
  json instances = three_instances();
  instances.erase(1);
  instances[1]["port"] = 8002;
  desired = d::desired_registrations(request_with(instances, haproxy_view()), "infra");
  report = d::sync_etcd(etcd, prefix, desired, lease_of);
  CHECK(report.added == 0);
  CHECK(report.updated == 1);
  CHECK(report.removed == 3);
  CHECK(report.unchanged == 2);
  std::sort(report.removed_ids.begin(), report.removed_ids.end());
  CHECK(report.removed_ids == std::vector<std::string>{"hello-v1/hello-v1-2", "hello-v1/manual", "old-service/old-1"});

  const auto catalog = d::read_etcd_catalog(etcd, prefix);
  REQUIRE(catalog.size() == desired.size());
  for (size_t i = 0; i < desired.size(); ++i) CHECK(catalog[i] == desired[i]);
  CHECK(etcd.get("/flotilla/staging/services/hello-v1/x").has_value());

  // A node's lease expiring takes exactly that node's entries.
  etcd.lease_revoke(leases["swarm-1"]);
  CHECK(d::read_etcd_catalog(etcd, prefix).empty());  // all remaining entries were on swarm-1
}

TEST_CASE("a moved entry is re-written onto its new node's lease", "[discovery][registrator][etcd]") {
  EtcdServer server;
  support::EtcdClient etcd(server.endpoint());
  const std::string prefix = d::services_prefix("/flotilla", "local");
  std::map<std::string, std::int64_t> leases = {{"swarm-1", etcd.lease_grant(60)}, {"swarm-2", etcd.lease_grant(60)}};
  json instances = {instance("hello/v1#1", 1, "swarm-1", "127.77.0.2", 8000)};
  (void)d::sync_etcd(etcd, prefix, d::desired_registrations(request_with(instances), "infra"), [&](auto& n) { return leases.at(n); });
  instances[0]["node"] = "swarm-2";
  instances[0]["address"] = "127.77.0.3";
  const auto report = d::sync_etcd(etcd, prefix, d::desired_registrations(request_with(instances), "infra"),
                                   [&](auto& n) { return leases.at(n); });
  CHECK(report.updated == 1);
  CHECK(etcd.get(prefix + "hello-v1/hello-v1-1")->lease == leases["swarm-2"]);
}

TEST_CASE("registrator sync reports an unreachable etcd instead of half-applying", "[discovery][registrator][etcd]") {
  support::EtcdClient etcd("http://127.0.0.1:" + std::to_string(flotilla::test::discovery::free_port()),
                     {std::chrono::milliseconds(300), std::chrono::milliseconds(800)});
  const auto desired = d::desired_registrations(request_with(three_instances()), "infra");
  CHECK_THROWS_AS(d::sync_etcd(etcd, "/flotilla/local/services/", desired, [](auto&) { return std::int64_t{0}; }), support::Unreachable);
}
