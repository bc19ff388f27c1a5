#!/usr/bin/env bash
# The test suite's unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# executor's tests under ThreadSanitizer. Run after scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFLOTILLA_SANITIZE=ON -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs" --target flotilla_tests
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./bin/flotilla_tests '~[integration]')

cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DFLOTILLA_TSAN=ON -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$jobs" --target flotilla_executor_tests
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ./bin/flotilla_executor_tests '[executor]')
