#!/usr/bin/env bash
# Container check: builds deploy/Dockerfile with podman + runc from a Debian 12
# base image made locally with mmdebstrap (from this machine's own apt
# sources), runs it, checks health from the host with sockctl and through the
# image's HEALTHCHECK, checks the runtime image (non-root, no compiler), then
# sends SIGTERM and expects exit 0 within the drain deadline.
#
#   tests/container/check.sh [SOCKCTL]      (default: build/client/sockctl)
#
# SOCKAGENT_SKIP_CONTAINER=1 skips it. Needs root (rootful podman); installs
# podman, runc and mmdebstrap when missing. Nothing comes from state outside
# the clone: podman's image store lives in .cache/container/storage and the
# base image tarball in .cache/container/ (both ignored by git), so on a fresh
# clone every step runs (mmdebstrap, import, build), as on a new CI machine. The container uses the host's
# network namespace and the agent listens on a free 127.0.0.1 port: without
# TLS the agent serves loopback only, so a published port (which arrives on
# the container's eth0) would be refused by design.
# Exit: 0 passed, 1 failed, 77 skipped.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SOCKCTL=${1:-$ROOT/build/client/sockctl}
SKIP=77
DRAIN_SECONDS=5
skip() { echo "SKIP: $*"; exit "$SKIP"; }
[ "${SOCKAGENT_SKIP_CONTAINER:-0}" != 1 ] || skip "SOCKAGENT_SKIP_CONTAINER=1"
[ "$(id -u)" -eq 0 ] || skip "needs root for podman with runc and cgroupfs"
[ -x "$SOCKCTL" ] || { echo "FAIL: no sockctl at $SOCKCTL (build first)"; exit 1; }

missing=()
for tool in podman:podman runc:runc mmdebstrap:mmdebstrap; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
  echo "container check: installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

CACHE=$ROOT/.cache/container
BASE_IMAGE=localhost/sockagent-bookworm-min:latest
IMAGE=localhost/sockagent:check
NAME=sockagent-check-$$
TMP=$(mktemp -d)
started=$(date +%s)
step() { echo "== container check: $* ($(($(date +%s) - started)) s)"; }
cleanup() {
  podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  podman logs "$NAME" 2>&1 | tail -n 20 >&2 || true
  exit 1
}

# runc + cgroupfs, file events, and ulimits no higher than this shell's hard
# limits (runc cannot raise them): crun and the systemd cgroup manager do not
# work here.
# (nproc above 4096 is refused here even under the hard limit.)
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
nproc=4096
cat >"$TMP/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF=$TMP/containers.conf
# The image store is the clone's own: an image left in the machine's store by
# an earlier run cannot stand in for a step that no longer works.
mkdir -p "$CACHE/storage"
cat >"$TMP/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$CACHE/storage"
runroot = "$TMP/run"
CONF
export CONTAINERS_STORAGE_CONF=$TMP/storage.conf

# --- base image --------------------------------------------------------------
mkdir -p "$CACHE"
if ! podman image exists "$BASE_IMAGE"; then
  if [ ! -s "$CACHE/bookworm-min.tar" ]; then
    step "mmdebstrap bookworm minbase"
    # --format: mmdebstrap picks the format from the file name otherwise, and
    # "x.tar.part" would be written as a directory.
    mmdebstrap --variant=minbase --mode=root --format=tar bookworm \
      "$CACHE/bookworm-min.tar.part" /etc/apt/sources.list.d/debian.sources >"$TMP/mmdebstrap.log" 2>&1 \
      || { tail -n 30 "$TMP/mmdebstrap.log"; fail "mmdebstrap failed"; }
    [ -f "$CACHE/bookworm-min.tar.part" ] || fail "mmdebstrap did not write a tar file"
    mv "$CACHE/bookworm-min.tar.part" "$CACHE/bookworm-min.tar"
  fi
  step "podman import"
  podman import --change 'CMD ["/bin/bash"]' "$CACHE/bookworm-min.tar" "$BASE_IMAGE" >/dev/null
fi

# --- build ------------------------------------------------------------------------
step "podman build (compiles sockagentd and sockctl; ctest runs on the host)"
podman build --format docker --network host --pull=never \
  --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg JOBS="${JOBS:-2}" --build-arg RUN_TESTS=0 \
  -f "$ROOT/deploy/Dockerfile" -t "$IMAGE" "$ROOT" >"$TMP/build.log" 2>&1 \
  || { tail -n 60 "$TMP/build.log"; fail "podman build failed"; }

# --- the runtime image ------------------------------------------------------------
step "inspect runtime image"
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = "10001:10001" ] || fail "image user is '$user', expected 10001:10001"
compilers=$(podman run --rm --no-healthcheck --network none --entrypoint /bin/sh "$IMAGE" -c \
  'for c in cc gcc g++ c++ clang cmake; do command -v $c; done; true')
[ -z "$compilers" ] || fail "compilers in the runtime image: $compilers"
uid=$(podman run --rm --no-healthcheck --network none --entrypoint /usr/bin/id "$IMAGE" -u)
[ "$uid" = 10001 ] || fail "runs as uid $uid"

# --- run, health, SIGTERM ----------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
step "podman run (agent on 127.0.0.1:$PORT)"
# No systemd here to time the HEALTHCHECK: it is run once by hand below.
podman run -d --name "$NAME" --network host --health-interval disable \
  -e SOCKAGENT_AGENT="127.0.0.1:$PORT" "$IMAGE" \
  --config /etc/sockagent/sockagentd.textproto --listen "127.0.0.1:$PORT" \
  --drain-timeout "${DRAIN_SECONDS}s" >/dev/null 2>"$TMP/run.err" \
  || { cat "$TMP/run.err"; fail "podman run failed"; }
ok=0
for i in $(seq 100); do
  if timeout 5 "$SOCKCTL" --agent "127.0.0.1:$PORT" --timeout 2s health >/dev/null 2>&1; then
    ok=1; break
  fi
  [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" = true ] || fail "container exited"
  sleep 0.2
done
[ "$ok" = 1 ] || fail "sockctl health from the host never saw SERVING"
echo "ok: sockctl health from the host: SERVING"
podman healthcheck run "$NAME" >/dev/null || fail "the image's HEALTHCHECK failed"
echo "ok: HEALTHCHECK (sockctl inside the container) passes"
podman logs "$NAME" 2>&1 | head -n 1 | python3 -c 'import json,sys; json.loads(sys.stdin.readline())' \
  || fail "container log is not JSON lines"

step "SIGTERM"
t0=$(date +%s)
podman kill --signal TERM "$NAME" >/dev/null
code=$(timeout $((DRAIN_SECONDS + 10)) podman wait "$NAME") || fail "no exit within the drain deadline"
elapsed=$(($(date +%s) - t0))
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
[ "$elapsed" -le $((DRAIN_SECONDS + 2)) ] || fail "took ${elapsed}s to exit"
echo "ok: SIGTERM -> exit 0 in ${elapsed}s"
step "passed"
