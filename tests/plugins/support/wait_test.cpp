#include "flotilla/support/wait.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

namespace s = flotilla::support;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_CASE("wait_until returns true as soon as the probe succeeds", "[support][wait]") {
  int calls = 0;
  const auto start = Clock::now();
  CHECK(s::wait_until(5s, 10ms, [&] { return ++calls == 3; }));
  CHECK(calls == 3);
  CHECK(Clock::now() - start < 1s);
}

TEST_CASE("wait_until gives up at the deadline after a last probe", "[support][wait]") {
  int calls = 0;
  const auto start = Clock::now();
  CHECK_FALSE(s::wait_until(Clock::now() + 200ms, 50ms, [&] {
    ++calls;
    return false;
  }));
  const auto took = Clock::now() - start;
  CHECK(took >= 200ms);
  CHECK(took < 2s);
  CHECK(calls >= 4);
}

TEST_CASE("wait_until stops promptly when cancelled, even with a long interval", "[support][wait]") {
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);
    cancel = true;
  });
  const auto start = Clock::now();
  const bool ok = s::wait_until(30s, 10s, [] { return false; }, [&] { return cancel.load(); });
  const auto took = Clock::now() - start;
  canceller.join();
  CHECK_FALSE(ok);
  CHECK(took < 2s);
  // Already cancelled: the probe is not even asked.
  bool probed = false;
  CHECK_FALSE(s::wait_until(1s, 10ms, [&] { return probed = true; }, [] { return true; }));
  CHECK_FALSE(probed);
}

TEST_CASE("sleep_for reports cancellation", "[support][wait]") {
  CHECK(s::sleep_for(20ms));
  const auto start = Clock::now();
  CHECK_FALSE(s::sleep_for(10s, [] { return true; }));
  CHECK(Clock::now() - start < 1s);
}

TEST_CASE("backoff doubles from its base up to its cap, and full jitter stays under the ceiling", "[support][wait]") {
  using std::chrono::milliseconds;
  CHECK(s::backoff_ceiling(milliseconds(200), milliseconds(5000), 0) == milliseconds(200));
  CHECK(s::backoff_ceiling(milliseconds(200), milliseconds(5000), 1) == milliseconds(400));
  CHECK(s::backoff_ceiling(milliseconds(200), milliseconds(5000), 4) == milliseconds(3200));
  CHECK(s::backoff_ceiling(milliseconds(200), milliseconds(5000), 5) == milliseconds(5000));
  CHECK(s::backoff_ceiling(milliseconds(200), milliseconds(5000), 1'000'000) == milliseconds(5000));
  CHECK(s::backoff_ceiling(milliseconds(0), milliseconds(5000), 3) == milliseconds(0));
  std::set<long long> seen;
  for (int i = 0; i < 2000; ++i) {
    const auto d = s::full_jitter(milliseconds(7));
    REQUIRE(d >= milliseconds(0));
    REQUIRE(d <= milliseconds(7));
    seen.insert(d.count());
  }
  CHECK(seen.size() == 8);  // every value in [0, 7] comes up: the draw is spread, not fixed
  CHECK(s::full_jitter(milliseconds(0)) == milliseconds(0));
}
