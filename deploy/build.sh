#!/usr/bin/env bash
# Configures and builds sockagent into build/ (or $BUILD_DIR).
# Usage: deploy/build.sh [extra cmake args...]
# BUILD_TARGETS (space-separated) builds only those targets, e.g.
# BUILD_TARGETS="sockagentd sockctl"; the default builds everything, tests
# included.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
# shellcheck disable=SC2086  # BUILD_TARGETS is a list of words
ninja -C "$build_dir" ${BUILD_TARGETS:-}
