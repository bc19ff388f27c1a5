#!/usr/bin/env bash
# Builds Flotilla with its tests and runs them all (unit and integration; the integration
# tests start real HAProxy, etcd, Prometheus, node_exporter, rsyslog and dnsmasq on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tree's own rules first (a text scan, seconds): no private copies of flotilla_support.
scripts/check-tree.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
status=0
# Four at a time on any machine: most tests wait on the servers they start, and every address,
# port and name comes from tests/support/test_resources.hpp, so they cannot collide.
ctest --output-on-failure -j4 --timeout 300 "$@" || status=$?
# Tests that could not run here are counted as skipped by ctest; say which and why.
skipped=$(awk '/^[0-9]+\/[0-9]+ Test: / { sub(/^[0-9]+\/[0-9]+ Test: /, ""); name = $0 }
               /FLOTILLA-TEST-SKIPPED: / { sub(/.*FLOTILLA-TEST-SKIPPED: /, ""); print "  - " name ": " $0 }' \
          Testing/Temporary/LastTest.log 2>/dev/null || true)
if [ -n "$skipped" ]; then
  echo
  echo "Skipped, because they cannot run on this machine:"
  echo "$skipped"
fi
exit $status
