#!/usr/bin/env bash
# Runs every libFuzzer harness for SECONDS seconds each and fails on any finding.
#   bash fuzz/run.sh [SECONDS]            (default 60)
# Environment:
#   FUZZ_BUILD_DIR   build directory (default build-libfuzzer; configured here with clang++,
#                    -Dfuzz=enabled and AddressSanitizer + UndefinedBehaviorSanitizer if missing)
#   FUZZ_JOBS        harnesses run at the same time (default 2, one per core)
#   FUZZ_HARNESSES   which to run (default: load roundtrip structured tools json native types)
#   FUZZ_RSS_MB      -rss_limit_mb (default 2048; above the limits the harnesses load with)
# Seeds: fuzz/corpus/<harness>/ (committed, minimized) and the pickles of tests/golden/. New corpus
# entries go to $FUZZ_BUILD_DIR/fuzz-corpus/<harness>/, findings to
# $FUZZ_BUILD_DIR/fuzz-artifacts/<harness>/, logs and a summary (executions, coverage, corpus size
# per harness) to $FUZZ_BUILD_DIR/fuzz-logs/.
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-libfuzzer}"
jobs="${FUZZ_JOBS:-2}"
rss_mb="${FUZZ_RSS_MB:-2048}"
read -r -a harnesses <<< "${FUZZ_HARNESSES:-load roundtrip structured tools json native types}"

if ! command -v clang++ >/dev/null; then
  echo "fuzz/run.sh: clang++ is needed (apt-get install clang)" >&2
  exit 1
fi
if [ ! -f "$build/build.ninja" ]; then
  echo "fuzz/run.sh: configuring $build"
  CXX=clang++ CC=clang meson setup "$build" "$root" -Dfuzz=enabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Dtests=disabled -Dbenchmarks=disabled -Dwerror=false \
    -Dbuildtype=debugoptimized >/dev/null
fi
targets=(fuzz/pickle.dict)
for h in "${harnesses[@]}"; do targets+=("fuzz/fuzz_$h"); done
# clang can be killed by memory pressure on a busy 2-core machine: retry once, one job at a time.
ninja -C "$build" "${targets[@]}" || ninja -C "$build" -j1 "${targets[@]}"

# The dictionary is generated from the opcode table; the committed copy must match it.
if ! cmp -s "$build/fuzz/pickle.dict" "$root/fuzz/pickle.dict"; then
  echo "fuzz/run.sh: fuzz/pickle.dict is stale; regenerate it: cp $build/fuzz/pickle.dict fuzz/" >&2
  exit 1
fi

seeds="$build/fuzz-seeds"
rm -rf "$seeds"
mkdir -p "$seeds" "$build/fuzz-logs"
if [ -d "$root/tests/golden" ]; then
  # Same file names recur across CPython versions: numbered backups keep them all.
  find "$root/tests/golden" -name '*.pkl' -size -64k -exec cp --backup=numbered -t "$seeds" {} + \
    2>/dev/null || true
fi
cp "$root"/fuzz/regressions/* "$seeds/" 2>/dev/null || true

run_one() {
  local h="$1"
  local corpus="$build/fuzz-corpus/$h" artifacts="$build/fuzz-artifacts/$h/"
  local log="$build/fuzz-logs/$h.log"
  mkdir -p "$corpus" "$artifacts"
  local committed=()
  [ -d "$root/fuzz/corpus/$h" ] && committed=("$root/fuzz/corpus/$h")
  local dict=(-dict="$build/fuzz/pickle.dict")
  [ "$h" = structured ] && dict=()   # its input is a program for the generator, not pickle bytes
  local extra=("$seeds")
  [ "$h" = structured ] && extra=()
  set +e
  (cd "$build" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "$build/fuzz/fuzz_$h" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout=10 \
       -max_len=16384 -print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" \
       "$corpus" "${committed[@]}" "${extra[@]}") >"$log" 2>&1
  local status=$?
  set -e
  echo "$status" >"$build/fuzz-logs/$h.status"
}

running=0
for h in "${harnesses[@]}"; do
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
summary="$build/fuzz-logs/summary.txt"
printf '%-12s %10s %8s %8s %8s  %s\n' harness execs cov ft corpus status | tee "$summary"
for h in "${harnesses[@]}"; do
  log="$build/fuzz-logs/$h.log"
  status="$(cat "$build/fuzz-logs/$h.status" 2>/dev/null || echo 1)"
  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1 || true)"
  if [ -z "$execs" ]; then  # a crash ends the run before the final stats: the last status line
    execs="$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)"
  fi
  last="$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' | tail -1 || true)"
  cov="$(echo "$last" | awk '{print $2}')"
  ft="$(echo "$last" | awk '{print $4}')"
  corp="$(echo "$last" | awk '{print $6}')"
  verdict=ok
  if [ "$status" != 0 ]; then
    verdict="FAILED (exit $status; see $log and $build/fuzz-artifacts/$h/)"
    failed=1
  fi
  printf '%-12s %10s %8s %8s %8s  %s\n' "$h" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$verdict" |
    tee -a "$summary"
done
if [ "$failed" != 0 ]; then
  for h in "${harnesses[@]}"; do
    if [ "$(cat "$build/fuzz-logs/$h.status" 2>/dev/null || echo 1)" != 0 ]; then
      echo "--- $h ---"
      grep -E 'FINDING|ERROR|SUMMARY|Assertion|runtime error|==[0-9]+==' "$build/fuzz-logs/$h.log" | head -20
      ls "$build/fuzz-artifacts/$h/"
    fi
  done
  exit 1
fi
