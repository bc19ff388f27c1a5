// The registrator's node leases against a real etcd, on the engine's own addon host (real
// process runtime, real etcdctl keepalives): a lease that expires while its keepalive starts
// (a keepalive container slower to start than `ttl`, say) is granted again, and a lease that
// keeps expiring is an error naming `ttl`. The expiry is made, not awaited: the host revokes
// the lease just before the keepalive starts, which is what etcd does to a lease nobody renewed.
#include "support/discovery_servers.hpp"
#include "support/engine_addon_host.hpp"
#include "support/test_resources.hpp"

#include <flotilla/support/etcd_client.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <tuple>

using flotilla::test::EngineAddonHost;
using json = nlohmann::json;
using namespace Catch::Matchers;
namespace disc = flotilla::test::discovery;

namespace {

/// The engine's addon host, except that the first `expiries` keepalive starts find their lease
/// already gone from etcd.
class ExpiringLeaseHost final : public EngineAddonHost {
 public:
  ExpiringLeaseHost(std::filesystem::path root, const std::string& cidr, std::string etcd, int expiries)
      : EngineAddonHost("registrator", std::move(root), cidr, 2), etcd_(std::move(etcd)), expiries_(expiries) {}
  int revoked = 0;

 protected:
  void before_start(json& workload) override {
    if (workload.value("name", "") != "keepalive" || revoked >= expiries_) return;
    const std::string hex = workload["command"].back().get<std::string>();  // etcdctl lease keep-alive HEX
    flotilla::support::EtcdClient(etcd_).lease_revoke(static_cast<std::int64_t>(std::stoull(hex, nullptr, 16)));
    ++revoked;
  }

 private:
  std::string etcd_;
  int expiries_;
};

json request(EngineAddonHost& host, const std::string& etcd) {
  const json services = json::array({{{"name", "hello/v1"},
                                      {"port", 8000},
                                      {"instances", {{{"id", "hello-v1-1"}, {"node", "swarm-1"}, {"address", host.address("swarm-1")}, {"port", 8000}}}}}});
  const json addons = {{"etcd", {{"plugin", "etcd"}, {"provides", {"discovery"}}, {"endpoints", {{"etcd", etcd}}}}}};
  return host.request({{"ttl", 5}, {"dns", false}}, {"infra"}, services, addons, {"infra", "swarm-1"});
}

}  // namespace

TEST_CASE("registrator: a lease that expires while its keepalive starts is granted again", "[registrator][etcd][discovery]") {
  disc::EtcdServer etcd;
  disc::TempDir dir("flotilla-lease");
  const std::string cidr = flotilla::test::resources::process_subnet("cluster").prefix() + "0/24";

  SECTION("once: apply succeeds and the entry holds a lease its keepalive renews") {
    ExpiringLeaseHost host(dir.path() / "cluster", cidr, etcd.endpoint(), 1);
    const auto [status, out] = host.call("apply", request(host, etcd.endpoint()));
    INFO(out);
    REQUIRE(status == FLT_OK);
    CHECK(host.revoked == 1);
    const flotilla::support::EtcdClient client(etcd.endpoint());
    const std::int64_t id = std::stoll(host.addon_state()["leases"]["swarm-1"]["id"].get<std::string>());
    CHECK(client.lease_ttl(id) > 0);
    const auto renewals = disc::wait_for_lease_renewals(client, 1, std::chrono::seconds(15));
    CHECK(renewals.all());
    bool warned = false;
    for (const auto& line : host.logs()) warned = warned || line.find("expired while its keepalive started (ttl 5 s)") != std::string::npos;
    CHECK(warned);
  }

  SECTION("always: apply fails naming the node and ttl, and says what to do") {
    ExpiringLeaseHost host(dir.path() / "cluster", cidr, etcd.endpoint(), 100);
    const auto [status, out] = host.call("apply", request(host, etcd.endpoint()));
    CHECK(status != FLT_OK);
    CHECK(host.revoked == 2);
    CHECK_THAT(out, Contains("node swarm-1") && Contains("`ttl` (5 s)") && Contains("raise `ttl`") && Contains("run up again"));
  }
}

TEST_CASE("registrator: another apply keeps a live lease and its keepalive, and replaces a lease that is gone",
          "[registrator][etcd][discovery]") {
  disc::EtcdServer etcd;
  disc::TempDir dir("flotilla-lease-kept");
  const std::string cidr = flotilla::test::resources::process_subnet("cluster").prefix() + "0/24";
  EngineAddonHost host("registrator", dir.path() / "cluster", cidr, 2);
  auto [status, out] = host.call("apply", request(host, etcd.endpoint()));
  INFO(out);
  REQUIRE(status == FLT_OK);
  const flotilla::support::EtcdClient client(etcd.endpoint());
  auto lease_of_swarm1 = [&] { return std::stoll(host.addon_state()["leases"]["swarm-1"]["id"].get<std::string>()); };
  const std::int64_t first = lease_of_swarm1();
  CHECK(client.lease_ids().count(first) == 1);
  const int keepalive = host.pid_of("swarm-1", "keepalive");
  REQUIRE(keepalive > 0);

  // Nothing changed: the same lease, renewed by the same keepalive.
  std::tie(status, out) = host.call("apply", request(host, etcd.endpoint()));
  REQUIRE(status == FLT_OK);
  CHECK(lease_of_swarm1() == first);
  CHECK(host.pid_of("swarm-1", "keepalive") == keepalive);

  // The lease is gone (as when its keepalive died and it expired): the next apply sees it missing
  // from etcd's list, grants another and starts a keepalive on it.
  client.lease_revoke(first);
  CHECK(client.lease_ids().count(first) == 0);
  std::tie(status, out) = host.call("apply", request(host, etcd.endpoint()));
  REQUIRE(status == FLT_OK);
  const std::int64_t second = lease_of_swarm1();
  CHECK(second != first);
  CHECK(client.lease_ids().count(second) == 1);
  CHECK(client.lease_ttl(second) > 0);
  CHECK(host.pid_of("swarm-1", "keepalive") != keepalive);
}
