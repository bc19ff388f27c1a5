// Crash-only resume through the real CLI. Rounds of `up`, `scale` and `down` are killed with
// SIGKILL at a random moment (seeded; the seed is printed) and healed by running the same
// command again; a workload recorded only as intent is adopted, not started twice; a full disk
// and a read-only state directory end in a clear error that names the file, with nothing
// left running that the state does not know, and the plain rerun converges once the disk is
// writable again. Processes are told apart by the node address their runtime gave them
// (FLOTILLA_NODE_ADDRESS in the cluster's own /24) and ended only by pid.
#include "support/process_util.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <glob.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

using json = nlohmann::json;
namespace fs = std::filesystem;
namespace proc = flotilla::test::proc;
namespace resources = flotilla::test::resources;
using namespace std::chrono_literals;

namespace {

const char* kService = "hello/v1";

/// A process the cluster started: its session (the workload's process group) and workload.
struct Workload {
  pid_t pid = 0;
  pid_t sid = 0;
  std::string key;  // "<node address>/<workload name>"
};

/// j[key] when it is an object, else an empty one; a reference, so a loop over its items()
/// does not outlive a temporary.
const json& object_at(const json& j, const char* key) {
  static const json empty = json::object();
  if (!j.is_object()) return empty;
  const auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

/// The environment of a process as NAME -> value; empty when it is gone or unreadable.
std::map<std::string, std::string> environ_of(pid_t pid) {
  std::map<std::string, std::string> env;
  std::istringstream in(proc::read_text("/proc/" + std::to_string(pid) + "/environ"));
  for (std::string kv; std::getline(in, kv, '\0');)
    if (const auto eq = kv.find('='); eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  return env;
}

/// Every live process whose runtime placed it on a node of the /24 `prefix` ("127.91.7").
std::vector<Workload> processes_of(const std::string& prefix) {
  std::vector<Workload> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    const auto env = environ_of(pid);
    const auto address = env.find("FLOTILLA_NODE_ADDRESS");
    if (address == env.end() || address->second.rfind(prefix + ".", 0) != 0) continue;
    const auto st = proc::read_stat(pid);
    if (!st || st->state == 'Z' || st->state == 'X') continue;
    const auto workload = env.find("FLOTILLA_WORKLOAD");
    out.push_back({pid, st->sid, address->second + "/" + (workload == env.end() ? "?" : workload->second)});
  }
  return out;
}

/// Every temp file an atomic write left ("NAME.tmp-PID-N") anywhere under `dir`.
std::vector<fs::path> temp_files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->path().filename().string().find(".tmp-") != std::string::npos) out.push_back(it->path());
  return out;
}

bool syslog_available() {
  glob_t g{};
  const bool relp = ::glob("/usr/lib/*/rsyslog/imrelp.so", 0, nullptr, &g) == 0 && g.gl_pathc > 0;
  ::globfree(&g);
  return relp && fs::exists("/usr/sbin/rsyslogd");
}

/// A local-driver cluster with the syslog addon (its collector listens on a fixed port of the
/// infra node, free because the /24 is reserved for it) in a scratch directory; the destructor
/// brings it down and ends, by pid, any process of its /24 that down did not (after failing the
/// test, see the final checks).
class FaultCluster {
 public:
  explicit FaultCluster(const std::string& name) : dir_("flotilla-fault") {
    state_ = dir_.path() / "state";
    fs::create_directories(state_);
    std::ofstream(dir_.path() / "topology.toml")
        << "[cluster]\nname = \"" << name << "\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" << prefix_ << ".0/24\"\n\n"
        << "[[nodes]]\nname = \"infra\"\nroles = [\"infra\"]\n\n[[nodes]]\nname = \"swarm\"\ncount = 2\nroles = [\"swarm\"]\n\n"
        << "[[services]]\nname = \"" << kService << "\"\ncommand = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]\n"
        << "replicas = 2\nport = 18000\nhealth = \"/health\"\nroles = [\"swarm\"]\n\n[[addons]]\nplugin = \"syslog\"\n";
  }
  ~FaultCluster() {
    (void)read_only(false);
    (void)run("down");
    for (const auto& p : processes_of(prefix_)) ::kill(p.pid, SIGKILL);
    if (mounted_) (void)::umount2(state_.c_str(), MNT_DETACH);
  }
  FaultCluster(const FaultCluster&) = delete;
  FaultCluster& operator=(const FaultCluster&) = delete;

  /// `flotilla VERB TOPOLOGY ARGS --state-dir STATE`, waited for.
  proc::Shell run(const std::string& verb, const std::string& args = "") const {
    return proc::run_flotilla_script(dir_.path(), command(verb, args));
  }
  /// The same, started in the background with its output in a file, to be killed by pid.
  [[nodiscard]] std::unique_ptr<proc::Child> start(const std::string& verb, const std::string& args = "") const {
    const std::string out = (dir_.path() / "killed.txt").string();
    return std::make_unique<proc::Child>(std::vector<std::string>{"/bin/sh", "-c", "exec " + command(verb, args) + " >" + out + " 2>&1"});
  }

  /// `status --output json`; fails the test when it cannot be read.
  json status() const {
    const proc::Shell s = run("status", "--output json");
    INFO(s.err);
    REQUIRE(s.code == 0);
    return json::parse(s.out);
  }
  /// state.json as JSON (null when there is none).
  json state() const {
    std::ifstream in(state_ / "state.json");
    std::string version;
    if (!std::getline(in, version)) return json();
    return json::parse(in, nullptr, false);
  }
  void write_state(const json& s) const { std::ofstream(state_ / "state.json") << "flotilla-state 2\n" << s.dump(2) << "\n"; }

  /// Mounts a tmpfs of `bytes` as the state directory; false (with errno) when not allowed.
  bool mount_tmpfs(std::size_t bytes) {
    const std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
    mounted_ = ::mount("flotilla-fault", state_.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    return mounted_;
  }
  /// Makes the state directory read-only for new opens (a read-only bind mount over it; the
  /// workloads keep the log files they have open), or writable again; false when not allowed.
  bool read_only(bool on) {
    if (!on) {
      if (read_only_ && ::umount2(state_.c_str(), 0) == 0) read_only_ = false;
      return !read_only_;
    }
    if (::mount(state_.c_str(), state_.c_str(), nullptr, MS_BIND, nullptr) != 0) return false;
    read_only_ = true;
    return ::mount(nullptr, state_.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == 0;
  }

  [[nodiscard]] const std::string& prefix() const { return prefix_; }
  [[nodiscard]] const fs::path& state_dir() const { return state_; }

 private:
  std::string command(const std::string& verb, const std::string& args) const {
    return std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla " + verb + " " + (dir_.path() / "topology.toml").string() + " " + args +
           " --state-dir " + state_.string();
  }

  resources::Subnet subnet_ = resources::reserve_subnet();
  std::string prefix_ = subnet_.net();
  proc::ScratchDir dir_;
  fs::path state_;
  bool mounted_ = false;
  bool read_only_ = false;
};

/// The pid the state records for every instance ("hello/v1#1") and component ("syslog infra/collector").
std::map<std::string, pid_t> recorded_pids(const json& status) {
  std::map<std::string, pid_t> out;
  for (const auto& s : status.value("services", json::array()))
    for (const auto& i : s.value("instances", json::array())) out[i.value("id", "")] = i.value("pid", 0);
  for (const auto& a : status.value("addons", json::array()))
    for (const auto& c : a.value("components", json::array()))
      out[a.value("name", "") + " " + c.value("node", "") + "/" + c.value("name", "")] = c.value("pid", 0);
  return out;
}

/// Checks that the cluster runs `replicas` healthy instances and every component, each exactly
/// once: one process group per workload, and every group the one the state records.
void check_converged_up(const FaultCluster& c, int replicas, std::set<std::pair<pid_t, std::uint64_t>>& seen) {
  const json st = c.status();
  INFO(st.dump(1));
  REQUIRE(st["nodes"].size() == 3);
  REQUIRE(st["services"].size() == 1);
  CHECK(st["services"][0]["instances"].size() == static_cast<std::size_t>(replicas));
  std::set<pid_t> recorded;
  for (const auto& i : st["services"][0]["instances"]) {
    CHECK(i["state"] == "running");
    recorded.insert(i["pid"].get<pid_t>());
  }
  REQUIRE(st["addons"].size() == 1);
  CHECK(st["addons"][0]["state"] == "ready");
  CHECK(st["addons"][0]["components"].size() == 4);  // the collector and a shipper per node
  for (const auto& comp : st["addons"][0]["components"]) {
    CHECK(comp["state"] == "running");
    recorded.insert(comp["pid"].get<pid_t>());
  }
  std::map<std::string, std::set<pid_t>> groups;
  for (const auto& p : processes_of(c.prefix())) groups[p.key].insert(p.sid);
  std::set<pid_t> leaders;
  for (const auto& [key, sids] : groups) {
    INFO("workload " << key);
    CHECK(sids.size() == 1);  // never started twice
    leaders.insert(sids.begin(), sids.end());
  }
  CHECK(leaders == recorded);  // nothing runs that the state does not know
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(c.state_dir(), ec)) {
    INFO("stray temp file " << e.path());  // a rerun removes what a killed save left
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
  }
  for (pid_t pid : recorded)
    if (const auto s = proc::read_stat(pid)) seen.insert({pid, s->start_time});
}

/// After a down: nothing of the cluster runs, no temp file or state is left.
void check_converged_down(const FaultCluster& c, const std::set<std::pair<pid_t, std::uint64_t>>& seen) {
  const auto left = processes_of(c.prefix());
  for (const auto& p : left) INFO("left running: pid " << p.pid << " " << p.key);
  CHECK(left.empty());
  for (const auto& [pid, start] : seen) {
    const auto s = proc::read_stat(pid);
    CHECK_FALSE((s && s->start_time == start && s->state != 'Z'));
  }
  const auto temps = temp_files_under(c.state_dir());
  for (const auto& t : temps) INFO("stray temp file " << t);
  CHECK(temps.empty());
  CHECK_FALSE(fs::exists(c.state_dir() / "state.json"));
}

/// What a killed run left behind, as a short label: the intents it had recorded and whether a
/// workload recorded only as intent was running (the case adoption is for).
std::string kill_point(const FaultCluster& c) {
  const json s = c.state();
  if (!s.is_object()) return "no state yet";
  std::set<std::string> parts;
  for (const char* section : {"nodes", "instances", "addons"})
    for (const auto& [_, r] : object_at(s, section).items())
      if (const std::string st = r.value("status", ""); st != "ready" && st != "running")
        parts.insert(std::string(section) + " " + st);
  std::set<std::string> running;
  for (const auto& p : processes_of(c.prefix())) running.insert(p.key.substr(p.key.find('/') + 1));
  const auto intent_only = [&](const json& r) {
    return r.value("status", "") == "starting" && !r.contains("record") && running.count(r.value("workload", ""));
  };
  for (const auto& [_, r] : object_at(s, "instances").items())
    if (intent_only(r)) parts.insert("instance running, recorded only as intent");
  for (const auto& [_, a] : object_at(s, "addons").items())
    for (const auto& [key, comp] : object_at(a, "components").items()) {
      if (comp.value("status", "") != "running") parts.insert("component " + comp.value("status", "?"));
      if (intent_only(comp)) parts.insert("component running, recorded only as intent");
    }
  if (!temp_files_under(c.state_dir()).empty()) parts.insert("temp file");
  std::string label;
  for (const auto& p : parts) label += (label.empty() ? "" : ", ") + p;
  return label.empty() ? "between steps" : label;
}

}  // namespace

TEST_CASE("kill -9 at random moments of up, scale and down is healed by the plain rerun", "[integration][cli][fault]") {
  if (!syslog_available()) FLOTILLA_SKIP("rsyslogd with the RELP module (rsyslog-relp) is not installed");
  const char* given = std::getenv("FLOTILLA_FAULT_SEED");
  const unsigned seed = given ? static_cast<unsigned>(std::strtoul(given, nullptr, 10)) : std::random_device{}();
  std::cout << "fault rounds: seed " << seed << " (FLOTILLA_FAULT_SEED=" << seed << " replays it)" << std::endl;
  std::mt19937 rng(seed);
  // Up to 30 rounds, as many as fit in two minutes, and never fewer than 8: a build under the
  // sanitizers runs each command several times slower, and the test must end well inside
  // ctest's 300 s.
  constexpr int kRounds = 30, kMinRounds = 8;
  constexpr auto kBudget = std::chrono::seconds(120);
  const auto t0 = std::chrono::steady_clock::now();

  FaultCluster c("faults");
  std::set<std::pair<pid_t, std::uint64_t>> seen;  // every workload process the state recorded
  std::map<std::string, int> points;               // what the killed runs left, counted
  std::map<std::string, int> window_ms = {{"up", 4000}, {"scale", 2500}, {"down", 2500}};
  bool up = false;
  int replicas = 2, killed = 0;
  int rounds = 0;
  for (int round = 1; round <= kRounds && (round <= kMinRounds || std::chrono::steady_clock::now() - t0 < kBudget); ++round) {
    rounds = round;
    std::string verb = "up", args;
    int want = replicas;
    if (up && std::uniform_int_distribution<int>(0, 99)(rng) < 60) {
      verb = "scale";
      do want = std::uniform_int_distribution<int>(1, 3)(rng);
      while (want == replicas);
      args = std::string(kService) + "=" + std::to_string(want);
    } else if (up) {
      verb = "down";
    }
    const int delay = std::uniform_int_distribution<int>(0, window_ms[verb])(rng);
    INFO("round " << round << " of seed " << seed << ": " << verb << " " << args << " killed after " << delay << " ms");

    const auto started = std::chrono::steady_clock::now();
    auto run = c.start(verb, args);
    std::optional<int> finished = run->wait_exit(std::chrono::milliseconds(delay));
    std::string point = "finished before the kill";
    if (!finished) {
      REQUIRE(::kill(run->pid(), SIGKILL) == 0);
      finished = run->wait_exit(10s);
      REQUIRE(finished);
      ++killed;
      point = kill_point(c);
    } else {
      // It ran to the end: the window was longer than the command; fit it to what it took.
      window_ms[verb] = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
    }
    ++points[verb + ": " + point];

    const proc::Shell rerun = c.run(verb, args);
    INFO("killed at: " << point << "\nrerun: " << rerun.out << rerun.err);
    REQUIRE(rerun.code == 0);
    if (verb == "down") {
      up = false;
      replicas = 2;  // down forgets the scale override
      check_converged_down(c, seen);
    } else {
      up = true;
      replicas = want;
      check_converged_up(c, replicas, seen);
    }
  }
  if (up) {
    REQUIRE(c.run("down").code == 0);
    check_converged_down(c, seen);
  }
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0);
  std::cout << "fault rounds: " << rounds << " rounds, " << killed << " killed mid-run, " << took.count() << " s; kill points:\n";
  for (const auto& [p, n] : points) std::cout << "  " << n << " x " << p << "\n";
  CHECK(killed >= rounds / 2);  // most rounds really were interrupted
}

TEST_CASE("a workload recorded only as intent is adopted, never started twice, and down stops it", "[integration][cli][fault]") {
  if (!syslog_available()) FLOTILLA_SKIP("rsyslogd with the RELP module (rsyslog-relp) is not installed");
  FaultCluster c("intent");
  REQUIRE(c.run("up").code == 0);
  std::set<std::pair<pid_t, std::uint64_t>> seen;
  check_converged_up(c, 2, seen);
  const auto before = recorded_pids(c.status());

  // What a run killed right after the runtime started them leaves: the collector and an
  // instance recorded as `starting` without a runtime record, their addon unfinished.
  const auto forget_records = [&] {
    json s = c.state();
    REQUIRE(s.is_object());
    json& instance = s["instances"][std::string(kService) + "#1"];
    instance["status"] = "starting";
    instance.erase("record");
    json& addon = s["addons"]["syslog"];
    addon["status"] = "applying";
    json& collector = addon["components"]["infra/collector"];
    REQUIRE(collector.is_object());
    collector["status"] = "starting";
    collector.erase("record");
    c.write_state(s);
  };
  forget_records();

  // The rerun finds both through the runtime by name and keeps them: the collector's port is
  // its own, not "taken by another program", and nothing runs twice.
  const proc::Shell rerun = c.run("up", "-v");
  INFO(rerun.out << rerun.err);
  REQUIRE(rerun.code == 0);
  CHECK_THAT(rerun.err, Catch::Contains("adopted component collector on node infra"));
  CHECK_THAT(rerun.err, Catch::Contains("instance hello/v1#1: adopted its workload on node swarm-1"));
  check_converged_up(c, 2, seen);
  CHECK(recorded_pids(c.status()) == before);

  // down stops what is recorded only as intent, by name: nothing is left running.
  forget_records();
  const proc::Shell down = c.run("down");
  INFO(down.out << down.err);
  REQUIRE(down.code == 0);
  check_converged_down(c, seen);
}

namespace {

/// Fills the file system of `dir` until at most `leave` bytes are free; the filler file.
fs::path fill(const fs::path& dir, std::size_t leave) {
  const fs::path filler = dir / "filler";
  std::ofstream out(filler, std::ios::binary | std::ios::app);
  const std::string chunk(4096, 'x');
  for (;;) {
    const auto space = fs::space(dir);
    if (space.available <= leave) break;
    out.write(chunk.data(), static_cast<std::streamsize>(std::min<std::uintmax_t>(chunk.size(), space.available - leave)));
    out.flush();
    if (!out) break;
  }
  return filler;
}

/// Every running process of the cluster belongs to a workload the state records (by its
/// runtime record or, when only the intent was saved, by its workload name).
void check_nothing_orphaned(const FaultCluster& c) {
  const json s = c.state();
  REQUIRE(s.is_object());
  std::set<std::string> known;
  std::map<std::string, std::string> address;
  for (const auto& [name, n] : object_at(s, "nodes").items()) address[name] = n.value("address", "");
  for (const auto& [_, i] : object_at(s, "instances").items()) known.insert(address[i.value("node", "")] + "/" + i.value("workload", ""));
  for (const auto& [_, a] : object_at(s, "addons").items())
    for (const auto& [__, comp] : object_at(a, "components").items())
      known.insert(address[comp.value("node", "")] + "/" + comp.value("workload", ""));
  for (const auto& p : processes_of(c.prefix())) {
    INFO("pid " << p.pid << " runs " << p.key << ", which the state does not record");
    CHECK(known.count(p.key) == 1);
  }
}

}  // namespace

TEST_CASE("a full state disk ends in a clear error, orphans nothing, and the rerun converges once space returns",
          "[integration][cli][fault]") {
  if (!syslog_available()) FLOTILLA_SKIP("rsyslogd with the RELP module (rsyslog-relp) is not installed");
  FaultCluster c("enospc");
  if (!c.mount_tmpfs(8u << 20)) FLOTILLA_SKIP("cannot mount a tmpfs as the state directory (needs root): " << std::strerror(errno));
  REQUIRE(c.run("up").code == 0);
  std::set<std::pair<pid_t, std::uint64_t>> seen;
  check_converged_up(c, 2, seen);

  // Out of space at different moments: before the first save, and part-way through the run.
  int replicas = 2, refused = 0;
  for (const std::size_t leave : {std::size_t(0), std::size_t(16) << 10, std::size_t(64) << 10, std::size_t(256) << 10}) {
    const int want = replicas == 3 ? 1 : 3;
    const std::string args = std::string(kService) + "=" + std::to_string(want);
    INFO("scale to " << want << " with " << leave << " bytes free");
    const fs::path filler = fill(c.state_dir(), leave);
    const proc::Shell full = c.run("scale", args);
    INFO(full.out << full.err);
    if (full.code != 0) {
      ++refused;
      CHECK_THAT(full.err, Catch::Contains("No space left on device"));
      CHECK_THAT(full.err, Catch::Contains(c.state_dir().string()));  // it names the file
      CHECK_THAT(full.err, !Catch::Contains("internal error"));
      check_nothing_orphaned(c);
    }
    fs::remove(filler);
    const proc::Shell rerun = c.run("scale", args);
    INFO(rerun.out << rerun.err);
    REQUIRE(rerun.code == 0);
    replicas = want;
    check_converged_up(c, replicas, seen);
  }
  CHECK(refused >= 1);

  // down on a full disk fails cleanly too; the rerun with space brings everything down.
  const fs::path filler = fill(c.state_dir(), 0);
  const proc::Shell full_down = c.run("down");
  INFO(full_down.out << full_down.err);
  if (full_down.code != 0) {
    CHECK_THAT(full_down.err, Catch::Contains("No space left on device"));
    check_nothing_orphaned(c);
  }
  fs::remove(filler);
  const proc::Shell down = c.run("down");
  INFO(down.out << down.err);
  REQUIRE(down.code == 0);
  check_converged_down(c, seen);
}

TEST_CASE("a read-only state directory ends in a clear error, orphans nothing, and the rerun converges once writable",
          "[integration][cli][fault]") {
  if (!syslog_available()) FLOTILLA_SKIP("rsyslogd with the RELP module (rsyslog-relp) is not installed");
  FaultCluster c("readonly");
  if (!c.read_only(true) || !c.read_only(false))
    FLOTILLA_SKIP("cannot bind-mount the state directory read-only (needs root): " << std::strerror(errno));
  REQUIRE(c.run("up").code == 0);
  std::set<std::pair<pid_t, std::uint64_t>> seen;
  check_converged_up(c, 2, seen);
  const auto before = recorded_pids(c.status());

  REQUIRE(c.read_only(true));
  for (const std::string verb : {"scale", "down"}) {
    const proc::Shell ro = c.run(verb, verb == "scale" ? std::string(kService) + "=3" : "");
    INFO(verb << ": " << ro.out << ro.err);
    CHECK(ro.code != 0);
    CHECK_THAT(ro.err, Catch::Contains("Read-only file system"));
    CHECK_THAT(ro.err, Catch::Contains(c.state_dir().string()));
    CHECK_THAT(ro.err, !Catch::Contains("internal error"));
    check_nothing_orphaned(c);
    CHECK(recorded_pids(c.status()) == before);  // nothing started, nothing stopped
  }
  REQUIRE(c.read_only(false));
  const proc::Shell rerun = c.run("scale", std::string(kService) + "=3");
  INFO(rerun.out << rerun.err);
  REQUIRE(rerun.code == 0);
  check_converged_up(c, 3, seen);
  REQUIRE(c.run("down").code == 0);
  check_converged_down(c, seen);
}
