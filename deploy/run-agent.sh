#!/usr/bin/env bash
# Quick start: install what is missing, build, and run sockagentd in the
# foreground on 127.0.0.1:7700 with the embedded defaults (loopback, no TLS).
# Extra arguments go to sockagentd. Stop it with Ctrl-C (drains, exits 0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
exec build/server/sockagentd "$@"
