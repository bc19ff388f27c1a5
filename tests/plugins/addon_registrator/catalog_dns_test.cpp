// flotilla-catalog-dns (the registrator's DNS sidecar) against a real etcd and the real
// dnsmasq it supervises: names follow the catalog, including entries that expire with a lease.
#include "addon_registrator/catalog.hpp"
#include "addon_registrator/dns.hpp"
#include "support/discovery_servers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace d = flotilla::discovery;
namespace support = flotilla::support;
using namespace flotilla::test::discovery;

namespace {

d::Registration entry(const std::string& id, const std::string& node, const std::string& address, int port) {
  d::Registration r;
  r.name = "hello-v1";
  r.id = id;
  r.service = "hello/v1";
  r.node = node;
  r.address = address;
  r.port = port;
  return r;
}

std::vector<std::string> dig(int port, const std::string& name, const std::string& type = "A") {
  std::istringstream in(run_output({"dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "-p", std::to_string(port), name, type}));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("catalog DNS sidecar: names follow etcd, SRV changes restart dnsmasq, expired leases leave DNS", "[discovery][dns][etcd]") {
  const std::string binary = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla-catalog-dns";
  REQUIRE(std::filesystem::exists(binary));
  EtcdServer server;
  support::EtcdClient etcd(server.endpoint());
  const std::string prefix = "/flotilla/test/services/";
  const auto lease1 = etcd.lease_grant(60);
  const auto lease2 = etcd.lease_grant(2);
  (void)d::sync_etcd(etcd, prefix, {entry("hello-v1-1", "n1", "127.0.0.21", 8000), entry("hello-v1-2", "n2", "127.0.0.22", 8000)},
                     [&](const std::string& node) { return node == "n1" ? lease1 : lease2; });

  TempDir dir("flotilla-catdns");
  std::filesystem::create_directories(dir.path() / "hosts");
  std::ofstream(dir.path() / "hosts" / "services") << "";
  std::ofstream(dir.path() / "srv.conf") << "";
  d::DnsmasqOptions o;
  o.listen_address = "127.0.0.1";
  o.port = free_port();
  o.hosts_dir = (dir.path() / "hosts").string();
  o.srv_file = (dir.path() / "srv.conf").string();
  o.stay_root = ::geteuid() == 0 && !d::readable_by_others(o.hosts_dir);
  std::vector<std::string> argv = {binary,           "--etcd",       server.endpoint(), "--prefix",   prefix,
                                   "--domain",       "consul",       "--hosts-file",    (dir.path() / "hosts" / "services").string(),
                                   "--srv-file",     o.srv_file,     "--interval-ms",   "200",        "--node",
                                   "n1=127.0.0.21",  "--"};
  for (const auto& a : d::dnsmasq_command(o)) argv.push_back(a);
  Child sidecar(argv, dir.path() / "sidecar.log");

  // Both instances appear, with SRV records (which needed a dnsmasq restart to appear).
  CHECK(wait_for([&] { return dig(o.port, "hello-v1.service.consul") == std::vector<std::string>{"127.0.0.21", "127.0.0.22"}; },
                 std::chrono::seconds(10)));
  CHECK(wait_for([&] { return dig(o.port, "hello-v1.service.consul", "SRV").size() == 2; }, std::chrono::seconds(10)));
  CHECK(dig(o.port, "n1.node.consul") == std::vector<std::string>{"127.0.0.21"});

  // Nobody renews lease2: its entry expires in etcd, then leaves DNS without any apply (TTL 2 s
  // and one poll; how fast is for bench/, the deadline only bounds the wait).
  CHECK(wait_for([&] { return dig(o.port, "hello-v1.service.consul") == std::vector<std::string>{"127.0.0.21"}; },
                 std::chrono::seconds(10)));
  CHECK(wait_for([&] { return dig(o.port, "hello-v1.service.consul", "SRV").size() == 1; }, std::chrono::seconds(5)));

  // etcd going away keeps the last records served.
  server.process().stop();
  CHECK(wait_for([&] { return read_file(dir.path() / "sidecar.log").find("serving the last records") != std::string::npos; },
                 std::chrono::seconds(10)));
  CHECK(dig(o.port, "hello-v1.service.consul") == std::vector<std::string>{"127.0.0.21"});
  CHECK(sidecar.alive());
}
