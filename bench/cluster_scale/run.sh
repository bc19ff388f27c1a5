#!/usr/bin/env bash
# bench/cluster_scale: the whole stack of configs/local.toml (etcd, registrator, haproxy,
# prometheus-cadvisor, syslog) on SIZES local nodes with PER_NODE flotilla-hello instances per
# node, each size in turn and printed side by side:
#   - the first `up`: wall time, the engine's peak memory, and its steps by kind from
#     events.jsonl (count, summed and longest seconds; each addon's apply on its own);
#   - how long after that `up` Prometheus lists every target healthy;
#   - the memory of the per-node components the addons start (those on every swarm node:
#     node_exporter, the log shipper, the lease keepalive), per node, from /proc;
#   - a no-op `up` (must say "No changes");
#   - `scale` to twice the instances and back while scale_under_load keeps a keep-alive load on
#     the HAProxy ingress: each scale's wall time and the requests that failed;
#   - `down`, and that it left nothing: no listener in the subnet, no process it recorded.
# Every cluster is taken down on exit, failure and Ctrl-C included; the temp directory goes too.
#
# Usage: bench/cluster_scale/run.sh [BUILD_DIR]       (default: ./build); run as root (dnsmasq
#        binds port 53 on the infra node's address), with the packages of scripts/install-deps.sh.
# Needs: cmake --build BUILD_DIR --target flotilla flotilla-hello flotilla-logstore bench_measure scale_under_load
#        and every plugin (the default build makes them all).
# Knobs (environment): SIZES="100 200" PER_NODE=2 PARALLELISM=10 LOAD_S=240 NET=127.96.0
# (LOAD_S: seconds of load; the scaling should end inside it, and the script says when not)
# Sizes fit a 2-core, 24 GiB machine: 200 nodes run about 1,000 processes; 254 is the most the
# /24 holds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH=cluster-scale
. "$here/../lib.sh"
build=$(cd "${1:-$here/../../build}" && pwd)
cli="$build/bin/flotilla"
measure="$build/bin/bench_measure"
gen="$build/bin/scale_under_load"
plugins="$build/lib/flotilla/plugins"
need_built "" "$cli" "$measure" "$gen" "$build/bin/flotilla-hello" "$plugins/addon_etcd.so" "$plugins/addon_registrator.so" \
  "$plugins/addon_haproxy.so" "$plugins/addon_prometheus_cadvisor.so" "$plugins/addon_syslog.so"
for tool in etcd haproxy prometheus prometheus-node-exporter rsyslogd dnsmasq curl ss python3; do
  command -v "$tool" >/dev/null || { echo "cluster-scale: $tool is not installed; run scripts/install-deps.sh" >&2; exit 2; }
done

SIZES=${SIZES:-"100 200"}
PER_NODE=${PER_NODE:-2}
PARALLELISM=${PARALLELISM:-10}
LOAD_S=${LOAD_S:-240}
NET=${NET:-127.96.0}
PORT=19300  # the service's instances take PORT .. PORT + 2 x PER_NODE - 1 on each node
for n in $SIZES; do
  if [ "$n" -lt 1 ] || [ "$n" -gt 253 ]; then echo "cluster-scale: a size must be 1-253 nodes (one /24), not $n" >&2; exit 2; fi
done
if [ -n "$(ss -Hltn "src $NET.0/24" 2>/dev/null)" ]; then
  echo "cluster-scale: something already listens in $NET.0/24; stop it or choose NET" >&2
  exit 2
fi

work=$(mktemp -d /tmp/flt-cluster-scale-XXXXXX)
topology="$work/cluster.toml"
state="$work/state"
running=""   # pid of the command running now (bench_measure or the load generator)
live=0       # whether a cluster may be up

cleanup() {
  local status=$? down_failed=0
  trap - EXIT INT TERM
  if [ -n "$running" ]; then
    kill -TERM "$running" 2>/dev/null || true
    wait "$running" 2>/dev/null || true
  fi
  if [ "$live" = 1 ]; then
    "$cli" unlock "$topology" --state-dir "$state" >/dev/null 2>&1 || true
    if ! "$measure" "$work/cleanup.time" 600 -- "$cli" down "$topology" --state-dir "$state" -q >"$work/cleanup.log" 2>&1; then
      echo "cluster-scale: flotilla down failed; its state stays in $state:" >&2
      cat "$work/cleanup.log" >&2
      down_failed=1
    fi
  fi
  if [ "$down_failed" = 0 ]; then rm -rf "$work"; else status=1; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_topology() {  # nodes replicas
  {
    local_cluster_toml bench-cluster-scale "$NET" "$1" "$2" "$PORT" infra
    cat <<TOML

[[addons]]
plugin = "etcd"

[[addons]]
plugin = "registrator"

[[addons]]
plugin = "haproxy"

[[addons]]
plugin = "prometheus-cadvisor"

[[addons]]
plugin = "syslog"
TOML
  } >"$topology"
}

# The finished steps of events.jsonl from line $1 on, by kind: "KIND COUNT SUM MAX" lines, each
# addon's apply (and its stages) as a kind of its own.
steps_by_kind() {
  tail -n +"$1" "$state/events.jsonl" | python3 -c '
import json, sys
kinds = {}
for line in sys.stdin:
    e = json.loads(line)
    if e.get("event") != "finish":
        continue
    step = e["step"]
    kind = step if step.startswith("addon.") else step.split(":", 1)[0]
    n, total, longest = kinds.get(kind, (0, 0.0, 0.0))
    kinds[kind] = (n + 1, total + e.get("seconds", 0.0), max(longest, e.get("seconds", 0.0)))
for kind, (n, total, longest) in sorted(kinds.items()):
    print(kind, n, "%.2f" % total, "%.2f" % longest)
'
}

# Waits (at most 180 s) until Prometheus lists at least $2 targets, all healthy; prints the
# seconds it took, or "never (N of M up)".
prometheus_all_up() {
  local url=$1 want=$2 t0 answer
  local healthy=0 total=0
  t0=$(date +%s.%N)
  for _ in $(seq 1 900); do
    answer=$(curl -fsS --max-time 2 "$url/api/v1/targets?state=active" 2>/dev/null |
             python3 -c 'import json, sys; t = json.load(sys.stdin)["data"]["activeTargets"]; print(sum(x["health"] == "up" for x in t), len(t))' 2>/dev/null ||
             echo "0 0")
    read -r healthy total <<<"$answer"
    if [ "$total" -ge "$want" ] && [ "$healthy" = "$total" ]; then
      calc "$(date +%s.%N) - $t0"
      return
    fi
    sleep 0.2
  done
  echo "never ($healthy of $total up)"
}

# Per-node memory of the components found on every swarm node: "mean_MB max_MB names".
per_node_memory() {
  python3 - "$1" <<'PY'
import json, sys
status = json.load(open(sys.argv[1]))
swarm = {n["name"] for n in status["nodes"] if "swarm" in n.get("roles", [])}
by_name = {}
for a in status["addons"]:
    for c in a.get("components", []):
        if c["node"] in swarm and c.get("pid"):
            by_name.setdefault(c["name"], []).append((c["node"], c["pid"]))
per_node = {n: 0 for n in swarm}
names = []
for name, placed in sorted(by_name.items()):
    if len(placed) < len(swarm):
        continue  # not a per-node component
    names.append(name)
    for node, pid in placed:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    per_node[node] += int(line.split()[1])
        except OSError:
            pass
values = sorted(per_node.values())
print("%.1f %.1f %s" % (sum(values) / len(values) / 1024, values[-1] / 1024, ",".join(names) or "none"))
PY
}

declare -A R  # results: R[size,key]
for n in $SIZES; do
  replicas=$((n * PER_NODE))
  log "$n nodes, $replicas instances: up"
  write_topology "$n" "$replicas"
  live=1
  events_from=1
  run_timed "up-$n" 900 "$cli" up "$topology" --state-dir "$state" --parallelism "$PARALLELISM" -q
  R[$n,up]=$WALL
  R[$n,up_rss]=$RSS
  steps_by_kind "$events_from" >"$work/steps-$n"
  "$cli" status "$topology" --state-dir "$state" --output json >"$work/status-$n.json"
  prometheus=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["endpoints"]["prometheus"])' "$work/status-$n.json")
  ingress=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["endpoints"]["rest"].split("//")[1])' "$work/status-$n.json")
  log "waiting for Prometheus ($prometheus) to see every target up"
  R[$n,prom]=$(prometheus_all_up "$prometheus" "$n")
  read -r mean max names < <(per_node_memory "$work/status-$n.json")
  R[$n,mem_mean]=$mean
  R[$n,mem_max]=$max
  R[$n,mem_names]=$names

  log "no-op up"
  events_from=$(( $(wc -l <"$state/events.jsonl") + 1 ))
  run_timed "noop-$n" 300 "$cli" up "$topology" --state-dir "$state" --parallelism "$PARALLELISM"
  grep -q "No changes" "$work/noop-$n.log" || { log "the second up was not a no-op:"; tail -n 20 "$work/noop-$n.log" >&2; exit 1; }
  R[$n,noop]=$WALL

  log "scale to $((2 * replicas)) and back to $replicas under load through $ingress"
  direct=$(python3 -c 'import json, sys; i = json.load(open(sys.argv[1]))["services"][0]["instances"][0]; print(i["address"] + ":" + str(i["port"]))' "$work/status-$n.json")
  candidates=$(python3 -c '
import json, sys
status, ports = json.load(open(sys.argv[1])), int(sys.argv[2])
addrs = [x["address"] for x in status["nodes"] if "swarm" in x.get("roles", [])]
print(",".join(f"{a}:{p}" for a in addrs for p in range(int(sys.argv[3]), int(sys.argv[3]) + ports)))' \
    "$work/status-$n.json" $((2 * PER_NODE)) "$PORT")
  "$gen" --ingress "$ingress" --direct "$direct" --candidates "$candidates" --threads 2 --poll-ms 500 \
    --direct-s 2 --steady-s 2 --duration-s "$LOAD_S" >"$work/load-$n.json" 2>"$work/load-$n.log" &
  running=$!
  load_pid=$running
  sleep 5
  load_t0=$(date +%s)
  for target in $((2 * replicas)) "$replicas"; do
    "$measure" "$work/scale.time" 600 -- "$cli" scale "$topology" "hello/v1=$target" --state-dir "$state" \
      --parallelism "$PARALLELISM" -q >"$work/scale-$n-$target.log" 2>&1 || { log "scale to $target failed:"; tail -n 20 "$work/scale-$n-$target.log" >&2; exit 1; }
    read -r wall _ <"$work/scale.time"
    R[$n,scale_$target]=$wall
  done
  [ $(( $(date +%s) - load_t0 + 4 )) -lt "$LOAD_S" ] || log "the scaling outlasted the load (LOAD_S=$LOAD_S); part of it ran without load"
  # It exits 1 when its own goals (healthy to routed) are missed; the report is what counts here.
  wait "$load_pid" || true
  running=""
  [ -s "$work/load-$n.json" ] || { log "the load generator wrote no report:"; tail -n 20 "$work/load-$n.log" >&2; exit 1; }
  read -r sent failed < <(python3 -c 'import json, sys; i = json.load(open(sys.argv[1]))["ingress"]; print(i["requests"], i["non_2xx"] + i["socket_errors"])' "$work/load-$n.json")
  R[$n,load_sent]=$sent
  R[$n,load_failed]=$failed

  log "down"
  "$cli" status "$topology" --state-dir "$state" --output json >"$work/before-down-$n.json"
  run_timed "down-$n" 600 "$cli" down "$topology" --state-dir "$state" --parallelism "$PARALLELISM" -q
  live=0
  R[$n,down]=$WALL
  left_listeners=$(ss -Hltn "src $NET.0/24" 2>/dev/null | wc -l)
  left_pids=$(python3 -c '
import json, os, sys
s = json.load(open(sys.argv[1]))
pids = [i["pid"] for svc in s["services"] for i in svc["instances"] if i.get("pid")]
pids += [c["pid"] for a in s["addons"] for c in a.get("components", []) if c.get("pid")]
def alive(p):
    try:
        return open(f"/proc/{p}/stat").read().split(") ")[1].split()[0] != "Z"
    except OSError:
        return False
print(sum(alive(p) for p in pids))' "$work/before-down-$n.json")
  R[$n,left]="$left_listeners listeners, $left_pids processes"
  rm -rf "$state"
done

# ---------------------------------------------------------------------------------------
row() {  # label key: each size's value, a fraction with two decimals
  local v
  printf '   %-44s' "$1"
  for n in $SIZES; do
    v=${R[$n,$2]}
    [[ "$v" =~ ^[0-9]+\.[0-9]+$ ]] && v=$(printf '%.2f' "$v")
    printf ' %16s' "$v"
  done
  printf '\n'
}
echo "Flotilla cluster scale ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, --parallelism $PARALLELISM, $PER_NODE instances per node)"
echo
printf '   %-44s' "swarm nodes (+ infra)"
for n in $SIZES; do printf ' %16s' "$n"; done
printf '\n'
row "first up, wall s" up
row "first up, engine peak RSS KB" up_rss
row "Prometheus: every target up, s after up" prom
row "per-node components, mean MB per node" mem_mean
row "per-node components, max MB per node" mem_max
row "no-op up (No changes), wall s" noop
for n in $SIZES; do R[$n,scale_up]=${R[$n,scale_$((2 * n * PER_NODE))]}; R[$n,scale_down]=${R[$n,scale_$((n * PER_NODE))]}; done
row "scale to 2x instances under load, wall s" scale_up
row "scale back under load, wall s" scale_down
row "requests through the ingress meanwhile" load_sent
row "failed requests (non-2xx and socket errors)" load_failed
row "down, wall s" down
row "left after down" left
echo
for n in $SIZES; do
  echo "   per-node components at $n nodes: ${R[$n,mem_names]}"
done
echo
echo "First up by step kind (count, summed s, longest s; addons one by one)"
for n in $SIZES; do
  echo "   $n nodes:"
  awk '{ printf "     %-44s %6d %10s %10s\n", $1, $2, $3, $4 }' "$work/steps-$n"
done
echo
echo "Goals (issue: performance at real cluster size)"
first=${SIZES%% *}
if [ "$first" = 100 ]; then
  echo "   first up of 100 nodes under 10 s            $(calc "(${R[100,up]} < 10) ? \"met\" : \"missed\"")  ($(printf %.2f "${R[100,up]}") s)"
  echo "   down of 100 nodes under 5 s                  $(calc "(${R[100,down]} < 5) ? \"met\" : \"missed\"")  ($(printf %.2f "${R[100,down]}") s)"
  echo "   no-op up of 100 nodes under 0.2 s            $(calc "(${R[100,noop]} < 0.2) ? \"met\" : \"missed\"")  ($(printf %.2f "${R[100,noop]}") s)"
  echo "   per-node components under 25 MB per node     $(calc "(${R[100,mem_mean]} < 25) ? \"met\" : \"missed\"")  (${R[100,mem_mean]} MB)"
fi
for n in $SIZES; do
  echo "   no failed request while scaling at $n nodes  $([ "${R[$n,load_failed]}" = 0 ] && echo met || echo missed)  (${R[$n,load_failed]})"
done
