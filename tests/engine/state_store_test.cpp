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
                      {"nodes", {{"swarm-1", {{"address", "127.77.0.2"}, {"state", "running"}}}}},
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
  CHECK_THAT(msg, Catch::Contains("the previous state is in " + store.file().string() + ".bak"));
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
