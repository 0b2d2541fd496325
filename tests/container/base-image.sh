#!/usr/bin/env bash
# Makes the Debian 12 base image the container and install checks use
# (localhost/sockagent-bookworm-min in the clone's store .cache/container),
# unless it is there. CI starts it at the beginning, beside the compile: it
# waits on the network and the disk, not on the CPU.
# Exit: 0 ready, 1 failed, 77 skipped (no root, or SOCKAGENT_SKIP_CONTAINER=1
# and SOCKAGENT_SKIP_DEB_INSTALL=1).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${SOCKAGENT_SKIP_CONTAINER:-0}" = 1 ] && [ "${SOCKAGENT_SKIP_DEB_INSTALL:-0}" = 1 ]; then
  echo "SKIP: no container step wanted"; exit 77
fi
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=tests/container/podman-env.sh
source "$ROOT/tests/container/podman-env.sh"
install_podman_tools
podman_env "$ROOT" "$TMP"
started=$(date +%s)
ensure_base_image
echo "base image ready ($(($(date +%s) - started)) s)"
