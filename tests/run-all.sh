#!/usr/bin/env bash
# Installs what is missing, builds, and runs every check: formatting; the
# unit, integration and process-level suites (ctest) in a gcc build; the
# benchmark smoke run on that build; the Helm chart; the install and the
# .deb; the container image (made from that .deb: CI does not compile inside
# the image); the same suites again in one clang build with AddressSanitizer
# + UBSan and -Wthread-safety as an error, which also carries the fuzz
# targets; last the fuzz targets replay their corpora and fuzz for a bounded
# time. The project is compiled twice (gcc, clang).
#
# Stages that wait on the network or the disk run beside the ones that need
# the CPU: the base image (mmdebstrap) is made while gcc compiles; the clang
# build runs at nice 19 while the gcc suite and the deployment checks run,
# taking only the CPU they leave; the fuzzing (nice 10, two targets at a
# time: the clang suite waits more than it computes) runs beside the clang
# suite. Every stage prints its seconds, and a table at the end lists
# them; logs of background stages are printed when they are joined.
#
# SOCKAGENT_SKIP_CLANG=1 skips the clang build and its suite;
# SOCKAGENT_SKIP_FUZZ=1 the fuzzing (SOCKAGENT_FUZZ_SECONDS per target, 30);
# SOCKAGENT_SKIP_HELM=1 / SOCKAGENT_SKIP_CONTAINER=1 /
# SOCKAGENT_SKIP_DEB_INSTALL=1 the Helm, container and apt-install checks.
#
# CI builds with -O2 and no debug info (gcc) and -O1 with line tables
# (clang, enough for symbolized sanitizer reports): debug info costs about a
# quarter of the compile and no check reads it. A developer's deploy/build.sh
# keeps RelWithDebInfo. Code whose speed no check depends on compiles at -O0
# (SOCKAGENT_TEST_COMPILE_OPTIONS / SOCKAGENT_CLIENT_COMPILE_OPTIONS): tests/
# in both builds, and client/ in the clang build, where optimizing the
# ASan + UBSan-instrumented code is most of the compile (-O0 takes about half
# the CPU of -O1). The libraries, sockagentd and sockctl that gcc builds (the
# .deb, the benchmarks) and the agent and generated code the clang suite
# drives keep their -O. gcc's -O-dependent warnings (-Wmaybe-uninitialized,
# -Warray-bounds) still cover server/, client/ and proto/ at -O2; in tests/
# clang's -Wuninitialized/-Wsometimes-uninitialized, which come from its
# front end like all its warnings (-Wthread-safety included), still look;
# the sanitizers check the same at any -O.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGS=$ROOT/build-ci-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"

ci_start=$(date +%s)
now() { echo $(($(date +%s) - ci_start)); }
summary=()
stage_name=
stage_start=0
stage_cpu=0
# cpu: sets CPU to the CPU seconds (user + system) of every child waited for
# so far. On a shared machine the wall time of a stage depends on the load,
# its CPU time hardly. (`times` must run in this shell, not in $(...).)
CPU=0
cpu() {
  times >"$LOGS/.times"
  CPU=$(awk 'NR == 2 {
    split($0, t, " "); s = 0
    for (i = 1; i <= 2; i++) { split(t[i], p, "m"); s += p[1] * 60 + p[2] }
    printf "%d", s }' "$LOGS/.times")
}
# stage NAME: ends the running foreground stage (printing its seconds) and
# starts NAME; `stage ""` only ends it.
stage() {
  local t c
  t=$(date +%s)
  cpu
  c=$CPU
  if [[ -n $stage_name ]]; then
    echo "-- $stage_name: $((t - stage_start)) s ($((c - stage_cpu)) s CPU)"
    summary+=("$(printf '%5d s %6d s CPU  %s' $((t - stage_start)) \
      $((c - stage_cpu)) "$stage_name")")
  fi
  stage_name=$1
  stage_start=$t
  stage_cpu=$c
  [[ -z $1 ]] || echo "== $1 (at $(now) s; load $(cut -d' ' -f1-3 /proc/loadavg))"
}

# Background stages: background NAME CMD... runs CMD with its output in
# $LOGS/NAME.log; join NAME waits for it, prints its log and its seconds, and
# fails CI if it failed (exit 77 means skipped and passes).
declare -A bg_pid bg_start
background() {
  local name=$1
  shift
  bg_start[$name]=$(date +%s)
  rm -f "$LOGS/$name.end"
  # Its own process group, so stop_background ends its children too; it
  # writes the time it ended to $LOGS/NAME.end.
  setsid bash -c '"$@"; rc=$?; date +%s >"$0"; exit $rc' "$LOGS/$name.end" \
    "$@" >"$LOGS/$name.log" 2>&1 &
  bg_pid[$name]=$!
  echo "== $name: started in the background (at $(now) s)"
}
# A background stage's CPU is counted when it is joined: run join between
# foreground stages (after `stage ""`), so it is not added to one of them.
join() {
  local name=$1 rc=0 t c
  cpu
  c=$CPU
  wait "${bg_pid[$name]}" || rc=$?
  unset "bg_pid[$name]"
  t=$(cat "$LOGS/$name.end" 2>/dev/null || date +%s)
  cpu
  c=$((CPU - c))
  stage_cpu=$((stage_cpu + c))
  echo "== $name (background: ran $((t - bg_start[$name])) s, $c s CPU, exit $rc; joined at $(now) s)"
  cat "$LOGS/$name.log"
  summary+=("$(printf '%5d s %6d s CPU  %s (background)' \
    $((t - bg_start[$name])) "$c" "$name")")
  [[ $rc == 0 || $rc == 77 ]] || { echo "FAIL: $name (exit $rc)"; exit "$rc"; }
}
stop_background() {
  local pid
  for pid in "${bg_pid[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
}
trap stop_background EXIT
# Deployment checks run in the foreground the same way: 77 = skipped.
run_check() {
  local rc=0
  "$@" || rc=$?
  [[ $rc == 0 || $rc == 77 ]] || exit "$rc"
}

stage "install dependencies"
bash deploy/install-deps.sh

stage "clang-format check"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

stage ""
# The container and install checks' Debian 12 base image: network and disk.
background base-image bash tests/container/base-image.sh

stage "build (gcc, with the benchmarks, which the smoke run reuses)"
bash deploy/build.sh -DSOCKAGENT_BUILD_BENCH=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" \
  -DSOCKAGENT_TEST_COMPILE_OPTIONS=-O0

clang=0
[[ "${SOCKAGENT_SKIP_CLANG:-0}" == 1 ]] || clang=1
if ((clang)); then
  # One clang build carries three checks, so the project compiles once for
  # them: AddressSanitizer + UBSan over the whole suite, -Wthread-safety as
  # an error (sockagent_strict adds it for clang), which checks the
  # ABSL_GUARDED_BY contracts, and the fuzz targets. ThreadSanitizer is not
  # used: Debian's Abseil is not instrumented, so TSan cannot see absl::Mutex
  # and reports every guarded access as a race.
  stage ""
  background clang-build bash -c '
    cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
      -DSOCKAGENT_TEST_COMPILE_OPTIONS=-O0 \
      -DSOCKAGENT_CLIENT_COMPILE_OPTIONS=-O0 \
      -DSOCKAGENT_SANITIZE=ON -DSOCKAGENT_FUZZ=ON >/dev/null &&
    nice -n 19 ninja -C build-clang'
fi

stage "tests (gcc)"
(cd build && ctest --output-on-failure --timeout 600 -j2)
# ctest shows a passing test's output only on failure: print the Python
# suite's pytest summary (CTest python_client) from its log.
echo "python_client (pytest): $(grep -hE '^[0-9]+ (passed|failed)' \
  build/Testing/Temporary/LastTest.log | tail -n 1)"

stage "benchmark smoke (bench/run.sh --smoke: seconds, asserts nothing)"
BENCH_BUILD_DIR=build bash bench/run.sh --smoke

stage "Helm chart check (lint, render, schema, security; SOCKAGENT_SKIP_HELM=1 skips)"
run_check bash tests/helm/check.sh build/server/sockagentd

stage "package (cpack: the .deb the install and container checks use)"
rm -rf build/package
(cd build && cpack -G DEB -B package >/dev/null)
deb=$(ls build/package/sockagent_*.deb)
echo "$deb"

stage ""
join base-image
stage "install check (cmake --install, the example consumer, the .deb, apt install in a Debian 12 container; SOCKAGENT_SKIP_DEB_INSTALL=1 skips the apt step)"
run_check bash tests/install/check.sh build "$deb"

stage "container check (image from the .deb, run, health, HEALTHCHECK, SIGTERM; SOCKAGENT_SKIP_CONTAINER=1 skips)"
run_check bash tests/container/check.sh --deb "$deb" build/client/sockctl

if ((clang)); then
  stage ""
  join clang-build
  # ---- fuzzing (tests/fuzz) -----------------------------------------------
  # libFuzzer targets under clang ASan + UBSan: every committed corpus input
  # is replayed, then each of the 6 targets is fuzzed for
  # SOCKAGENT_FUZZ_SECONDS (default 30), at nice 10 beside the clang suite,
  # two targets at a time (one at a time the fuzzing outlasted the suite:
  # 188 s against 143 s).
  if [[ "${SOCKAGENT_SKIP_FUZZ:-0}" != 1 ]]; then
    background fuzz bash tests/fuzz/run.sh --build build-clang --jobs 2 \
      --time "${SOCKAGENT_FUZZ_SECONDS:-30}"
  fi
  # -j4: the suite mostly waits (on processes, timers, the network), so
  # four tests at a time still leave CPU to the fuzzing beside it.
  stage "tests (clang, ASan + UBSan)"
  (cd build-clang &&
    LSAN_OPTIONS="suppressions=$PWD/../tests/sanitizers/lsan.supp" \
      ctest --output-on-failure --timeout 900 -j4)
  stage ""
  [[ "${SOCKAGENT_SKIP_FUZZ:-0}" == 1 ]] || join fuzz
elif [[ "${SOCKAGENT_SKIP_FUZZ:-0}" != 1 ]]; then
  # Without the clang build, tests/fuzz/run.sh builds the fuzz targets alone
  # in build-fuzz.
  stage "fuzz: replay corpora, then ${SOCKAGENT_FUZZ_SECONDS:-30} s per target (build-fuzz)"
  bash tests/fuzz/run.sh --build build-fuzz --time "${SOCKAGENT_FUZZ_SECONDS:-30}"
fi
stage ""

echo "== stage times (wall, CPU of the stage's processes; foreground stages add"
echo "   up to the wall time, background stages overlap them)"
printf '%s\n' "${summary[@]}"
cpu
echo "total: $(now) s wall, $CPU s CPU (load now $(cut -d' ' -f1-3 /proc/loadavg))"
