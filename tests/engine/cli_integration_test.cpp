// The core issue's user journey through the real CLI: up, status, curl every instance, a
// no-op second up, scale out and in, repair of a dead instance, saved plans, the lock,
// failing plugins that leave state consistent, and a down that leaves nothing behind.
#include "state_store.hpp"
#include "support/cleanup_report.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"
#include "util.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using json = nlohmann::json;
namespace fs = std::filesystem;
using flotilla::test::proc::ScratchDir;
using flotilla::test::proc::read_text;

namespace {

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

// A cluster in a scratch directory, brought down by the destructor whatever happened.
class Cluster {
 public:
  Cluster(const std::string& name, const std::string& body) : dir_("flotilla-cli") {
    file_ = dir_.path() / "topology.toml";
    // A /24 reserved for this cluster keeps parallel test runs apart.
    std::ofstream(file_) << "[cluster]\nname = \"" << name << "\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" << subnet_.cidr()
                         << "\"\n\n" << body;
  }
  ~Cluster() {
    // A test may leave its topology invalid (or needing test plugins) once it is down itself:
    // a failed down matters only while some state is left behind.
    if (const Run r = run({"down", "-q"}); r.code != 0 && state_left())
      flotilla::test::report_cleanup_failure("down of " + file_.string() + " exited " + std::to_string(r.code) + ": " + r.out + r.err);
  }

  [[nodiscard]] bool state_left() const {
    std::error_code ec;
    for (fs::directory_iterator it(state_dir(), ec), end; !ec && it != end; it.increment(ec))
      if (fs::exists(it->path() / "state.json")) return true;
    return false;
  }

  Run run(std::vector<std::string> args, const std::string& extra = "") const {
    std::string cmd = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";
    cmd += " " + args[0] + " " + file_.string();
    for (size_t i = 1; i < args.size(); ++i) cmd += " '" + args[i] + "'";
    cmd += " " + extra;
    const fs::path out = dir_.path() / "out.txt", err = dir_.path() / "err.txt";
    const int status = std::system((cmd + " >" + out.string() + " 2>" + err.string() + " </dev/null").c_str());
    Run r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  json status() const {
    Run r = run({"status", "--output", "json"});
    REQUIRE(r.code == 0);
    return json::parse(r.out);
  }

  [[nodiscard]] const fs::path& file() const { return file_; }
  [[nodiscard]] fs::path state_dir() const { return dir_.path() / ".flotilla"; }
  [[nodiscard]] std::string prefix() const { return subnet_.net(); }

 private:
  ScratchDir dir_;
  fs::path file_;
  flotilla::test::resources::Subnet subnet_ = flotilla::test::resources::reserve_subnet();
};

const char* kHello = R"(
[[nodes]]
name = "infra"
roles = ["infra"]

[[nodes]]
name = "swarm"
count = 3
roles = ["swarm"]

[[services]]
name = "hello/v1"
command = ["flotilla-hello", "--listen", "{address}:{port}"]
replicas = 5
port = 18000
roles = ["swarm"]
)";

std::vector<json> running_instances(const json& status) {
  std::vector<json> out;
  for (const auto& s : status["services"])
    for (const auto& i : s["instances"])
      if (i["state"] == "running") out.push_back(i);
  return out;
}

bool pid_alive(int pid) { return pid > 0 && flotilla::test::proc::running(pid); }

bool port_listening(const std::string& addr, int port) {
  return flotilla::http_get("http://" + addr + ":" + std::to_string(port) + "/health", std::chrono::milliseconds(500)) != 0;
}

}  // namespace

TEST_CASE("up, status, no-op up, scale, repair and down through the CLI", "[integration][cli]") {
  Cluster c("journey", kHello);
  Run up = c.run({"up"});
  INFO(up.out << up.err);
  REQUIRE(up.code == 0);
  CHECK_THAT(up.out, Catch::Contains("Applied: 9 added"));

  json st = c.status();
  CHECK(st["nodes"].size() == 4);
  auto inst = running_instances(st);
  REQUIRE(inst.size() == 5);
  std::set<std::string> addresses;
  for (const auto& n : st["nodes"]) addresses.insert(n["address"].get<std::string>());
  CHECK(addresses.size() == 4);
  for (const auto& a : addresses) CHECK(a.rfind(c.prefix() + ".", 0) == 0);

  // Each instance answers on its own address with its own id.
  for (const auto& i : inst) {
    std::string body;
    const std::string url = "http://" + i["address"].get<std::string>() + ":" + std::to_string(i["port"].get<int>()) + "/";
    REQUIRE(flotilla::http_get(url, std::chrono::seconds(2), &body) == 200);
    CHECK(json::parse(body)["instance"] == i["id"]);
  }

  // A second up changes nothing: same pids, "No changes".
  Run again = c.run({"up"});
  CHECK(again.code == 0);
  CHECK_THAT(again.out, Catch::Contains("No changes"));
  auto inst2 = running_instances(c.status());
  for (size_t k = 0; k < inst.size(); ++k) CHECK(inst2[k]["pid"] == inst[k]["pid"]);

  // Scale out and back in.
  Run out8 = c.run({"scale", "hello/v1=8"});
  INFO(out8.err);
  REQUIRE(out8.code == 0);
  CHECK(running_instances(c.status()).size() == 8);
  auto eight = running_instances(c.status());
  Run in3 = c.run({"scale", "hello/v1=3"});
  REQUIRE(in3.code == 0);
  auto three = running_instances(c.status());
  CHECK(three.size() == 3);
  for (const auto& i : eight)
    if (i["instance"].get<int>() > 3) CHECK_FALSE(pid_alive(i["pid"].get<int>()));
  CHECK_THAT(c.run({"plan"}).out, Catch::Contains("set by `flotilla scale`"));

  // A dead instance is restarted by the next up.
  const int victim = three[1]["pid"];
  REQUIRE(::kill(victim, SIGKILL) == 0);
  REQUIRE(flotilla::test::proc::wait_until([&] { return !pid_alive(victim); }, std::chrono::seconds(5)));
  Run plan = c.run({"plan"});
  CHECK_THAT(plan.out, Catch::Contains("hello/v1#2: restart"));
  Run repair = c.run({"up"});
  REQUIRE(repair.code == 0);
  auto repaired = running_instances(c.status());
  CHECK(repaired.size() == 3);
  CHECK(repaired[1]["pid"] != victim);

  // A saved plan is refused once the cluster has moved.
  const fs::path saved = c.file().parent_path() / "saved.plan";
  REQUIRE(c.run({"plan", "--out", saved.string()}).code == 0);
  REQUIRE(c.run({"scale", "hello/v1=4"}).code == 0);
  Run stale = c.run({"up", "--plan", saved.string()});
  CHECK(stale.code == 1);
  CHECK_THAT(stale.err, Catch::Contains("serial"));

  // The graph is DOT.
  Run graph = c.run({"graph", "--destroy"});
  CHECK_THAT(graph.out, Catch::StartsWith("digraph"));
  CHECK_THAT(graph.out, Catch::Contains("node.destroy:swarm-1"));

  // ps and ip.
  Run ps = c.run({"ps", "hello"});
  CHECK_THAT(ps.out, Catch::Contains("hello/v1#4"));
  Run ip = c.run({"ip", "swarm-2"});
  CHECK(ip.out == c.prefix() + ".3\n");
  // Without an addon keeping a catalog, a service's addresses come from the recorded instances.
  Run service_ip = c.run({"ip", "hello/v1"});
  CHECK(service_ip.code == 0);
  CHECK(service_ip.err.empty());
  CHECK(std::count(service_ip.out.begin(), service_ip.out.end(), '\n') == 4);
  CHECK_THAT(service_ip.out, Catch::StartsWith(c.prefix() + "."));

  // down leaves no process, no listening port, no lock and no state behind.
  const json before = c.status();
  Run down = c.run({"down"});
  INFO(down.err);
  REQUIRE(down.code == 0);
  for (const auto& i : running_instances(before)) {
    CHECK_FALSE(pid_alive(i["pid"].get<int>()));
    CHECK_FALSE(port_listening(i["address"], i["port"]));
  }
  CHECK_FALSE(fs::exists(c.state_dir()));
  CHECK_THAT(c.run({"down"}).out, Catch::Contains("Nothing to destroy"));
}

TEST_CASE("a second run on a locked cluster is refused and names the holder", "[integration][cli]") {
  Cluster c("locked", "[[nodes]]\nname = \"solo\"\n");
  auto lock = flotilla::StateLock::acquire(c.state_dir() / "locked", "flotilla up (held by the test)");
  REQUIRE(lock);
  Run up = c.run({"up"});
  CHECK(up.code == 4);
  CHECK_THAT(up.err, Catch::Contains("held by the test"));
  CHECK_THAT(up.err, Catch::Contains(std::to_string(::getpid())));
}

TEST_CASE("after kill -9 of up or down, the plain rerun takes the lock over and converges", "[integration][cli]") {
  Cluster c("crashed", kHello);
  const std::string binary = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";
  const fs::path lock = c.state_dir() / "crashed" / "lock";
  // Each run has work to do (up after down, down after up) and is killed at some moment after
  // it has started (it holds the lock and the state file exists).
  const struct Round {
    const char* verb;
    int delay_ms;
  } rounds[] = {{"up", 0}, {"down", 150}, {"up", 400}, {"down", 0}, {"up", 900}};
  for (const Round& round : rounds) {
    const bool state_before = fs::exists(c.state_dir() / "crashed" / "state.json");
    const pid_t run = ::fork();
    REQUIRE(run >= 0);
    if (run == 0) {
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(binary.c_str(), binary.c_str(), round.verb, c.file().c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    int status = 0;
    bool exited = false;
    const bool started = flotilla::test::proc::wait_until(
        [&] {
          exited = exited || ::waitpid(run, &status, WNOHANG) == run;
          return exited || (fs::exists(lock) && (state_before || fs::exists(c.state_dir() / "crashed" / "state.json")));
        },
        std::chrono::seconds(20));
    if (!exited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(round.delay_ms));
      ::kill(run, SIGKILL);
      ::waitpid(run, &status, 0);
    }
    INFO(round.verb << " killed " << round.delay_ms << " ms in");
    REQUIRE(started);
    // It finished before the kill, or had released the lock and was exiting (a gcov build
    // writes its counts then, which takes long enough to be hit): converge the same way, go on.
    if (!WIFSIGNALED(status) || !fs::exists(lock)) {
      REQUIRE(c.run({round.verb}).code == 0);
      continue;
    }

    Run rerun = c.run({round.verb});
    INFO(rerun.out << rerun.err);
    CHECK(rerun.code == 0);
    CHECK_THAT(rerun.err, Catch::Contains("note: took over the lock of pid " + std::to_string(run) + " (`flotilla " + round.verb));
    CHECK_FALSE(fs::exists(lock));  // released at the end of the rerun
    if (std::string(round.verb) == "up") {
      CHECK(running_instances(c.status()).size() == 5);
    } else {
      CHECK(c.run({"status"}).out.find("running") == std::string::npos);
    }
  }
  // A temp file that a run killed in the middle of saving state would leave is cleaned up by
  // down, so the state directory goes.
  REQUIRE(c.run({"up"}).code == 0);
  const fs::path stray = c.state_dir() / "crashed" / ".state.json.tmp-999999999-1";
  std::ofstream(stray) << "half a state";
  REQUIRE(c.run({"down"}).code == 0);
  CHECK_FALSE(fs::exists(stray));
  CHECK_FALSE(fs::exists(c.state_dir() / "crashed"));
}

TEST_CASE("failing addons leave state consistent and down still cleans up", "[integration][cli]") {
  const std::string plugin = GENERATE(std::string("thrower"), std::string("raw-thrower"), std::string("malformed"));
  Cluster c("failing", std::string(kHello) + "\n[[addons]]\nplugin = \"" + plugin + "\"\nroles = [\"infra\"]\n");
  const std::string extra = std::string("--plugin-path ") + FLOTILLA_TEST_PLUGIN_DIR;
  Run up = c.run({"up"}, extra);
  INFO(up.out << up.err);
  CHECK(up.code == 1);
  CHECK_THAT(up.err, Catch::Contains("addon " + plugin + ": apply failed"));
  // Everything else was done and recorded; the failed addon is marked unfinished.
  std::ifstream in(c.state_dir() / "failing" / "state.json");
  std::string first;
  std::getline(in, first);
  CHECK(first == "flotilla-state 2");
  json state = json::parse(in);
  CHECK(state["nodes"].size() == 4);
  CHECK(state["instances"].size() == 5);
  CHECK(state["addons"][plugin]["status"] == "applying");
  // The next plan retries only the addon.
  Run plan = c.run({"plan"}, extra);
  CHECK_THAT(plan.out, Catch::Contains("addon " + plugin + ": apply (last apply did not finish)"));
  CHECK_THAT(plan.out, Catch::Contains("Plan: 0 to add, 1 to change, 0 to destroy"));
  Run down = c.run({"down"}, extra);
  INFO(down.err);
  CHECK(down.code == 0);
  CHECK_FALSE(fs::exists(c.state_dir() / "failing"));
}

TEST_CASE("bad topologies are refused before anything runs", "[integration][cli]") {
  Cluster c("bad", "[[nodes]]\nname = \"solo\"\ncuont = 2\n\n[[addons]]\nplugin = \"no-such-addon\"\n");
  Run v = c.run({"validate"});
  CHECK(v.code == 3);
  CHECK_THAT(v.err, Catch::Contains("topology.toml:10:1"));
  CHECK_THAT(v.err, Catch::Contains("did you mean \"count\""));
  Run up = c.run({"up"});
  CHECK(up.code == 3);
  CHECK_FALSE(fs::exists(c.state_dir()));
}

TEST_CASE("a service port that clashes with an addon's port on a node is refused at validate", "[integration][cli]") {
  Cluster c("clash", R"(
[[nodes]]
name = "swarm"
roles = ["swarm"]

[[services]]
name = "hello/v1"
command = ["flotilla-hello", "--listen", "{address}:{port}"]
port = 8080

[[addons]]
plugin = "haproxy"
[addons.options]
port = 8080
)");
  Run v = c.run({"validate"});
  CHECK(v.code == 3);
  CHECK_THAT(v.err, Catch::Contains("topology.toml:21:1: addon \"haproxy\" (option port) uses port 8080 on node swarm"));
  CHECK_THAT(v.err, Catch::Contains("instance hello/v1#1"));
  CHECK_FALSE(fs::exists(c.state_dir()));
}

TEST_CASE("the CLI explains itself", "[cli]") {
  Cluster c("help", "[[nodes]]\nname = \"solo\"\n");
  const std::string bin = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";
  for (const char* cmd : {"validate", "plan", "up", "status", "scale", "down", "plugins", "graph", "ps", "ip", "env", "unlock", "logs"}) {
    const int status = std::system((bin + " " + cmd + " --help > /dev/null 2>&1").c_str());
    INFO(cmd);
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(WEXITSTATUS(std::system((bin + " > /dev/null 2>&1").c_str())) == 0);
  CHECK(WEXITSTATUS(std::system((bin + " frobnicate > /dev/null 2>&1").c_str())) == 2);
  Run scale = c.run({"scale", "hello=lots"});
  CHECK(scale.code == 2);
  CHECK_THAT(scale.err, Catch::Contains("SERVICE=N"));
}

TEST_CASE("plugins --output json shows each plugin's placement, max_parallel and the questions it answers", "[cli]") {
  ScratchDir dir("flotilla-plugins-json");
  const fs::path out = dir.path() / "out.json";
  const std::string cmd = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla plugins --output json --plugin-path " +
                          FLOTILLA_TEST_PLUGIN_DIR + " >" + out.string() + " 2>/dev/null";
  REQUIRE(WEXITSTATUS(std::system(cmd.c_str())) == 0);
  const json doc = json::parse(read_text(out));
  std::map<std::string, json> by_name;
  for (const auto& p : doc.at("plugins")) by_name[p.at("kind").get<std::string>() + "/" + p.at("name").get<std::string>()] = p;
  REQUIRE(by_name.count("addon/answering") == 1);
  const json& answering = by_name["addon/answering"];
  CHECK(answering.at("placement") == json{{"roles", {"infra"}}, {"mode", "first"}});
  CHECK(answering.at("max_parallel") == 2);
  CHECK(answering.at("answers") == json{"count", "follow", "fail"});
  REQUIRE(by_name.count("addon/haproxy") == 1);
  CHECK(by_name["addon/haproxy"].at("placement").at("mode") == "first");
  CHECK(by_name["addon/haproxy"].at("max_parallel").is_null());
  REQUIRE(by_name.count("driver/local") == 1);
  CHECK(by_name["driver/local"].at("placement").is_null());
}
