#include "executor.hpp"
#include "support/fake_runner.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

using namespace flotilla;
using flotilla::test::FakeRunner;
using flotilla::test::FakeScript;
using std::chrono::milliseconds;

namespace {

// Concatenation by appending: GCC 12 at -O2 reports a false -Wrestrict on "literal" + std::string&&.
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out += p;
  return out;
}

Step step(std::string id, std::vector<std::string> deps = {}, std::string pool = {}) {
  Step s;
  s.label = "do " + id;
  s.id = std::move(id);
  s.deps = std::move(deps);
  s.pool = std::move(pool);
  return s;
}

ExecOptions fast_options(int parallelism) {
  ExecOptions o;
  o.parallelism = parallelism;
  o.backoff_base = milliseconds(1);
  o.backoff_max = milliseconds(4);
  return o;
}

std::map<std::string, StepResult> by_id(const std::vector<StepResult>& results) {
  std::map<std::string, StepResult> out;
  for (const auto& r : results) out[r.id] = r;
  return out;
}

// Records observer calls; the executor calls it from several threads.
class RecordingObserver final : public ExecutionObserver {
 public:
  void on_start(const Step& s, std::size_t done, std::size_t total) override {
    std::lock_guard lock(mu);
    starts.push_back(s.id);
    start_done.push_back(done);
    totals.push_back(total);
  }
  void on_finish(const Step& s, const StepResult& r, std::size_t done, std::size_t total) override {
    std::lock_guard lock(mu);
    finishes.push_back(s.id);
    finish_done.push_back(done);
    outcomes[s.id] = r.outcome;
    totals.push_back(total);
  }
  void on_retry(const Step& s, const Error& e, int attempt, milliseconds delay) override {
    std::lock_guard lock(mu);
    retries.push_back(cat({s.id, "#", std::to_string(attempt), ":", e.message}));
    delays.push_back(delay);
  }

  std::mutex mu;
  std::vector<std::string> starts, finishes, retries;
  std::vector<std::size_t> start_done, finish_done, totals;
  std::vector<milliseconds> delays;
  std::map<std::string, StepOutcome> outcomes;
};

// Blocks each caller until `count` callers have arrived (bounded, so a bug fails instead of hanging).
class Gate {
 public:
  explicit Gate(int count) : count_(count) {}
  bool arrive_and_wait() {
    std::unique_lock lock(mu_);
    ++arrived_;
    cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return arrived_ >= count_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_;
  int arrived_ = 0;
};

}  // namespace

TEST_CASE("executor: an empty graph runs nothing", "[executor]") {
  FakeRunner runner;
  CancelToken cancel;
  StepGraph graph;
  CHECK(execute(graph, runner, fast_options(4), cancel).empty());
  CHECK(runner.started().empty());
}

TEST_CASE("executor: parallelism bounds the running steps", "[executor]") {
  StepGraph graph;
  for (int i = 0; i < 24; ++i) graph.steps.push_back(step(cat({"s", std::to_string(i)})));
  FakeRunner runner;
  for (const auto& s : graph.steps) runner.script(s.id, {.delay = milliseconds(2)});
  const int parallelism = GENERATE(1, 3, 5);
  runner.rendezvous(parallelism);  // each step waits until `parallelism` run at once
  CancelToken cancel;

  auto results = execute(graph, runner, fast_options(parallelism), cancel);

  CHECK(runner.max_concurrency() == parallelism);
  REQUIRE(results.size() == graph.steps.size());
  for (const auto& r : results) {
    CHECK(r.outcome == StepOutcome::succeeded);
    CHECK(r.attempts == 1);
  }
  CHECK(runner.finished().size() == graph.steps.size());
}

TEST_CASE("executor: a pool limit caps the steps of that pool", "[executor]") {
  StepGraph graph;
  for (int i = 0; i < 12; ++i) graph.steps.push_back(step(cat({"vm", std::to_string(i)}), {}, "driver:virtualbox"));
  for (int i = 0; i < 6; ++i) graph.steps.push_back(step(cat({"free", std::to_string(i)})));
  FakeRunner runner;
  for (const auto& s : graph.steps) runner.script(s.id, {.delay = milliseconds(2)});
  runner.pool_rendezvous("driver:virtualbox", 2);
  auto options = fast_options(6);
  options.pool_limits["driver:virtualbox"] = 2;
  CancelToken cancel;

  auto results = execute(graph, runner, options, cancel);

  CHECK(runner.max_concurrency("driver:virtualbox") == 2);
  CHECK(runner.max_concurrency() <= 6);
  for (const auto& r : results) CHECK(r.outcome == StepOutcome::succeeded);
}

TEST_CASE("executor: a failure skips its dependents only", "[executor]") {
  //     a
  //    / \      x -> y (independent)
  //   b   c
  //    \ /
  //     d -> e
  StepGraph graph;
  graph.steps = {step("a"),           step("b", {"a"}), step("c", {"a"}), step("d", {"b", "c"}),
                 step("e", {"d"}),    step("x"),        step("y", {"x"})};
  FakeRunner runner;
  runner.script("b", {.fail = true});
  auto parallelism = GENERATE(1, 4);
  CancelToken cancel;
  RecordingObserver observer;

  auto results = by_id(execute(graph, runner, fast_options(parallelism), cancel, &observer));

  CHECK(results["a"].outcome == StepOutcome::succeeded);
  CHECK(results["b"].outcome == StepOutcome::failed);
  CHECK(results["b"].message == "b: scripted failure");
  CHECK(results["b"].attempts == 1);
  CHECK(results["c"].outcome == StepOutcome::succeeded);
  CHECK(results["d"].outcome == StepOutcome::skipped);
  CHECK(results["d"].message == "skipped: depends on b, which failed");
  CHECK(results["e"].outcome == StepOutcome::skipped);
  CHECK(results["e"].message == "skipped: depends on b, which failed");
  CHECK(results["x"].outcome == StepOutcome::succeeded);
  CHECK(results["y"].outcome == StepOutcome::succeeded);
  CHECK(runner.attempts("d") == 0);
  CHECK(runner.attempts("e") == 0);

  // Every step is reported finished once; skipped ones are never reported started.
  CHECK(observer.finishes.size() == graph.steps.size());
  CHECK(observer.starts.size() == 5);
  CHECK(observer.outcomes["d"] == StepOutcome::skipped);
}

TEST_CASE("executor: results come back in graph order with ids", "[executor]") {
  StepGraph graph;
  graph.steps = {step("z"), step("m", {"z"}), step("a")};
  FakeRunner runner;
  CancelToken cancel;
  auto results = execute(graph, runner, fast_options(3), cancel);
  REQUIRE(results.size() == 3);
  CHECK(results[0].id == "z");
  CHECK(results[1].id == "m");
  CHECK(results[2].id == "a");
}

TEST_CASE("executor: a retryable error is retried until it succeeds", "[executor]") {
  StepGraph graph;
  graph.steps = {step("flaky"), step("after", {"flaky"})};
  FakeRunner runner;
  runner.script("flaky", {.retryable_failures = 2});
  CancelToken cancel;
  RecordingObserver observer;

  auto results = by_id(execute(graph, runner, fast_options(2), cancel, &observer));

  CHECK(results["flaky"].outcome == StepOutcome::succeeded);
  CHECK(results["flaky"].attempts == 3);
  CHECK(runner.attempts("flaky") == 3);
  CHECK(results["after"].outcome == StepOutcome::succeeded);
  REQUIRE(observer.retries.size() == 2);
  CHECK(observer.retries[0] == "flaky#1:flaky: transient failure 1");
  CHECK(observer.retries[1] == "flaky#2:flaky: transient failure 2");
  for (auto d : observer.delays) CHECK(d <= milliseconds(4));
}

TEST_CASE("executor: retries stop at max_attempts", "[executor]") {
  StepGraph graph;
  graph.steps = {step("flaky")};
  FakeRunner runner;
  runner.script("flaky", {.retryable_failures = 10});
  auto options = fast_options(1);
  options.max_attempts = 3;
  CancelToken cancel;

  auto results = execute(graph, runner, options, cancel);

  CHECK(results[0].outcome == StepOutcome::failed);
  CHECK(results[0].attempts == 3);
  CHECK(runner.attempts("flaky") == 3);
  CHECK(results[0].message == "flaky: transient failure 3 (gave up after 3 attempts)");
}

TEST_CASE("executor: a non-retryable error is not retried", "[executor]") {
  StepGraph graph;
  graph.steps = {step("broken")};
  FakeRunner runner;
  runner.script("broken", {.fail = true});
  CancelToken cancel;
  RecordingObserver observer;

  auto results = execute(graph, runner, fast_options(1), cancel, &observer);

  CHECK(results[0].outcome == StepOutcome::failed);
  CHECK(results[0].attempts == 1);
  CHECK(runner.attempts("broken") == 1);
  CHECK(observer.retries.empty());
}

TEST_CASE("executor: the backoff ceiling doubles up to backoff_max", "[executor]") {
  ExecOptions o;
  o.backoff_base = milliseconds(200);
  o.backoff_max = milliseconds(5000);
  CHECK(retry_delay_ceiling(o, 1) == milliseconds(200));
  CHECK(retry_delay_ceiling(o, 2) == milliseconds(400));
  CHECK(retry_delay_ceiling(o, 5) == milliseconds(3200));
  CHECK(retry_delay_ceiling(o, 6) == milliseconds(5000));
  CHECK(retry_delay_ceiling(o, 1000) == milliseconds(5000));
}

TEST_CASE("executor: the wait before a retry ends on cancellation", "[executor]") {
  StepGraph graph;
  graph.steps = {step("flaky"), step("later")};
  FakeRunner runner;
  runner.script("flaky", {.retryable_failures = 5});
  ExecOptions options;
  options.parallelism = 1;
  options.backoff_base = std::chrono::minutes(10);  // would hang the test if the wait ignored the token
  options.backoff_max = std::chrono::minutes(10);
  CancelToken cancel;

  class CancelOnRetry final : public ExecutionObserver {
   public:
    explicit CancelOnRetry(CancelToken& c) : cancel(c) {}
    void on_retry(const Step&, const Error&, int, milliseconds) override { cancel.request(); }
    CancelToken& cancel;
  } observer(cancel);

  auto results = by_id(execute(graph, runner, options, cancel, &observer));

  CHECK(results["flaky"].outcome == StepOutcome::failed);
  CHECK(results["flaky"].attempts == 1);
  CHECK(results["flaky"].message == "flaky: transient failure 1 (not retried: interrupted)");
  CHECK(results["later"].outcome == StepOutcome::not_started);
  CHECK(results["later"].message == "not started: interrupted");
}

TEST_CASE("executor: a retryable failure after cancellation is not retried", "[executor]") {
  StepGraph graph;
  graph.steps = {step("flaky")};
  FakeRunner runner;
  CancelToken cancel;
  runner.script("flaky", {.retryable_failures = 5, .on_start = [&](const Step&) { cancel.request(); }});
  RecordingObserver observer;

  auto results = execute(graph, runner, fast_options(1), cancel, &observer);

  CHECK(results[0].outcome == StepOutcome::failed);
  CHECK(results[0].attempts == 1);
  CHECK(results[0].message == "flaky: transient failure 1 (not retried: interrupted)");
  CHECK(observer.retries.empty());
}

TEST_CASE("executor: an exception from the runner fails the step", "[executor]") {
  StepGraph graph;
  graph.steps = {step("throws"), step("next", {"throws"}), step("other")};
  FakeRunner runner;
  runner.script("throws", {.throw_exception = true});
  CancelToken cancel;

  auto results = by_id(execute(graph, runner, fast_options(2), cancel));

  CHECK(results["throws"].outcome == StepOutcome::failed);
  CHECK(results["throws"].message == "internal error in step throws: boom");
  CHECK(results["next"].outcome == StepOutcome::skipped);
  CHECK(results["other"].outcome == StepOutcome::succeeded);
}

TEST_CASE("executor: cancellation stops scheduling and lets running steps finish", "[executor]") {
  StepGraph graph;
  for (int i = 0; i < 10; ++i) graph.steps.push_back(step(cat({"s", std::to_string(i)})));
  FakeRunner runner;
  CancelToken cancel;
  Gate both_running(2);
  // s0 and s1 start together (parallelism 2, graph order); s0 asks to stop while both run.
  std::atomic<int> met{0};  // Catch2 assertions are not thread-safe: count in the workers, check here
  runner.script("s0", {.delay = milliseconds(5), .on_start = [&](const Step&) {
                         met += both_running.arrive_and_wait() ? 1 : 0;
                         cancel.request();
                       }});
  runner.script("s1", {.delay = milliseconds(20), .on_start = [&](const Step&) {
                         met += both_running.arrive_and_wait() ? 1 : 0;
                       }});
  RecordingObserver observer;

  auto results = execute(graph, runner, fast_options(2), cancel, &observer);

  CHECK(met == 2);

  CHECK(cancel.stop_scheduling());
  CHECK_FALSE(cancel.aborted());
  CHECK(results[0].outcome == StepOutcome::succeeded);
  CHECK(results[1].outcome == StepOutcome::succeeded);
  for (std::size_t i = 2; i < results.size(); ++i) {
    CHECK(results[i].outcome == StepOutcome::not_started);
    CHECK(results[i].message == "not started: interrupted");
    CHECK(results[i].attempts == 0);
  }
  // s0 and s1 start on two workers at once, so either may be recorded first.
  auto started = runner.started();
  std::sort(started.begin(), started.end());
  CHECK(started == std::vector<std::string>{"s0", "s1"});
  CHECK(runner.finished().size() == 2);
  CHECK(observer.finishes.size() == 10);
  CHECK(observer.finish_done.back() == 10);
}

TEST_CASE("executor: a second request aborts, and the runner sees it", "[executor]") {
  StepGraph graph;
  graph.steps = {step("long"), step("next")};
  FakeRunner runner;
  CancelToken cancel;
  runner.script("long", {.wait_for_abort = true, .on_start = [&](const Step&) {
                           cancel.request();
                           cancel.request();
                         }});

  auto results = execute(graph, runner, fast_options(1), cancel);

  CHECK(cancel.aborted());
  CHECK(results[0].outcome == StepOutcome::failed);
  CHECK(results[0].message == "long: aborted");
  CHECK(results[1].outcome == StepOutcome::not_started);
}

TEST_CASE("executor: cancellation before the run starts nothing", "[executor]") {
  StepGraph graph;
  graph.steps = {step("a"), step("b", {"a"})};
  FakeRunner runner;
  CancelToken cancel;
  cancel.request();
  auto results = execute(graph, runner, fast_options(4), cancel);
  CHECK(runner.started().empty());
  for (const auto& r : results) CHECK(r.message == "not started: interrupted");
}

TEST_CASE("executor: parallelism 1 runs ready steps in graph order", "[executor]") {
  StepGraph graph;
  graph.steps = {step("net"),          step("vm2", {"net"}), step("vm1", {"net"}), step("dns"),
                 step("app", {"vm1"}), step("lb", {"app", "vm2"}), step("mon", {"dns"})};
  const std::vector<std::string> expected = {"net", "vm2", "vm1", "dns", "app", "lb", "mon"};
  for (int run = 0; run < 3; ++run) {
    FakeRunner runner;
    CancelToken cancel;
    RecordingObserver observer;
    auto results = execute(graph, runner, fast_options(1), cancel, &observer);
    CHECK(runner.started() == expected);
    CHECK(observer.start_done == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6});
    CHECK(observer.finish_done == std::vector<std::size_t>{1, 2, 3, 4, 5, 6, 7});
    for (auto t : observer.totals) CHECK(t == 7);
  }
}

TEST_CASE("executor: a step never starts before its dependencies succeed", "[executor]") {
  // Layers of 8 steps, each depending on two steps of the layer before.
  StepGraph graph;
  constexpr int kLayers = 20, kWidth = 8;
  for (int l = 0; l < kLayers; ++l) {
    for (int w = 0; w < kWidth; ++w) {
      std::vector<std::string> deps;
      if (l > 0) {
        deps.push_back(cat({"l", std::to_string(l - 1), "w", std::to_string(w)}));
        deps.push_back(cat({"l", std::to_string(l - 1), "w", std::to_string((w + 3) % kWidth)}));
      }
      graph.steps.push_back(step(cat({"l", std::to_string(l), "w", std::to_string(w)}), deps));
    }
  }
  FakeRunner runner;
  CancelToken cancel;
  auto results = execute(graph, runner, fast_options(4), cancel);
  for (const auto& r : results) CHECK(r.outcome == StepOutcome::succeeded);

  const auto events = runner.events();
  REQUIRE(events.size() == 2 * graph.steps.size());
  std::map<std::string, std::size_t> at;
  for (std::size_t i = 0; i < events.size(); ++i) at[events[i]] = i;
  for (const auto& s : graph.steps) {
    for (const auto& d : s.deps) CHECK(at.at("finish:" + d) < at.at("start:" + s.id));
  }
}

TEST_CASE("executor: an invalid graph runs nothing and says why", "[executor]") {
  StepGraph graph;
  graph.steps = {step("a", {"ghost"}), step("b")};
  FakeRunner runner;
  CancelToken cancel;
  auto results = execute(graph, runner, fast_options(2), cancel);
  CHECK(runner.started().empty());
  for (const auto& r : results) {
    CHECK(r.outcome == StepOutcome::not_started);
    CHECK_THAT(r.message, Catch::Contains("unknown step \"ghost\""));
  }
}

TEST_CASE("step graph: check accepts a valid graph", "[executor]") {
  StepGraph graph;
  graph.steps = {step("a"), step("b", {"a"}), step("c", {"a", "b"})};
  CHECK(graph.check().has_value());
}

TEST_CASE("step graph: check names the cycle", "[executor]") {
  StepGraph graph;
  graph.steps = {step("root"), step("a", {"b", "root"}), step("b", {"c"}), step("c", {"a"}), step("leaf", {"a"})};
  auto checked = graph.check();
  REQUIRE_FALSE(checked);
  CHECK_THAT(checked.error().message, Catch::StartsWith("cycle: a -> b -> c -> a"));

  StepGraph self;
  self.steps = {step("loop", {"loop"})};
  auto self_checked = self.check();
  REQUIRE_FALSE(self_checked);
  CHECK_THAT(self_checked.error().message, Catch::StartsWith("cycle: loop -> loop"));
}

TEST_CASE("step graph: check names an unknown dependency and its dependent", "[executor]") {
  StepGraph graph;
  graph.steps = {step("addon.apply:haproxy", {"node.create:infra"})};
  auto checked = graph.check();
  REQUIRE_FALSE(checked);
  CHECK(checked.error().message ==
        "step \"addon.apply:haproxy\" depends on unknown step \"node.create:infra\"; no step in the graph has that id");
}

TEST_CASE("step graph: check rejects duplicate ids", "[executor]") {
  StepGraph graph;
  graph.steps = {step("a"), step("b"), step("a")};
  auto checked = graph.check();
  REQUIRE_FALSE(checked);
  CHECK_THAT(checked.error().message, Catch::Contains("duplicate step id \"a\"") && Catch::Contains("#1 and #3"));
}

TEST_CASE("step graph: DOT output has labelled vertices and dependency edges", "[executor]") {
  StepGraph graph;
  graph.steps = {step("node.create:infra"), step("addon.apply:consul", {"node.create:infra"}),
                 step("say \"hi\"", {"addon.apply:consul"})};
  graph.steps[0].label = "create node infra";
  const auto dot = graph.to_dot();
  CHECK_THAT(dot, Catch::StartsWith("digraph flotilla {"));
  CHECK_THAT(dot, Catch::EndsWith("}\n"));
  CHECK_THAT(dot, Catch::Contains("\"node.create:infra\" [label=\"create node infra\"];"));
  CHECK_THAT(dot, Catch::Contains("\"node.create:infra\" -> \"addon.apply:consul\";"));
  CHECK_THAT(dot, Catch::Contains("\"addon.apply:consul\" -> \"say \\\"hi\\\"\";"));
}

TEST_CASE("step graph: a 100k-step chain checks without deep recursion", "[executor]") {
  StepGraph graph;
  constexpr int kSteps = 100'000;
  graph.steps.reserve(kSteps);
  for (int i = 0; i < kSteps; ++i) {
    std::vector<std::string> deps;
    if (i > 0) deps.push_back(cat({"s", std::to_string(i - 1)}));
    graph.steps.push_back(step(cat({"s", std::to_string(i)}), deps));
  }
  CHECK(graph.check().has_value());

  graph.steps[0].deps = {cat({"s", std::to_string(kSteps - 1)})};
  auto checked = graph.check();
  REQUIRE_FALSE(checked);
  // A long cycle is shown by its ends, with a count of the steps left out.
  CHECK_THAT(checked.error().message,
             Catch::StartsWith("cycle: s0 -> s99999 -> s99998 -> s99997 -> s99996 -> s99995 -> s99994 -> s99993 -> "
                               "... (99988 more) -> s4 -> s3 -> s2 -> s1 -> s0 (each step depends on the next)"));
}

TEST_CASE("executor: 50,000 steps with a no-op runner", "[executor][scale]") {
  class NoopRunner final : public StepRunner {
   public:
    Result<void> run(const Step&, const CancelToken&) override { return {}; }
  } runner;

  // 1,000 nodes, each with a create step, 48 instance steps and one health step.
  StepGraph graph;
  graph.steps.reserve(50'000);
  for (int n = 0; n < 1000; ++n) {
    const std::string node = cat({"node.create:n", std::to_string(n)});
    graph.steps.push_back(step(node, {}, "driver:local"));
    for (int k = 0; k < 48; ++k) {
      graph.steps.push_back(step(cat({"instance.start:n", std::to_string(n), "#", std::to_string(k)}), {node}));
    }
    graph.steps.push_back(step(cat({"health:n", std::to_string(n)}), {cat({"instance.start:n", std::to_string(n), "#47"})}));
  }
  REQUIRE(graph.steps.size() == 50'000);
  auto options = fast_options(10);
  options.pool_limits["driver:local"] = 4;
  CancelToken cancel;

  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(graph.check().has_value());
  auto results = execute(graph, runner, options, cancel);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Timing is reported, not asserted: the machine is shared.
  WARN("check + execute of 50,000 steps: " << seconds << " s");

  std::size_t succeeded = 0;
  for (const auto& r : results) succeeded += r.outcome == StepOutcome::succeeded ? 1 : 0;
  CHECK(succeeded == 50'000);
}
