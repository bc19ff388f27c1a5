// Damaged and lost state through the real CLI: every kind of damage gives an error naming the
// file and the key, never an internal error, and never a cluster taken for "not up"; a state
// file lost beside its backup is restored with `flotilla state restore-backup`; `down` removes
// only the files Flotilla wrote.
#include "state_store.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <fstream>
#include <set>

using json = nlohmann::json;
namespace fs = std::filesystem;
using flotilla::test::proc::ScratchDir;
using flotilla::test::proc::Shell;
using flotilla::test::proc::read_text;
using flotilla::test::proc::run_flotilla_script;

namespace {

// A one-node cluster of the local driver (no workloads) in a scratch directory, brought down
// by the destructor whatever happened.
class SmallCluster {
 public:
  SmallCluster() : dir_("flotilla-damaged") {
    const std::string cidr = flotilla::test::resources::process_subnet("cluster").cidr();
    std::ofstream(dir_.path() / "topology.toml") << "[cluster]\nname = \"dmg\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" << cidr
                                                 << "\"\n\n[[nodes]]\nname = \"solo\"\n";
  }
  ~SmallCluster() { (void)sh("$FLOTILLA down $TOPOLOGY -q"); }

  Shell sh(const std::string& script) const { return run_flotilla_script(dir_.path(), script); }
  [[nodiscard]] const fs::path& dir() const { return dir_.path(); }
  [[nodiscard]] fs::path state_dir() const { return dir_.path() / ".flotilla" / "dmg"; }
  [[nodiscard]] fs::path state_file() const { return state_dir() / "state.json"; }
  [[nodiscard]] fs::path backup() const { return state_dir() / "state.json.bak"; }

 private:
  ScratchDir dir_;
};

void spit(const fs::path& p, const std::string& content) { std::ofstream(p, std::ios::binary | std::ios::trunc) << content; }

json body_of(const std::string& state_text) { return json::parse(state_text.substr(state_text.find('\n') + 1)); }

std::set<std::string> tree(const fs::path& dir) {
  std::set<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.insert(fs::relative(e.path(), dir).string());
  return out;
}

}  // namespace

TEST_CASE("every kind of damaged state gives a located error from every command, and down keeps everything", "[integration][cli][state]") {
  SmallCluster c;
  const Shell up = c.sh("$FLOTILLA up $TOPOLOGY -q");
  INFO(up.out << up.err);
  REQUIRE(up.code == 0);
  const std::string good = read_text(c.state_file());
  REQUIRE(fs::exists(c.backup()));
  const std::string good_backup = read_text(c.backup());

  struct Damage {
    const char* what;
    std::string content;  // the whole state file
    std::string says;     // what the error names after the file
  };
  const auto edited = [&](const char* pointer, const json& value) {
    json s = body_of(good);
    s[json::json_pointer(pointer)] = value;
    return "flotilla-state 2\n" + s.dump(2) + "\n";
  };
  json instance = {{"status", "running"}, {"service", "hello/v1"}, {"node", "solo"}, {"port", 18000}, {"record", {{"pid", "123"}}}};
  json no_status = body_of(good);
  no_status["nodes"]["solo"].erase("status");
  const Damage damages[] = {
      {"a serial in words", edited("/serial", "seventeen"), ": serial: expected an integer from 0, got a string (\"seventeen\")"},
      {"a slot as a string", edited("/nodes/solo/slot", "0"), ": nodes[\"solo\"].slot: expected an integer, got a string (\"0\")"},
      {"a pid as a string", edited("/instances", json{{"hello/v1#1", instance}}),
       ": instances[\"hello/v1#1\"].record.pid: expected a process id (an integer from 1), got a string (\"123\")"},
      {"instances as a string", edited("/instances", "oops"), ": instances: expected an object, got a string (\"oops\")"},
      {"nodes as an array", edited("/nodes", json::array({"solo"})), ": nodes: expected an object, got an array"},
      {"a record without its status", "flotilla-state 2\n" + no_status.dump(2) + "\n", ": nodes[\"solo\"].status: missing"},
      {"an array", "flotilla-state 2\n[]\n", " line 2: the state must be a JSON object, found array"},
      {"a number", "flotilla-state 2\n5\n", " line 2: the state must be a JSON object, found number"},
      {"more than the size limit", "", " is 67108865 bytes, more than the 64 MiB a state file may hold"},
  };
  for (const auto& d : damages) {
    INFO("damage: " << d.what);
    spit(c.state_file(), d.content);
    if (d.content.empty()) {
      spit(c.state_file(), good);
      fs::resize_file(c.state_file(), flotilla::kMaxStateFileBytes + 1);
    }
    for (const std::string command : {"status", "ps", "plan", "graph", "up", "down", "state show", "ip", "env"}) {
      INFO("command: " << command);
      const Shell r = c.sh("$FLOTILLA " + command + " $TOPOLOGY" + (command == "ip" || command == "env" ? " solo" : ""));
      INFO(r.out << r.err);
      CHECK(r.code == 1);
      CHECK_THAT(r.err, Catch::Contains("error: state file " + c.state_file().string() + d.says));
      CHECK_THAT(r.err, Catch::Contains("restore it with `flotilla state restore-backup " + (c.dir() / "topology.toml").string() + "`"));
      CHECK(r.err.find("internal error") == std::string::npos);
      CHECK(r.out.find("is not up") == std::string::npos);
      if (command == "down") {
        CHECK_THAT(r.err, Catch::Contains("down stopped nothing"));
        CHECK_THAT(r.err, Catch::Contains("run `flotilla down " + (c.dir() / "topology.toml").string() + "` again"));
      }
    }
    // Nothing was removed or rewritten: the damaged file and the backup are as they were.
    if (!d.content.empty()) CHECK(read_text(c.state_file()) == d.content);
    CHECK(read_text(c.backup()) == good_backup);
    CHECK(fs::exists(c.state_dir() / "nodes" / "solo"));
  }
  // The node the damaged state kept from down is brought down once the state is restored.
  spit(c.state_file(), "flotilla-state 2\n{\"nodes\": {\"solo\": ");
  const Shell down = c.sh("$FLOTILLA down $TOPOLOGY");
  CHECK(down.code == 1);
  // Read as far as it goes, the damaged file still names what it recorded... or the backup does.
  CHECK_THAT(down.err, Catch::Contains("records 1 node (solo), 0 instances, 0 addons, which may still be running"));
  const Shell restore = c.sh("$FLOTILLA state restore-backup $TOPOLOGY");
  INFO(restore.out << restore.err);
  REQUIRE(restore.code == 0);
  const Shell down2 = c.sh("$FLOTILLA down $TOPOLOGY");
  INFO(down2.out << down2.err);
  CHECK(down2.code == 0);
  CHECK_FALSE(fs::exists(c.state_dir() / "nodes" / "solo"));
}

TEST_CASE("a lost state file beside its backup is an error that says how to restore, and down deletes nothing", "[integration][cli][state]") {
  SmallCluster c;
  REQUIRE(c.sh("$FLOTILLA up $TOPOLOGY -q").code == 0);
  REQUIRE(fs::exists(c.backup()));
  fs::remove(c.state_file());
  const std::string backup = read_text(c.backup());
  const std::string restore = "flotilla state restore-backup " + (c.dir() / "topology.toml").string();
  for (const char* command : {"status", "ps", "up", "plan", "down", "state show"}) {
    INFO("command: " << command);
    const Shell r = c.sh("$FLOTILLA " + std::string(command) + " $TOPOLOGY");
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("state file " + c.state_file().string() + " is missing, but its backup " + c.backup().string() +
                                      " exists (cluster \"dmg\", serial "));
    CHECK_THAT(r.err, Catch::Contains("restore the state with `" + restore + "`"));
    CHECK(r.out.find("is not up") == std::string::npos);
    CHECK(r.out.find("Nothing to destroy") == std::string::npos);
    CHECK(read_text(c.backup()) == backup);
    CHECK_FALSE(fs::exists(c.state_file()));
  }
  const Shell down = c.sh("$FLOTILLA down $TOPOLOGY");
  CHECK_THAT(down.err, Catch::Contains("down stopped nothing"));
  CHECK_THAT(down.err, Catch::Contains(c.backup().string() + " records 1 node (solo)"));
  CHECK(fs::exists(c.state_dir() / "nodes" / "solo"));

  const Shell r = c.sh("$FLOTILLA state restore-backup $TOPOLOGY");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("Restored " + c.state_file().string() + " from " + c.backup().string() + ": cluster \"dmg\", serial "));
  CHECK_THAT(r.out, Catch::Contains("recorded: 1 node (solo), 0 instances, 0 addons"));
  CHECK(read_text(c.state_file()) == backup);
  const Shell status = c.sh("$FLOTILLA status $TOPOLOGY");
  CHECK(status.code == 0);
  CHECK_THAT(status.out, Catch::Contains("solo"));
  const Shell gone = c.sh("$FLOTILLA down $TOPOLOGY");
  INFO(gone.out << gone.err);
  CHECK(gone.code == 0);
  CHECK_FALSE(fs::exists(c.state_dir()));
}

TEST_CASE("down removes only what flotilla wrote: a user's files stay, and so do their directories", "[integration][cli][state]") {
  SmallCluster c;
  SECTION("a directory where nothing is recorded loses nothing") {
    const fs::path mine = c.dir() / "parent" / "mine";
    fs::create_directories(mine / "nodes");
    fs::create_directories(mine / "addons");
    spit(mine / "notes.txt", "mine");
    spit(mine / "nodes" / "n.txt", "mine");
    spit(mine / "addons" / "a.txt", "mine");
    const auto before = tree(mine);
    const Shell r = c.sh("$FLOTILLA down $TOPOLOGY --state-dir " + mine.string());
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(tree(mine) == before);
    // An empty directory named with --state-dir goes, its parent (the user's) stays.
    const fs::path empty = c.dir() / "parent2" / "empty";
    fs::create_directories(empty);
    CHECK(c.sh("$FLOTILLA down $TOPOLOGY --state-dir " + empty.string()).code == 0);
    CHECK_FALSE(fs::exists(empty));
    CHECK(fs::exists(c.dir() / "parent2"));
  }
  SECTION("after a real cluster, its files go and the user's stay") {
    const fs::path dir = c.dir() / "state";
    REQUIRE(c.sh("$FLOTILLA up $TOPOLOGY -q --state-dir " + dir.string()).code == 0);
    REQUIRE(fs::exists(dir / "nodes" / "solo"));
    spit(dir / "notes.txt", "mine");
    spit(dir / "nodes" / "n.txt", "mine");
    fs::create_directories(dir / "addons");
    spit(dir / "addons" / "a.txt", "mine");
    spit(dir / ".notes.tmp-999999999-1", "mine, named like a temp file");
    spit(dir / ".state.json.tmp-999999999-1", "a save killed midway");
    spit(dir / ".netns-bridge-flt0.tmp-999999999-2", "a driver's write killed midway");
    spit(dir / "events.jsonl", "{}\n");
    const Shell r = c.sh("$FLOTILLA down $TOPOLOGY --state-dir " + dir.string());
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(tree(dir) == std::set<std::string>{"notes.txt", "nodes", "nodes/n.txt", "addons", "addons/a.txt", ".notes.tmp-999999999-1"});
  }
}

TEST_CASE("flotilla state shows the state and restores its backup under the lock", "[integration][cli][state]") {
  SmallCluster c;
  REQUIRE(c.sh("$FLOTILLA up $TOPOLOGY -q").code == 0);
  const std::string saved = read_text(c.state_file());
  const std::string backup = read_text(c.backup());

  const Shell text = c.sh("$FLOTILLA state show $TOPOLOGY");
  INFO(text.out << text.err);
  REQUIRE(text.code == 0);
  CHECK_THAT(text.out, Catch::Contains("State of cluster \"dmg\" in " + c.state_file().string()));
  CHECK_THAT(text.out, Catch::Contains("NODES (1)"));
  CHECK_THAT(text.out, Catch::Contains("solo"));
  CHECK_THAT(text.out, Catch::Contains("INSTANCES (0)"));
  const Shell raw = c.sh("$FLOTILLA state show $TOPOLOGY --output json");
  REQUIRE(raw.code == 0);
  CHECK(json::parse(raw.out) == body_of(saved));
  // Without the topology file, by its directory; and the backup.
  const Shell by_dir = c.sh("$FLOTILLA state show --backup -o json --state-dir " + c.state_dir().string());
  INFO(by_dir.err);
  REQUIRE(by_dir.code == 0);
  CHECK(json::parse(by_dir.out) == body_of(backup));

  // A valid state is not replaced unless forced.
  const Shell refused = c.sh("$FLOTILLA state restore-backup $TOPOLOGY");
  CHECK(refused.code == 1);
  CHECK_THAT(refused.err, Catch::Contains(c.state_file().string() + " is valid (cluster \"dmg\", serial "));
  CHECK_THAT(refused.err, Catch::Contains("Add --force"));
  CHECK(read_text(c.state_file()) == saved);

  const Shell forced = c.sh("$FLOTILLA state restore-backup $TOPOLOGY --force");
  INFO(forced.out << forced.err);
  REQUIRE(forced.code == 0);
  CHECK(read_text(c.state_file()) == backup);
  std::vector<fs::path> kept;
  for (const auto& e : fs::directory_iterator(c.state_dir()))
    if (e.path().filename().string().starts_with("state.json.replaced-")) kept.push_back(e.path());
  REQUIRE(kept.size() == 1);
  CHECK(read_text(kept[0]) == saved);
  CHECK_THAT(forced.out, Catch::Contains("is kept as " + kept[0].string()));
  CHECK_FALSE(fs::exists(c.state_dir() / "lock"));  // taken and released

  // Held by another run: refused with exit 4.
  {
    auto lock = flotilla::StateLock::acquire(c.state_dir(), "flotilla up (held by the test)");
    REQUIRE(lock);
    const Shell locked = c.sh("$FLOTILLA state restore-backup $TOPOLOGY --force");
    CHECK(locked.code == 4);
    CHECK_THAT(locked.err, Catch::Contains("held by the test"));
  }
  // No backup: nothing to restore.
  fs::remove(c.backup());
  const Shell none = c.sh("$FLOTILLA state restore-backup $TOPOLOGY");
  CHECK(none.code == 1);
  CHECK_THAT(none.err, Catch::Contains("there is no backup to restore: " + c.backup().string() + " does not exist"));

  const Shell help = c.sh("$FLOTILLA state --help");
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("Usage: flotilla state show|restore-backup FILE"));
  CHECK_THAT(help.out, Catch::Contains("Example:\n  flotilla state restore-backup configs/local.toml"));
  const Shell wrong = c.sh("$FLOTILLA state fix $TOPOLOGY");
  CHECK(wrong.code == 2);
  CHECK_THAT(wrong.err, Catch::Contains("unknown state action \"fix\""));
}
