#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang under ASan+UBSan and runs each on its
# seed corpus for a bounded time (FUZZ_SECONDS, default 45, all targets side by side). Exits
# non-zero when a target crashes, leaks, times out or trips a sanitizer, and says where the
# input that did it is. docs/testing.md says how to run them longer.
#   scripts/fuzz.sh                       # every target, 45 s
#   FUZZ_SECONDS=3600 FUZZ_TARGETS=state scripts/fuzz.sh -jobs=4   # extra args go to libFuzzer
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-45}
targets=${FUZZ_TARGETS:-topology state plan plugin_request}

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLOTILLA_FUZZ=ON -DFLOTILLA_BUILD_TESTS=OFF -DFLOTILLA_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target flotilla_fuzz

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pids=()
for t in $targets; do
  # New inputs go to the build tree; the seeds in tests/fuzz/corpus stay as committed.
  work="$build/fuzz/$t"
  mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
  # The targets keep their scratch files in TMPDIR; libFuzzer ends a run with _Exit, so no exit
  # handler of theirs runs: this directory is removed below instead.
  TMPDIR="$work/tmp" "$build/bin/fuzz_$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "tests/fuzz/corpus/$t" \
    >"$work/log" 2>&1 &
  pids+=("$!")
done

status=0
i=0
for t in $targets; do
  work="$build/fuzz/$t"
  if wait "${pids[$i]}"; then
    rm -rf "$work/tmp"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/log" | tail -1)
    echo "fuzz_$t: ok, ${execs:-?} inputs in ${seconds}s, peak RSS ${rss:-?} MB"
  else
    status=1
    echo "fuzz_$t: FAILED; the end of its log ($work/log):"
    tail -n 60 "$work/log"
    echo "The input is in $work/artifacts/; rerun it with: $build/bin/fuzz_$t $work/artifacts/<file>"
  fi
  i=$((i + 1))
done
exit $status
