# Helpers shared by the benchmark scripts; sourced, not run. The sourcing script sets first:
#   BENCH    its name, the prefix of its messages ("engine-bench")
#   measure  the bench_measure binary
#   work     its temp directory
# and keeps `running` (the pid of the command run_timed runs now) for its cleanup trap.

log() { echo "$BENCH: $*" >&2; }

# need_built TARGETS FILE...: exits 2, saying what to build, unless every FILE exists; TARGETS
# are the `cmake --build` targets that make them ("" for everything). Needs $build.
need_built() {
  local targets=$1 f
  shift
  for f in "$@"; do
    if [ ! -e "$f" ]; then
      echo "missing $f; build it first: cmake --build $build${targets:+ --target $targets}" >&2
      exit 2
    fi
  done
}

# calc EXPR: awk's value of EXPR ("1.5 / 3", "(2 > 1) ? 1 : 0").
calc() { awk "BEGIN { printf \"%s\", $1 }"; }

# run_timed NAME TIMEOUT_S CMD...: runs CMD, its output in $work/NAME.log; sets WALL (s) and
# RSS (KB, peak). CMD runs in the background so that a signal reaches the caller's trap at
# once, and the trap can stop it through $running. A failure prints CMD's last lines and exits.
run_timed() {
  local name=$1 timeout=$2 rc=0
  shift 2
  "$measure" "$work/$name.time" "$timeout" -- "$@" >"$work/$name.log" 2>&1 &
  running=$!
  wait "$running" || rc=$?
  running=""
  if [ "$rc" -ne 0 ]; then
    echo "$BENCH: \`$*\` failed (exit $rc); its output:" >&2
    tail -n 30 "$work/$name.log" >&2
    exit 1
  fi
  read -r WALL RSS _ <"$work/$name.time"
}

# local_cluster_toml NAME NET NODES REPLICAS PORT [infra]: the topology, on stdout, of a `local`
# cluster NAME on NET.0/24 (NET: three octets) with NODES nodes of role swarm and REPLICAS
# flotilla-hello instances of hello/v1 on PORT, placed on those nodes; with `infra`, a node of
# role infra first, for the addons. The caller appends its [[addons]].
local_cluster_toml() {
  printf '[cluster]\nname = "%s"\ndriver = "local"\n\n[driver.local]\ncidr = "%s.0/24"\n' "$1" "$2"
  [ "${6:-}" != infra ] || printf '\n[[nodes]]\nname = "infra"\nroles = ["infra"]\n'
  printf '\n[[nodes]]\nname = "swarm"\ncount = %s\nroles = ["swarm"]\n' "$3"
  printf '\n[[services]]\nname = "hello/v1"\ncommand = ["flotilla-hello", "--listen", "{address}:{port}"]\n'
  printf 'replicas = %s\nport = %s\nhealth = "/health"\nroles = ["swarm"]\n' "$4" "$5"
}
