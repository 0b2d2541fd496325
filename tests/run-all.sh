#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: formatting, the
# unit, integration and process-level suites (ctest), and the same suites
# again in one clang build with AddressSanitizer + UBSan and -Wthread-safety
# as an error. SOCKAGENT_SKIP_CLANG=1 skips that pass.
# Last, the fuzz targets replay their corpora and fuzz for a bounded time
# (SOCKAGENT_SKIP_FUZZ=1 skips; SOCKAGENT_FUZZ_SECONDS per target, 30).
# The Helm chart check and the container check (podman) run after the tests;
# SOCKAGENT_SKIP_HELM=1 / SOCKAGENT_SKIP_CONTAINER=1 skip them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh

echo "== clang-format check"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

echo "== build (with the benchmarks, which the smoke run below reuses)"
bash deploy/build.sh -DSOCKAGENT_BUILD_BENCH=ON
echo "== tests"
(cd build && ctest --output-on-failure --timeout 600 -j2)
# ctest shows a passing test's output only on failure: print the Python
# suite's pytest summary (CTest python_client) from its log.
echo "python_client (pytest): $(grep -hE '^[0-9]+ (passed|failed)' \
  build/Testing/Temporary/LastTest.log | tail -n 1)"
echo "== benchmark smoke (bench/run.sh --smoke: seconds, asserts nothing)"
BENCH_BUILD_DIR=build bash bench/run.sh --smoke

# Deployment checks; exit 77 means skipped (no tool, or SOCKAGENT_SKIP_*=1).
run_check() {
  local rc=0
  "$@" || rc=$?
  [[ $rc == 0 || $rc == 77 ]] || exit "$rc"
}
echo "== Helm chart check (lint, render, schema, security; SOCKAGENT_SKIP_HELM=1 skips)"
run_check bash tests/helm/check.sh build/server/sockagentd
echo "== container check (fresh podman store in .cache, mmdebstrap, podman build, run, health, SIGTERM; SOCKAGENT_SKIP_CONTAINER=1 skips)"
run_check bash tests/container/check.sh build/client/sockctl
echo "== install check (cmake --install, the example consumer, the .deb, apt install in a Debian 12 container; SOCKAGENT_SKIP_DEB_INSTALL=1 skips the apt step)"
run_check bash tests/install/check.sh build

if [[ "${SOCKAGENT_SKIP_CLANG:-0}" != 1 ]]; then
  # One clang build carries three checks, so the project compiles once for
  # them: AddressSanitizer + UBSan over the whole suite, and -Wthread-safety
  # as an error (sockagent_strict adds it for clang), which checks the
  # ABSL_GUARDED_BY contracts. ThreadSanitizer is not used: Debian's Abseil is
  # not instrumented, so TSan cannot see absl::Mutex and reports every guarded
  # access as a race.
  echo "== build with clang: ASan + UBSan, -Wthread-safety -Werror"
  cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DSOCKAGENT_SANITIZE=ON -DSOCKAGENT_FUZZ=ON >/dev/null
  ninja -C build-clang
  echo "== tests (clang, ASan + UBSan)"
  (cd build-clang &&
    LSAN_OPTIONS="suppressions=$PWD/../tests/sanitizers/lsan.supp" \
      ctest --output-on-failure --timeout 900 -j2)
fi

# ---- fuzzing (tests/fuzz) -------------------------------------------------
# libFuzzer targets under clang ASan + UBSan: every committed corpus input is
# replayed, then each of the 6 targets is fuzzed for SOCKAGENT_FUZZ_SECONDS
# (default 30; about 3.5 min in all). Reuses build-clang when it was configured
# with -DSOCKAGENT_FUZZ=ON; otherwise tests/fuzz/run.sh builds the fuzz
# targets alone in build-fuzz.
if [[ "${SOCKAGENT_SKIP_FUZZ:-0}" != 1 ]]; then
  fuzz_build=build-fuzz
  if grep -q '^SOCKAGENT_FUZZ:BOOL=ON' build-clang/CMakeCache.txt 2>/dev/null; then
    fuzz_build=build-clang
  fi
  echo "== fuzz: replay corpora, then ${SOCKAGENT_FUZZ_SECONDS:-30} s per target ($fuzz_build; SOCKAGENT_SKIP_FUZZ=1 skips)"
  bash tests/fuzz/run.sh --build "$fuzz_build" --time "${SOCKAGENT_FUZZ_SECONDS:-30}"
fi
