// The executor: runs a graph of steps with bounded parallelism, per-pool limits, failure
// skipping, retries and two-stage cancellation. It only schedules; running a step goes
// through StepRunner, so tests drive it with a fake runner.
#pragma once

#include "result.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// One unit of work: "node.create:swarm-1", "instance.start:hello/v1#3", "addon.apply:haproxy".
struct Step {
  std::string id;
  std::string label;              // for people: "create node swarm-1"
  std::string pool;               // per-plugin limit group ("driver:virtualbox"); "" = none
  std::vector<std::string> deps;  // ids of steps that must succeed first
  json data = json::object();     // what the runner needs to run it
};

/// A set of steps and their dependencies.
struct StepGraph {
  std::vector<Step> steps;

  /// Fails on duplicate ids, unknown dependencies, or a cycle (the message names the cycle:
  /// "a -> b -> c -> a", each step depending on the next). Iterative: deep graphs are fine.
  [[nodiscard]] Result<void> check() const;
  /// Graphviz DOT text of the graph: one labelled vertex per step, edges from dependency to step.
  [[nodiscard]] std::string to_dot() const;
};

/// Two-stage cancellation: the first request stops scheduling, the second aborts running steps.
class CancelToken {
 public:
  void request() noexcept { level_.fetch_add(1); }
  [[nodiscard]] bool stop_scheduling() const noexcept { return level_.load() >= 1; }
  [[nodiscard]] bool aborted() const noexcept { return level_.load() >= 2; }

 private:
  std::atomic<int> level_{0};
};

enum class StepOutcome { succeeded, failed, skipped, not_started };

struct StepResult {
  std::string id;
  StepOutcome outcome = StepOutcome::not_started;
  std::string message;       // the error for failed, the failed dependency for skipped
  int attempts = 0;
  double seconds = 0;
};

/// Runs one step. Called from executor threads, several at once.
class StepRunner {
 public:
  virtual ~StepRunner() = default;
  [[nodiscard]] virtual Result<void> run(const Step& step, const CancelToken& cancel) = 0;
};

/// Hears about step starts and finishes (log, progress display, JSON event log).
/// Called from executor threads; implementations synchronise themselves. on_finish is called
/// exactly once for every step whatever its outcome (skipped and not-started steps get no
/// on_start); `done` counts finished steps including this one. on_retry's `attempt` is the
/// attempt that just failed (1-based); the next one starts after `delay`.
class ExecutionObserver {
 public:
  virtual ~ExecutionObserver() = default;
  virtual void on_start(const Step&, std::size_t done, std::size_t total) { (void)done, (void)total; }
  virtual void on_finish(const Step&, const StepResult&, std::size_t done, std::size_t total) { (void)done, (void)total; }
  virtual void on_retry(const Step&, const Error&, int attempt, std::chrono::milliseconds delay) { (void)attempt, (void)delay; }
};

struct ExecOptions {
  int parallelism = 10;
  std::map<std::string, int> pool_limits;   // pool -> max running steps of that pool
  int max_attempts = 4;                     // for retryable errors
  std::chrono::milliseconds backoff_base{200};
  std::chrono::milliseconds backoff_max{5000};
};

/// Runs every step of a checked graph; returns one result per step, in graph order.
/// A failed step skips only the steps that depend on it (transitively); the rest go on.
/// Ready steps start in graph order. After cancel.stop_scheduling() nothing new starts
/// (retries included) and running steps finish; unstarted steps end `not_started`.
/// A graph that fails check() runs nothing: every step ends `not_started` with the reason.
[[nodiscard]] std::vector<StepResult> execute(const StepGraph& graph, StepRunner& runner, const ExecOptions& options,
                                              CancelToken& cancel, ExecutionObserver* observer = nullptr);

/// The ceiling of the wait before retry number `attempt` + 1: backoff_base * 2^(attempt-1),
/// capped at backoff_max. The actual wait is drawn uniformly from [0, ceiling] (full jitter).
[[nodiscard]] std::chrono::milliseconds retry_delay_ceiling(const ExecOptions& options, int attempt);

}  // namespace flotilla
