#!/usr/bin/env bash
# Builds Flotilla, brings up configs/local.toml and shows the service answering through HAProxy.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOTILLA_BUILD_TESTS=OFF -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
cmake --build build -j"$(nproc)"
./build/bin/flotilla up configs/local.toml
# The ingress is registered as `rest`; configs/local.toml puts it on port 8080.
ingress="http://$(./build/bin/flotilla ip configs/local.toml rest | head -n 1):8080"
echo
echo "\$ curl $ingress/hello/v1"
for _ in 1 2 3; do curl -fsS "$ingress/hello/v1"; done
echo
echo "Stop everything with: ./build/bin/flotilla down configs/local.toml"
