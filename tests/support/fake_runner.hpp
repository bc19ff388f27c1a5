// A scriptable StepRunner for executor tests: per-step delay, failure, retryable failures,
// exceptions and hooks; records start/finish order, attempts and the concurrency it saw.
#pragma once

#include "executor.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::test {

/// How one step behaves in FakeRunner.
struct FakeScript {
  std::chrono::milliseconds delay{0};
  bool fail = false;               // every attempt fails, not retryable
  int retryable_failures = 0;      // the first N attempts fail with a retryable error
  bool throw_exception = false;    // run() throws std::runtime_error
  bool wait_for_abort = false;     // runs until cancel.aborted(), then fails "aborted" (bounded: 10 s)
  std::function<void(const Step&)> on_start;  // called inside run(), before the delay
};

class FakeRunner final : public StepRunner {
 public:
  /// Scripts the step `id`; unscripted steps succeed at once.
  void script(const std::string& id, FakeScript s) {
    std::lock_guard lock(mu_);
    scripts_[id] = std::move(s);
  }

  /// Every step waits (up to `timeout`) until `count` steps are running at once, so a test can
  /// observe the concurrency limit deterministically instead of hoping the timing lines up.
  void rendezvous(int count, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::lock_guard lock(mu_);
    rendezvous_ = count;
    rendezvous_timeout_ = timeout;
  }
  /// Same, for the steps of one pool.
  void pool_rendezvous(const std::string& pool, int count) {
    std::lock_guard lock(mu_);
    pool_rendezvous_[pool] = count;
  }

  Result<void> run(const Step& step, const CancelToken& cancel) override {
    FakeScript s;
    int attempt = 0;
    {
      std::unique_lock lock(mu_);
      if (auto it = scripts_.find(step.id); it != scripts_.end()) s = it->second;
      attempt = ++attempts_[step.id];
      started_.push_back(step.id);
      events_.push_back("start:" + step.id);
      max_running_ = std::max(max_running_, ++running_);
      int& in_pool = pool_running_[step.pool];
      ++in_pool;
      max_pool_running_[step.pool] = std::max(max_pool_running_[step.pool], in_pool);
      changed_.notify_all();

      const auto deadline = std::chrono::steady_clock::now() + rendezvous_timeout_;
      if (rendezvous_ > 0) changed_.wait_until(lock, deadline, [&] { return max_running_ >= rendezvous_; });
      if (auto it = pool_rendezvous_.find(step.pool); it != pool_rendezvous_.end()) {
        const int want = it->second;
        changed_.wait_until(lock, deadline, [&] { return max_pool_running_[step.pool] >= want; });
      }
    }

    if (s.on_start) s.on_start(step);
    if (s.delay.count() > 0) std::this_thread::sleep_for(s.delay);
    Result<void> result;
    if (s.wait_for_abort) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!cancel.aborted() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      result = fail(step.id + ": aborted");
    } else if (s.fail) {
      result = fail(step.id + ": scripted failure");
    } else if (attempt <= s.retryable_failures) {
      result = std::unexpected(Error{step.id + ": transient failure " + std::to_string(attempt), true});
    }

    {
      std::lock_guard lock(mu_);
      --running_;
      --pool_running_[step.pool];
      finished_.push_back(step.id);
      events_.push_back("finish:" + step.id);
    }
    if (s.throw_exception) throw std::runtime_error("boom");
    return result;
  }

  /// Step ids in the order run() was entered (one entry per attempt).
  [[nodiscard]] std::vector<std::string> started() const {
    std::lock_guard lock(mu_);
    return started_;
  }
  /// Step ids in the order run() returned.
  [[nodiscard]] std::vector<std::string> finished() const {
    std::lock_guard lock(mu_);
    return finished_;
  }
  /// "start:<id>" and "finish:<id>" entries, in the order they happened.
  [[nodiscard]] std::vector<std::string> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  [[nodiscard]] int attempts(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = attempts_.find(id);
    return it == attempts_.end() ? 0 : it->second;
  }
  /// The most steps seen running at once.
  [[nodiscard]] int max_concurrency() const {
    std::lock_guard lock(mu_);
    return max_running_;
  }
  /// The most steps of `pool` seen running at once.
  [[nodiscard]] int max_concurrency(const std::string& pool) const {
    std::lock_guard lock(mu_);
    auto it = max_pool_running_.find(pool);
    return it == max_pool_running_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, FakeScript> scripts_;
  std::map<std::string, int> attempts_;
  std::vector<std::string> started_;
  std::vector<std::string> finished_;
  std::vector<std::string> events_;
  int running_ = 0;
  int max_running_ = 0;
  std::map<std::string, int> pool_running_;
  std::map<std::string, int> max_pool_running_;
  int rendezvous_ = 0;
  std::chrono::milliseconds rendezvous_timeout_{5000};
  std::map<std::string, int> pool_rendezvous_;
};

}  // namespace flotilla::test
