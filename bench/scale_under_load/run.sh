#!/usr/bin/env bash
# Scales hello/v1 5 -> 10 -> 2 -> 5 with `flotilla scale` while scale_under_load keeps a steady
# keep-alive load on the HAProxy ingress, then prints its JSON report (stdout) and a summary
# (stderr). Everything runs on a loopback /24 of its own and is taken down on exit.
#
# Usage: bench/scale_under_load/run.sh [BUILD_DIR]      (default: ./build)
# Needs: cmake --build BUILD_DIR --target flotilla flotilla-hello addon_haproxy runtime_process driver_local scale_under_load
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
cli="$build/bin/flotilla"
gen="$build/bin/scale_under_load"
BENCH=scale-under-load
. "$here/../lib.sh"
need_built "flotilla flotilla-hello addon_haproxy runtime_process driver_local scale_under_load" "$cli" "$gen" \
  "$build/bin/flotilla-hello" "$build/lib/flotilla/plugins/addon_haproxy.so"

work=$(mktemp -d /tmp/flt-bench-XXXXXX)
net="127.78.$((220 + $$ % 30))"
topology="$work/cluster.toml"
state="$work/state"

port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
base=18000
while ! (port_free "$base" && port_free $((base + 1)) && port_free $((base + 2)) && port_free $((base + 3)) &&
         port_free $((base + 4)) && port_free $((base + 5)) && port_free $((base + 6))); do
  base=$((base + 10))
  [ "$base" -lt 30000 ] || { echo "no free ports" >&2; exit 2; }
done
ingress_port=$((base + 5))
stats_port=$((base + 6))

cleanup() {
  "$cli" unlock "$topology" --state-dir "$state" >/dev/null 2>&1 || true
  if ! "$cli" down "$topology" --state-dir "$state" >"$work/down.log" 2>&1; then
    echo "flotilla down failed:" >&2
    cat "$work/down.log" >&2
  fi
  [ -n "${gen_pid:-}" ] && kill "$gen_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

{
  local_cluster_toml bench-scale "$net" 2 5 "$base" infra
  printf '\n[[addons]]\nplugin = "haproxy"\n[addons.options]\nport = %s\nstats_port = %s\n' "$ingress_port" "$stats_port"
} >"$topology"

stamp() { date +%s.%N; }
echo "up: $net.0/24, ingress $net.2:$ingress_port" >&2
"$cli" up "$topology" --state-dir "$state" -q >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }

# Swarm nodes are .2 and .3; with at most 10 replicas each runs up to 5 instances: base..base+4.
candidates=""
for host in 2 3; do
  for k in 0 1 2 3 4; do candidates="$candidates${candidates:+,}$net.$host:$((base + k))"; done
done

direct_s=3
steady_s=3
"$gen" --ingress "$net.2:$ingress_port" --direct "$net.2:$base" --candidates "$candidates" \
  --threads 4 --direct-s "$direct_s" --steady-s "$steady_s" --duration-s 40 >"$work/report.json" &
gen_pid=$!

t0=$(stamp)
sleep $((direct_s + steady_s + 1))
for step in 10 2 5; do
  start=$(stamp)
  if "$cli" scale "$topology" "hello/v1=$step" --state-dir "$state" -q >"$work/scale.log" 2>&1; then rc=0; else rc=$?; fi
  end=$(stamp)
  awk -v s="$step" -v rc="$rc" -v a="$start" -v b="$end" -v t0="$t0" -v d="$direct_s" \
    'BEGIN { printf "scale hello/v1=%s: exit %s, at %.1f s of the ingress phase, took %.2f s\n", s, rc, a - t0 - d, b - a }' >&2
  [ "$rc" = 0 ] || cat "$work/scale.log" >&2
  sleep 8
done

gen_rc=0
wait "$gen_pid" || gen_rc=$?
gen_pid=""
# The addon's share of that latency: how long each apply of the haproxy addon took.
grep '"event":"finish"' "$state/events.jsonl" 2>/dev/null | grep '"step":"addon.apply:haproxy"' |
  sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' | awk '{ printf "%s%.0f ms", (NR > 1 ? ", " : "haproxy applies: "), $1 * 1000 } END { if (NR) print "" }' >&2 || true
cat "$work/report.json"
exit "$gen_rc"
