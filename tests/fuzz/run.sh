#!/usr/bin/env bash
# Replays every committed corpus (tests/fuzz/corpus/<target>/), then fuzzes
# each target for a bounded time or number of executions, one target at a
# time unless --jobs says more (libFuzzer, one job per target, nice 10).
# Prints executions and exec/s per
# target and a final line "fuzz: N targets, M executions, K crashes" (a
# failed replay counts as a crash); exits non-zero if anything crashed. New inputs and crash
# artifacts go to <build>/fuzz-work/<target>/, never into the committed
# corpus: copy a crash input into corpus/<target>/ by hand with its fix.
#
# Usage: tests/fuzz/run.sh [--build DIR] [--time SECONDS | --runs N]
#                          [--replay-only] [--jobs N] [TARGET...]
#   --build DIR    build tree with SOCKAGENT_FUZZ=ON (default build-fuzz;
#                  configured with clang, ASan + UBSan and built if needed)
#   --time S       fuzz each target for S seconds (default 30)
#   --runs N       fuzz each target for N executions instead (10^6: the
#                  documented long run, `tests/fuzz/run.sh --runs 1000000`)
#   --jobs N       replay and fuzz N targets at a time (default 1)
#   TARGET         address policy config scenario sockopt dispatcher (default
#                  all)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

build=build-fuzz
seconds=30
runs=
replay_only=0
jobs=1
targets=()
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --time) seconds=$2; runs=; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --replay-only) replay_only=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(address policy config scenario sockopt dispatcher)

bins=()
for t in "${targets[@]}"; do
  [[ -d tests/fuzz/corpus/$t ]] || { echo "run.sh: unknown target $t" >&2; exit 2; }
  bins+=("${t}_fuzz")
done
if [[ ! -f $build/CMakeCache.txt ]]; then
  echo "== configuring $build (clang, ASan + UBSan, SOCKAGENT_FUZZ=ON)"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DSOCKAGENT_SANITIZE=ON -DSOCKAGENT_FUZZ=ON -DSOCKAGENT_BUILD_TESTS=OFF \
    >/dev/null
fi
echo "== building ${bins[*]} in $build"
ninja -C "$build" "${bins[@]}" >/dev/null

# libFuzzer settings for every run: per-input timeout, memory, input size.
common=(-timeout=20 -rss_limit_mb=2560 -max_len=8192 -print_final_stats=1)
# A smaller quarantine keeps long runs under the RSS limit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

stat() {  # stat NAME LOG: a final-stats value of libFuzzer's log
  sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$2" | tail -n 1
}

# fuzz_one TARGET: replays and fuzzes one target; prints its report lines
# and writes "<executions> <crashes>" to <work>/result.
fuzz_one() {
  local t=$1 bin corpus work files limit rc execs rate found crashed=0
  bin=$build/tests/fuzz/${t}_fuzz
  corpus=tests/fuzz/corpus/$t
  work=$build/fuzz-work/$t
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"

  # 1. Replay: every committed input once (crash regressions included).
  files=("$corpus"/*)
  if nice -n 10 "$bin" "${common[@]}" -runs=1 "${files[@]}" \
    >"$work/replay.log" 2>&1; then
    echo "fuzz: $t: replayed ${#files[@]} corpus inputs, OK"
  else
    echo "fuzz: $t: REPLAY FAILED (log: $work/replay.log)"
    tail -n 30 "$work/replay.log"
    echo "0 1" >"$work/result"
    return
  fi
  if ((replay_only)); then
    echo "0 0" >"$work/result"
    return
  fi

  # 2. Fuzz, bounded, starting from the committed corpus.
  if [[ -n $runs ]]; then limit=(-runs="$runs"); else limit=(-max_total_time="$seconds"); fi
  rc=0
  nice -n 10 "$bin" "${common[@]}" "${limit[@]}" \
    -artifact_prefix="$work/artifacts/" "$work/corpus" "$corpus" \
    >"$work/fuzz.log" 2>&1 || rc=$?
  execs=$(stat number_of_executed_units "$work/fuzz.log")
  rate=$(stat average_exec_per_sec "$work/fuzz.log")
  found=$(find "$work/artifacts" -type f | wc -l)
  if ((rc != 0 || found != 0)); then
    crashed=$((found > 0 ? found : 1))
    echo "fuzz: $t: ${execs:-?} executions, ${rate:-?} exec/s, CRASH (exit $rc; log: $work/fuzz.log)"
    grep -E "ERROR|invariant broken|SUMMARY|Test unit written" "$work/fuzz.log" | head -n 10 || true
    for a in "$work"/artifacts/*; do
      [[ -e $a ]] && echo "  reproduce: $bin $a"
    done
  else
    echo "fuzz: $t: ${execs:-?} executions, ${rate:-?} exec/s, 0 crashes, $(find "$work/corpus" -type f | wc -l) new corpus inputs"
  fi
  echo "${execs:-0} $crashed" >"$work/result"
}

# Up to $jobs targets at a time; each target's lines are printed together,
# in the order the targets were named.
pids=()
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  mkdir -p "$build/fuzz-work"
  fuzz_one "$t" >"$build/fuzz-work/$t.out" 2>&1 &
  pids[i]=$!
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
done
total_runs=0
crashes=0
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  wait "${pids[$i]}" || true
  cat "$build/fuzz-work/$t.out"
  read -r n c <"$build/fuzz-work/$t/result" 2>/dev/null || { n=0; c=1; }
  total_runs=$((total_runs + n))
  crashes=$((crashes + c))
done

echo "fuzz: ${#targets[@]} targets, $total_runs executions, $crashes crashes"
((crashes == 0))
