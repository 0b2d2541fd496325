#!/usr/bin/env bash
# Container check: builds deploy/Dockerfile with podman + runc from a Debian 12
# base image made locally with mmdebstrap (from this machine's own apt
# sources; tests/container/base-image.sh), runs it, checks health from the
# host with sockctl and through the image's HEALTHCHECK, checks the runtime
# image (non-root, no compiler), then sends SIGTERM and expects exit 0 within
# the drain deadline.
#
#   tests/container/check.sh [--deb DEB] [SOCKCTL]   (default: build/client/sockctl)
#
# --deb DEB: the image installs that .deb (CI's: the build it has tested)
# instead of compiling inside the image; the build context is then only the
# .deb and the container config. Without it the image compiles from source,
# as users build it.
#
# SOCKAGENT_SKIP_CONTAINER=1 skips it. Needs root (rootful podman); installs
# podman, runc and mmdebstrap when missing. Nothing comes from state outside
# the clone: podman's image store lives in .cache/container/storage and the
# base image tarball in .cache/container/ (both ignored by git), so on a fresh
# clone every step runs (mmdebstrap, import, build), as on a new CI machine.
# The container uses the host's network namespace and the agent listens on a
# free 127.0.0.1 port: without TLS the agent serves loopback only, so a
# published port (which arrives on the container's eth0) would be refused by
# design.
# Exit: 0 passed, 1 failed, 77 skipped.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEB=
if [ "${1:-}" = --deb ]; then DEB=$(realpath "$2"); shift 2; fi
SOCKCTL=${1:-$ROOT/build/client/sockctl}
SKIP=77
DRAIN_SECONDS=5
skip() { echo "SKIP: $*"; exit "$SKIP"; }
[ "${SOCKAGENT_SKIP_CONTAINER:-0}" != 1 ] || skip "SOCKAGENT_SKIP_CONTAINER=1"
[ "$(id -u)" -eq 0 ] || skip "needs root for podman with runc and cgroupfs"
[ -x "$SOCKCTL" ] || { echo "FAIL: no sockctl at $SOCKCTL (build first)"; exit 1; }
[ -z "$DEB" ] || [ -s "$DEB" ] || { echo "FAIL: no .deb at $DEB"; exit 1; }

# shellcheck source=tests/container/podman-env.sh
source "$ROOT/tests/container/podman-env.sh"
install_podman_tools

BASE_IMAGE=$SOCKAGENT_BASE_IMAGE
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

podman_env "$ROOT" "$TMP"
step "base image"
ensure_base_image

# --- build ------------------------------------------------------------------------
if [ -n "$DEB" ]; then
  step "podman build from $(basename "$DEB") (no compile)"
  mkdir -p "$TMP/context/deploy/config"
  cp "$DEB" "$TMP/context/sockagent.deb"
  cp "$ROOT/deploy/config/container.textproto" "$TMP/context/deploy/config/"
  build_args=(--build-arg DEB_FROM=prebuilt --build-arg SOCKAGENT_DEB=sockagent.deb)
  context=$TMP/context
else
  step "podman build (compiles sockagentd and sockctl; ctest runs on the host)"
  build_args=(--build-arg JOBS="${JOBS:-2}" --build-arg RUN_TESTS=0)
  context=$ROOT
fi
podman build --format docker --network host --pull=never \
  --build-arg BASE_IMAGE="$BASE_IMAGE" "${build_args[@]}" \
  -f "$ROOT/deploy/Dockerfile" -t "$IMAGE" "$context" >"$TMP/build.log" 2>&1 \
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
# Every line the agent has logged so far must parse as JSON. The log goes to a
# file first: reading only its first line through a pipe (head -n 1) lets
# podman die of SIGPIPE, which pipefail reports as a failure.
podman logs "$NAME" >"$TMP/agent.log" 2>&1 || fail "podman logs failed"
python3 - "$TMP/agent.log" <<'PY' || fail "container log is not JSON lines"
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
if not lines:
    sys.exit("the container logged nothing")
for n, line in enumerate(lines, 1):
    try:
        json.loads(line)
    except ValueError as e:
        sys.exit(f"line {n} is not JSON ({e}): {line.rstrip()}")
PY
echo "ok: container log is JSON lines ($(grep -c . "$TMP/agent.log") lines)"

step "SIGTERM"
t0=$(date +%s)
podman kill --signal TERM "$NAME" >/dev/null
code=$(timeout $((DRAIN_SECONDS + 10)) podman wait "$NAME") || fail "no exit within the drain deadline"
elapsed=$(($(date +%s) - t0))
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
[ "$elapsed" -le $((DRAIN_SECONDS + 2)) ] || fail "took ${elapsed}s to exit"
echo "ok: SIGTERM -> exit 0 in ${elapsed}s"
step "passed"
