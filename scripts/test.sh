#!/usr/bin/env bash
# Builds Flotilla with its tests and runs them all (unit and integration; the integration
# tests start real HAProxy, etcd, Prometheus, node_exporter, rsyslog, dnsmasq and dockerd).
#
#   bash scripts/test.sh                 # optimised, in build/
#   bash scripts/test.sh --coverage      # instrumented with gcov, in build-coverage/; then prints
#                                        # line coverage per directory and fails under the floors
#                                        # of scripts/coverage-floors.txt
#   bash scripts/test.sh -R etcd         # other arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
coverage=0
if [ "${1:-}" = --coverage ]; then
  coverage=1
  shift
fi
# The tree's own rules first (a text scan, seconds): no private copies of flotilla_support.
scripts/check-tree.sh
# FLOTILLA_BUILD_TESTS is said every time: scripts/demo.sh configures the same build/ without
# the tests, and a cached OFF would leave ctest nothing to run.
if [ "$coverage" = 1 ]; then
  build=${COVERAGE_BUILD_DIR:-build-coverage}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DFLOTILLA_COVERAGE=ON -DFLOTILLA_BUILD_TESTS=ON -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
else
  build=${BUILD_DIR:-build}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOTILLA_BUILD_TESTS=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc)"
# Counts from an earlier run would add up with this one.
if [ "$coverage" = 1 ]; then find "$build" -name '*.gcda' -delete; fi
cd "$build"
status=0
# Four at a time on any machine: most tests wait on the servers they start, and every address,
# port and name comes from tests/support/test_resources.hpp, so they cannot collide.
ctest --output-on-failure --no-tests=error -j4 --timeout 300 "$@" || status=$?
# Tests that could not run here are counted as skipped by ctest; say which and why.
skipped=$(awk '/^[0-9]+\/[0-9]+ Test: / { sub(/^[0-9]+\/[0-9]+ Test: /, ""); name = $0 }
               /FLOTILLA-TEST-SKIPPED: / { sub(/.*FLOTILLA-TEST-SKIPPED: /, ""); print "  - " name ": " $0 }' \
          Testing/Temporary/LastTest.log 2>/dev/null || true)
if [ -n "$skipped" ]; then
  echo
  echo "Skipped, because they cannot run on this machine:"
  echo "$skipped"
fi
cd - >/dev/null
# The floors hold for the whole suite; after a part of it (ctest arguments), only report.
if [ "$coverage" = 1 ]; then
  python3 scripts/coverage_report.py ${1:+--report-only} "$build" || status=$?
fi
exit $status
