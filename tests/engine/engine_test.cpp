// The engine's step runner driven directly (no CLI): an in-memory state store, the testbed
// driver and keeper addon from tests/plugins_under_test, the real process runtime and the
// sample service. Covers repair of a node its driver reports stopped, driver option changes
// (in place and by replacement) and the real status of a plugin's state_set.
#include "engine.hpp"
#include "util.hpp"
#include "support/cleanup_report.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>

using namespace flotilla;
namespace fs = std::filesystem;
using flotilla::test::proc::ScratchDir;

namespace {

// A store shared by several Engines opened on one cluster (as successive runs share a file),
// which can refuse the saves that carry an addon's own state.
class SharedStore final : public StateStore {
 public:
  explicit SharedStore(std::shared_ptr<MemoryStateStore> inner) : inner_(std::move(inner)) {}
  Result<json> load() override { return inner_->load(); }
  Result<void> save(const json& state) override {
    if (!refuse_state_of.empty()) {
      const json& a = state.value("addons", json::object());
      if (a.contains(refuse_state_of) && a[refuse_state_of].contains("state")) return fail("no space left on device (test)");
    }
    return inner_->save(state);
  }
  std::string refuse_state_of;

 private:
  std::shared_ptr<MemoryStateStore> inner_;
};

// Answers health checks over HTTP and counts them.
class CountingProbe final : public HealthProbe {
 public:
  int http_status(const std::string& url, std::chrono::milliseconds timeout) override {
    ++calls;
    return HttpHealthProbe().http_status(url, timeout);
  }
  std::atomic<int> calls{0};
};

// A /24 reserved for this process keeps test cases that run side by side apart.
std::string prefix() { return flotilla::test::resources::process_subnet("cluster").net(); }

std::string topology(const std::string& driver_options) {
  return "[cluster]\nname = \"bench\"\ndriver = \"testbed\"\n\n[driver.testbed]\nprefix = \"" + prefix() + "\"\n" + driver_options + R"(
[[nodes]]
name = "infra"
roles = ["infra"]

[[nodes]]
name = "swarm"
count = 2
roles = ["swarm"]

[[services]]
name = "hello/v1"
command = ["flotilla-hello", "--listen", "{address}:{port}"]
replicas = 2
port = 8000
health = "/health"
roles = ["swarm"]

[[addons]]
plugin = "keeper"
)";
}

// One cluster in a scratch directory; brought down at the end whatever happened.
class TestCluster {
 public:
  TestCluster() : dir_("flotilla-engine"), memory_(std::make_shared<MemoryStateStore>()) {}
  ~TestCluster() {
    std::string problem;
    try {
      auto e = open(topology(""));
      CancelToken cancel;
      auto p = e->plan(true);
      const Result<ApplyReport> r = p ? e->apply(*p, cancel, nullptr) : Result<ApplyReport>(std::unexpected(p.error()));
      if (!r) problem = r.error().message;
      else
        for (const auto& s : r->results)
          if (s.outcome == StepOutcome::failed) problem += s.id + ": " + s.message + "\n";
    } catch (...) {
      problem = "the test cluster could not be opened again";
    }
    if (!problem.empty()) flotilla::test::report_cleanup_failure("down of the test cluster: " + problem);
  }

  std::unique_ptr<Engine> open(const std::string& text) {
    std::ofstream(dir_.path() / "bench.toml") << text;
    EngineOptions o;
    o.topology_file = dir_.path() / "bench.toml";
    o.plugin_path = std::string(FLOTILLA_TEST_PLUGIN_DIR) + ":" + FLOTILLA_PLUGIN_DIR;
    o.state_dir = dir_.path() / "state";
    o.health_timeout = std::chrono::seconds(15);
    o.stop_timeout = std::chrono::seconds(5);
    auto store = std::make_unique<SharedStore>(memory_);
    store_ = store.get();
    EngineDeps deps;
    deps.store = std::move(store);
    deps.health = probe;
    auto e = Engine::open(o, std::move(deps));
    if (!e) FAIL(e.error().message);
    return std::move(*e);
  }

  // Plans and applies; fails the test when a step fails.
  void up(Engine& e) {
    auto p = e.plan();
    REQUIRE(p);
    CancelToken cancel;
    auto r = e.apply(*p, cancel, nullptr);
    REQUIRE(r);
    for (const auto& s : r->results) INFO(s.id << ": " << s.message);
    REQUIRE(r->failed() == 0);
    REQUIRE(r->skipped() == 0);
  }

  [[nodiscard]] json state() const { return *memory_->load(); }
  [[nodiscard]] fs::path machine(const std::string& node) const { return dir_.path() / "state" / "nodes" / node / "machine"; }
  [[nodiscard]] fs::path addon_dir(const std::string& addon) const { return dir_.path() / "state" / "addons" / addon; }
  [[nodiscard]] MemoryStateStore& memory() { return *memory_; }
  SharedStore* store_ = nullptr;
  std::shared_ptr<CountingProbe> probe = std::make_shared<CountingProbe>();

 private:
  ScratchDir dir_;
  std::shared_ptr<MemoryStateStore> memory_;
};

const PlanAction* action(const Plan& p, const std::string& type, const std::string& name) {
  for (const auto& a : p.actions)
    if (a.type == type && a.name == name) return &a;
  return nullptr;
}

// The lines of a file, in order.
std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Where `line` is in `lines`; lines.size() when it is not there.
size_t index_of(const std::vector<std::string>& lines, const std::string& line) {
  return static_cast<size_t>(std::find(lines.begin(), lines.end(), line) - lines.begin());
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  in >> s;
  return s;
}

}  // namespace

TEST_CASE("step runner: up records every step in the state store and gates instances on health", "[engine][integration]") {
  TestCluster c;
  auto e = c.open(topology(""));
  c.up(*e);
  const json s = c.state();
  CHECK(c.memory().saves() > 0);
  CHECK(s["format_version"] == kStateFormatVersion);
  REQUIRE(s["nodes"].size() == 3);
  CHECK(s["nodes"]["swarm-1"]["status"] == "ready");
  CHECK(s["nodes"]["swarm-1"]["address"] == prefix() + ".2");
  CHECK(s["nodes"]["swarm-1"]["driver_options"].contains("flavor"));
  REQUIRE(s["instances"].size() == 2);
  for (const auto& [id, rec] : s["instances"].items()) CHECK(rec["status"] == "running");
  CHECK(c.probe->calls >= 2);
  CHECK(s["addons"]["keeper"]["state"] == json{{"applied", true}});
  CHECK(slurp(c.machine("infra")) == "running");

  // Nothing changed: the next plan is empty, and status shows the nodes live.
  auto again = e->plan();
  REQUIRE(again);
  CHECK(again->empty());
  const json st = e->status(s, e->refresh(s));
  for (const auto& n : st["nodes"]) CHECK(n["state"] == "running");
  CHECK(st["endpoints"]["web"] == "http://keeper");
  CHECK(st["addons"][0]["endpoints"]["web"] == "http://keeper");
}

TEST_CASE("step runner: a node its driver reports stopped is started again by up, with its instances", "[engine][integration]") {
  TestCluster c;
  auto e = c.open(topology(""));
  c.up(*e);
  const json before = c.state();
  const std::string id = "hello/v1#2";  // on swarm-2
  REQUIRE(before["instances"][id]["node"] == "swarm-2");
  const int old_pid = before["instances"][id]["record"]["pid"];
  // The machine stops: its file says so and what ran on it is gone.
  std::ofstream(c.machine("swarm-2")) << "stopped";
  REQUIRE(::kill(old_pid, SIGKILL) == 0);
  REQUIRE(flotilla::test::proc::wait_until([&] { return !flotilla::test::proc::running(old_pid); }, std::chrono::seconds(5)));

  const json live = e->refresh(before);
  CHECK(live["nodes"]["swarm-2"] == "stopped");
  CHECK(live["nodes"]["swarm-1"] == "running");
  const json st = e->status(before, live);
  for (const auto& n : st["nodes"]) CHECK(n["state"] == (n["name"] == "swarm-2" ? "stopped" : "running"));

  auto p = e->plan();
  REQUIRE(p);
  const PlanAction* node = action(*p, "node", "swarm-2");
  REQUIRE(node);
  CHECK(node->change == Change::repair);
  CHECK(node->detail == "it is stopped");
  const PlanAction* inst = action(*p, "instance", id);
  REQUIRE(inst);
  CHECK(inst->verb == "restart");
  CHECK(action(*p, "node", "swarm-1") == nullptr);

  c.up(*e);
  CHECK(slurp(c.machine("swarm-2")) == "running");
  const json after = c.state();
  CHECK(after["instances"][id]["status"] == "running");
  const int new_pid = after["instances"][id]["record"]["pid"];
  CHECK(new_pid != old_pid);
  CHECK(flotilla::test::proc::running(new_pid));
  auto settled = e->plan();
  REQUIRE(settled);
  CHECK(settled->empty());
}

TEST_CASE("step runner: a changed driver option is applied in place or by replacing the node", "[engine][integration]") {
  TestCluster c;
  {
    auto e = c.open(topology(""));
    c.up(*e);
  }
  SECTION("an option the driver lists as mutable changes in place") {
    auto e = c.open(topology("note = \"hello\"\n"));
    auto p = e->plan();
    REQUIRE(p);
    const PlanAction* a = action(*p, "node", "swarm-1");
    REQUIRE(a);
    CHECK(a->change == Change::update);
    CHECK(a->verb == "update");
    CHECK(a->detail == "driver option note changed; changes in place");
    CHECK(action(*p, "instance", "hello/v1#1") == nullptr);
    c.up(*e);
    auto settled = e->plan();
    REQUIRE(settled);
    CHECK(settled->empty());
  }
  SECTION("any other option forces a replacement, which up carries out") {
    const int old_pid = c.state()["instances"]["hello/v1#1"]["record"]["pid"];
    auto e = c.open(topology("flavor = \"large\"\n"));
    auto p = e->plan();
    REQUIRE(p);
    for (const char* n : {"infra", "swarm-1", "swarm-2"}) {
      const PlanAction* a = action(*p, "node", n);
      REQUIRE(a);
      CHECK(a->verb == "replace");
      CHECK(a->detail == "driver option flavor changed; forces replacement");
    }
    CHECK_THAT(plan_to_text(*p, "bench"), Catch::Contains("~ node swarm-1: replace (driver option flavor changed; forces replacement)"));
    REQUIRE(action(*p, "instance", "hello/v1#1"));
    c.up(*e);
    const json s = c.state();
    CHECK(s["nodes"]["swarm-1"]["data"]["flavor"] == "large");
    CHECK(s["instances"]["hello/v1#1"]["status"] == "running");
    CHECK(s["instances"]["hello/v1#1"]["record"]["pid"] != old_pid);
    CHECK_FALSE(flotilla::test::proc::running(old_pid));
    auto settled = e->plan();
    REQUIRE(settled);
    CHECK(settled->empty());
  }
}

TEST_CASE("step runner: an addon's state_set reports a save that failed", "[engine][integration]") {
  TestCluster c;
  {
    auto e = c.open(topology(""));
    c.up(*e);
  }
  // As if the keeper's first apply had been interrupted before it saved its state.
  json s = c.state();
  s["addons"]["keeper"]["status"] = "applying";
  s["addons"]["keeper"].erase("state");
  REQUIRE(c.memory().save(s));
  auto e = c.open(topology(""));
  c.store_->refuse_state_of = "keeper";
  auto p = e->plan();
  REQUIRE(p);
  REQUIRE(p->graph.steps.size() == 1);
  CancelToken cancel;
  auto r = e->apply(*p, cancel, nullptr);
  REQUIRE(r);
  REQUIRE(r->results.size() == 1);
  CHECK(r->results[0].outcome == StepOutcome::failed);
  CHECK_THAT(r->results[0].message, Catch::Contains("state_set returned status 1"));
  CHECK_FALSE(c.state()["addons"]["keeper"].contains("state"));
  c.store_->refuse_state_of.clear();
}

TEST_CASE("step runner: an addon's stages run as steps in their order, then its whole apply with what they reported",
          "[engine][integration]") {
  TestCluster c;
  auto staged = [](const std::string& fail_stage) {
    return topology("") + "\n[[addons]]\nplugin = \"stager\"\n[addons.options]\nfail_stage = \"" + fail_stage + "\"\n";
  };
  auto e = c.open(staged("third"));
  auto p = e->plan();
  REQUIRE(p);
  auto deps_of = [&](const std::string& id) {
    for (const auto& s : p->graph.steps)
      if (s.id == id) return s.deps;
    FAIL("no step " << id);
    return std::vector<std::string>{};
  };
  auto has = [](const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  CHECK(has(deps_of("addon.apply:stager/first"), "node.create:infra"));
  CHECK(has(deps_of("addon.apply:stager/second"), "addon.apply:stager/first"));
  CHECK(has(deps_of("addon.apply:stager/third"), "addon.apply:stager/first"));
  CHECK_FALSE(has(deps_of("addon.apply:stager/third"), "addon.apply:stager/second"));
  for (const char* stage : {"first", "second", "third"}) CHECK(has(deps_of("addon.apply:stager"), std::string("addon.apply:stager/") + stage));
  // One line of the plan for the addon, whatever its stages.
  CHECK(std::count_if(p->actions.begin(), p->actions.end(), [](const PlanAction& a) { return a.name == "stager"; }) == 1);

  // A stage that fails stops the whole apply after it; the addon is not ready.
  CancelToken cancel;
  auto r = e->apply(*p, cancel, nullptr);
  REQUIRE(r);
  auto outcome = [&](const std::string& id) {
    for (const auto& s : r->results)
      if (s.id == id) return s.outcome;
    return StepOutcome::not_started;
  };
  CHECK(outcome("addon.apply:stager/first") == StepOutcome::succeeded);
  CHECK(outcome("addon.apply:stager/third") == StepOutcome::failed);
  CHECK(outcome("addon.apply:stager") == StepOutcome::skipped);
  CHECK(c.state()["addons"]["stager"]["status"] != "ready");
  auto calls = lines_of(c.addon_dir("stager") / "calls");
  INFO("calls of the failed run: " << flotilla::join(calls, ", "));
  CHECK(index_of(calls, "end first") < index_of(calls, "begin second"));
  CHECK(index_of(calls, "end first") < index_of(calls, "begin third"));
  CHECK(index_of(calls, "begin whole") == calls.size());

  // The next up runs every stage again, then the whole apply, which is told what each reported.
  fs::remove(c.addon_dir("stager") / "calls");
  e = c.open(staged(""));
  c.up(*e);
  calls = lines_of(c.addon_dir("stager") / "calls");
  INFO("calls of the second run: " << flotilla::join(calls, ", "));
  REQUIRE(calls.size() == 8);
  CHECK(calls.front() == "begin first");
  CHECK(index_of(calls, "end first") < index_of(calls, "begin second"));
  CHECK(index_of(calls, "end second") < index_of(calls, "begin whole"));
  CHECK(index_of(calls, "end third") < index_of(calls, "begin whole"));
  CHECK(calls.back() == "end whole");
  const json rec = c.state()["addons"]["stager"];
  CHECK(rec["status"] == "ready");
  CHECK(rec["outputs"]["seen"] == json{{"first", {{"stage", "first"}}}, {"second", {{"stage", "second"}}}, {"third", {{"stage", "third"}}}});
  auto again = e->plan();
  REQUIRE(again);
  CHECK(again->empty());
}

namespace {
// The holders' pids, from the batcher's record.
std::vector<int> holder_pids(const json& rec) {
  std::vector<int> pids;
  for (const auto& [key, comp] : rec["components"].items()) pids.push_back(comp["record"].value("pid", 0));
  return pids;
}
}  // namespace

TEST_CASE("step runner: removing an addon stops every component it recorded, by its batch or by the engine",
          "[engine][integration]") {
  const bool leave_running = GENERATE(false, true);
  INFO("leave_running = " << leave_running);
  TestCluster c;
  const std::string with = topology("") + "\n[[addons]]\nplugin = \"batcher\"\n[addons.options]\nper_node = 4\nleave_running = " +
                           (leave_running ? "true" : "false") + "\n";
  auto e = c.open(with);
  c.up(*e);
  const std::vector<int> pids = holder_pids(c.state()["addons"]["batcher"]);
  REQUIRE(pids.size() == 8);
  for (int pid : pids) REQUIRE((pid > 0 && flotilla::test::proc::running(pid)));

  e = c.open(topology(""));
  c.up(*e);
  CHECK_FALSE(c.state()["addons"].contains("batcher"));
  for (int pid : pids) {
    INFO("holder pid " << pid);
    CHECK(flotilla::test::proc::wait_until([&] { return !flotilla::test::proc::running(pid); }, std::chrono::seconds(10)));
  }
}

TEST_CASE("step runner: a resync that finds its components running saves no state, and one that restarts a component records it",
          "[engine][integration]") {
  TestCluster c;
  const std::string text = topology("") + "\n[[addons]]\nplugin = \"batcher\"\n[addons.options]\nper_node = 3\n";
  auto e = c.open(text);
  c.up(*e);
  const json first = c.state()["addons"]["batcher"];
  REQUIRE(first["status"] == "ready");
  REQUIRE(first["components"].size() == 6);

  // Nothing changed: the plan is the reconciling addon's resync alone, and applying it starts
  // its six holders again (each found running), sets its state to the value it has, and
  // reports the same outputs. The only save is the one every apply opens with.
  e = c.open(text);
  auto p = e->plan();
  REQUIRE(p);
  REQUIRE(p->actions.size() == 1);
  CHECK(p->actions[0].change == Change::resync);
  const int saves = c.memory().saves();
  CancelToken cancel;
  auto r = e->apply(*p, cancel, nullptr);
  REQUIRE(r);
  REQUIRE(r->failed() == 0);
  CHECK(c.memory().saves() == saves + 1);
  CHECK(c.state()["addons"]["batcher"] == first);

  // A holder that died is started again by the next resync, and its new pid is recorded.
  const std::string key = first["components"].items().begin().key();
  const int old_pid = first["components"][key]["record"].value("pid", 0);
  REQUIRE(old_pid > 0);
  REQUIRE(::kill(old_pid, SIGKILL) == 0);
  REQUIRE(flotilla::test::proc::wait_until([&] { return !flotilla::test::proc::running(old_pid); }, std::chrono::seconds(10)));
  e = c.open(text);
  c.up(*e);
  const json comp = c.state()["addons"]["batcher"]["components"][key];
  const int new_pid = comp["record"].value("pid", 0);
  CHECK(comp["status"] == "running");
  CHECK(new_pid > 0);
  CHECK(new_pid != old_pid);
  CHECK(::kill(new_pid, 0) == 0);
}

TEST_CASE("step runner: a runtime batch starts every operation, each result in its place, and refuses malformed batches",
          "[engine][integration]") {
  TestCluster c;
  auto e = c.open(topology("") + "\n[[addons]]\nplugin = \"batcher\"\n[addons.options]\nper_node = 3\n");
  c.up(*e);
  const json rec = c.state()["addons"]["batcher"];
  REQUIRE(rec["status"] == "ready");
  const json& out = rec["outputs"];
  REQUIRE(out["statuses"].size() == 7);  // 2 nodes x 3 holders, then the node that does not exist
  for (size_t i = 0; i < 6; ++i) {
    INFO("operation " << i << ": " << out["errors"][i]);
    CHECK(out["statuses"][i] == static_cast<int>(FLT_OK));
  }
  CHECK(out["statuses"][6] == static_cast<int>(FLT_INVALID));
  CHECK_THAT(out["errors"][6].get<std::string>(), Catch::Contains("node \"nowhere\""));
  CHECK_THAT(out["not_an_array"].get<std::string>(), Catch::StartsWith(std::to_string(FLT_INVALID) + ": ") && Catch::Contains("an array"));
  CHECK_THAT(out["nested"].get<std::string>(), Catch::Contains("ops[0] is a batch itself"));
  // Every holder was recorded and runs.
  REQUIRE(rec["components"].size() == 6);
  for (const auto& [key, comp] : rec["components"].items()) {
    INFO(key);
    CHECK(comp["status"] == "running");
    const int pid = comp["record"].value("pid", 0);
    REQUIRE(pid > 0);
    CHECK(::kill(pid, 0) == 0);
  }
}
