#include "executor.hpp"

#include "flotilla/support/wait.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <queue>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace flotilla {

namespace {

using Index = std::uint32_t;
using Clock = std::chrono::steady_clock;

// Adjacency in compressed form (offsets into one flat array): graphs of 100k steps stay a
// handful of allocations, which is what keeps check + execute well under a second.
struct Adjacency {
  std::vector<Index> offsets;  // size n + 1
  std::vector<Index> targets;

  [[nodiscard]] std::size_t begin(Index i) const { return offsets[i]; }
  [[nodiscard]] std::size_t end(Index i) const { return offsets[i + 1]; }
};

// Dependencies resolved to indices, and the reverse edges (who waits for whom).
struct ResolvedGraph {
  Adjacency deps;
  Adjacency dependents;
};

Result<ResolvedGraph> resolve(const StepGraph& graph) {
  const auto& steps = graph.steps;
  if (steps.size() >= std::numeric_limits<Index>::max()) {
    return fail("step graph has " + std::to_string(steps.size()) + " steps; at most " +
                std::to_string(std::numeric_limits<Index>::max() - 1) + " are supported");
  }
  const auto n = static_cast<Index>(steps.size());

  std::unordered_map<std::string_view, Index> by_id;
  by_id.reserve(n);
  for (Index i = 0; i < n; ++i) {
    auto [it, inserted] = by_id.emplace(steps[i].id, i);
    if (!inserted) {
      return fail("duplicate step id \"" + steps[i].id + "\" (steps #" + std::to_string(it->second + 1) + " and #" +
                  std::to_string(i + 1) + " of the graph); every step needs its own id");
    }
  }

  ResolvedGraph g;
  g.deps.offsets.reserve(n + 1);
  g.deps.offsets.push_back(0);
  std::vector<Index> dependent_count(n, 0);
  for (Index i = 0; i < n; ++i) {
    for (const auto& dep : steps[i].deps) {
      auto it = by_id.find(dep);
      if (it == by_id.end()) {
        return fail("step \"" + steps[i].id + "\" depends on unknown step \"" + dep +
                    "\"; no step in the graph has that id");
      }
      g.deps.targets.push_back(it->second);
      ++dependent_count[it->second];
    }
    g.deps.offsets.push_back(static_cast<Index>(g.deps.targets.size()));
  }

  g.dependents.offsets.assign(n + 1, 0);
  for (Index i = 0; i < n; ++i) g.dependents.offsets[i + 1] = g.dependents.offsets[i] + dependent_count[i];
  g.dependents.targets.resize(g.deps.targets.size());
  std::vector<Index> fill(g.dependents.offsets.begin(), g.dependents.offsets.end() - 1);
  for (Index i = 0; i < n; ++i) {
    for (std::size_t e = g.deps.begin(i); e < g.deps.end(i); ++e) g.dependents.targets[fill[g.deps.targets[e]]++] = i;
  }
  return g;
}

// Depth-first search over dependency edges with an explicit stack, so a chain of 100k steps
// cannot overflow the thread's stack.
Result<void> find_cycle(const StepGraph& graph, const ResolvedGraph& g) {
  enum : std::uint8_t { kUnseen, kOnPath, kDone };
  const auto n = static_cast<Index>(graph.steps.size());
  std::vector<std::uint8_t> mark(n, kUnseen);
  struct Frame {
    Index node;
    std::size_t next_edge;
  };
  std::vector<Frame> path;

  for (Index root = 0; root < n; ++root) {
    if (mark[root] != kUnseen) continue;
    mark[root] = kOnPath;
    path.push_back({root, g.deps.begin(root)});
    while (!path.empty()) {
      Frame& top = path.back();
      if (top.next_edge == g.deps.end(top.node)) {
        mark[top.node] = kDone;
        path.pop_back();
        continue;
      }
      const Index next = g.deps.targets[top.next_edge++];
      if (mark[next] == kOnPath) {
        auto from = std::find_if(path.begin(), path.end(), [&](const Frame& f) { return f.node == next; });
        // A cycle through thousands of steps is shown by its ends; the middle adds nothing.
        constexpr std::ptrdiff_t kHead = 8, kTail = 4;
        const auto length = path.end() - from;
        std::string cycle;
        for (auto it = from; it != path.end(); ++it) {
          const auto pos = it - from;
          if (length > kHead + kTail + 1 && pos == kHead) {
            cycle += "... (" + std::to_string(length - kHead - kTail) + " more) -> ";
            it += length - kHead - kTail - 1;
            continue;
          }
          cycle += graph.steps[it->node].id + " -> ";
        }
        cycle += graph.steps[next].id;
        return fail("cycle: " + cycle +
                    " (each step depends on the next); remove one of these dependencies, for example a "
                    "`requires` that points back");
      }
      if (mark[next] == kUnseen) {
        mark[next] = kOnPath;
        path.push_back({next, g.deps.begin(next)});
      }
    }
  }
  return {};
}

Result<ResolvedGraph> resolve_checked(const StepGraph& graph) {
  auto g = resolve(graph);
  if (!g) return g;
  if (auto cycle = find_cycle(graph, *g); !cycle) return std::unexpected(cycle.error());
  return g;
}

std::string dot_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}

// Observers report to logs and displays; one that throws must not take a run down with it.
template <class F>
void notify(ExecutionObserver* observer, F&& f) noexcept {
  if (observer == nullptr) return;
  try {
    std::forward<F>(f)(*observer);
  } catch (...) {
  }
}

bool sleep_unless_stopped(std::chrono::milliseconds delay, const CancelToken& cancel) {
  // The token has no wake-up channel, so the wait polls it in short slices.
  constexpr auto kSlice = std::chrono::milliseconds(10);
  const auto deadline = Clock::now() + delay;
  while (!cancel.stop_scheduling()) {
    const auto now = Clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(std::min<Clock::duration>(deadline - now, kSlice));
  }
  return false;
}

class Scheduler {
 public:
  Scheduler(const StepGraph& graph, const ResolvedGraph& resolved, StepRunner& runner, const ExecOptions& options,
            CancelToken& cancel, ExecutionObserver* observer, std::vector<StepResult>& results)
      : graph_(graph), g_(resolved), runner_(runner), options_(options), cancel_(cancel), observer_(observer),
        results_(results), total_(graph.steps.size()), unstarted_(graph.steps.size()) {
    const auto n = static_cast<Index>(total_);
    waiting_on_.resize(n);
    pool_of_.resize(n);
    finished_.assign(n, false);

    // Queue 0 holds every step without a limit; each limited pool gets a queue of its own.
    queues_.push_back({});
    std::unordered_map<std::string_view, Index> queue_of_pool;
    for (const auto& [pool, limit] : options.pool_limits) {
      queue_of_pool.emplace(pool, static_cast<Index>(queues_.size()));
      queues_.push_back({});
      queues_.back().limit = std::max(limit, 1);
    }
    for (Index i = 0; i < n; ++i) {
      const auto& pool = graph.steps[i].pool;
      auto it = pool.empty() ? queue_of_pool.end() : queue_of_pool.find(pool);
      pool_of_[i] = it == queue_of_pool.end() ? 0 : it->second;
      waiting_on_[i] = static_cast<Index>(g_.deps.end(i) - g_.deps.begin(i));
      if (waiting_on_[i] == 0) queues_[pool_of_[i]].ready.push(i);
    }
  }

  void run() {
    const int parallelism = std::max(options_.parallelism, 1);
    const auto workers = std::min<std::size_t>(static_cast<std::size_t>(parallelism), total_);
    {
      std::vector<std::jthread> threads;
      threads.reserve(workers);
      try {
        for (std::size_t w = 0; w < workers; ++w) threads.emplace_back([this] { work(); });
      } catch (const std::system_error&) {
        // Out of threads: carry on with those we have, or with this one.
        if (threads.empty()) work();
      }
    }

    const std::string reason = cancel_.stop_scheduling() ? "not started: interrupted" : "not started";
    for (Index i = 0; i < total_; ++i) {
      if (finished_[i]) continue;
      finished_[i] = true;
      results_[i].outcome = StepOutcome::not_started;
      results_[i].message = reason;
      const auto done = ++done_;
      notify(observer_, [&](ExecutionObserver& o) { o.on_finish(graph_.steps[i], results_[i], done, total_); });
    }
  }

 private:
  struct Queue {
    int limit = std::numeric_limits<int>::max();
    int running = 0;
    std::priority_queue<Index, std::vector<Index>, std::greater<>> ready;  // lowest graph index first
  };

  // A finished step waiting to be reported once the lock is released.
  struct Report {
    Index step;
    std::size_t done;
  };

  void work() {
    std::unique_lock lock(mu_);
    std::vector<Report> reports;
    for (;;) {
      if (cancel_.stop_scheduling() || unstarted_ == 0) break;
      const auto next = pick();
      if (!next) {
        cv_.wait(lock);
        continue;
      }
      // Pass the wake-up on, so idle workers drain the ready queues one after another.
      if (has_pickable()) cv_.notify_one();
      const Index i = *next;
      const std::size_t done = done_;
      lock.unlock();

      notify(observer_, [&](ExecutionObserver& o) { o.on_start(graph_.steps[i], done, total_); });
      StepResult result = run_step(i);

      lock.lock();
      finish(i, std::move(result), reports);
      if (has_pickable()) cv_.notify_one();
      lock.unlock();
      for (const auto& r : reports) {
        notify(observer_,
               [&](ExecutionObserver& o) { o.on_finish(graph_.steps[r.step], results_[r.step], r.done, total_); });
      }
      reports.clear();
      lock.lock();
    }
    // Workers waiting for pool capacity or dependencies must see the end too.
    cv_.notify_all();
  }

  // The lowest-index ready step whose pool has room. Pools are few, so a scan over queue heads
  // is cheap; steps blocked by a pool limit are never rescanned.
  std::optional<Index> pick() {
    Queue* best = nullptr;
    for (auto& q : queues_) {
      if (q.ready.empty() || q.running >= q.limit) continue;
      if (best == nullptr || q.ready.top() < best->ready.top()) best = &q;
    }
    if (best == nullptr) return std::nullopt;
    const Index i = best->ready.top();
    best->ready.pop();
    ++best->running;
    --unstarted_;
    return i;
  }

  [[nodiscard]] bool has_pickable() const {
    return !cancel_.stop_scheduling() &&
           std::any_of(queues_.begin(), queues_.end(), [](const Queue& q) { return !q.ready.empty() && q.running < q.limit; });
  }

  void finish(Index i, StepResult result, std::vector<Report>& reports) {
    --queues_[pool_of_[i]].running;
    const bool ok = result.outcome == StepOutcome::succeeded;
    results_[i] = std::move(result);
    finished_[i] = true;
    reports.push_back({i, ++done_});

    if (ok) {
      for (std::size_t e = g_.dependents.begin(i); e < g_.dependents.end(i); ++e) {
        const Index d = g_.dependents.targets[e];
        if (--waiting_on_[d] == 0 && !finished_[d]) queues_[pool_of_[d]].ready.push(d);
      }
      return;
    }

    // Everything downstream of a failure is skipped now, naming the step that failed.
    const std::string message = "skipped: depends on " + graph_.steps[i].id + ", which failed";
    std::vector<Index> stack{i};
    while (!stack.empty()) {
      const Index s = stack.back();
      stack.pop_back();
      for (std::size_t e = g_.dependents.begin(s); e < g_.dependents.end(s); ++e) {
        const Index d = g_.dependents.targets[e];
        if (finished_[d]) continue;
        finished_[d] = true;
        --unstarted_;
        results_[d].outcome = StepOutcome::skipped;
        results_[d].message = message;
        reports.push_back({d, ++done_});
        stack.push_back(d);
      }
    }
  }

  Result<void> attempt(const Step& step) {
    try {
      return runner_.run(step, cancel_);
    } catch (const std::exception& e) {
      return fail("internal error in step " + step.id + ": " + e.what());
    } catch (...) {
      return fail("internal error in step " + step.id + ": unknown exception");
    }
  }

  StepResult run_step(Index i) {
    const Step& step = graph_.steps[i];
    StepResult result;
    result.id = step.id;
    const auto started = Clock::now();
    const int max_attempts = std::max(options_.max_attempts, 1);
    for (;;) {
      ++result.attempts;
      auto outcome = attempt(step);
      if (outcome) {
        result.outcome = StepOutcome::succeeded;
        break;
      }
      const Error& error = outcome.error();
      result.outcome = StepOutcome::failed;
      result.message = error.message;
      if (!error.retryable) break;
      if (result.attempts >= max_attempts) {
        result.message += " (gave up after " + std::to_string(result.attempts) + " attempts)";
        break;
      }
      if (cancel_.stop_scheduling()) {
        result.message += " (not retried: interrupted)";
        break;
      }
      const auto delay = support::full_jitter(retry_delay_ceiling(options_, result.attempts));
      notify(observer_, [&](ExecutionObserver& o) { o.on_retry(step, error, result.attempts, delay); });
      if (!sleep_unless_stopped(delay, cancel_)) {
        result.message += " (not retried: interrupted)";
        break;
      }
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return result;
  }

  const StepGraph& graph_;
  const ResolvedGraph& g_;
  StepRunner& runner_;
  const ExecOptions& options_;
  CancelToken& cancel_;
  ExecutionObserver* observer_;
  std::vector<StepResult>& results_;
  const std::size_t total_;

  std::mutex mu_;
  std::condition_variable cv_;
  // Everything below is guarded by mu_ while workers run.
  std::vector<Index> waiting_on_;  // dependencies not yet succeeded
  std::vector<Index> pool_of_;     // queue index
  std::vector<bool> finished_;     // has a final outcome
  std::vector<Queue> queues_;
  std::size_t unstarted_;  // neither started nor finished
  std::size_t done_ = 0;
};

}  // namespace

Result<void> StepGraph::check() const {
  auto g = resolve_checked(*this);
  if (!g) return std::unexpected(g.error());
  return {};
}

std::string StepGraph::to_dot() const {
  std::string out = "digraph flotilla {\n  rankdir=LR;\n  node [shape=box];\n";
  for (const auto& step : steps) {
    out += "  " + dot_quote(step.id) + " [label=" + dot_quote(step.label.empty() ? step.id : step.label) + "];\n";
  }
  for (const auto& step : steps) {
    for (const auto& dep : step.deps) out += "  " + dot_quote(dep) + " -> " + dot_quote(step.id) + ";\n";
  }
  out += "}\n";
  return out;
}

std::chrono::milliseconds retry_delay_ceiling(const ExecOptions& options, int attempt) {
  return support::backoff_ceiling(options.backoff_base, options.backoff_max, attempt - 1);
}

std::vector<StepResult> execute(const StepGraph& graph, StepRunner& runner, const ExecOptions& options,
                                CancelToken& cancel, ExecutionObserver* observer) {
  std::vector<StepResult> results(graph.steps.size());
  for (std::size_t i = 0; i < results.size(); ++i) results[i].id = graph.steps[i].id;

  auto resolved = resolve_checked(graph);
  if (!resolved) {
    std::size_t done = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      results[i].message = "not started: " + resolved.error().message;
      notify(observer, [&](ExecutionObserver& o) { o.on_finish(graph.steps[i], results[i], ++done, results.size()); });
    }
    return results;
  }

  Scheduler(graph, *resolved, runner, options, cancel, observer, results).run();
  return results;
}

}  // namespace flotilla
