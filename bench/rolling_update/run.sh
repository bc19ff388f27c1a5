#!/usr/bin/env bash
# A new version of hello/v1 (its env RELEASE changes) deployed under a steady keep-alive load on
# the HAProxy ingress, for 5 and for 50 instances, two ways in the same run:
#   rolling    the default strategy: one instance per wave, each drained, replaced, held healthy
#              for min_healthy_time (1 s) and put back;
#   at once    max_parallel = the instance count: one wave, every instance out of the ingress
#              together (what replacing them all at once does to the clients).
# For each it prints the requests, the failed ones (non-2xx and socket errors), the rollout's
# wall time and its time per wave, side by side. Everything runs on a loopback /24 of its own
# and is taken down on exit.
#
# Usage: bench/rolling_update/run.sh [BUILD_DIR]      (default: ./build)
# Needs: cmake --build BUILD_DIR --target flotilla flotilla-hello addon_haproxy runtime_process driver_local scale_under_load
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
cli="$build/bin/flotilla"
gen="$build/bin/scale_under_load"
BENCH=rolling-update
. "$here/../lib.sh"
need_built "flotilla flotilla-hello addon_haproxy runtime_process driver_local scale_under_load" "$cli" "$gen" \
  "$build/bin/flotilla-hello" "$build/lib/flotilla/plugins/addon_haproxy.so"

work=$(mktemp -d /tmp/flt-bench-XXXXXX)
net="127.78.$((190 + $$ % 30))"
topology="$work/cluster.toml"
state="$work/state"
base=18000
ingress_port=18080
nodes=5

cleanup() {
  [ -n "${gen_pid:-}" ] && kill "$gen_pid" 2>/dev/null || true
  "$cli" unlock "$topology" --state-dir "$state" >/dev/null 2>&1 || true
  if [ -f "$topology" ] && ! "$cli" down "$topology" --state-dir "$state" -q >"$work/down.log" 2>&1; then
    echo "flotilla down failed:" >&2
    cat "$work/down.log" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# topology REPLICAS RELEASE MAX_PARALLEL
topology() {
  local_cluster_toml bench-roll "$net" "$nodes" "$1" "$base" infra
  printf 'env = { RELEASE = "%s" }\n[services.update]\nmax_parallel = %s\n' "$2" "$3"
  printf '\n[[addons]]\nplugin = "haproxy"\nroles = ["infra"]\n[addons.options]\nport = %s\n' "$ingress_port"
}

stamp() { date +%s.%N; }
# field NAME: a counter of the ingress phase, from the load generator's JSON report.
field() { sed -n '/"ingress": {/,/}/p' "$work/report.json" | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"; }
release=0
results=()

# deploy REPLICAS MAX_PARALLEL LABEL: the next release under load; appends a result line.
deploy() {
  local replicas=$1 parallel=$2 label=$3
  release=$((release + 1))
  topology "$replicas" "v$release" "$parallel" >"$topology"
  local per_node=$(((replicas + nodes - 1) / nodes)) candidates="" host k
  for host in $(seq 2 $((nodes + 1))); do
    for k in $(seq 0 $((per_node - 1))); do candidates="$candidates${candidates:+,}$net.$host:$((base + k))"; done
  done
  local seen
  seen=$(wc -l <"$state/events.jsonl")
  "$gen" --ingress "$net.1:$ingress_port" --direct "$net.2:$base" --candidates "$candidates" \
    --threads 2 --direct-s 1 --steady-s 1 --duration-s 600 >"$work/report.json" 2>"$work/gen.log" &
  gen_pid=$!
  sleep 3
  local start end rc=0
  start=$(stamp)
  "$cli" up "$topology" --state-dir "$state" -q >"$work/up.log" 2>&1 || rc=$?
  end=$(stamp)
  sleep 2
  kill -TERM "$gen_pid" 2>/dev/null || true
  wait "$gen_pid" 2>/dev/null || true
  gen_pid=""
  [ "$rc" = 0 ] || { echo "$BENCH: up exited $rc:" >&2; tail -n 20 "$work/up.log" >&2; }
  local waves
  waves=$(tail -n +$((seen + 1)) "$state/events.jsonl" | grep '"event":"finish"' | grep '"step":"instance.roll:' |
    sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' | awk '{ n++; s += $1; if ($1 > m) m = $1 } END { if (n) printf "%d %.2f %.2f", n, s / n, m; else printf "0 0 0" }')
  local requests failed
  requests=$(field requests)
  failed=$(($(field non_2xx) + $(field socket_errors)))
  results+=("$label	$replicas	$requests	$failed	$(calc "$end - $start")	$waves")
}

for replicas in 5 50; do
  topology "$replicas" "v0" 1 >"$topology"
  log "up: $replicas instances on $nodes nodes, ingress $net.1:$ingress_port"
  "$cli" up "$topology" --state-dir "$state" -q >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
  log "rolling, $replicas instances"
  deploy "$replicas" 1 rolling
  log "at once, $replicas instances"
  deploy "$replicas" "$replicas" "at once"
done

printf '%-9s %9s %9s %7s %9s %6s %11s %11s\n' strategy instances requests failed wall_s waves s_per_wave max_wave_s
for r in "${results[@]}"; do
  IFS=$'\t' read -r label n req failed wall waves <<<"$r"
  read -r nw avg max <<<"$waves"
  printf '%-9s %9s %9s %7s %9.1f %6s %11s %11s\n' "$label" "$n" "$req" "$failed" "$wall" "$nw" "$avg" "$max"
done
