#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: formatting, the
# unit, integration and process-level suites (ctest), and the same suites
# again under AddressSanitizer + UBSan.
# Set SOCKAGENT_SKIP_ASAN=1 to skip the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh

echo "== clang-format check"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

echo "== build"
bash deploy/build.sh
echo "== tests"
(cd build && ctest --output-on-failure --timeout 600 -j2)
echo "== benchmark smoke (bench/run.sh --smoke: seconds, asserts nothing)"
bash bench/run.sh --smoke

if [[ "${SOCKAGENT_SKIP_ASAN:-0}" != 1 ]]; then
  echo "== build (ASan + UBSan)"
  BUILD_DIR=build-asan bash deploy/build.sh -DSOCKAGENT_SANITIZE=ON
  echo "== tests (ASan + UBSan)"
  (cd build-asan && ctest --output-on-failure --timeout 900 -j2)
fi
