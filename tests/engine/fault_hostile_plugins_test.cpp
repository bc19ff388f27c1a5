// Hostile plugin directories on the path of the real CLI: every command still works, each bad
// candidate is a warning naming the file and why, and nothing crashes or reports an internal
// error. The cluster is a real one (the local driver and flotilla-hello on loopback).
#include "support/hostile_plugins.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <fstream>

namespace fs = std::filesystem;
using flotilla::test::proc::ScratchDir;
using flotilla::test::proc::Shell;
using flotilla::test::proc::run_flotilla_script;

namespace {

// The topology of a one-node cluster with one hello instance, in a /24 reserved for this process.
void write_topology(const fs::path& dir) {
  const std::string cidr = flotilla::test::resources::process_subnet("cluster").cidr();
  std::ofstream(dir / "topology.toml") << "[cluster]\nname = \"hostile\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" << cidr
                                       << "\"\n\n[[nodes]]\nname = \"solo\"\nroles = [\"app\"]\n\n[[services]]\n"
                                       << "name = \"hello\"\ncommand = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]\n"
                                       << "replicas = 1\nport = 18100\nroles = [\"app\"]\n";
}

// Every candidate of `candidates` is named, with its reason, on a warning line of `err`.
void check_warnings(const std::string& err, const fs::path& dir, const std::vector<flotilla::test::HostileCandidate>& candidates) {
  for (const auto& c : candidates) {
    INFO(c.name);
    CHECK_THAT(err, Catch::Contains("warning: skipped plugin " + (dir / c.name).string() + ": "));
    CHECK_THAT(err, Catch::Contains(c.reason));
  }
}

}  // namespace

TEST_CASE("every command works with a hostile plugin directory on the path and warns about each file", "[integration][cli][fault]") {
  const ScratchDir scratch("flotilla-hostile-cli");
  write_topology(scratch.path());
  const fs::path plugins = scratch.path() / "plugins";
  const auto candidates = flotilla::test::make_hostile_plugin_dir(plugins, fs::path(FLOTILLA_PLUGIN_DIR) / "runtime_process.so");
  const std::string opt = " --plugin-path " + plugins.string();
  struct Down {
    const fs::path& dir;
    std::string opt;
    ~Down() { (void)run_flotilla_script(dir, "$FLOTILLA down \"$TOPOLOGY\" -q" + opt); }
  } down_on_exit{scratch.path(), opt};

  for (const char* command : {"validate", "plan", "up", "status", "up", "down"}) {
    INFO(command);
    // `timeout`: a FIFO on the path must not block a command (124 would fail the check).
    const Shell r = run_flotilla_script(scratch.path(), std::string("timeout 60 $FLOTILLA ") + command + " \"$TOPOLOGY\"" + opt);
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK_THAT(r.err, !Catch::Contains("internal error"));
    check_warnings(r.err, plugins, candidates);
  }
  const Shell status = run_flotilla_script(scratch.path(), "$FLOTILLA status \"$TOPOLOGY\"" + opt);
  CHECK_THAT(status.out, Catch::Contains("is not up"));
  const Shell listed = run_flotilla_script(scratch.path(), "$FLOTILLA plugins --output json" + opt);
  REQUIRE(listed.code == 0);
  const auto doc = nlohmann::json::parse(listed.out);
  CHECK(doc["problems"].size() == candidates.size());
  bool local = false;
  for (const auto& p : doc["plugins"]) local = local || (p["kind"] == "driver" && p["name"] == "local");
  CHECK(local);
}

TEST_CASE("down still brings the cluster down after a plugin it used was truncated in place", "[integration][cli][fault]") {
  const ScratchDir scratch("flotilla-hostile-cli");
  write_topology(scratch.path());
  // Copies of the plugins the cluster uses, first on the path; the runtime's is cut to its
  // first 4 KB after `up`, as an interrupted upgrade would leave it. (The build's own copy,
  // later on the path, then serves the runtime.)
  const fs::path plugins = scratch.path() / "plugins";
  fs::create_directories(plugins);
  for (const char* name : {"driver_local.so", "runtime_process.so"})
    fs::copy_file(fs::path(FLOTILLA_PLUGIN_DIR) / name, plugins / name);
  const std::string env = "FLOTILLA_PLUGIN_PATH=" + plugins.string() + " ";
  struct Down {
    const fs::path& dir;
    std::string env;
    ~Down() { (void)run_flotilla_script(dir, env + "$FLOTILLA down \"$TOPOLOGY\" -q"); }
  } down_on_exit{scratch.path(), env};

  const Shell up = run_flotilla_script(scratch.path(), env + "$FLOTILLA up \"$TOPOLOGY\"");
  INFO(up.err);
  REQUIRE(up.code == 0);
  fs::resize_file(plugins / "runtime_process.so", 4096);
  const Shell down = run_flotilla_script(scratch.path(), env + "$FLOTILLA down \"$TOPOLOGY\"");
  INFO(down.err);
  CHECK(down.code == 0);
  CHECK_THAT(down.err, Catch::Contains("skipped plugin " + (plugins / "runtime_process.so").string() + ": truncated ELF (4096 of "));
  CHECK_THAT(down.err, !Catch::Contains("internal error"));
  const Shell status = run_flotilla_script(scratch.path(), env + "$FLOTILLA status \"$TOPOLOGY\"");
  INFO(status.err);
  CHECK(status.code == 0);
  CHECK_THAT(status.out, Catch::Contains("is not up"));
}
