// The syslog addon through the real CLI on a temporary local cluster: every line a service
// writes reaches the store, a node and an instance added later are shipped without restarting
// the running rsyslogs, and removing the addon stops them. The cluster is always brought down.
#include "rsyslog_lab.hpp"
#include "support/cleanup_report.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

namespace fs = std::filesystem;
using json = nlohmann::json;
using flotilla::test::TempDir;
using namespace std::chrono_literals;

namespace {

const std::string kFlotilla = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";

std::string topology(const std::string& cidr, int swarm, int replicas, bool with_addon) {
  std::string t = "[cluster]\nname = \"logsit\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" + cidr + "\"\n\n";
  t += "[[nodes]]\nname = \"infra\"\ncount = 1\nroles = [\"infra\"]\n\n";
  t += "[[nodes]]\nname = \"swarm\"\ncount = " + std::to_string(swarm) + "\nroles = [\"swarm\"]\n\n";
  if (with_addon) t += "[[addons]]\nplugin = \"syslog\"\n\n";
  t += "[[services]]\nname = \"counter/v1\"\n";
  t += R"(command = ["sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done; sleep 600"])";
  t += "\nreplicas = " + std::to_string(replicas) + "\nhealth = \"\"\nroles = [\"swarm\"]\n";
  return t;
}

std::pair<int, std::string> run_cli(const std::string& args, const fs::path& dir, const std::string& after_file = "") {
  return flotilla::test::run_command(kFlotilla + " " + args + " " + (dir / "topology.toml").string() + " " + after_file +
                                     " --state-dir " + (dir / "state").string());
}

struct DownGuard {
  fs::path dir;
  ~DownGuard() {
    if (const auto [code, out] = run_cli("down -q", dir); code != 0)
      flotilla::test::report_cleanup_failure("down in " + dir.string() + " exited " + std::to_string(code) + ": " + out);
  }
};

json state_of(const fs::path& dir) {
  std::ifstream in(dir / "state" / "state.json");
  std::string version;
  std::getline(in, version);  // "flotilla-state 1"
  std::stringstream rest;
  rest << in.rdbuf();
  return json::parse(rest.str());
}

/// `flotilla logs FILE counter/v1 --output json`.
std::vector<json> counter_logs(const fs::path& dir) {
  const auto [code, out] = run_cli("logs --output json", dir, "counter/v1");
  std::vector<json> lines;
  if (code != 0) return lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty() && l[0] == '{') lines.push_back(json::parse(l));
  return lines;
}

/// The addon's components as node/name -> pid, from `status --output json`.
std::map<std::string, int> component_pids(const fs::path& dir) {
  const auto [code, out] = run_cli("status --output json", dir);
  INFO(out);
  REQUIRE(code == 0);
  std::map<std::string, int> pids;
  const json status = json::parse(out.substr(out.find('{')));
  for (const auto& a : status["addons"])
    if (a.value("name", "") == "syslog")
      for (const auto& c : a["components"]) pids[c.value("node", "") + "/" + c.value("name", "")] = c.value("pid", 0);
  return pids;
}

bool alive(int pid) { return pid > 0 && ::kill(pid, 0) == 0; }

}  // namespace

TEST_CASE("syslog through the CLI: every line of every instance arrives, growth needs no restart, removal stops it",
          "[syslog][integration]") {
  REQUIRE(fs::exists(kFlotilla));
  TempDir dir("flotilla-syslog-it");
  // The cluster's cidr; held past the guard's `down`, so the collector's 2514 on it is ours.
  const auto subnet = flotilla::test::resources::reserve_subnet();
  const std::string net = subnet.prefix();
  std::ofstream(dir / "topology.toml") << topology(net + "0/24", 2, 2, true);
  DownGuard guard{dir.path()};

  auto [code, out] = run_cli("up", dir.path());
  INFO(out);
  REQUIRE(code == 0);
  CHECK(out.find("logs: relp://" + net + "1:2514") != std::string::npos);
  CHECK(state_of(dir.path())["addons"]["syslog"]["outputs"]["log_store"] == (dir.path() / "state" / "addons" / "syslog" / "store").string());

  auto per_instance = [](const std::vector<json>& lines) {
    std::map<std::string, std::vector<std::string>> m;
    for (const auto& j : lines)
      m[j.value("node", "") + " #" + j.value("instance", "") + " " + j.value("stream", "")].push_back(j.value("msg", ""));
    return m;
  };
  std::vector<std::string> expected;
  for (int i = 0; i < 200; ++i) expected.push_back("line-" + std::to_string(i));

  std::vector<json> lines;
  flotilla::test::wait_until([&] { return (lines = counter_logs(dir.path())).size() >= 400; }, 30s);
  REQUIRE(lines.size() == 400);
  auto got = per_instance(lines);
  CHECK(got.size() == 2);
  CHECK(got["swarm-1 #1 stdout"] == expected);
  CHECK(got["swarm-2 #2 stdout"] == expected);
  // The human form, filtered by node and text.
  std::tie(code, out) = run_cli("logs --node swarm-2 --grep line-19", dir.path(), "counter/v1");
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find(" swarm-2 counter/v1#2 stdout | line-19\n") != std::string::npos);
  CHECK(out.find(" swarm-2 counter/v1#2 stdout | line-199\n") != std::string::npos);
  CHECK(out.find("swarm-1") == std::string::npos);
  // --follow prints what is stored and keeps going until the first Ctrl-C, then exits 0.
  std::tie(code, out) = flotilla::test::run_command("timeout --preserve-status -s INT 3 " + kFlotilla + " logs " +
                                                    (dir.path() / "topology.toml").string() + " counter/v1 --follow --grep line-7 --state-dir " +
                                                    (dir.path() / "state").string());
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find(" swarm-1 counter/v1#1 stdout | line-7\n") != std::string::npos);
  CHECK(out.find(" swarm-2 counter/v1#2 stdout | line-199\n") == std::string::npos);
  CHECK(out.find(" swarm-2 counter/v1#2 stdout | line-78\n") != std::string::npos);
  const auto pids = component_pids(dir.path());
  REQUIRE(pids.size() == 4);  // collector + a shipper on each of the three nodes
  // The collector is stopped through rsyslogd alone, which ends its store program itself
  // (why: the pipeline test of a stop while the store program starts).
  const json collector_spec = json::parse(flotilla::test::read_text(dir / "state/nodes/infra/workloads/addon-syslog-collector/spec.json"));
  CHECK(collector_spec["workload"]["stop_mode"] == "leader");

  // A third node with a third instance: its shipper starts, the others keep running.
  std::ofstream(dir / "topology.toml", std::ios::trunc) << topology(net + "0/24", 3, 3, true);
  std::tie(code, out) = run_cli("up", dir.path());
  INFO(out);
  REQUIRE(code == 0);
  flotilla::test::wait_until([&] { return (lines = counter_logs(dir.path())).size() >= 600; }, 30s);
  REQUIRE(lines.size() == 600);
  got = per_instance(lines);
  CHECK(got["swarm-3 #3 stdout"] == expected);
  const auto grown = component_pids(dir.path());
  CHECK(grown.size() == 5);
  for (const auto& [component, pid] : pids) CHECK(grown.at(component) == pid);

  // Without the addon in the topology, `up` stops every rsyslog it ran.
  std::ofstream(dir / "topology.toml", std::ios::trunc) << topology(net + "0/24", 3, 3, false);
  std::tie(code, out) = run_cli("up", dir.path());
  INFO(out);
  REQUIRE(code == 0);
  CHECK(out.find("destroy") != std::string::npos);
  CHECK(flotilla::test::wait_until([&] {
    for (const auto& [component, pid] : grown)
      if (alive(pid)) return false;
    return true;
  }, 10s));
  CHECK(component_pids(dir.path()).empty());
  CHECK_FALSE(fs::exists(dir / "state/nodes/swarm-1/files/syslog/shipper.conf"));
  CHECK_FALSE(fs::exists(dir / "state/nodes/infra/files/syslog/collector.conf"));
}
