// The haproxy addon's parts: the config renderer (and HAProxy's own verdict on what it
// renders), the checks that keep hostile names out of the config, and the runtime API client
// and server sync, against real HAProxy processes this file starts and stops.
#include "addon_haproxy/config.hpp"
#include "addon_haproxy/haproxy_binary.hpp"
#include "addon_haproxy/request.hpp"
#include "addon_haproxy/runtime_api.hpp"
#include "addon_haproxy/server_sync.hpp"
#include "flotilla/support/encoding.hpp"
#include "support/haproxy_lab.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <thread>

namespace {

namespace hap = flotilla::haproxy;
namespace lab = flotilla::test::haproxy_lab;
using lab::LoadClient;
namespace proc = flotilla::test::proc;
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

hap::ConfigView sample_view() {
  hap::ConfigView v;
  v.bind_address = "127.78.1.1";
  v.port = 18080;
  v.stats_port = 18404;
  v.admin_socket = "/tmp/flt-hap-sample/admin.sock";
  v.routes.push_back({"hello", "hello", "/hello", "/health", {{"i1-127.78.1.2-9001", "127.78.1.2", 9001}}});
  v.routes.push_back({"hello/v1", "hello.v1", "/hello/v1", "/health?full=1",
                      {{"i1-127.78.1.2-8001", "127.78.1.2", 8001}, {"i2-127.78.1.3-8002", "127.78.1.3", 8002}}});
  return v;
}

/// The lines of one section ("backend hello.v1") up to the next blank line.
std::string section(const std::string& cfg, const std::string& header) {
  const auto start = cfg.find("\n" + header + "\n");
  REQUIRE(start != std::string::npos);
  const auto end = cfg.find("\n\n", start + 1);
  return cfg.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
}

/// What `haproxy -c` says about `text`.
hap::ConfigCheck check_text(const proc::ScratchDir& dir, const std::string& text) {
  const fs::path file = dir.path() / "check.cfg";
  write_file(file, text);
  const auto binary = hap::find_haproxy();
  REQUIRE(binary);
  return hap::check_config(*binary, file);
}

}  // namespace

TEST_CASE("haproxy config: each service routed by its prefix to its servers, with checks", "[haproxy]") {
  const std::string cfg = hap::render_config(sample_view());
  const std::string front = section(cfg, "frontend INGRESS");
  CHECK(front.find("bind 127.78.1.1:18080") != std::string::npos);
  CHECK(front.find("use_backend hello.v1 if { path /hello/v1 } || { path_beg /hello/v1/ }") != std::string::npos);
  CHECK(front.find("use_backend hello if { path /hello } || { path_beg /hello/ }") != std::string::npos);
  // Longest prefix first: /hello/v1/x must not be taken by /hello.
  CHECK(front.find("use_backend hello.v1") < front.find("use_backend hello "));
  CHECK(front.find("default_backend NOROUTE") != std::string::npos);
  // Stripping happens in the backend, after use_backend has matched on the full path.
  CHECK(front.find("replace-path") == std::string::npos);

  const std::string be = section(cfg, "backend hello.v1");
  CHECK(be.find("balance roundrobin") != std::string::npos);
  CHECK(be.find("option httpchk GET /health?full=1") != std::string::npos);
  CHECK(be.find("http-check expect status 200") != std::string::npos);
  CHECK(be.find("http-request replace-path ^/hello/v1/?(.*)$ /\\1") != std::string::npos);
  CHECK(be.find("server i1-127.78.1.2-8001 127.78.1.2:8001 check inter 1s") != std::string::npos);
  CHECK(be.find("server i2-127.78.1.3-8002 127.78.1.3:8002 check") != std::string::npos);
  CHECK(be.find("fall 2 rise 1") != std::string::npos);
  CHECK(be.find("9001") == std::string::npos);

  const std::string global = section(cfg, "global");
  CHECK(global.find("stats socket /tmp/flt-hap-sample/admin.sock mode 600 level admin expose-fd listeners") != std::string::npos);
  CHECK(section(cfg, "defaults").find("option idle-close-on-response") != std::string::npos);
  const std::string stats = section(cfg, "frontend STATS");
  CHECK(stats.find("bind 127.78.1.1:18404") != std::string::npos);
  CHECK(stats.find("http-request use-service prometheus-exporter if { path /metrics }") != std::string::npos);
  CHECK(stats.find("stats uri /stats") != std::string::npos);
}

TEST_CASE("haproxy config: without servers it changes only when routes or listeners change", "[haproxy]") {
  hap::ConfigView a = sample_view();
  hap::ConfigView b = a;
  b.routes[1].servers.push_back({"i3-127.78.1.4-8003", "127.78.1.4", 8003});
  b.routes[0].servers.clear();
  CHECK(hap::render_config(a) != hap::render_config(b));
  CHECK(hap::render_config(a, false) == hap::render_config(b, false));
  CHECK(hap::render_config(a, false).find("    server ") == std::string::npos);

  hap::ConfigView route_added = a;
  route_added.routes.push_back({"other", "other", "/other", "/health", {}});
  CHECK(hap::render_config(a, false) != hap::render_config(route_added, false));
  hap::ConfigView port_moved = a;
  port_moved.port = 18081;
  CHECK(hap::render_config(a, false) != hap::render_config(port_moved, false));
  hap::ConfigView health_changed = a;
  health_changed.routes[0].health = "/ready";
  CHECK(hap::render_config(a, false) != hap::render_config(health_changed, false));
}

TEST_CASE("haproxy config: a skeleton hash stored by an earlier release still matches, so the upgrade reloads nothing", "[haproxy]") {
  const hap::ConfigView a = sample_view();
  const std::string skeleton = hap::render_config(a, false);
  CHECK(hap::skeleton_hash(a) == flotilla::support::stable_hash(skeleton));
  CHECK(hap::same_skeleton(hap::skeleton_hash(a), a));
  // What earlier releases stored (FNV-1a with the wrong offset basis) counts as the same.
  CHECK(hap::same_skeleton(flotilla::support::legacy_stable_hash(skeleton), a));
  CHECK(flotilla::support::legacy_stable_hash(skeleton) != hap::skeleton_hash(a));
  // A real change of routes still needs a reload, whichever hash was stored.
  hap::ConfigView route_added = a;
  route_added.routes.push_back({"other", "other", "/other", "/health", {}});
  CHECK_FALSE(hap::same_skeleton(hap::skeleton_hash(a), route_added));
  CHECK_FALSE(hap::same_skeleton(flotilla::support::legacy_stable_hash(skeleton), route_added));
  CHECK_FALSE(hap::same_skeleton("", a));
}

TEST_CASE("haproxy config: what the renderer writes passes haproxy -c", "[haproxy]") {
  proc::ScratchDir dir("flt-hap");
  hap::ConfigView v = sample_view();
  SECTION("two services, several servers") {}
  SECTION("no service at all") { v.routes.clear(); }
  SECTION("a service without instances") { v.routes[1].servers.clear(); }
  SECTION("a service without an HTTP health path") { v.routes[0].health.clear(); }
  SECTION("prefix kept") { v.strip_prefix = false; }
  SECTION("services named like the internal proxies, in lower case") {
    v.routes.push_back({"ingress", "ingress", "/ingress", "/health", {}});
    v.routes.push_back({"noroute", "noroute", "/noroute", "/health", {}});
    v.routes.push_back({"stats", "stats", "/stats", "/health", {}});
  }
  const hap::ConfigCheck check = check_text(dir, hap::render_config(v));
  INFO(check.output);
  CHECK(check.valid);
}

TEST_CASE("haproxy config: haproxy -c refuses a broken config and says why", "[haproxy]") {
  proc::ScratchDir dir("flt-hap");
  std::string broken = hap::render_config(sample_view());
  broken += "    server bad 127.78.1.9:1 check nonsense-keyword\n";
  const hap::ConfigCheck check = check_text(dir, broken);
  CHECK_FALSE(check.valid);
  CHECK(check.output.find("nonsense-keyword") != std::string::npos);
}

TEST_CASE("haproxy names: anything outside the safe set is refused before it reaches a config", "[haproxy]") {
  for (const std::string& bad : std::vector<std::string>{"a\nb", "x y", "#", "a#b", "a\"b", "a'b", "a;b", "Hello", "/a", "a/", "a//b", "-a", "",
                                "a.b", "a\\b", "a{b}", std::string(64, 'a')}) {
    INFO(json(bad).dump());
    CHECK(hap::service_name_problem(bad));
  }
  for (const std::string& good : std::vector<std::string>{"hello/v1", "a-b_c/d1", "x", std::string(63, 'a')}) {
    INFO(good);
    CHECK_FALSE(hap::service_name_problem(good));
  }
  for (const std::string bad : {"/he alth", "/h#", "/h\"", "health", "/a\nb", "/a;b", "/a'b", "/a{b}", "/a%20"}) {
    INFO(json(bad).dump());
    CHECK(hap::health_path_problem(bad));
  }
  for (const std::string good : {"", "/", "/health", "/health?full=1&x=2", "/-/ready"}) CHECK_FALSE(hap::health_path_problem(good));
  for (const std::string bad : {"127.0.0.1 backup", "a#b", "a\nb", "", "-x", "1.2.3.4:80"}) {
    INFO(json(bad).dump());
    CHECK(hap::address_problem(bad));
  }
  CHECK_FALSE(hap::address_problem("127.77.0.2"));
  CHECK_FALSE(hap::address_problem("node-1.example"));
  CHECK(hap::port_problem(0));
  CHECK(hap::port_problem(65536));
  CHECK_FALSE(hap::port_problem(8080));
  CHECK(hap::file_path_problem("/tmp/my cluster/admin.sock"));
  CHECK(hap::file_path_problem("relative/admin.sock"));
  CHECK_FALSE(hap::file_path_problem("/abs/.flotilla/local/addons/haproxy/swarm-1/admin.sock"));
}

TEST_CASE("haproxy request: hostile services are reported by name, one problem each", "[haproxy]") {
  const json services = json::parse(R"([
    {"name": "hello/v1", "port": 8000, "health": "/health",
     "instances": [{"id": "hello/v1#1", "instance": 1, "address": "127.77.0.2", "port": 8000}]},
    {"name": "evil\nbackend x", "port": 8000, "health": "/health", "instances": []},
    {"name": "spaced", "port": 8000, "health": "/he alth", "instances": []},
    {"name": "badinst", "port": 8000, "health": "/health",
     "instances": [{"id": "badinst#1", "instance": 1, "address": "127.0.0.1 backup", "port": 70000}]}
  ])");
  const auto problems = hap::service_problems(services);
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].message.find("\"evil\\nbackend x\"") != std::string::npos);
  CHECK(problems[1].message.find("\"spaced\"") != std::string::npos);
  CHECK(problems[1].message.find("health") != std::string::npos);
  CHECK(problems[2].message.find("\"badinst\"") != std::string::npos);
  CHECK(problems[3].message.find("70000") != std::string::npos);
  for (const auto& p : problems) CHECK(p.message.find('\n') == std::string::npos);
}

TEST_CASE("haproxy request: serving instances become servers, and services without a port get no route", "[haproxy]") {
  const json services = json::parse(R"([
    {"name": "hello/v1", "port": 8000, "health": "/health", "instances": [
      {"id": "hello/v1#1", "instance": 1, "address": "127.77.0.2", "port": 8000, "state": "running"},
      {"id": "hello/v1#2", "address": "127.77.0.3", "port": 8001, "state": "running"},
      {"id": "hello/v1#3", "instance": 3, "address": "127.77.0.4", "port": 8002, "state": "exited"}]},
    {"name": "worker", "port": 0, "instances": [{"id": "worker#1", "instance": 1, "address": "127.77.0.2", "port": 0}]}
  ])");
  const auto routes = hap::routes_of(services);
  REQUIRE(routes.size() == 1);
  CHECK(routes[0].backend == "hello.v1");
  CHECK(routes[0].prefix == "/hello/v1");
  REQUIRE(routes[0].servers.size() == 2);
  CHECK(routes[0].servers[0] == hap::Server{"i1-127.77.0.2-8000", "127.77.0.2", 8000});
  CHECK(routes[0].servers[1] == hap::Server{"i2-127.77.0.3-8001", "127.77.0.3", 8001});
}

TEST_CASE("haproxy runtime API: refuses a command that would carry a second one", "[haproxy]") {
  const hap::RuntimeApi api("/nonexistent/admin.sock");
  CHECK_THROWS_WITH(api.send("show info\nshutdown sessions"), Catch::Contains("newline"));
  CHECK_THROWS_WITH(api.send("show info; shutdown frontend INGRESS"), Catch::Contains("';'"));
  CHECK_THROWS_WITH(api.send("show info"), Catch::Contains("/nonexistent/admin.sock"));
  CHECK_FALSE(api.ready());
}

namespace {

/// A real ingress HAProxy (master-worker, rendered by the addon's renderer) in front of four
/// instances (a second real HAProxy answering "b1".."b4"), on a loopback address of its own.
struct IngressLab {
  proc::ScratchDir dir{"flt-hap"};
  std::string address = lab::test_address(1);
  std::vector<int> instance_ports;
  std::unique_ptr<lab::HaproxyProcess> instances;
  hap::ConfigView view;
  std::unique_ptr<lab::HaproxyProcess> ingress;
  hap::RuntimeApi admin{(dir.path() / "admin.sock").string()};
  hap::RuntimeApi master{(dir.path() / "master.sock").string()};
  hap::SyncOptions fast;

  explicit IngressLab(int initial_servers) {
    std::set<int> used;
    while (used.size() < 6) used.insert(lab::free_port(address));
    std::vector<int> ports(used.begin(), used.end());
    instance_ports.assign(ports.begin(), ports.begin() + 4);
    write_file(dir.path() / "instances.cfg", lab::instances_config(address, instance_ports));
    instances = std::make_unique<lab::HaproxyProcess>(
        std::vector<std::string>{"-f", (dir.path() / "instances.cfg").string()}, dir.path() / "instances.log");
    REQUIRE(proc::wait_until(
        [&] {
          try {
            lab::HttpClient c(address, instance_ports.back());
            return c.get("/").status == 200;
          } catch (const std::runtime_error&) {
            return false;
          }
        },
        10s));

    view.bind_address = address;
    view.port = ports[4];
    view.stats_port = ports[5];
    view.admin_socket = admin.path();
    view.routes.push_back({"hello/v1", "hello.v1", "/hello/v1", "/health", {}});
    for (int i = 1; i <= initial_servers; ++i) view.routes[0].servers.push_back(server(i));
    write_file(config(), hap::render_config(view));
    ingress = std::make_unique<lab::HaproxyProcess>(
        std::vector<std::string>{"-W", "-S", master.path(), "-f", config().string()}, dir.path() / "ingress.log");
    REQUIRE(proc::wait_until([&] { return admin.ready(); }, 10s));
    std::vector<std::string> initial;
    for (const auto& srv : view.routes[0].servers) initial.push_back("hello.v1/" + srv.name);
    REQUIRE(hap::wait_checked(admin, initial, 10s, fast).empty());
    fast.up_timeout = 5s;
    fast.drain_timeout = 5s;
  }

  [[nodiscard]] fs::path config() const { return dir.path() / "haproxy.cfg"; }
  [[nodiscard]] hap::Server server(int i) const {
    return {hap::server_name(i, address, instance_ports[i - 1]), address, instance_ports[i - 1]};
  }
  [[nodiscard]] hap::Membership members(const std::vector<int>& ids) const {
    hap::Membership m{{"hello.v1", {}}};
    for (int i : ids) m["hello.v1"].push_back(server(i));
    return m;
  }
  /// The server names HAProxy has in hello.v1, by `show servers state`.
  [[nodiscard]] std::set<std::string> live() const {
    std::set<std::string> out;
    const hap::Membership live = hap::live_membership(admin);
    if (const auto it = live.find("hello.v1"); it != live.end()) {
      for (const auto& s : it->second) out.insert(s.name);
    }
    return out;
  }
  [[nodiscard]] std::set<std::string> names(const std::vector<int>& ids) const {
    std::set<std::string> out;
    for (int i : ids) out.insert(server(i).name);
    return out;
  }
  /// The instances that answered `n` requests through the ingress.
  [[nodiscard]] std::set<std::string> answered_by(int n) const {
    lab::HttpClient c(address, view.port);
    std::set<std::string> out;
    for (int i = 0; i < n; ++i) {
      const auto r = c.get("/hello/v1/anything");
      REQUIRE(r.status == 200);
      out.insert(r.body);
    }
    return out;
  }
  /// `show stat` status of each hello.v1 server.
  [[nodiscard]] std::map<std::string, std::string> statuses() const {
    std::map<std::string, std::string> out;
    for (const auto& row : admin.show_stat("hello.v1")) out[row.get("svname")] = row.get("status");
    return out;
  }
};


}  // namespace

TEST_CASE("haproxy runtime API: add, enable, drain and delete servers on a real HAProxy", "[haproxy][real]") {
  IngressLab lab(1);
  CHECK(lab.live() == lab.names({1}));
  CHECK(lab.answered_by(4) == std::set<std::string>{"b1"});

  const auto grown = hap::sync_servers(lab.admin, lab.members({1, 2, 3}), lab.fast);
  CHECK(grown.added.size() == 2);
  CHECK(grown.removed.empty());
  CHECK(lab.live() == lab.names({1, 2, 3}));
  for (const auto& [name, status] : lab.statuses()) {
    INFO(name);
    CHECK(status.starts_with("UP"));
  }
  CHECK(lab.answered_by(9) == std::set<std::string>{"b1", "b2", "b3"});

  const auto shrunk = hap::sync_servers(lab.admin, lab.members({3}), lab.fast);
  CHECK(shrunk.removed.size() == 2);
  CHECK(shrunk.added.empty());
  CHECK(lab.live() == lab.names({3}));
  CHECK(lab.statuses().size() == 1);
  CHECK(lab.answered_by(4) == std::set<std::string>{"b3"});

  // Nothing to do is a no-op.
  CHECK_FALSE(hap::sync_servers(lab.admin, lab.members({3}), lab.fast).changed());
}

TEST_CASE("haproxy runtime API: a server whose check fails is never let in", "[haproxy][real]") {
  IngressLab lab(1);
  hap::Membership wanted = lab.members({1});
  const int dead_port = lab::free_port(lab.address);  // nothing listens there
  wanted["hello.v1"].push_back({hap::server_name(9, lab.address, dead_port), lab.address, dead_port});
  lab.fast.up_timeout = 1500ms;
  CHECK_THROWS_WITH(hap::sync_servers(lab.admin, wanted, lab.fast), Catch::Contains("did not pass") && Catch::Contains("i9-"));
  CHECK(lab.live() == lab.names({1}));  // taken out again
  CHECK(lab.answered_by(4) == std::set<std::string>{"b1"});
}

TEST_CASE("haproxy runtime API: sync takes a server out of maintenance left by hand", "[haproxy][real]") {
  IngressLab lab(2);
  lab.admin.run("set server hello.v1/" + lab.server(2).name + " state maint");
  CHECK(lab.statuses()[lab.server(2).name] == "MAINT");
  const auto report = hap::sync_servers(lab.admin, lab.members({1, 2}), lab.fast);
  CHECK(report.readied == std::vector<std::string>{"hello.v1/" + lab.server(2).name});
  CHECK(lab.statuses()[lab.server(2).name].starts_with("UP"));
}

TEST_CASE("haproxy runtime API: servers come and go under keep-alive load without a failed request", "[haproxy][real]") {
  IngressLab lab(2);
  LoadClient load(lab.address, lab.view.port);
  REQUIRE(proc::wait_until([&] { return load.sent() > 50; }, 5s));
  for (const auto& step : std::vector<std::vector<int>>{{1, 2, 3}, {3}, {2, 3, 4}, {1, 4}, {1, 2, 3, 4}, {2}}) {
    (void)hap::sync_servers(lab.admin, lab.members(step), lab.fast);
    CHECK(lab.live() == lab.names(step));
    // The load runs against each membership before the next change.
    const auto sent = load.sent();
    INFO("awaited: 30 more requests through the ingress after " << sent << "; last error: " << load.last_error());
    REQUIRE(proc::wait_until([&] { return load.sent() >= sent + 30; }, 10s));
  }
  load.stop();
  INFO(load.last_error());
  CHECK(load.sent() > 200);
  CHECK(load.errors() == 0);
  CHECK(load.non_2xx() == 0);
  CHECK(load.seen() == std::set<std::string>{"b1", "b2", "b3", "b4"});
}

TEST_CASE("haproxy master CLI: a reload starts a new worker on the rewritten config, under load", "[haproxy][real]") {
  IngressLab lab(2);
  LoadClient load(lab.address, lab.view.port);
  REQUIRE(proc::wait_until([&] { return load.sent() > 50; }, 5s));

  hap::ProcTable before;
  REQUIRE(proc::wait_until(
      [&] {
        try {
          before = lab.master.show_proc();
          return true;
        } catch (const hap::RuntimeApiError&) {
          return false;
        }
      },
      5s));
  const int old_worker = lab.admin.worker_pid();
  REQUIRE(before.current_worker() == old_worker);
  lab.view.routes[0].servers = {lab.server(3), lab.server(4)};
  lab.view.routes.push_back({"other", "other", "/other", "/health", {lab.server(1)}});
  write_file(lab.config(), hap::render_config(lab.view));
  (void)lab.master.send("reload");

  hap::ProcTable after;
  REQUIRE(proc::wait_until(
      [&] {
        try {
          after = lab.master.show_proc();
          return after.reloads > before.reloads && after.current_worker() != 0;
        } catch (const hap::RuntimeApiError&) {
          return false;  // the master re-executes itself
        }
      },
      10s));
  CHECK(after.failed_reloads == before.failed_reloads);
  REQUIRE(proc::wait_until([&] { return lab.admin.ready() && lab.admin.worker_pid() == after.current_worker(); }, 10s));
  CHECK(after.current_worker() != old_worker);
  CHECK(hap::live_backends(lab.admin).contains("other"));
  CHECK(lab.live() == lab.names({3, 4}));
  // The load goes on against the new worker before it stops.
  const auto sent = load.sent();
  INFO("awaited: 50 more requests through the new worker after " << sent << "; last error: " << load.last_error());
  REQUIRE(proc::wait_until([&] { return load.sent() >= sent + 50; }, 10s));
  load.stop();
  INFO(load.last_error());
  CHECK(load.errors() == 0);
  CHECK(load.non_2xx() == 0);
  CHECK(lab.answered_by(4) == std::set<std::string>{"b3", "b4"});
}

TEST_CASE("haproxy stats port: statistics page and Prometheus exporter answer, and unknown paths get 404", "[haproxy][real]") {
  IngressLab lab(1);
  lab::HttpClient stats(lab.address, lab.view.stats_port);
  const auto metrics = stats.get("/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("haproxy_backend_active_servers{proxy=\"hello.v1\"} 1") != std::string::npos);
  const auto page = stats.get("/stats");
  CHECK(page.status == 200);
  CHECK(page.body.find("hello.v1") != std::string::npos);

  lab::HttpClient ingress(lab.address, lab.view.port);
  CHECK(ingress.get("/nothing-here").status == 404);
  CHECK(ingress.get("/hello/v10").status == 404);  // a prefix ends at a segment boundary
  CHECK(ingress.get(std::string(hap::kMonitorPath)).status == 200);
  CHECK(ingress.get("/hello/v1").status == 200);
}
