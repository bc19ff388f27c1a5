#!/usr/bin/env bash
# Engine benchmarks, measured side by side in one run through the real CLI:
#   a. `up` of PAR_NODES nodes from the sleepy driver (each create takes CREATE_MS) at
#      --parallelism 10 and 1: wall times and their ratio (ideal: 10).
#   b. `plan --output json` of topologies of PLAN_SIZES nodes with a PLAN_REPLICAS-replica
#      service: wall time and peak RSS, and kilobytes per node to show memory is linear.
#   c. a no-op `up` of NOOP_NODES local nodes running NOOP_REPLICAS flotilla-hello instances:
#      the second `up` against the first.
# Prints a summary table to stdout (progress on stderr). Every cluster it brings up is taken
# down on exit, failure or Ctrl-C included; its temp directory is removed.
#
# Usage: bench/engine/run.sh [BUILD_DIR]        (default: ./build)
# Needs: cmake --build BUILD_DIR --target flotilla flotilla-hello driver_local runtime_process driver_sleepy bench_measure
# Knobs (environment): PAR_NODES=50 CREATE_MS=200 PLAN_SIZES="1000 5000 10000" PLAN_REPLICAS=1000
#                      PLAN_REPEATS=3 NOOP_NODES=100 NOOP_REPLICAS=100 NOOP_REPEATS=3
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
cli="$build/bin/flotilla"
measure="$build/bin/bench_measure"
sleepy_dir="$build/bench/plugins"
for f in "$cli" "$measure" "$build/bin/flotilla-hello" "$sleepy_dir/driver_sleepy.so" \
         "$build/lib/flotilla/plugins/driver_local.so" "$build/lib/flotilla/plugins/runtime_process.so"; do
  if [ ! -e "$f" ]; then
    echo "missing $f; build it first: cmake --build $build --target flotilla flotilla-hello driver_local runtime_process driver_sleepy bench_measure" >&2
    exit 2
  fi
done

PAR_NODES=${PAR_NODES:-50}
CREATE_MS=${CREATE_MS:-200}
PLAN_SIZES=${PLAN_SIZES:-"1000 5000 10000"}
PLAN_REPLICAS=${PLAN_REPLICAS:-1000}
PLAN_REPEATS=${PLAN_REPEATS:-3}
NOOP_NODES=${NOOP_NODES:-100}
NOOP_REPLICAS=${NOOP_REPLICAS:-100}
NOOP_REPEATS=${NOOP_REPEATS:-3}
PAR_CIDR="127.90.0.0/16"
PLAN_CIDR="127.92.0.0/16"
NOOP_NET="127.91.0"
NOOP_PORT=${NOOP_PORT:-19100}
# Group counts and replicas are capped at 1000 by the topology checks.
GROUP_MAX=1000

work=$(mktemp -d /tmp/flt-engine-bench-XXXXXX)
live_clusters=()  # "topology state_dir" of every cluster that may hold nodes
running=""        # pid of the bench_measure running now, if any

cleanup() {
  local status=$? down_failed=0 entry topology state
  trap - EXIT INT TERM
  if [ -n "$running" ]; then
    # An interrupted command stops its running steps (bench_measure passes TERM on) first.
    kill -TERM "$running" 2>/dev/null || true
    wait "$running" 2>/dev/null || true
  fi
  for entry in "${live_clusters[@]+"${live_clusters[@]}"}"; do
    topology=${entry%% *}
    state=${entry#* }
    [ -d "$state" ] || continue
    "$measure" "$work/cleanup.time" 120 -- "$cli" unlock "$topology" --state-dir "$state" --plugin-path "$sleepy_dir" \
      >/dev/null 2>&1 || true
    if ! "$measure" "$work/cleanup.time" 300 -- "$cli" down "$topology" --state-dir "$state" --plugin-path "$sleepy_dir" -q \
      >"$work/cleanup.log" 2>&1; then
      echo "engine-bench: flotilla down $topology failed; its state stays in $state:" >&2
      cat "$work/cleanup.log" >&2
      down_failed=1
    fi
  done
  # A failed down keeps the work dir: it holds the state needed to try again.
  if [ "$down_failed" -eq 0 ]; then rm -rf "$work"; else status=1; fi
  exit "$status"
}
# Clusters taken down already need no cleanup.
forget_cluster() {
  local keep=() entry
  for entry in "${live_clusters[@]}"; do [ "$entry" = "$1" ] || keep+=("$entry"); done
  live_clusters=("${keep[@]+"${keep[@]}"}")
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "engine-bench: $*" >&2; }

# run_timed NAME TIMEOUT_S CMD...: runs CMD, its output in $work/NAME.log; sets WALL RSS.
# CMD runs in the background so that a signal reaches the trap at once; cleanup stops it.
run_timed() {
  local name=$1 timeout=$2 rc=0
  shift 2
  "$measure" "$work/$name.time" "$timeout" -- "$@" >"$work/$name.log" 2>&1 &
  running=$!
  wait "$running" || rc=$?
  running=""
  if [ "$rc" -ne 0 ]; then
    echo "engine-bench: \`$*\` failed (exit $rc); its output:" >&2
    tail -n 30 "$work/$name.log" >&2
    exit 1
  fi
  read -r WALL RSS _ <"$work/$name.time"
}

calc() { awk "BEGIN { printf \"%s\", $1 }"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ---------------------------------------------------------------------------------------
# a. Parallel `up` against a driver whose creates take CREATE_MS each.
par_topology="$work/parallel.toml"
cat >"$par_topology" <<TOML
[cluster]
name = "bench-parallel"
driver = "sleepy"

[driver.sleepy]
create_ms = $CREATE_MS
cidr = "$PAR_CIDR"

[[nodes]]
name = "node"
count = $PAR_NODES
roles = ["worker"]
TOML

declare -A par_wall
for p in 10 1; do
  state="$work/parallel-p$p"
  live_clusters+=("$par_topology $state")
  log "a. up of $PAR_NODES sleepy nodes (create_ms=$CREATE_MS) at --parallelism $p"
  run_timed "parallel-up-p$p" 300 "$cli" up "$par_topology" --state-dir "$state" --plugin-path "$sleepy_dir" --parallelism "$p" -q
  par_wall[$p]=$WALL
  grep -q "Applied: $PAR_NODES added" "$work/parallel-up-p$p.log" ||
    { log "up at --parallelism $p did not add $PAR_NODES nodes:"; cat "$work/parallel-up-p$p.log" >&2; exit 1; }
  run_timed "parallel-down-p$p" 300 "$cli" down "$par_topology" --state-dir "$state" --plugin-path "$sleepy_dir" -q
  forget_cluster "$par_topology $state"
done
par_ideal10=$(calc "int(($PAR_NODES + 9) / 10) * $CREATE_MS / 1000")
par_ideal1=$(calc "$PAR_NODES * $CREATE_MS / 1000")

# ---------------------------------------------------------------------------------------
# b. Planning large topologies: nodes in groups of GROUP_MAX, one service spread over them.
plan_topology() {  # plan_topology NODES FILE
  local nodes=$1 file=$2 group=0 left=$1 count
  {
    printf '[cluster]\nname = "bench-plan-%s"\ndriver = "local"\n\n[driver.local]\ncidr = "%s"\n' "$nodes" "$PLAN_CIDR"
    while [ "$left" -gt 0 ]; do
      group=$((group + 1))
      count=$((left < GROUP_MAX ? left : GROUP_MAX))
      left=$((left - count))
      printf '\n[[nodes]]\nname = "g%s"\ncount = %s\nroles = ["swarm"]\nlabels = { zone = "z%s" }\n' "$group" "$count" "$((group % 3))"
    done
    printf '\n[[services]]\nname = "hello/v1"\ncommand = ["flotilla-hello", "--listen", "{address}:{port}"]\n'
    printf 'replicas = %s\nport = 9000\nhealth = "/health"\n' "$PLAN_REPLICAS"
  } >"$file"
}

declare -A plan_wall plan_rss plan_steps
plan_base_nodes=10
for n in $plan_base_nodes $PLAN_SIZES; do
  file="$work/plan-$n.toml"
  plan_topology "$n" "$file"
  walls="" rsss=""
  log "b. plan of $n nodes ($PLAN_REPEATS runs)"
  for i in $(seq 1 "$PLAN_REPEATS"); do
    run_timed "plan-$n-$i" 120 "$cli" plan "$file" --state-dir "$work/plan-state-$n" --output json
    walls+=" $WALL" rsss+=" $RSS"
  done
  plan_wall[$n]=$(echo "$walls" | median)
  plan_rss[$n]=$(echo "$rsss" | median)
  # The plan must be the whole cluster: one create per node, one start per instance.
  plan_steps[$n]=$(grep -c '^      "step": "' "$work/plan-$n-1.log" || true)
  expected=$((n + PLAN_REPLICAS))
  [ "${plan_steps[$n]}" -eq "$expected" ] ||
    { log "plan of $n nodes has ${plan_steps[$n]} actions, expected $expected"; exit 1; }
done

# ---------------------------------------------------------------------------------------
# c. A no-op `up` of a local cluster with a service on every node.
for i in $(seq 1 "$NOOP_NODES"); do
  if [ -n "$(ss -Hltn "src $NOOP_NET.$i" 2>/dev/null)" ]; then
    log "something already listens on $NOOP_NET.$i; the no-op benchmark needs $NOOP_NET.0/24 to itself"
    exit 1
  fi
done
noop_topology="$work/noop.toml"
cat >"$noop_topology" <<TOML
[cluster]
name = "bench-noop"
driver = "local"

[driver.local]
cidr = "$NOOP_NET.0/24"

[[nodes]]
name = "swarm"
count = $NOOP_NODES
roles = ["swarm"]

[[services]]
name = "hello/v1"
command = ["flotilla-hello", "--listen", "{address}:{port}"]
replicas = $NOOP_REPLICAS
port = $NOOP_PORT
health = "/health"
TOML
noop_state="$work/noop-state"
live_clusters+=("$noop_topology $noop_state")
log "c. first up: $NOOP_NODES local nodes, $NOOP_REPLICAS flotilla-hello instances"
run_timed noop-first 600 "$cli" up "$noop_topology" --state-dir "$noop_state" -q
noop_first=$WALL
noop_first_rss=$RSS
grep -q "Applied: $((NOOP_NODES + NOOP_REPLICAS)) added" "$work/noop-first.log" ||
  { log "first up did not add every node and instance:"; cat "$work/noop-first.log" >&2; exit 1; }
walls="" rsss=""
for i in $(seq 1 "$NOOP_REPEATS"); do
  log "c. second up, run $i of $NOOP_REPEATS"
  run_timed "noop-again-$i" 120 "$cli" up "$noop_topology" --state-dir "$noop_state" -q
  grep -q "^No changes" "$work/noop-again-$i.log" ||
    { log "the second up changed something:"; cat "$work/noop-again-$i.log" >&2; exit 1; }
  walls+=" $WALL" rsss+=" $RSS"
done
noop_again=$(echo "$walls" | median)
noop_again_rss=$(echo "$rsss" | median)
log "c. down"
run_timed noop-down 600 "$cli" down "$noop_topology" --state-dir "$noop_state" -q
noop_down=$WALL
forget_cluster "$noop_topology $noop_state"
left=$(ss -Hltn "src $NOOP_NET.0/24" 2>/dev/null | wc -l)
[ "$left" -eq 0 ] || { log "$left listeners left on $NOOP_NET.0/24 after down"; exit 1; }

# ---------------------------------------------------------------------------------------
# Summary
printf '\nFlotilla engine benchmarks (%s, %s cores)\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)"
printf 'a. up of %s nodes, create %s ms each (sleepy driver)\n' "$PAR_NODES" "$CREATE_MS"
printf '   %-26s %10s %10s\n' "" "wall s" "ideal s"
printf '   %-26s %10.2f %10.2f\n' "--parallelism 10" "${par_wall[10]}" "$par_ideal10"
printf '   %-26s %10.2f %10.2f\n' "--parallelism 1" "${par_wall[1]}" "$par_ideal1"
printf '   %-26s %10.2f %10.2f\n' "speed-up (p1 / p10)" "$(calc "${par_wall[1]} / ${par_wall[10]}")" "$(calc "$par_ideal1 / $par_ideal10")"
printf '   %-26s %10.2f\n' "p10 overhead over ideal" "$(calc "${par_wall[10]} - $par_ideal10")"
printf '\nb. plan --output json, %s-replica service (median of %s runs)\n' "$PLAN_REPLICAS" "$PLAN_REPEATS"
printf '   %8s %7s %9s %12s %10s %16s\n' "nodes" "actions" "wall s" "peak RSS KB" "KB/node" "KB/node over $plan_base_nodes"
base_rss=${plan_rss[$plan_base_nodes]}
for n in $plan_base_nodes $PLAN_SIZES; do
  over="baseline"
  [ "$n" -ne "$plan_base_nodes" ] && over=$(calc "(${plan_rss[$n]} - $base_rss) / ($n - $plan_base_nodes)")
  [ "$over" = "baseline" ] || over=$(printf '%.2f' "$over")
  printf '   %8s %7s %9.3f %12s %10.2f %16s\n' "$n" "${plan_steps[$n]}" "${plan_wall[$n]}" "${plan_rss[$n]}" \
    "$(calc "${plan_rss[$n]} / $n")" "$over"
done
printf '\nc. up of %s local nodes with %s flotilla-hello instances\n' "$NOOP_NODES" "$NOOP_REPLICAS"
printf '   %-26s %10s %12s\n' "" "wall s" "peak RSS KB"
printf '   %-26s %10.2f %12s\n' "first up" "$noop_first" "$noop_first_rss"
printf '   %-26s %10.3f %12s\n' "second up (No changes)" "$noop_again" "$noop_again_rss"
printf '   %-26s %10.3f\n' "ratio second / first" "$(calc "$noop_again / $noop_first")"
printf '   %-26s %10.2f\n' "down" "$noop_down"

# The design's targets, read off the figures above.
verdict() { if [ "$(calc "($1) ? 1 : 0")" = 1 ]; then echo met; else echo MISSED; fi; }
largest=$(echo "$PLAN_SIZES" | tr ' ' '\n' | sort -n | tail -n 1)
printf '\nTargets\n'
printf '   %-58s %s\n' "up at --parallelism 10 within 1.5x of ceil(N/10) x create" \
  "$(verdict "${par_wall[10]} <= 1.5 * $par_ideal10")"
printf '   %-58s %s\n' "plan of $largest nodes under 1 s" "$(verdict "${plan_wall[$largest]} < 1")"
printf '   %-58s %s\n' "no-op up of $NOOP_NODES nodes under 1 s" "$(verdict "$noop_again < 1")"
