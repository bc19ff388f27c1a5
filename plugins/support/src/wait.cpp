#include "flotilla/support/wait.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <thread>

namespace flotilla::support {
namespace {
constexpr std::chrono::milliseconds kCancelCheck{50};

/// Sleeps until `until`, waking every kCancelCheck to ask `cancelled`; false when cancelled.
bool sleep_until(SteadyTime until, const CancelledFn& cancelled) {
  for (;;) {
    if (cancelled && cancelled()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, kCancelCheck));
  }
}
}  // namespace

bool wait_until(SteadyTime deadline, std::chrono::milliseconds interval, const std::function<bool()>& probe,
                const CancelledFn& cancelled) {
  for (;;) {
    if (cancelled && cancelled()) return false;
    if (probe()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    if (!sleep_until(std::min<SteadyTime>(now + interval, deadline), cancelled)) return false;
  }
}

bool wait_until(std::chrono::milliseconds timeout, std::chrono::milliseconds interval, const std::function<bool()>& probe,
                const CancelledFn& cancelled) {
  return wait_until(std::chrono::steady_clock::now() + timeout, interval, probe, cancelled);
}

bool sleep_for(std::chrono::milliseconds duration, const CancelledFn& cancelled) {
  return sleep_until(std::chrono::steady_clock::now() + duration, cancelled);
}

std::chrono::milliseconds backoff_ceiling(std::chrono::milliseconds base, std::chrono::milliseconds cap, int retry) {
  const std::int64_t limit = std::max<std::int64_t>(cap.count(), 0);
  std::int64_t ceiling = std::max<std::int64_t>(base.count(), 0);
  for (int i = 0; i < retry && ceiling < limit; ++i) ceiling *= 2;  // stops doubling at the cap
  return std::chrono::milliseconds(std::min(ceiling, limit));
}

std::chrono::milliseconds full_jitter(std::chrono::milliseconds ceiling) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(ceiling.count(), 0));
  return std::chrono::milliseconds(pick(rng));
}

}  // namespace flotilla::support
