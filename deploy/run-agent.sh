#!/usr/bin/env bash
# Quick start: install what is missing, build the agent and the CLI (only
# sockagentd and sockctl, not the test suite), and run sockagentd in the
# foreground on 127.0.0.1:7700 with the embedded defaults (loopback, no TLS).
# Extra arguments go to sockagentd. Stop it with Ctrl-C (drains, exits 0).
# The build goes to build/ (or $BUILD_DIR); tests/run-all.sh later builds the
# rest there, reusing what this built.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
BUILD_TARGETS="sockagentd sockctl" bash deploy/build.sh
build_dir=${BUILD_DIR:-build}
echo "run-agent: sockctl is $build_dir/client/sockctl (or cmake --install $build_dir puts it on PATH)" >&2
exec "$build_dir/server/sockagentd" "$@"
