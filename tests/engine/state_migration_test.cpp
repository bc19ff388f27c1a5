// State written by the previous release (format 1, kept in tests/data/state/v1/ as that
// release wrote it for tests/data/state/v1/small.toml) still loads, and plans no change.
#include "planner.hpp"
#include "state_migration.hpp"
#include "state_store.hpp"
#include "util.hpp"

#include "flotilla/support/encoding.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <fstream>

using namespace flotilla;
namespace fs = std::filesystem;

namespace {

const fs::path kV1 = fs::path(FLOTILLA_SOURCE_DIR) / "tests" / "data" / "state" / "v1";

json load_v1() {
  // FileStateStore reads <dir>/state.json: the kept file is read in place, never written.
  FileStateStore store(kV1);
  auto s = store.load();
  if (!s) FAIL(s.error().message);
  return *s;
}

Topology small() {
  auto t = load_topology(kV1 / "small.toml");
  if (!t) FAIL(t.error().message);
  return *t;
}

}  // namespace

TEST_CASE("migration: a format 1 state file loads", "[state][migration]") {
  const json s = load_v1();
  CHECK(s["format_version"] == 1);
  CHECK(s["nodes"].size() == 3);
  CHECK(s["instances"].size() == 2);
  CHECK(s["addons"].contains("haproxy"));
}

TEST_CASE("migration: hashes of format 1 are recognised and re-hashed, so nothing restarts", "[state][migration]") {
  const Topology t = small();
  const json v1 = load_v1();
  const auto desired = desired_instances(t, effective_replicas(t, v1));
  REQUIRE(desired.size() == 2);
  // The kept file's hashes are the legacy hash of the same spec, not the current one.
  for (const auto& ip : desired) {
    const std::string recorded = v1["instances"][ip.id]["spec_hash"];
    CHECK(recorded == legacy_stable_hash(instance_spec(*t.find_service(ip.service), ip.node, ip.port).dump()));
    CHECK(recorded != ip.spec_hash);
  }

  AddonPlan haproxy;
  haproxy.name = "haproxy";
  haproxy.plugin = "haproxy";
  haproxy.config = {{"port", 18080}};
  haproxy.nodes = {"swarm-1"};
  json state = v1;
  state["addons"]["haproxy"]["config_hash"] = legacy_stable_hash(haproxy.config.dump());
  const json driver_options = {{"cidr", stable_hash("\"127.79.9.0/24\"")}};
  const json migrated = migrate_state(state, t, {haproxy}, driver_options);
  CHECK(migrated["format_version"] == kStateFormatVersion);
  for (const auto& ip : desired) CHECK(migrated["instances"][ip.id]["spec_hash"] == ip.spec_hash);
  CHECK(migrated["addons"]["haproxy"]["config_hash"] == addon_config_hash(haproxy));
  CHECK(migrated["nodes"]["swarm-1"]["driver_options"] == driver_options);

  PlanInput in;
  in.topology = &t;
  in.addons = {haproxy};
  in.driver.name = "local";
  in.driver.config = {{"cidr", "127.79.9.0/24"}};
  in.state = migrated;
  Plan p = make_plan(in);
  INFO(plan_to_text(p, "small"));
  CHECK(p.empty());
  CHECK(plan_to_text(p, "small").find("No changes.") != std::string::npos);
}

TEST_CASE("migration: a spec that changed since format 1 still plans its change", "[state][migration]") {
  const Topology t = small();
  json v1 = load_v1();
  v1["instances"]["hello/v1#1"]["spec_hash"] = "0000000000000000";  // written for another spec
  const json migrated = migrate_state(v1, t, {}, json::object());
  CHECK(migrated["instances"]["hello/v1#1"]["spec_hash"] == "0000000000000000");
  PlanInput in;
  in.topology = &t;
  in.state = migrated;
  Plan p = make_plan(in);
  bool replaced = false;
  for (const auto& a : p.actions) replaced |= a.name == "hello/v1#1" && a.verb == "replace";
  CHECK(replaced);
}

TEST_CASE("migration: the next save writes the current format line", "[state][migration]") {
  const Topology t = small();
  const json migrated = migrate_state(load_v1(), t, {}, json::object());
  const fs::path dir = fs::temp_directory_path() / ("flotilla-migration-" + std::to_string(::getpid()));
  FileStateStore store(dir);
  REQUIRE(store.save(migrated));
  std::ifstream in(store.file());
  std::string first;
  std::getline(in, first);
  CHECK(first == "flotilla-state " + std::to_string(kStateFormatVersion));
  auto again = store.load();
  REQUIRE(again);
  CHECK((*again)["format_version"] == kStateFormatVersion);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST_CASE("the engine hashes with the support library's FNV-1a and recognises format 1's hashes", "[state][migration]") {
  // New hashes are flotilla_support's (published offset basis); format 1 used a wrong basis,
  // which the migration must still recognise to re-hash without restarting anything.
  CHECK(stable_hash("a") == "af63dc4c8601ec8c");
  CHECK(stable_hash("\"127.79.9.0/24\"") == flotilla::support::stable_hash("\"127.79.9.0/24\""));
  CHECK(legacy_stable_hash("a") == "44bd8ad473cd9906");
  CHECK(legacy_stable_hash("") == "14650fb0739d0383");
  CHECK(legacy_stable_hash("a") != stable_hash("a"));
}
