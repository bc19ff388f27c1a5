// Waiting for a condition with a deadline: the one polling loop plugins and tests use.
#pragma once

#include <chrono>
#include <functional>

namespace flotilla::support {

using SteadyTime = std::chrono::steady_clock::time_point;

/// Asks whether the caller should stop (a plugin passes the host's is_cancelled). May be empty.
using CancelledFn = std::function<bool()>;

/// Calls `probe` at once and then every `interval` until it returns true (returns true), the
/// `deadline` passes (false, after one last probe at the deadline) or `cancelled` returns true
/// (false, checked at least every 50 ms while sleeping). Exceptions from `probe` propagate.
[[nodiscard]] bool wait_until(SteadyTime deadline, std::chrono::milliseconds interval, const std::function<bool()>& probe,
                              const CancelledFn& cancelled = {});

/// The same with a timeout counted from now.
[[nodiscard]] bool wait_until(std::chrono::milliseconds timeout, std::chrono::milliseconds interval,
                              const std::function<bool()>& probe, const CancelledFn& cancelled = {});

/// Sleeps for `duration` unless `cancelled` returns true first (checked at least every 50 ms);
/// returns false when cancelled.
bool sleep_for(std::chrono::milliseconds duration, const CancelledFn& cancelled = {});

/// Exponential backoff: the longest delay before retry number `retry` (0 for the first), `base`
/// doubled per retry and capped at `cap` (no overflow however large `retry`).
[[nodiscard]] std::chrono::milliseconds backoff_ceiling(std::chrono::milliseconds base, std::chrono::milliseconds cap, int retry);

/// "Full jitter": a delay drawn uniformly from [0, ceiling], so that many clients retrying at
/// once spread out instead of hitting the server again together.
[[nodiscard]] std::chrono::milliseconds full_jitter(std::chrono::milliseconds ceiling);

}  // namespace flotilla::support
