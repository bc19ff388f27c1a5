#!/usr/bin/env bash
# Builds Flotilla, brings up configs/local.toml and shows the service answering through HAProxy.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOTILLA_BUILD_TESTS=OFF -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
cmake --build build -j"$(nproc)"
./build/bin/flotilla up configs/local.toml
ingress=$(./build/bin/flotilla status configs/local.toml --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoints"]["rest"])')
echo
echo "\$ curl $ingress/hello/v1"
for _ in 1 2 3; do curl -fsS "$ingress/hello/v1"; echo; done
echo
echo "Stop everything with: ./build/bin/flotilla down configs/local.toml"
