#!/usr/bin/env bash
# The test suite's unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# executor's tests under ThreadSanitizer. Run after scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFLOTILLA_SANITIZE=ON -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs" --target flotilla_tests

# The ASan run is one test process, so the TSan build takes the other core meanwhile, niced so
# that the tests keep theirs, and every core once they are done.
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DFLOTILLA_TSAN=ON -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
nice -n 19 cmake --build build-tsan -j"$jobs" --target flotilla_executor_tests >build-tsan/build.log 2>&1 &
tsan_build=$!
asan=0
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./bin/flotilla_tests '~[integration]') || asan=$?
tsan=0
wait "$tsan_build" || tsan=$?
if [ "$asan" != 0 ]; then exit "$asan"; fi
if [ "$tsan" != 0 ]; then
  echo "sanitize: the ThreadSanitizer build failed; the end of build-tsan/build.log:" >&2
  tail -n 40 build-tsan/build.log >&2
  exit "$tsan"
fi
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ./bin/flotilla_executor_tests '[executor]')
