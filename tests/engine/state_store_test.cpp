#include "state_records.hpp"
#include "state_store.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

using namespace flotilla;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "flotilla-state-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void spit(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

int mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<int>(st.st_mode & 07777);
}

// Leaves a lock file behind from a process that has exited: the child takes the lock and
// leaves without running destructors, as a crashed run would.
pid_t leave_dead_lock(const fs::path& dir, const std::string& command) {
  const pid_t child = ::fork();
  if (child == 0) {
    auto lock = StateLock::acquire(dir, command);
    ::_exit(lock ? 0 : 1);
  }
  int status = 0;
  REQUIRE(child > 0);
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return child;
}

const json kSample = {{"cluster", "local"},
                      {"nodes", {{"swarm-1", {{"address", "127.77.0.2"}, {"status", "ready"}}}}},
                      {"serial", 7}};

}  // namespace

TEST_CASE("state: a missing state file loads as an empty object", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path() / "never-created");
  auto state = store.load();
  REQUIRE(state);
  CHECK(*state == json::object());
}

TEST_CASE("state: save then load round-trips, with the version line first", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path() / "clusters" / "local");
  REQUIRE(store.save(kSample));

  auto loaded = store.load();
  REQUIRE(loaded);
  CHECK(*loaded == kSample);

  const auto text = slurp(store.file());
  CHECK(text.starts_with("flotilla-state 2\n{\n  \"cluster\": \"local\",\n"));
  CHECK(text.ends_with("}\n"));
  CHECK(mode_of(store.file()) == 0600);
  CHECK(mode_of(store.dir()) == 0700);
}

TEST_CASE("state: saves leave no temporary files and keep the previous version as .bak", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path());
  json state = kSample;
  for (int serial = 1; serial <= 5; ++serial) {
    state["serial"] = serial;
    REQUIRE(store.save(state));
  }
  CHECK(names_in(tmp.path()) == std::set<std::string>{"state.json", "state.json.bak"});

  auto bak = slurp(tmp.path() / "state.json.bak");
  CHECK(bak.find("\"serial\": 4") != std::string::npos);
  CHECK(slurp(store.file()).find("\"serial\": 5") != std::string::npos);
}

TEST_CASE("state: a corrupt file is reported with its line and the backup", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path());
  REQUIRE(store.save(kSample));
  REQUIRE(store.save(kSample));  // now a backup exists
  spit(store.file(), "flotilla-state 1\n{\n  \"cluster\": \"local\",\n  \"nodes\": {\n    \"swarm-1\": ]\n");

  auto loaded = store.load();
  REQUIRE_FALSE(loaded);
  const auto& msg = loaded.error().message;
  CHECK_THAT(msg, Catch::StartsWith("state file " + store.file().string() + " is corrupt at line 5: "));
  CHECK_THAT(msg, Catch::Contains("the previous state is in " + store.file().string() + ".bak: restore it with "
                                   "`flotilla state restore-backup`"));
}

TEST_CASE("state: a number too large for the parser is a corrupt file, not an exception", "[state]") {
  // Found by fuzz_state: valid JSON syntax that the parser refuses with out_of_range.
  TempDir tmp;
  FileStateStore store(tmp.path());
  spit(store.file(), "flotilla-state 2\n{\"serial\": 9e75747}\n");
  auto loaded = store.load();
  REQUIRE_FALSE(loaded);
  CHECK_THAT(loaded.error().message, Catch::StartsWith("state file " + store.file().string() + " is corrupt: "));
  CHECK_THAT(loaded.error().message, Catch::Contains("number overflow"));
}

TEST_CASE("state: a truncated file without a backup says so", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path());
  spit(store.file(), "flotilla-state 1\n{\n  \"cluster\": ");
  auto loaded = store.load();
  REQUIRE_FALSE(loaded);
  CHECK_THAT(loaded.error().message, Catch::Contains("is corrupt at line 3"));
  CHECK_THAT(loaded.error().message, Catch::Contains("there is no backup"));
}

TEST_CASE("state: a newer format version asks for an upgrade", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path());
  spit(store.file(), "flotilla-state 3\n{}\n");
  auto loaded = store.load();
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().message == "state file " + store.file().string() +
                                      " has format version 3; this flotilla reads versions 1 to 2: upgrade flotilla");
}

TEST_CASE("state: a file without the version line is refused", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path());
  spit(store.file(), "{\"nodes\": {}}\n");
  auto loaded = store.load();
  REQUIRE_FALSE(loaded);
  CHECK_THAT(loaded.error().message, Catch::Contains("does not start with \"flotilla-state <version>\""));

  spit(store.file(), "flotilla-state 1\n[1, 2]\n");
  auto array = store.load();
  REQUIRE_FALSE(array);
  CHECK_THAT(array.error().message, Catch::Contains("must be a JSON object, found array"));
}

TEST_CASE("state: write_file_atomic sets the mode and replaces the content", "[state]") {
  TempDir tmp;
  const auto target = tmp.path() / "haproxy.cfg";
  REQUIRE(write_file_atomic(target, "old\n"));
  CHECK(mode_of(target) == 0644);
  REQUIRE(write_file_atomic(target, "new\n", 0640));
  CHECK(slurp(target) == "new\n");
  CHECK(mode_of(target) == 0640);
  CHECK(names_in(tmp.path()) == std::set<std::string>{"haproxy.cfg"});
}

TEST_CASE("state: a failed atomic write names the path and removes its temp file", "[state]") {
  TempDir tmp;
  // The target is a non-empty directory, so the final rename fails after the temp file exists.
  const auto target = tmp.path() / "occupied";
  fs::create_directory(target);
  spit(target / "keep", "x");
  auto written = write_file_atomic(target, "content");
  REQUIRE_FALSE(written);
  CHECK_THAT(written.error().message, Catch::StartsWith("cannot write " + target.string() + ": cannot rename"));
  CHECK_THAT(written.error().message, Catch::Contains("Is a directory"));
  CHECK(names_in(tmp.path()) == std::set<std::string>{"occupied"});

  auto missing = write_file_atomic(tmp.path() / "no-such-dir" / "file", "content");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("No such file or directory"));
}

TEST_CASE("state: the memory store keeps what was saved", "[state]") {
  MemoryStateStore store;
  CHECK(*store.load() == json::object());
  REQUIRE(store.save(kSample));
  CHECK(*store.load() == kSample);
  CHECK(store.saves() == 1);
  store.fail_saves(Error{"disk full"});
  auto failed = store.save(json{{"serial", 99}});
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message == "disk full");
  CHECK(*store.load() == kSample);
  CHECK(store.saves() == 1);
}

TEST_CASE("lock: a second acquire fails and names the holder", "[state][lock]") {
  TempDir tmp;
  const auto dir = tmp.path() / "cluster";
  auto first = StateLock::acquire(dir, "flotilla up local.toml");
  REQUIRE(first);
  CHECK(mode_of(dir) == 0700);

  auto holder = read_lock(dir);
  REQUIRE(holder);
  CHECK((*holder)["pid"] == ::getpid());
  CHECK((*holder)["command"] == "flotilla up local.toml");
  CHECK((*holder)["alive"] == true);
  CHECK((*holder)["since"].get<std::string>().ends_with("Z"));
  const auto host = (*holder)["host"].get<std::string>();

  auto second = StateLock::acquire(dir, "flotilla down local.toml");
  REQUIRE_FALSE(second);
  CHECK_THAT(second.error().message,
             Catch::StartsWith("cluster state in " + dir.string() + " is locked by pid " + std::to_string(::getpid()) +
                               " (`flotilla up local.toml`) on " + host + " since "));
  CHECK_THAT(second.error().message, Catch::EndsWith("; wait for it to finish"));
}

TEST_CASE("lock: released on destruction and on move-assignment", "[state][lock]") {
  TempDir tmp;
  {
    auto lock = StateLock::acquire(tmp.path(), "flotilla up");
    REQUIRE(lock);
    CHECK(fs::exists(tmp.path() / "lock"));
    StateLock moved = std::move(*lock);
    CHECK(fs::exists(moved.path()));
  }
  CHECK_FALSE(fs::exists(tmp.path() / "lock"));
  CHECK(names_in(tmp.path()).empty());

  auto again = StateLock::acquire(tmp.path(), "flotilla up");
  REQUIRE(again);
  auto holder = read_lock(tmp.path());
  REQUIRE(holder);
  CHECK((*holder)["alive"] == true);
}

TEST_CASE("lock: a lock left by a dead run is taken over, saying whose", "[state][lock]") {
  TempDir tmp;
  const pid_t dead = leave_dead_lock(tmp.path(), "flotilla up crashed.toml");
  REQUIRE(fs::exists(tmp.path() / "lock"));
  auto before = read_lock(tmp.path());
  REQUIRE(before);
  CHECK((*before)["alive"] == false);
  CHECK((*before)["pid"] == dead);

  // The kernel released the dead run's flock: the plain rerun takes the lock, no unlock step.
  auto lock = StateLock::acquire(tmp.path(), "flotilla up local.toml", "flotilla unlock crashed.toml");
  REQUIRE(lock);
  CHECK_THAT(lock->took_over(), Catch::StartsWith("took over the lock of pid " + std::to_string(dead) +
                                                  " (`flotilla up crashed.toml`, since "));
  CHECK_THAT(lock->took_over(), Catch::EndsWith("that run is no longer alive"));
  auto holder = read_lock(tmp.path());
  REQUIRE(holder);
  CHECK((*holder)["alive"] == true);
  CHECK((*holder)["pid"] == ::getpid());
  CHECK((*holder)["command"] == "flotilla up local.toml");
  CHECK(names_in(tmp.path()) == std::set<std::string>{"lock"});  // no temp file left

  // A lock taken the ordinary way says nothing.
  lock = StateLock::acquire(tmp.path() / "other", "flotilla up");
  REQUIRE(lock);
  CHECK(lock->took_over().empty());
}

TEST_CASE("lock: a dead run's lock still held by a child it had just forked is taken over once the child lets go",
          "[state][lock]") {
  TempDir tmp;
  // The run forks a child (as spawn does, before exec) and is killed: the child holds the flock
  // a moment longer. The rerun waits for it instead of calling a dead run alive.
  const pid_t run = ::fork();
  if (run == 0) {
    auto lock = StateLock::acquire(tmp.path(), "flotilla up crashed.toml");
    if (!lock) ::_exit(1);
    if (::fork() == 0) {
      ::usleep(1'000'000);
      ::_exit(0);
    }
    ::_exit(0);
  }
  REQUIRE(run > 0);
  int status = 0;
  REQUIRE(::waitpid(run, &status, 0) == run);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto before = read_lock(tmp.path());
  REQUIRE(before);
  CHECK((*before)["alive"] == true);  // the child holds it now

  auto lock = StateLock::acquire(tmp.path(), "flotilla up local.toml");
  REQUIRE(lock);
  CHECK_THAT(lock->took_over(), Catch::StartsWith("took over the lock of pid " + std::to_string(run) + " "));
}

TEST_CASE("lock: a live holder is never taken over", "[state][lock]") {
  TempDir tmp;
  auto held = StateLock::acquire(tmp.path(), "flotilla up local.toml");
  REQUIRE(held);
  // Another run (a thread here: a forked child would share this open file and its flock).
  Result<StateLock> second = fail("not tried");
  std::thread([&] { second = StateLock::acquire(tmp.path(), "flotilla down local.toml"); }).join();
  REQUIRE_FALSE(second);
  CHECK_THAT(second.error().message, Catch::Contains("is locked by pid " + std::to_string(::getpid())));
  CHECK_THAT(second.error().message, Catch::EndsWith("wait for it to finish"));
}

TEST_CASE("lock: a lock written on another host is reported with unlock, never taken over", "[state][lock]") {
  TempDir tmp;
  spit(tmp.path() / "lock", R"({"pid": 4242, "host": "elsewhere.invalid", "user": "ops", "command": "flotilla up x.toml",)"
                            R"( "since": "2026-01-01T00:00:00Z"})");
  auto lock = StateLock::acquire(tmp.path(), "flotilla up x.toml", "flotilla unlock x.toml");
  REQUIRE_FALSE(lock);
  CHECK_THAT(lock.error().message, Catch::Contains("locked by pid 4242 (`flotilla up x.toml`) on host elsewhere.invalid"));
  CHECK_THAT(lock.error().message, Catch::Contains("cannot check"));
  CHECK_THAT(lock.error().message, Catch::EndsWith("run `flotilla unlock x.toml` to clear it"));
  CHECK(fs::exists(tmp.path() / "lock"));
  REQUIRE(clear_lock(tmp.path(), false));
  CHECK(StateLock::acquire(tmp.path(), "flotilla up x.toml"));
}

TEST_CASE("lock: clear_lock refuses a live holder unless forced", "[state][lock]") {
  TempDir tmp;
  auto held = StateLock::acquire(tmp.path(), "flotilla up local.toml");
  REQUIRE(held);

  auto refused = clear_lock(tmp.path(), false);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("held by pid " + std::to_string(::getpid())));
  CHECK_THAT(refused.error().message, Catch::Contains("still running"));
  CHECK(fs::exists(tmp.path() / "lock"));

  REQUIRE(clear_lock(tmp.path(), true));
  CHECK_FALSE(fs::exists(tmp.path() / "lock"));

  // A new run takes the lock; the forced-out holder must not remove it when it ends.
  auto next = StateLock::acquire(tmp.path(), "flotilla up again.toml");
  REQUIRE(next);
  *held = StateLock(std::move(*next));
  auto holder = read_lock(tmp.path());
  REQUIRE(holder);
  CHECK((*holder)["command"] == "flotilla up again.toml");
}

TEST_CASE("lock: no lock reads as null and clears as a no-op", "[state][lock]") {
  TempDir tmp;
  auto holder = read_lock(tmp.path());
  REQUIRE(holder);
  CHECK(holder->is_null());
  CHECK(clear_lock(tmp.path(), false));
}

TEST_CASE("lock: a damaged lock file nobody holds is taken over", "[state][lock]") {
  TempDir tmp;
  spit(tmp.path() / "lock", "{\"pid\": ");
  auto holder = read_lock(tmp.path());
  REQUIRE(holder);
  CHECK((*holder)["damaged"] == true);
  auto lock = StateLock::acquire(tmp.path(), "flotilla up");
  REQUIRE(lock);
  CHECK_THAT(lock->took_over(), Catch::StartsWith("took over a damaged lock file ("));
  auto now = read_lock(tmp.path());
  REQUIRE(now);
  CHECK((*now)["pid"] == ::getpid());
}

// ---------------------------------------------------------------------------------------------
// The shape of a loaded state: every reader gets a state whose types are right, or an error
// naming the file, the key and what to do.

namespace {

// A state as the engine writes it: one node, one instance, one addon with a component, a
// scale override.
json full_state() {
  return json::parse(R"({
    "format_version": 2, "cluster": "local", "topology": "/t/local.toml", "serial": 17, "updated": "2026-01-01T00:00:00Z",
    "nodes": {"n1": {"status": "ready", "group": "n", "index": 1, "slot": 0, "roles": ["swarm"], "labels": {"zone": "a"},
                     "driver": "local", "driver_options": {"cidr": "abc"}, "address": "127.77.0.2", "runtime": "process",
                     "runtime_config": {}, "data": {}}},
    "instances": {"hello/v1#1": {"status": "running", "service": "hello/v1", "instance": 1, "node": "n1", "port": 18000,
                                 "spec_hash": "ab", "workload": "hello-v1-1", "command": ["flotilla-hello"], "image": "",
                                 "record": {"pid": 4242, "start_time": 1}}},
    "addons": {"haproxy": {"status": "ready", "plugin": "haproxy", "provides": ["ingress"], "requires": ["services"],
                           "optional": [], "config_hash": "cd", "nodes": ["n1"], "endpoints": {"rest": "http://127.77.0.2:18080"},
                           "outputs": {"registrations": []}, "messages": ["Service available"], "state": {},
                           "components": {"n1/haproxy": {"status": "running", "node": "n1", "name": "haproxy",
                                                         "workload": "addon-haproxy-haproxy", "command": ["haproxy"],
                                                         "image": "", "record": {"pid": 4343}}}}},
    "overrides": {"replicas": {"hello/v1": {"replicas": 3, "file_replicas": 1}}}
  })");
}

void write_state(const fs::path& file, const json& state) { spit(file, "flotilla-state 2\n" + state.dump(2) + "\n"); }

}  // namespace

TEST_CASE("state: a state with every kind of record passes the shape check and loads unchanged", "[state]") {
  CHECK(check_state_shape(full_state()));
  CHECK(check_state_shape(json::object()));
  TempDir tmp;
  FileStateStore store(tmp.path());
  write_state(store.file(), full_state());
  auto loaded = store.load();
  REQUIRE(loaded);
  CHECK(*loaded == full_state());
  // What the previous release wrote still loads.
  spit(store.file(), slurp(fs::path(FLOTILLA_SOURCE_DIR) / "tests/data/state/v1/state.json"));
  auto v1 = store.load();
  INFO((v1 ? "" : v1.error().message));
  CHECK(v1);
}

TEST_CASE("state: a wrong type, a missing key or an unknown status is refused, naming the file and the key", "[state]") {
  struct Case {
    const char* pointer;  // where the damage goes (JSON pointer)
    json value;           // what is put there (null: the key is removed)
    std::string says;     // the key path and the problem, as the message gives them
  };
  const Case cases[] = {
      {"/serial", "seventeen", "serial: expected an integer from 0, got a string (\"seventeen\")"},
      {"/serial", -3, "serial: expected an integer from 0, got the number -3"},
      {"/nodes/n1/slot", "2", "nodes[\"n1\"].slot: expected an integer, got a string (\"2\")"},
      {"/nodes/n1/index", 1.5, "nodes[\"n1\"].index: expected an integer, got the number 1.5"},
      {"/nodes/n1/roles", "swarm", "nodes[\"n1\"].roles: expected an array of strings, got a string (\"swarm\")"},
      {"/nodes/n1/labels", json{{"zone", 1}}, "nodes[\"n1\"].labels: expected an object whose values are strings, got an object"},
      {"/nodes/n1/status", "sleeping", "nodes[\"n1\"].status: expected one of \"creating\", \"ready\", \"destroying\", got a string (\"sleeping\")"},
      {"/nodes/n1/status", nullptr, "nodes[\"n1\"].status: missing; expected one of"},
      {"/nodes", json::array(), "nodes: expected an object, got an array"},
      {"/nodes/n1", "oops", "nodes[\"n1\"]: expected an object, got a string (\"oops\")"},
      {"/instances", "oops", "instances: expected an object, got a string (\"oops\")"},
      {"/instances/hello~1v1#1/port", "18000", "instances[\"hello/v1#1\"].port: expected an integer, got a string (\"18000\")"},
      {"/instances/hello~1v1#1/port", 1e12, "instances[\"hello/v1#1\"].port: expected an integer, got the number"},
      {"/instances/hello~1v1#1/record/pid", "4242", "instances[\"hello/v1#1\"].record.pid: expected a process id (an integer from 1), got a string (\"4242\")"},
      {"/instances/hello~1v1#1/record/pid", -1, "instances[\"hello/v1#1\"].record.pid: expected a process id"},
      {"/instances/hello~1v1#1/node", nullptr, "instances[\"hello/v1#1\"].node: missing; expected a string"},
      {"/instances/hello~1v1#1/command", "flotilla-hello", "instances[\"hello/v1#1\"].command: expected an array of strings"},
      {"/addons/haproxy/plugin", 7, "addons[\"haproxy\"].plugin: expected a string, got the number 7"},
      {"/addons/haproxy/endpoints", json{{"rest", json::array()}}, "addons[\"haproxy\"].endpoints: expected an object whose values are strings"},
      {"/addons/haproxy/messages", json::array({json::object()}), "addons[\"haproxy\"].messages: expected an array of strings"},
      {"/addons/haproxy/components/n1~1haproxy/record/pid", "x",
       "addons[\"haproxy\"].components[\"n1/haproxy\"].record.pid: expected a process id"},
      {"/addons/haproxy/components", json::array(), "addons[\"haproxy\"].components: expected an object, got an array"},
      {"/overrides/replicas/hello~1v1/replicas", "3", "overrides.replicas[\"hello/v1\"].replicas: expected an integer, got a string (\"3\")"},
  };
  for (const auto& c : cases) {
    json state = full_state();
    const json::json_pointer at(c.pointer);
    if (c.value.is_null()) state[at.parent_pointer()].erase(at.back());
    else state[at] = c.value;
    TempDir tmp;
    FileStateStore store(tmp.path(), "flotilla state restore-backup local.toml");
    write_state(store.file(), full_state());
    REQUIRE(store.save(state));  // the good state becomes the backup
    auto loaded = store.load();
    INFO(c.pointer << " = " << c.value.dump());
    REQUIRE_FALSE(loaded);
    const auto& msg = loaded.error().message;
    CHECK_THAT(msg, Catch::StartsWith("state file " + store.file().string() + ": " + c.says));
    CHECK_THAT(msg, Catch::EndsWith("restore it with `flotilla state restore-backup local.toml`, or fix the file by hand"));
    CHECK(msg.find("type_error") == std::string::npos);
    // The memory store refuses the same state.
    MemoryStateStore memory(state);
    auto in_memory = memory.load();
    REQUIRE_FALSE(in_memory);
    CHECK_THAT(in_memory.error().message, Catch::StartsWith("state in memory: " + c.says));
  }
}

TEST_CASE("state: a state that is not an object, not a file or too large is refused before any reader sees it", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path());
  for (const auto& [body, found] : {std::pair{"[]", "array"}, std::pair{"5", "number"}, std::pair{"\"x\"", "string"}, std::pair{"null", "null"}}) {
    spit(store.file(), std::string("flotilla-state 2\n") + body + "\n");
    auto loaded = store.load();
    REQUIRE_FALSE(loaded);
    CHECK_THAT(loaded.error().message, Catch::Contains(std::string("must be a JSON object, found ") + found));
    CHECK_THAT(loaded.error().message, Catch::Contains("there is no backup"));
  }
  // Larger than the limit (a sparse file: nothing is written, and nothing may be read).
  spit(store.file(), "flotilla-state 2\n{}");
  fs::resize_file(store.file(), kMaxStateFileBytes + 1);
  auto huge = store.load();
  REQUIRE_FALSE(huge);
  CHECK_THAT(huge.error().message, Catch::Contains("state file " + store.file().string() + " is " +
                                                   std::to_string(kMaxStateFileBytes + 1) + " bytes, more than the 64 MiB"));
  // A directory, and a FIFO that would block a plain read.
  fs::remove(store.file());
  fs::create_directory(store.file());
  auto dir = store.load();
  REQUIRE_FALSE(dir);
  CHECK_THAT(dir.error().message, Catch::Contains("is a directory, not a file"));
  fs::remove(store.file());
  REQUIRE(::mkfifo(store.file().c_str(), 0600) == 0);
  auto fifo = store.load();
  REQUIRE_FALSE(fifo);
  CHECK_THAT(fifo.error().message, Catch::Contains("is not a regular file"));
}

TEST_CASE("state: a missing state file with its backup present is an error that says how to restore", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path(), "flotilla state restore-backup local.toml");
  REQUIRE(store.save(full_state()));
  REQUIRE(store.save(full_state()));
  fs::remove(store.file());
  auto loaded = store.load();
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().message == "state file " + store.file().string() + " is missing, but its backup " + store.backup().string() +
                                      " exists (cluster \"local\", serial 17, 1 node, 1 instance, 1 addon): the cluster may still be "
                                      "running; restore the state with `flotilla state restore-backup local.toml`, or remove the "
                                      "backup if you know the cluster is gone");
  // A damaged backup is named as such.
  spit(store.backup(), "flotilla-state 2\n{");
  auto damaged = store.load();
  REQUIRE_FALSE(damaged);
  CHECK_THAT(damaged.error().message, Catch::Contains("exists (it is damaged too: state file " + store.backup().string() + " is corrupt"));
  // Without the backup, there is no state.
  fs::remove(store.backup());
  auto none = store.load();
  REQUIRE(none);
  CHECK(*none == json::object());
}

TEST_CASE("state: read_state_file reads a file as the store does and tells a missing one apart", "[state]") {
  TempDir tmp;
  auto missing = read_state_file(tmp.path() / "state.json.bak", "fix it");
  REQUIRE(missing);
  CHECK_FALSE(missing->has_value());
  write_state(tmp.path() / "state.json.bak", full_state());
  auto read = read_state_file(tmp.path() / "state.json.bak", "fix it");
  REQUIRE(read);
  REQUIRE(read->has_value());
  CHECK(state_summary(**read) == "cluster \"local\", serial 17, 1 node, 1 instance, 1 addon");
}

TEST_CASE("state: what an addon returns is recorded in a shape the next load accepts", "[state]") {
  // A plugin that answers apply with endpoints, messages or outputs of other types.
  AddonRecord rec;
  rec.status = AddonStatus::ready;
  rec.plugin = "odd";
  rec.endpoints = {{"rest", "http://127.77.0.2:80"}, {"port", 8080}};
  rec.messages = json::array({"ready", json{{"text", "hi"}}});
  rec.outputs = json::array({1, 2});
  rec.state = "the addon's own";
  json state = full_state();
  state["addons"]["odd"] = rec;
  INFO(state["addons"]["odd"].dump());
  CHECK(check_state_shape(state));
  CHECK(state["addons"]["odd"]["endpoints"] == json{{"rest", "http://127.77.0.2:80"}, {"port", "8080"}});
  CHECK(state["addons"]["odd"]["messages"] == json::array({"ready", "{\"text\":\"hi\"}"}));
  CHECK(state["addons"]["odd"]["outputs"] == json::object());
  CHECK(state["addons"]["odd"]["state"] == "the addon's own");
}

TEST_CASE("state: a state nested without bound is refused before it is parsed", "[state]") {
  TempDir tmp;
  FileStateStore store(tmp.path());
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  spit(store.file(), "flotilla-state 2\n{\"serial\": 1,\n\"nodes\": {\"n\": {\"status\": \"ready\", \"data\": {\"x\": " + deep + "}}}}\n");
  auto loaded = store.load();
  REQUIRE_FALSE(loaded);
  CHECK_THAT(loaded.error().message, Catch::StartsWith("state file " + store.file().string() + " line 3: nested deeper than 128 levels"));
  // Brackets inside strings do not count, and what flotilla writes is far from the limit.
  json state = full_state();
  state["nodes"]["n1"]["data"] = {{"text", std::string(500, '[')}};
  write_state(store.file(), state);
  CHECK(store.load());
}
