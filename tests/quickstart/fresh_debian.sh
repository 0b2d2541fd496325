#!/usr/bin/env bash
# Measures the quick start on a fresh Debian 12: a minbase container (the
# base image of tests/container/check.sh) with nothing installed gets the
# repository (git archive of HEAD) and runs `bash deploy/run-agent.sh` as a
# new user would; the time until `sockctl health` answers SERVING is printed.
# Reports, never asserts. Root, podman and runc; the container uses the
# host network for apt (the agent listens on 127.0.0.1 port 0).
#   tests/quickstart/fresh_debian.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${SOCKAGENT_CONTAINER_CACHE:-$ROOT/.cache/container}
BASE_TAR=${SOCKAGENT_BASE_TAR:-$CACHE/bookworm-min.tar}
BASE_IMAGE=localhost/sockagent-bookworm-min:latest
[ "$(id -u)" = 0 ] && command -v podman >/dev/null || { echo "SKIP: needs root and podman"; exit 77; }
TMP=$(mktemp -d)
NAME=sockagent-fresh-$$
trap 'podman rm -f "$NAME" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
mkdir -p "$CACHE/storage"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$CACHE/storage" "$TMP/run" >"$TMP/storage.conf"
export CONTAINERS_STORAGE_CONF=$TMP/storage.conf
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
  "$nofile" "$nofile" >"$TMP/containers.conf"
export CONTAINERS_CONF=$TMP/containers.conf
if ! podman image exists "$BASE_IMAGE"; then
  [ -s "$BASE_TAR" ] || { echo "SKIP: no base image and no $BASE_TAR (run tests/container/check.sh)"; exit 77; }
  podman import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null 2>&1
fi
git -C "$ROOT" archive --format=tar HEAD >"$TMP/src.tar"
podman run --name "$NAME" --network host -v "$TMP:/in:ro" "$BASE_IMAGE" /bin/bash -c '
  set -e
  mkdir /src && tar -xf /in/src.tar -C /src && cd /src
  start=$(date +%s)
  bash deploy/run-agent.sh --listen 127.0.0.1:0 --port-file /tmp/port >/tmp/run.log 2>&1 &
  for i in $(seq 36000); do [ -s /tmp/port ] && break; kill -0 $! 2>/dev/null || { tail -30 /tmp/run.log; exit 1; }; sleep 0.1; done
  build/client/sockctl --agent 127.0.0.1:$(cat /tmp/port) --timeout 5s health
  echo "fresh Debian 12: serving after $(($(date +%s) - start)) s ($(nproc) cores)"
  kill -TERM %1; wait %1
'
