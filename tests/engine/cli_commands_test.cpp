// Every command as a user types it, through the built binary on a local cluster: usage errors,
// the read commands before and after `up` (text, and JSON with the keys docs/cli.md promises),
// plugins, logs, saved plans, unlock, placeholders and the runtime override. Exit codes are looked up in
// docs/cli.md's table by their meaning, so the doc and the binary cannot drift apart.
#include "support/cli_cluster.hpp"
#include "util.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using json = nlohmann::json;
namespace fs = std::filesystem;
using flotilla::test::cli::Cluster;
using flotilla::test::cli::exit_code;
using flotilla::test::cli::missing_documented_keys;
using flotilla::test::cli::missing_keys;
using flotilla::test::cli::Run;
using Catch::Matchers::Contains;

namespace {

// The documented codes, read from docs/cli.md when a test first needs them.
struct Codes {
  int ok = exit_code("success");
  int failed = exit_code("the command ran and something failed");
  int usage = exit_code("wrong arguments or options");
  int invalid = exit_code("the topology or a plugin is invalid");
  int locked = exit_code("another run holds the cluster's lock");
};
const Codes& codes() {
  static const Codes c;
  return c;
}

// Two nodes, two instances of hello/v1 that say which instance and node they are, and HAProxy.
std::string hello_body(int replicas, bool haproxy, const std::string& extra_args = "") {
  std::string body = "[[nodes]]\nname = \"infra\"\nroles = [\"infra\"]\n\n[[nodes]]\nname = \"swarm\"\ncount = 2\nroles = [\"swarm\"]\n\n";
  body += "[[services]]\nname = \"hello/v1\"\ncommand = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"" + extra_args + "]\n";
  body += "replicas = " + std::to_string(replicas) + "\nport = 18000\nroles = [\"swarm\"]\n";
  if (haproxy) body += "\n[[addons]]\nplugin = \"haproxy\"\nroles = [\"swarm\"]\n";
  return body;
}

void check_usage_error(const Run& r, const std::string& why) {
  INFO("exit " << r.code << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.code == codes().usage);
  CHECK_THAT(r.err, Contains(why));
  CHECK(r.out.empty());
}

void check_keys(const std::vector<std::string>& missing, const std::string& what) {
  INFO(what << " lacks what docs/cli.md promises");
  for (const auto& m : missing) UNSCOPED_INFO(m);
  CHECK(missing.empty());
}

std::vector<json> running(const json& status) {
  std::vector<json> out;
  for (const auto& s : status.at("services"))
    for (const auto& i : s.at("instances"))
      if (i.at("state") == "running") out.push_back(i);
  return out;
}

}  // namespace

TEST_CASE("usage errors: --version, wrong argument counts, a bad --output, -p and --log-level out of range", "[cli]") {
  Cluster c("usage", hello_body(1, false));
  const Run version = c.run("--version");
  CHECK(version.code == codes().ok);
  CHECK(std::regex_match(version.out, std::regex(R"(flotilla \d+\.\d+\.\d+\S* \(plugin ABI \d+\)\n)")));
  CHECK(c.run("version").out == version.out);

  check_usage_error(c.run("status"), "wrong number of arguments");
  check_usage_error(c.run("ip \"$TOPOLOGY\""), "Usage: flotilla ip FILE NAME");
  check_usage_error(c.run("validate \"$TOPOLOGY\" \"$TOPOLOGY\""), "wrong number of arguments");
  check_usage_error(c.run("plugins extra"), "wrong number of arguments");
  check_usage_error(c.run("scale \"$TOPOLOGY\""), "Example: flotilla scale");

  check_usage_error(c.run("status \"$TOPOLOGY\" --output yaml"), "--output must be text or json, not \"yaml\"");
  check_usage_error(c.run("plan \"$TOPOLOGY\" -o JSON"), "--output must be text or json");
  check_usage_error(c.run("status \"$TOPOLOGY\" --output"), "--output");

  check_usage_error(c.run("up \"$TOPOLOGY\" -p 0"), "--parallelism must be from 1 to 256, not 0");
  check_usage_error(c.run("up \"$TOPOLOGY\" --parallelism 257"), "--parallelism must be from 1 to 256, not 257");
  check_usage_error(c.run("down \"$TOPOLOGY\" --parallelism=-3"), "--parallelism must be from 1 to 256");
  check_usage_error(c.run("scale \"$TOPOLOGY\" hello/v1=2 -p 1000"), "--parallelism must be from 1 to 256, not 1000");
  check_usage_error(c.run("up \"$TOPOLOGY\" -p many"), "parallelism");

  check_usage_error(c.run("status \"$TOPOLOGY\" --log-level loud"), "--log-level");
  check_usage_error(c.run("scale \"$TOPOLOGY\" hello/v1=1001"), "N from 0 to 1000");
  check_usage_error(c.run("scale \"$TOPOLOGY\" hello/v1=-1"), "N from 0 to 1000");
  check_usage_error(c.run("status \"$TOPOLOGY\" --no-such-option"), "unrecognised option");
  // None of them touched anything.
  CHECK_FALSE(fs::exists(c.dir() / ".flotilla"));
}

TEST_CASE("before up: status says not up, plan shows the documented JSON, and ip, env, scale and logs say what is missing",
          "[cli][integration]") {
  Cluster c("notup", hello_body(2, false));
  const Run status = c.run("status \"$TOPOLOGY\"");
  CHECK(status.code == codes().ok);
  CHECK(status.out == "Cluster \"notup\" is not up. Run: flotilla up " + c.file().string() + "\n");
  const json st = c.status();
  check_keys(missing_keys(json{{"cluster", ""}, {"state_dir", ""}, {"nodes", json::array()}, {"services", json::array()},
                               {"addons", json::array()}, {"endpoints", json::object()}},
                          st),
             "status --output json of a cluster that is not up");
  CHECK(st["nodes"].empty());

  const Run plan = c.run("plan \"$TOPOLOGY\" -o json");
  REQUIRE(plan.code == codes().ok);
  const json p = json::parse(plan.out);
  check_keys(missing_documented_keys("plan", p), "plan --output json");
  CHECK(p["state_serial"] == 0);
  CHECK(p["summary"]["create"] == 5);  // three nodes, two instances
  std::set<std::string> created;
  for (const auto& a : p["actions"]) {
    CHECK(a["change"] == "create");
    created.insert(a["type"].get<std::string>() + " " + a["name"].get<std::string>());
  }
  CHECK(created == std::set<std::string>{"node infra", "node swarm-1", "node swarm-2", "instance hello/v1#1", "instance hello/v1#2"});
  // Every action names a step of the plan.
  std::set<std::string> steps;
  for (const auto& s : p["steps"]) steps.insert(s["id"].get<std::string>());
  for (const auto& a : p["actions"]) CHECK(steps.count(a["step"].get<std::string>()) == 1);

  const Run destroy = c.run("plan \"$TOPOLOGY\" --destroy");
  CHECK(destroy.code == codes().ok);
  CHECK_THAT(destroy.out, Contains("No changes"));
  const json d = json::parse(c.run("plan \"$TOPOLOGY\" --destroy -o json").out);
  check_keys(missing_documented_keys("plan", d), "plan --destroy --output json");
  CHECK(d["actions"].empty());

  const Run ip = c.run("ip \"$TOPOLOGY\" swarm-1");
  CHECK(ip.code == codes().failed);
  CHECK_THAT(ip.err, Contains("no node, service or registered component named \"swarm-1\"") && Contains("flotilla status"));
  const Run env = c.run("env \"$TOPOLOGY\" swarm-1");
  CHECK(env.code == codes().failed);
  CHECK_THAT(env.err, Contains("node \"swarm-1\" is not up; run `flotilla up " + c.file().string() + "`"));
  const Run scale = c.run("scale \"$TOPOLOGY\" nosuch=2");
  CHECK(scale.code == codes().failed);
  CHECK_THAT(scale.err, Contains("service \"nosuch\" is not in " + c.file().string() + "; services: hello/v1"));
  const Run logs = c.run("logs \"$TOPOLOGY\"");
  CHECK(logs.code == codes().failed);
  CHECK_THAT(logs.err, Contains("collects no logs: add the syslog addon"));
  // None of them started anything or recorded a state.
  CHECK_FALSE(fs::exists(c.state_dir() / "state.json"));
  CHECK(c.processes().empty());
}

TEST_CASE("a cluster with HAProxy through status, plan, ps, ip, env and logs, as documented", "[cli][integration]") {
  Cluster c("reads", hello_body(2, true, ", \"--instance\", \"i{instance}@{node}\""));
  const Run up = c.run("up \"$TOPOLOGY\"");
  INFO(up.out << up.err);
  REQUIRE(up.code == codes().ok);
  CHECK_THAT(up.out, Contains("Endpoints:"));

  // status --output json has every key of the documented example, with the same types.
  const json st = c.status();
  check_keys(missing_keys(flotilla::test::cli::documented_status_example(), st), "status --output json");
  const auto instances = running(st);
  REQUIRE(instances.size() == 2);
  REQUIRE(st["addons"].size() == 1);
  const json& haproxy = st["addons"][0];
  CHECK(haproxy["state"] == "ready");
  REQUIRE_FALSE(haproxy["components"].empty());
  // Where HAProxy runs, as addresses, in node order.
  std::map<std::string, std::string> address_of;
  for (const auto& n : st["nodes"]) address_of[n["name"]] = n["address"];
  std::string ingress;
  for (const auto& comp : haproxy["components"]) ingress += address_of[comp["node"]] + "\n";
  const std::string first_ingress = ingress.substr(0, ingress.find('\n'));
  CHECK(st["endpoints"]["rest"] == "http://" + first_ingress + ":8080");
  const std::string swarm1 = c.subnet() + ".2";

  // {instance} and {node} reached each process: the service says who it is.
  for (const auto& i : instances) {
    std::string body;
    const std::string url = "http://" + i["address"].get<std::string>() + ":" + std::to_string(i["port"].get<int>()) + "/";
    REQUIRE(flotilla::http_get(url, std::chrono::seconds(2), &body) == 200);
    CHECK(json::parse(body)["instance"] == "i" + std::to_string(i["instance"].get<int>()) + "@" + i["node"].get<std::string>());
  }

  // The text form shows the same.
  const Run text = c.run("status \"$TOPOLOGY\"");
  CHECK(text.code == codes().ok);
  CHECK_THAT(text.out, Contains("Cluster \"reads\"") && Contains("NODE ") && Contains("SERVICE hello/v1: 2/2 running") &&
                           Contains("ADDON haproxy (haproxy): ready") &&
                           Contains("haproxy on " + haproxy["components"][0]["node"].get<std::string>() + ": running") &&
                           Contains("\nENDPOINTS\n") &&
                           Contains("\n  rest: http://" + first_ingress + ":8080\n"));
  CHECK(std::regex_search(text.out, std::regex("swarm-2 +" + std::regex_replace(c.subnet(), std::regex("\\."), "\\.") + "\\.3 +running +swarm")));

  // ps lists the addon's components beside the instances, in text and JSON.
  const Run ps = c.run("ps \"$TOPOLOGY\" -o json");
  REQUIRE(ps.code == codes().ok);
  const json rows = json::parse(ps.out);
  check_keys(missing_documented_keys("ps", rows), "ps --output json");
  std::map<std::string, json> by_name;
  for (const auto& r : rows["workloads"]) by_name[r["node"].get<std::string>() + " " + r["name"].get<std::string>()] = r;
  REQUIRE(by_name.size() == 2 + haproxy["components"].size());
  const json& component = by_name[haproxy["components"][0]["node"].get<std::string>() + " haproxy/haproxy"];
  CHECK(component["owner"] == "addon haproxy");
  CHECK(component["service"] == "");
  CHECK(component["state"] == "running");
  CHECK(component["pid"] == haproxy["components"][0]["pid"]);
  CHECK_THAT(component["command"].get<std::string>(), Contains("haproxy"));
  CHECK(by_name["swarm-1 hello/v1#1"]["owner"] == "service hello/v1");
  CHECK_THAT(by_name["swarm-1 hello/v1#1"]["command"].get<std::string>(), Contains("i1@swarm-1"));
  const Run ps_text = c.run("ps \"$TOPOLOGY\" haproxy");
  CHECK(ps_text.code == codes().ok);
  CHECK_THAT(ps_text.out, Contains("haproxy/haproxy") && !Contains("hello/v1#"));
  CHECK(json::parse(c.run("ps \"$TOPOLOGY\" nothing-matches -o json").out)["workloads"].empty());

  // ip: a node, a service and a component the addon registered, from the recorded state
  // (no addon keeps a live catalog here); an unknown name is a failed lookup.
  CHECK(c.run("ip \"$TOPOLOGY\" infra").out == c.subnet() + ".1\n");
  const Run service = c.run("ip \"$TOPOLOGY\" hello/v1");
  CHECK(service.code == codes().ok);
  CHECK(service.out == swarm1 + "\n" + c.subnet() + ".3\n");
  CHECK(c.run("ip \"$TOPOLOGY\" hello-v1").out == service.out);
  const Run rest = c.run("ip \"$TOPOLOGY\" rest");
  CHECK(rest.code == codes().ok);
  CHECK(rest.out == ingress);
  const Run unknown = c.run("ip \"$TOPOLOGY\" nosuch");
  CHECK(unknown.code == codes().failed);
  CHECK_THAT(unknown.err, Contains("no node, service or registered component named \"nosuch\" in cluster \"reads\""));
  CHECK(unknown.out.empty());

  // env: a process node has no Docker engine; a name that is no node says so.
  const Run env = c.run("env \"$TOPOLOGY\" swarm-1 -o json");
  CHECK(env.code == codes().failed);
  CHECK_THAT(env.err, Contains("node \"swarm-1\" runs the process runtime, which has no Docker engine"));
  CHECK(env.out.empty());
  const Run env_unknown = c.run("env \"$TOPOLOGY\" swarm-9");
  CHECK(env_unknown.code == codes().failed);
  CHECK_THAT(env_unknown.err, Contains("there is no node named \"swarm-9\" in " + c.file().string()));

  // logs without the syslog addon says how to add it.
  const Run logs = c.run("logs \"$TOPOLOGY\" hello/v1 --since 5m");
  CHECK(logs.code == codes().failed);
  CHECK_THAT(logs.err, Contains("cluster \"reads\" collects no logs: add the syslog addon to " + c.file().string()));

  // plan --destroy lists every resource; the cluster is unchanged by it.
  const json destroy = json::parse(c.run("plan \"$TOPOLOGY\" --destroy -o json").out);
  check_keys(missing_documented_keys("plan", destroy), "plan --destroy --output json");
  CHECK(destroy["summary"]["destroy"] == 6);  // three nodes, two instances, one addon (with its components)
  for (const auto& a : destroy["actions"]) CHECK(a["change"] == "destroy");
  const Run destroy_text = c.run("plan \"$TOPOLOGY\" --destroy");
  CHECK_THAT(destroy_text.out, Contains("Plan: 0 to add, 0 to change, 6 to destroy"));
  CHECK(flotilla::test::cli::recorded_pids(c.status()) == flotilla::test::cli::recorded_pids(st));
  // What runs is what status records (and their children, as HAProxy's worker), nothing more.
  CHECK(c.unaccounted(flotilla::test::cli::recorded_pids(st)).empty());
}

TEST_CASE("up --plan applies a saved plan, and refuses one that is not JSON or no longer matches", "[cli][integration]") {
  Cluster c("saved", hello_body(1, false));
  const fs::path saved = c.dir() / "saved.plan";
  SECTION("a saved plan is applied") {
    const Run plan = c.run("plan \"$TOPOLOGY\" --out \"$DIR/saved.plan\" -o json");
    REQUIRE(plan.code == codes().ok);
    CHECK_THAT(plan.err, Contains("Plan saved to " + saved.string()));
    const json doc = json::parse(plan.out);
    const json file = json::parse(flotilla::test::proc::read_text(saved));
    CHECK(file["actions"] == doc["actions"]);
    CHECK(file["state_serial"] == doc["state_serial"]);
    const Run up = c.run("up \"$TOPOLOGY\" --plan \"$DIR/saved.plan\"");
    INFO(up.out << up.err);
    CHECK(up.code == codes().ok);
    CHECK_THAT(up.out, Contains("Applied: 4 added, 0 changed, 0 destroyed."));
    CHECK(running(c.status()).size() == 1);
    // Applied once, the same plan is against an old serial.
    const Run again = c.run("up \"$TOPOLOGY\" --plan \"$DIR/saved.plan\"");
    CHECK(again.code == codes().failed);
    CHECK_THAT(again.err, Contains("was made against state serial 0") && Contains("run `flotilla plan " + c.file().string() + " --out " + saved.string()));
  }
  SECTION("a plan file that is not JSON is a usage error naming it") {
    std::ofstream(saved) << "{\"state_serial\": 0, \"actions\": [";
    const Run up = c.run("up \"$TOPOLOGY\" --plan \"$DIR/saved.plan\"");
    CHECK(up.code == codes().usage);
    CHECK_THAT(up.err, Contains("plan file " + saved.string() + " is not valid JSON; make it again with `flotilla plan"));
    CHECK_FALSE(fs::exists(c.state_dir() / "state.json"));
  }
  SECTION("a plan whose serial is current but whose actions no longer match is refused") {
    REQUIRE(c.run("plan \"$TOPOLOGY\" --out \"$DIR/saved.plan\"").code == codes().ok);
    c.rewrite(hello_body(2, false));  // the file changed, the state did not
    const Run up = c.run("up \"$TOPOLOGY\" --plan \"$DIR/saved.plan\"");
    CHECK(up.code == codes().failed);
    CHECK_THAT(up.err, Contains("plan " + saved.string() + " no longer matches the topology or the cluster"));
    CHECK_FALSE(fs::exists(c.state_dir() / "state.json"));
    CHECK(c.processes().empty());
  }
}

TEST_CASE("unlock: a free lock, a dead holder, a holder on another host, and a live holder with and without --force",
          "[cli][integration]") {
  Cluster c("unlocking", "[[nodes]]\nname = \"solo\"\n");
  const fs::path lock = c.state_dir() / "lock";
  const Run free = c.run("unlock \"$TOPOLOGY\"");
  CHECK(free.code == codes().ok);
  CHECK(free.out == "Cluster \"unlocking\" is not locked; nothing to do.\n");

  fs::create_directories(c.state_dir());
  auto write_lock = [&](const json& holder) { std::ofstream(lock, std::ios::trunc) << holder.dump() << "\n"; };
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  SECTION("a holder that died on this host") {
    const pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    REQUIRE(::waitpid(dead, nullptr, 0) == dead);
    write_lock({{"pid", dead}, {"host", host}, {"command", "flotilla up (died)"}, {"since", "2026-01-01T00:00:00Z"}});
    const Run r = c.run("unlock \"$TOPOLOGY\"");
    INFO(r.err);
    CHECK(r.code == codes().ok);
    CHECK(r.out == "Lock cleared for cluster \"unlocking\".\n");
    CHECK_FALSE(fs::exists(lock));
  }
  SECTION("a holder on another host: up refuses and names unlock, which clears it") {
    write_lock({{"pid", 4242}, {"host", "elsewhere.example"}, {"command", "flotilla up (far away)"}, {"since", "2026-01-01T00:00:00Z"}});
    const Run up = c.run("up \"$TOPOLOGY\"");
    CHECK(up.code == codes().locked);
    CHECK_THAT(up.err, Contains("on host elsewhere.example") && Contains("run `flotilla unlock " + c.file().string() + "`"));
    const Run r = c.run("unlock \"$TOPOLOGY\"");
    CHECK(r.code == codes().ok);
    CHECK_FALSE(fs::exists(lock));
    const Run after = c.run("up \"$TOPOLOGY\"");
    INFO(after.err);
    CHECK(after.code == codes().ok);
  }
  SECTION("a live holder is kept unless --force") {
    // A process that holds the lock's flock, as a running flotilla would: a child of this
    // test with no children of its own, so killing it leaves nothing behind.
    write_lock({{"pid", 1}, {"host", host}, {"command", "flotilla up (alive)"}, {"since", "2026-01-01T00:00:00Z"}});
    const pid_t holder = ::fork();
    if (holder == 0) {
      const int fd = ::open(lock.c_str(), O_RDONLY);
      if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
      for (int i = 0; i < 300; ++i) ::usleep(100'000);  // at most 30 s if the test dies without killing it
      ::_exit(0);
    }
    struct Reap {
      pid_t pid;
      ~Reap() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    } reap{holder};
    REQUIRE(flotilla::test::proc::wait_until(
        [&] {
          const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
          const bool held = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0;
          if (fd >= 0) ::close(fd);
          return held;
        },
        std::chrono::seconds(5)));
    const Run up = c.run("up \"$TOPOLOGY\"");
    CHECK(up.code == codes().locked);
    CHECK_THAT(up.err, Contains("is locked by pid 1 (`flotilla up (alive)`)") && Contains("wait for it to finish"));
    const Run kept = c.run("unlock \"$TOPOLOGY\"");
    CHECK(kept.code == codes().failed);
    CHECK_THAT(kept.err, Contains("(`flotilla up (alive)`)") && Contains("which is still running") && Contains("force the unlock only if"));
    CHECK(fs::exists(lock));
    const Run forced = c.run("unlock \"$TOPOLOGY\" --force");
    CHECK(forced.code == codes().ok);
    CHECK(forced.out == "Lock cleared for cluster \"unlocking\".\n");
    CHECK_FALSE(fs::exists(lock));
  }
}

TEST_CASE("plugins: the text lists each plugin on stdout, each broken file is a warning on stderr, and the JSON has the documented keys",
          "[cli]") {
  Cluster c("plugins", "");
  const std::string path = std::string("--plugin-path ") + FLOTILLA_TEST_PLUGIN_DIR;
  const Run text = c.run("plugins " + path);
  REQUIRE(text.code == codes().ok);
  CHECK(std::regex_search(text.out, std::regex("^KIND +NAME +VERSION +DESCRIPTION\n")));
  CHECK(std::regex_search(text.out, std::regex("\naddon +tattler +1\\.0\\.0 +uses a secret option")));
  CHECK(std::regex_search(text.out, std::regex("\ndriver +local +")));
  CHECK_THAT(text.out, !Contains("warning"));
  // The test directory holds broken plugins: one warning each, naming the file.
  std::vector<std::string> warnings;
  std::istringstream in(text.err);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("warning: ", 0) == 0) warnings.push_back(line);
  CHECK_THAT(text.err, Contains("test_bad_abi.so"));
  CHECK_THAT(text.err, Contains("test_no_entry.so"));

  const Run listed = c.run("plugins -o json " + path);
  REQUIRE(listed.code == codes().ok);
  const json doc = json::parse(listed.out);
  check_keys(missing_documented_keys("plugins", doc), "plugins --output json");
  CHECK(doc["problems"].size() == warnings.size());
  CHECK(std::find(doc["search_path"].begin(), doc["search_path"].end(), json(FLOTILLA_TEST_PLUGIN_DIR)) != doc["search_path"].end());
  CHECK(listed.err.empty());  // the problems are in the document, not repeated as warnings
}

TEST_CASE("logs with the syslog addon: --since keeps younger lines, -f follows until Ctrl-C, a bad --since is a usage error, unknown names fail",
          "[cli][integration][syslog]") {
  Cluster c("logging", R"(
[[nodes]]
name = "infra"
roles = ["infra"]

[[nodes]]
name = "swarm"
roles = ["swarm"]

[[addons]]
plugin = "syslog"

[[services]]
name = "echo/v1"
command = ["sh", "-c", "echo said-{instance}-on-{node}; exec sleep 600"]
health = ""
roles = ["swarm"]
)");
  // Before up, a bad duration is already a usage error, whatever the cluster.
  check_usage_error(c.run("logs \"$TOPOLOGY\" --since 10x"), "invalid duration `10x`: write a number and a unit s, m, h or d");
  const Run up = c.run("up \"$TOPOLOGY\"");
  INFO(up.out << up.err);
  REQUIRE(up.code == codes().ok);
  const std::string line = " swarm echo/v1#1 stdout | said-1-on-swarm\n";
  REQUIRE(flotilla::test::proc::wait_until([&] { return c.run("logs \"$TOPOLOGY\" echo/v1").out.find(line) != std::string::npos; },
                                           std::chrono::seconds(20)));
  const Run recent = c.run("logs \"$TOPOLOGY\" echo-v1 --since 1h");
  CHECK(recent.code == codes().ok);
  CHECK_THAT(recent.out, Contains(line));
  // The line was written once: soon it is older than a second and --since 1s leaves it out.
  CHECK(flotilla::test::proc::wait_until(
      [&] {
        const Run r = c.run("logs \"$TOPOLOGY\" --since 1s");
        return r.code == codes().ok && r.out.find("said-1") == std::string::npos;
      },
      std::chrono::seconds(10)));
  CHECK_THAT(c.run("logs \"$TOPOLOGY\" --since 1h --node swarm").out, Contains(line));

  for (const char* bad : {"10x", "m", "5", "-5m", "1h30"}) {
    INFO(bad);
    check_usage_error(c.run(std::string("logs \"$TOPOLOGY\" --since=") + bad), "invalid duration");
  }
  // -f on a terminal prints what is stored, then lines as they come, until Ctrl-C ends it with 0.
  flotilla::test::cli::Terminal follow({std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla", "logs", c.file().string(), "echo/v1", "-f"}, {},
                                       c.dir());
  CHECK(flotilla::test::proc::wait_until([&] { return follow.read(std::chrono::milliseconds(20)).find("said-1-on-swarm") != std::string::npos; },
                                         std::chrono::seconds(10)));
  REQUIRE(c.run("scale \"$TOPOLOGY\" echo/v1=2").code == codes().ok);
  CHECK(flotilla::test::proc::wait_until([&] { return follow.read(std::chrono::milliseconds(20)).find("said-2-on-swarm") != std::string::npos; },
                                         std::chrono::seconds(15)));
  follow.type("\x03");
  const auto followed = follow.wait(std::chrono::seconds(10));
  INFO(follow.output());
  CHECK(followed == codes().ok);

  const Run service = c.run("logs \"$TOPOLOGY\" nosuch/v1");
  CHECK(service.code == codes().failed);
  CHECK_THAT(service.err, Contains("service \"nosuch/v1\" is not in " + c.file().string() + "; see `flotilla status"));
  const Run node = c.run("logs \"$TOPOLOGY\" --node swarm-1");
  CHECK(node.code == codes().failed);
  CHECK_THAT(node.err, Contains("node \"swarm-1\" is not in " + c.file().string()));
}

TEST_CASE("validate refuses a service that the runtime of its nodes cannot run and names the line of the service", "[cli]") {
  Cluster c("workloads", "");
  auto write = [&](const std::string& runtime, const std::string& service) {
    std::ofstream(c.file(), std::ios::trunc) << "[cluster]\nname = \"workloads\"\ndriver = \"local\"\nruntime = \"" << runtime
                                             << "\"\n\n[driver.local]\ncidr = \"" << c.subnet() << ".0/24\"\n\n[[nodes]]\nname = \"solo\"\n\n"
                                             << "[[services]]\nname = \"hello/v1\"\n" << service << "port = 8000\n";
  };
  // Line 12 is the [[services]] header.
  write("docker", "command = [\"flotilla-hello\"]\n");
  const Run no_image = c.run("validate \"$TOPOLOGY\"");
  CHECK(no_image.code == codes().invalid);
  CHECK_THAT(no_image.err, Contains(c.file().string() + ":12:1: service \"hello/v1\" on runtime \"docker\""));
  CHECK_THAT(no_image.err, Contains("has no image") && Contains("add `image`"));

  write("process", "image = \"nginx\"\n");
  const Run no_command = c.run("plan \"$TOPOLOGY\"");
  CHECK(no_command.code == codes().invalid);
  CHECK_THAT(no_command.err, Contains(c.file().string() + ":12:1: service \"hello/v1\" on runtime \"process\""));
  CHECK_THAT(no_command.err, Contains("runs commands, not images") && Contains("add `command`"));
  CHECK_FALSE(fs::exists(c.state_dir()));

  write("docker", "image = \"nginx\"\n");
  const Run fine = c.run("validate \"$TOPOLOGY\"");
  INFO(fine.err);
  CHECK(fine.code == codes().ok);
}

TEST_CASE("the runtime override: [cluster] runtime picks the runtime plugin, and an unknown one is refused before anything runs",
          "[cli][integration]") {
  Cluster c("runtimes", "");
  const std::string nodes = "[[nodes]]\nname = \"solo\"\n\n[[services]]\nname = \"hello/v1\"\ncommand = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]\nport = 18000\n";
  // The override goes in [cluster], which the fixture writes first: rewrite the whole file.
  auto with_runtime = [&](const std::string& runtime) {
    std::ofstream(c.file(), std::ios::trunc) << "[cluster]\nname = \"runtimes\"\ndriver = \"local\"\nruntime = \"" << runtime
                                             << "\"\n\n[driver.local]\ncidr = \"" << c.subnet() << ".0/24\"\n\n" << nodes;
  };
  with_runtime("nosuch");
  const Run refused = c.run("up \"$TOPOLOGY\"");
  CHECK(refused.code == codes().invalid);
  CHECK_THAT(refused.err, Contains("nosuch"));
  CHECK_FALSE(fs::exists(c.state_dir()));

  with_runtime("process");
  const Run up = c.run("up \"$TOPOLOGY\"");
  INFO(up.out << up.err);
  REQUIRE(up.code == codes().ok);
  const json st = c.status();
  REQUIRE(st["nodes"].size() == 1);
  CHECK(st["nodes"][0]["runtime"] == "process");
  CHECK(running(st).size() == 1);
}

TEST_CASE("plan and graph show the elk addon's stages: Elasticsearch healthy before Logstash and Kibana, its whole apply after both",
          "[cli][elk]") {
  Cluster c("elkplan", "");
  std::ofstream(c.file(), std::ios::trunc) << "[cluster]\nname = \"elkplan\"\ndriver = \"local\"\nruntime = \"docker\"\n\n[driver.local]\ncidr = \""
                                           << c.subnet() << ".0/24\"\n\n[[nodes]]\nname = \"infra\"\nroles = [\"infra\"]\n\n"
                                           << "[[addons]]\nplugin = \"elk\"\n";
  const Run plan = c.run("plan \"$TOPOLOGY\" -o json");
  INFO(plan.err);
  REQUIRE(plan.code == codes().ok);
  const json p = json::parse(plan.out);
  std::map<std::string, std::set<std::string>> deps;
  for (const auto& s : p["steps"]) deps[s["id"].get<std::string>()] = s["deps"].get<std::set<std::string>>();
  REQUIRE(deps.count("addon.apply:elk/elasticsearch") == 1);
  CHECK(deps["addon.apply:elk/elasticsearch"].count("node.create:infra") == 1);
  CHECK(deps["addon.apply:elk/logstash"].count("addon.apply:elk/elasticsearch") == 1);
  CHECK(deps["addon.apply:elk/kibana"].count("addon.apply:elk/elasticsearch") == 1);
  CHECK(deps["addon.apply:elk"] == std::set<std::string>{"node.create:infra", "addon.apply:elk/elasticsearch", "addon.apply:elk/logstash",
                                                         "addon.apply:elk/kibana"});
  // The plan's lines stay one per addon.
  CHECK(std::count_if(p["actions"].begin(), p["actions"].end(), [](const json& a) { return a["name"] == "elk"; }) == 1);

  const Run graph = c.run("graph \"$TOPOLOGY\"");
  REQUIRE(graph.code == codes().ok);
  CHECK_THAT(graph.out, Contains("apply addon elk: elasticsearch") && Contains("apply addon elk: logstash") && Contains("apply addon elk: kibana"));

  const Run plugins = c.run("plugins -o json");
  REQUIRE(plugins.code == codes().ok);
  const json listed = json::parse(plugins.out);  // kept alive for the loop: the range below refers into it
  for (const auto& pl : listed["plugins"])
    if (pl["name"] == "elk") CHECK(pl["stages"].size() == 3);
}
