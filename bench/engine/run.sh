#!/usr/bin/env bash
# Engine benchmarks, measured side by side in one run through the real CLI:
#   a. `up` of PAR_NODES nodes from the sleepy driver (each create takes CREATE_MS) at
#      --parallelism 10 and 1: wall times and their ratio (ideal: 10).
#   b. `plan --output json` of topologies of PLAN_SIZES nodes with a PLAN_REPLICAS-replica
#      service: wall time and peak RSS, and kilobytes per node to show memory is linear.
#   c. a no-op `up` of NOOP_NODES local nodes running NOOP_REPLICAS flotilla-hello instances:
#      the second `up` against the first.
#   d. a no-op `up` of DOCKER_NODES netns nodes (a dockerd each) running DOCKER_REPLICAS
#      flotilla-hello containers, next to the same cluster on local nodes (process runtime):
#      the Docker runtime's time as a ratio of the process runtime's. Root and Docker only; it
#      says why when it skips.
#   e. prometheus-cadvisor and syslog added to ADDON_NODES running local nodes, and removed
#      again, at --parallelism 1 and 10: the per-node work of addons (one batch per addon).
# Prints a summary table to stdout (progress on stderr). Every cluster it brings up is taken
# down on exit, failure or Ctrl-C included; its temp directory is removed.
#
# Usage: bench/engine/run.sh [BUILD_DIR]        (default: ./build)
# Needs: cmake --build BUILD_DIR --target flotilla flotilla-hello driver_local runtime_process driver_sleepy bench_measure
#  (d also: driver_netns runtime_docker, and the packages of scripts/install-deps.sh)
# Knobs (environment): PAR_NODES=50 CREATE_MS=200 PLAN_SIZES="1000 5000 10000" PLAN_REPLICAS=1000
#                      PLAN_REPEATS=3 NOOP_NODES=100 NOOP_REPLICAS=100 NOOP_REPEATS=3
#                      DOCKER_NODES=3 DOCKER_REPLICAS=6 DOCKER_SUBNET=10.214.210.0/24 DOCKER=1 (0: skip d)
#                      ADDONS=1 (0: skip e) ADDON_NODES=30
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH=engine-bench
. "$here/../lib.sh"
build=$(cd "${1:-$here/../../build}" && pwd)
cli="$build/bin/flotilla"
measure="$build/bin/bench_measure"
sleepy_dir="$build/bench/plugins"
need_built "flotilla flotilla-hello driver_local runtime_process driver_sleepy bench_measure" "$cli" "$measure" \
  "$build/bin/flotilla-hello" "$sleepy_dir/driver_sleepy.so" "$build/lib/flotilla/plugins/driver_local.so" \
  "$build/lib/flotilla/plugins/runtime_process.so"

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
DOCKER=${DOCKER:-1}
DOCKER_NODES=${DOCKER_NODES:-3}
DOCKER_REPLICAS=${DOCKER_REPLICAS:-6}
DOCKER_SUBNET=${DOCKER_SUBNET:-10.214.210.0/24}
# The process runtime's twin of the Docker cluster in d.
TWIN_NET="127.93.0"
ADDONS=${ADDONS:-1}
ADDON_NODES=${ADDON_NODES:-30}
ADDON_NET="127.94.0"
declare -A addon_up addon_rm
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
local_cluster_toml bench-noop "$NOOP_NET" "$NOOP_NODES" "$NOOP_REPLICAS" "$NOOP_PORT" >"$noop_topology"
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
# d. The no-op `up` on Docker nodes next to the same cluster on the process runtime.
docker_skip=""  # why d did not run, if it did not
docker_unavailable() {
  [ "$DOCKER" = 1 ] || { echo "DOCKER=$DOCKER"; return; }
  [ "$(id -u)" -eq 0 ] || { echo "the netns driver needs root; run with sudo"; return; }
  local f
  for f in /usr/bin/docker dockerd containerd ip nsenter busybox; do
    command -v "$f" >/dev/null || { echo "$f is not installed (scripts/install-deps.sh installs it)"; return; }
  done
  for f in driver_netns runtime_docker; do
    [ -e "$build/lib/flotilla/plugins/$f.so" ] || { echo "$f is not built (cmake --build $build --target $f)"; return; }
  done
  if ip -o -4 addr show | grep -q " ${DOCKER_SUBNET%.*/*}\."; then
    echo "an interface already has an address in $DOCKER_SUBNET; set DOCKER_SUBNET"
    return
  fi
  for i in $(seq 1 "$DOCKER_NODES"); do
    [ -z "$(ss -Hltn "src $TWIN_NET.$i" 2>/dev/null)" ] || { echo "something already listens on $TWIN_NET.$i"; return; }
  done
}
docker_skip=$(docker_unavailable)

# hello_cluster NAME DRIVER_LINES IMAGE_LINE: a cluster of DOCKER_NODES nodes with DOCKER_REPLICAS instances.
hello_cluster() {
  printf '[cluster]\nname = "%s"\n%s\n\n[[nodes]]\nname = "swarm"\ncount = %s\nroles = ["swarm"]\n' "$1" "$2" "$DOCKER_NODES"
  printf '\n[[services]]\nname = "hello/v1"\ncommand = ["flotilla-hello", "--listen", "{address}:{port}"]\n%s\n' "$3"
  printf 'replicas = %s\nport = %s\nhealth = "/health"\n' "$DOCKER_REPLICAS" "$NOOP_PORT"
}

# noop_runs NAME TOPOLOGY STATE: the first `up`, NOOP_REPEATS no-op ones, and `down`; sets
# FIRST AGAIN DOWN (wall seconds, AGAIN the median).
noop_runs() {
  local name=$1 topology=$2 state=$3 walls="" i
  run_timed "$name-first" 600 "$cli" up "$topology" --state-dir "$state" -q
  FIRST=$WALL
  for i in $(seq 1 "$NOOP_REPEATS"); do
    run_timed "$name-again-$i" 120 "$cli" up "$topology" --state-dir "$state" -q
    grep -q "^No changes" "$work/$name-again-$i.log" ||
      { log "the second up of $name changed something:"; cat "$work/$name-again-$i.log" >&2; exit 1; }
    walls+=" $WALL"
  done
  AGAIN=$(echo "$walls" | median)
  run_timed "$name-down" 600 "$cli" down "$topology" --state-dir "$state" -q
  DOWN=$WALL
  forget_cluster "$topology $state"
}

if [ -n "$docker_skip" ]; then
  log "d. skipped: $docker_skip"
else
  docker_topology="$work/docker.toml"
  # Short state path: containerd's socket paths under it must fit 107 bytes.
  docker_state="$work/d"
  hello_cluster bench-docker "driver = \"netns\"

[driver.netns]
subnet = \"$DOCKER_SUBNET\"
files_image = \"busybox:flotilla\"" 'image = "flotilla-hello:flotilla"' >"$docker_topology"
  sed '/^\[\[services\]\]/,$d' "$docker_topology" >"$work/docker-nodes.toml"
  live_clusters+=("$docker_topology $docker_state")
  log "d. $DOCKER_NODES netns nodes, a dockerd each; images through flotilla env and scripts/build-images.sh"
  run_timed docker-nodes 600 "$cli" up "$work/docker-nodes.toml" --state-dir "$docker_state" -q
  loaders=()
  for i in $(seq 1 "$DOCKER_NODES"); do
    (eval "$("$cli" env "$docker_topology" "swarm-$i" --state-dir "$docker_state")" &&
      "$here/../../scripts/build-images.sh" --hello "$build/bin/flotilla-hello" busybox flotilla-hello) >"$work/images-$i.log" 2>&1 &
    loaders+=($!)
  done
  for i in "${!loaders[@]}"; do
    wait "${loaders[$i]}" || { log "loading the images into swarm-$((i + 1)) failed:"; cat "$work/images-$((i + 1)).log" >&2; exit 1; }
  done
  log "d. $DOCKER_REPLICAS flotilla-hello containers: first up, $NOOP_REPEATS no-op ups, down"
  noop_runs docker "$docker_topology" "$docker_state"
  docker_first=$FIRST docker_again=$AGAIN docker_down=$DOWN
  ! ip -o -4 addr show | grep -q " ${DOCKER_SUBNET%.*/*}\\." || { log "an address in $DOCKER_SUBNET is left after down"; exit 1; }
  [ -z "$(ps -eo args | grep -F "$docker_state" | grep -v grep || true)" ] || { log "a process of $docker_state runs after down"; exit 1; }

  twin_topology="$work/twin.toml"
  hello_cluster bench-twin "driver = \"local\"

[driver.local]
cidr = \"$TWIN_NET.0/24\"" "" >"$twin_topology"
  twin_state="$work/twin-state"
  live_clusters+=("$twin_topology $twin_state")
  log "d. the same cluster on $DOCKER_NODES local nodes (process runtime)"
  noop_runs twin "$twin_topology" "$twin_state"
  twin_first=$FIRST twin_again=$AGAIN twin_down=$DOWN
fi

# ---------------------------------------------------------------------------------------
# e. Per-node addon work: prometheus-cadvisor (node_exporter on every node) and syslog (a
# shipper on every node) added to a running cluster of ADDON_NODES local nodes, at
# --parallelism 1 and 10. The nodes are made first (not timed), so the timed `up` is the
# addons' applies: their per-node starts go to the engine in one batch each.
addons_skip=""
if [ "$ADDONS" = 0 ]; then
  addons_skip="ADDONS=0"
elif ! command -v prometheus >/dev/null || ! command -v rsyslogd >/dev/null ||
     ! { command -v prometheus-node-exporter >/dev/null || command -v node_exporter >/dev/null; }; then
  addons_skip="prometheus, prometheus-node-exporter or rsyslogd is not installed (scripts/install-deps.sh)"
elif [ -n "$(ss -Hltn "src $ADDON_NET.0/24" 2>/dev/null)" ]; then
  addons_skip="something already listens on $ADDON_NET.0/24"
fi
if [ -z "$addons_skip" ]; then
  addon_nodes_toml() {
    cat <<TOML
[cluster]
name = "bench-addons"
driver = "local"

[driver.local]
cidr = "$ADDON_NET.0/24"

[[nodes]]
name = "infra"
roles = ["infra"]

[[nodes]]
name = "swarm"
count = $((ADDON_NODES - 1))
roles = ["swarm"]
TOML
  }
  addon_bare="$work/addons-bare.toml" addon_full="$work/addons-full.toml" addon_state="$work/addons-state"
  addon_nodes_toml >"$addon_bare"
  { addon_nodes_toml; printf '\n[[addons]]\nplugin = "prometheus-cadvisor"\n\n[[addons]]\nplugin = "syslog"\n'; } >"$addon_full"
  live_clusters+=("$addon_full $addon_state")
  log "e. $ADDON_NODES local nodes (not timed)"
  run_timed addons-nodes 600 "$cli" up "$addon_bare" --state-dir "$addon_state" -q
  for p in 1 10; do
    log "e. adding prometheus-cadvisor and syslog at --parallelism $p"
    run_timed "addons-p$p" 600 "$cli" up "$addon_full" --state-dir "$addon_state" --parallelism "$p" -q
    addon_up[$p]=$WALL
    log "e. removing them again"
    run_timed "addons-rm-p$p" 600 "$cli" up "$addon_bare" --state-dir "$addon_state" --parallelism "$p" -q
    addon_rm[$p]=$WALL
  done
  log "e. down"
  run_timed addons-down 600 "$cli" down "$addon_full" --state-dir "$addon_state" -q
  forget_cluster "$addon_full $addon_state"
  left=$(ss -Hltn "src $ADDON_NET.0/24" 2>/dev/null | wc -l)
  [ "$left" -eq 0 ] || { log "$left listeners left on $ADDON_NET.0/24 after down"; exit 1; }
fi

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
if [ -n "$docker_skip" ]; then
  printf '\nd. no-op up on Docker nodes: skipped (%s)\n' "$docker_skip"
else
  printf '\nd. up of %s nodes with %s flotilla-hello instances, process runtime and Docker (netns nodes)\n' "$DOCKER_NODES" "$DOCKER_REPLICAS"
  printf '   %-26s %10s %10s %16s\n' "wall s" "process" "docker" "docker / process"
  printf '   %-26s %10.2f %10.2f %16.1f\n' "first up" "$twin_first" "$docker_first" "$(calc "$docker_first / $twin_first")"
  printf '   %-26s %10.3f %10.3f %16.1f\n' "second up (No changes)" "$twin_again" "$docker_again" "$(calc "$docker_again / $twin_again")"
  printf '   %-26s %10.2f %10.2f %16.1f\n' "down" "$twin_down" "$docker_down" "$(calc "$docker_down / $twin_down")"
fi

if [ -n "$addons_skip" ]; then
  printf '\ne. per-node addon work: skipped (%s)\n' "$addons_skip"
else
  printf '\ne. prometheus-cadvisor and syslog added to %s running local nodes (a node_exporter and a shipper per node)\n' "$ADDON_NODES"
  printf '   %-26s %10s %10s %16s\n' "wall s" "p1" "p10" "speed-up p1/p10"
  printf '   %-26s %10.2f %10.2f %16.2f\n' "up adding the addons" "${addon_up[1]}" "${addon_up[10]}" "$(calc "${addon_up[1]} / ${addon_up[10]}")"
  printf '   %-26s %10.2f %10.2f %16.2f\n' "up removing them" "${addon_rm[1]}" "${addon_rm[10]}" "$(calc "${addon_rm[1]} / ${addon_rm[10]}")"
fi

# The design's targets, read off the figures above.
verdict() { if [ "$(calc "($1) ? 1 : 0")" = 1 ]; then echo met; else echo MISSED; fi; }
largest=$(echo "$PLAN_SIZES" | tr ' ' '\n' | sort -n | tail -n 1)
printf '\nTargets\n'
printf '   %-58s %s\n' "up at --parallelism 10 within 1.5x of ceil(N/10) x create" \
  "$(verdict "${par_wall[10]} <= 1.5 * $par_ideal10")"
printf '   %-58s %s\n' "plan of $largest nodes under 1 s" "$(verdict "${plan_wall[$largest]} < 1")"
printf '   %-58s %s\n' "no-op up of $NOOP_NODES nodes under 1 s" "$(verdict "$noop_again < 1")"
[ -n "$docker_skip" ] ||
  printf '   %-58s %s\n' "no-op up of $DOCKER_NODES Docker nodes under 1 s" "$(verdict "$docker_again < 1")"
