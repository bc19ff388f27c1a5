#!/usr/bin/env bash
# Builds the Debian package flotilla_<version>_<arch>.deb in build-deb/ (a release build
# without tests or benchmarks). Run after scripts/install-deps.sh; install the result with
#   apt-get install ./build-deb/flotilla_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-deb}
# -O2 without -g: cpack strips the packaged files (CPACK_STRIP_FILES), so debug information
# would only cost compile time (bench/build/compile_flags.py BUILD package).
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DFLOTILLA_BUILD_TESTS=OFF -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
rm -f "$build"/flotilla_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
ls "$build"/flotilla_*.deb
