// The etcd addon's member selection and command line; a real 3-member cluster started with
// exactly those command lines keeps serving when one member is killed.
#include "addon_etcd/etcd_member.hpp"
#include "flotilla/support/etcd_client.hpp"
#include "support/discovery_servers.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

namespace d = flotilla::discovery;
namespace support = flotilla::support;
using nlohmann::json;

namespace {
json request(const std::vector<std::string>& placed) {
  json nodes = json::array();
  int i = 1;
  for (const auto& n : placed) nodes.push_back({{"name", n}, {"address", "127.77.0." + std::to_string(i++)}});
  return {{"addon", {{"nodes", placed}, {"dir", "/state/addons/etcd"}}}, {"nodes", nodes}};
}
}  // namespace

TEST_CASE("etcd members: the first N placed nodes, and a clear error when there are too few", "[discovery][etcd]") {
  auto members = d::select_members(request({"swarm-1", "swarm-2", "swarm-3", "swarm-4"}), 3, 2379, 2380);
  REQUIRE(members.size() == 3);
  CHECK(members[0].node == "swarm-1");
  CHECK(members[2].node == "swarm-3");
  CHECK(members[1].client_url() == "http://127.77.0.2:2379");
  CHECK(members[1].data_dir == "/state/addons/etcd/swarm-2");
  CHECK(d::initial_cluster(members) == "swarm-1=http://127.77.0.1:2380,swarm-2=http://127.77.0.2:2380,swarm-3=http://127.77.0.3:2380");
  CHECK(d::client_urls(members) == "http://127.77.0.1:2379,http://127.77.0.2:2379,http://127.77.0.3:2379");

  const std::string why = d::check_member_count(3, {"infra"});
  CHECK_THAT(why, Catch::Contains("members = 3 needs 3 nodes, but the placement gives 1 (infra)"));
  CHECK_THAT(why, Catch::Contains("roles = [\"swarm\"]"));
  CHECK_THROWS_AS(d::select_members(request({"infra"}), 3, 2379, 2380), std::invalid_argument);
  CHECK_THAT(d::check_member_count(2, {"a", "b"}), Catch::Contains("use 1, 3 or 5"));
  CHECK(d::check_member_count(1, {"infra"}).empty());
}

TEST_CASE("a real 3-member etcd started with the addon's command lines keeps serving with one member killed",
          "[discovery][etcd]") {
  using namespace flotilla::test::discovery;
  TempDir dir("flotilla-etcd3");
  // One address per member, with etcd's own ports as the addon uses them: the subnet is ours.
  const auto& net = flotilla::test::resources::process_subnet("etcd");
  std::vector<d::EtcdMember> members;
  for (int i = 0; i < 3; ++i) {
    d::EtcdMember m;
    m.node = "n" + std::to_string(i + 1);
    m.address = net.address(i + 1);
    m.client_port = 2379;
    m.peer_port = 2380;
    m.data_dir = (dir.path() / m.node).string();
    members.push_back(m);
  }
  std::vector<std::unique_ptr<Child>> procs;
  for (const auto& m : members) {
    procs.push_back(std::make_unique<Child>(d::etcd_command(m, members, "flotilla-test-1", "/usr/bin/etcd"),
                                            dir.path() / (m.node + ".log")));
  }
  for (const auto& m : members) {
    const support::EtcdClient one(m.client_url(), {std::chrono::milliseconds(300), std::chrono::milliseconds(1000)});
    REQUIRE(wait_for([&] { return one.healthy(); }, std::chrono::seconds(30)));
  }
  const support::EtcdClient all(d::client_urls(members), {std::chrono::milliseconds(300), std::chrono::milliseconds(2000)});
  all.put("/k", "before");

  procs[0]->signal(SIGKILL);
  REQUIRE(wait_for([&] { return !procs[0]->alive(); }, std::chrono::seconds(5)));
  // The client fails over from the dead first endpoint; the remaining two keep a quorum.
  bool written = wait_for(
      [&] {
        try {
          all.put("/k", "after");
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(15));
  CHECK(written);
  CHECK(all.get("/k")->value == "after");
  const support::EtcdClient survivor(members[2].client_url());
  CHECK(survivor.get("/k")->value == "after");
}
