#!/usr/bin/env bash
# Builds Flotilla with its tests and runs them all (unit and integration; the integration
# tests start real HAProxy, etcd, Prometheus, node_exporter, rsyslog and dnsmasq on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j2 --timeout 300 "$@"
