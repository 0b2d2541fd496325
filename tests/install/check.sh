#!/usr/bin/env bash
# The install and the Debian package, as an operator and a harness author
# meet them:
#   1. `cmake --install BUILD --prefix TMP` puts sockagentd, sockctl, the
#      unit, the config, the client library, its headers and the CMake
#      package in place;
#   2. examples/cmake-consumer configures and builds against that prefix
#      (find_package(sockagent CONFIG), sockagent::client) and runs against
#      the installed sockagentd on loopback;
#   3. cpack builds sockagent_<version>_<arch>.deb; its contents
#      (dpkg-deb -c) and control fields (dpkg-deb -I: Depends, conffiles)
#      are checked, and the unpacked agent serves with the packaged config;
#   4. unless SOCKAGENT_SKIP_DEB_INSTALL=1 (or without root/podman: skipped,
#      said so), `apt install ./sockagent_*.deb` into a throwaway Debian 12
#      container (the base image tests/container/check.sh makes) and the
#      installed agent starts from /etc/sockagent/sockagentd.textproto and
#      answers `sockctl health`.
#   tests/install/check.sh BUILD_DIR [DEB]  (BUILD_DIR has sockagentd and sockctl built;
#                                           DEB: the .deb cpack already made from it)
# Network: the agents listen on 127.0.0.1 port 0; step 4's apt fetches the
# package's dependencies from the machine's apt sources, like the container
# check.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [DEB]}" && pwd)
PREBUILT_DEB=${2:+$(realpath "$2")}
PYTHON=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d)
PIDS=()
CONTAINER=
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$CONTAINER" ] && podman rm -f "$CONTAINER" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# start_agent SOCKAGENTD ARGS...: starts it on 127.0.0.1:0, sets $TARGET.
start_agent() {
  local bin=$1
  shift
  rm -f "$TMP/port"
  "$bin" --listen 127.0.0.1:0 --port-file "$TMP/port" "$@" >"$TMP/agent.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do
    [ -s "$TMP/port" ] && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$TMP/agent.log" >&2; fail "$bin exited at start"; }
    sleep 0.1
  done
  [ -s "$TMP/port" ] || fail "$bin wrote no port file"
  TARGET=127.0.0.1:$(cat "$TMP/port")
}
stop_agent() {
  kill -TERM "${PIDS[-1]}"
  wait "${PIDS[-1]}" || fail "agent exit $? after SIGTERM"
  unset 'PIDS[-1]'
}

# --- 1. cmake --install ----------------------------------------------------------
P=$TMP/prefix
cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" || { cat "$TMP/install.log"; fail "cmake --install"; }
for f in bin/sockagentd bin/sockctl lib/systemd/system/sockagentd.service \
  etc/sockagent/sockagentd.textproto share/doc/sockagent/examples/policy.textproto \
  lib/libsockagent_client.a include/sockagent/client/agent.h \
  include/sockagent/sockagent/v1/sockagent.pb.h include/sockagent/proto/errno_status.h \
  lib/cmake/sockagent/sockagentConfig.cmake lib/cmake/sockagent/sockagentTargets.cmake; do
  [ -e "$P/$f" ] || fail "cmake --install did not install $f"
done
grep -q "ExecStart=$P/bin/sockagentd --config $P/etc/sockagent/sockagentd.textproto" \
  "$P/lib/systemd/system/sockagentd.service" ||
  fail "installed unit does not point at the installed agent and config: $(grep ExecStart "$P/lib/systemd/system/sockagentd.service")"
pass "cmake --install: binaries, unit, config, library, headers, CMake package"

# --- 2. the example consumer ------------------------------------------------------
cmake -S "$ROOT/examples/cmake-consumer" -B "$TMP/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$P" >"$TMP/consumer.log" 2>&1 || { cat "$TMP/consumer.log"; fail "consumer configure"; }
cmake --build "$TMP/consumer" >>"$TMP/consumer.log" 2>&1 || { cat "$TMP/consumer.log"; fail "consumer build"; }
start_agent "$P/bin/sockagentd"
out=$(timeout 20 "$TMP/consumer/hello_agent" "$TARGET") || fail "hello_agent exit $?: $out"
[[ $out =~ ^hello\ via\ 127\.0\.0\.1:[0-9]+$ ]] || fail "hello_agent printed '$out'"
[ "$(timeout 10 "$P/bin/sockctl" --agent "$TARGET" health)" == SERVING ] || fail "installed sockctl health"
stop_agent
pass "examples/cmake-consumer builds with find_package(sockagent) and talks to the installed agent"

# --- 3. the .deb ------------------------------------------------------------------
if [ -n "$PREBUILT_DEB" ]; then
  mkdir -p "$TMP/pkg" && cp "$PREBUILT_DEB" "$TMP/pkg/"
else
  (cd "$BUILD" && cpack -G DEB -B "$TMP/pkg" >"$TMP/cpack.log" 2>&1) || { cat "$TMP/cpack.log"; fail "cpack"; }
fi
DEB=$(ls "$TMP"/pkg/sockagent_*.deb)
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | sort >"$TMP/contents"
for f in /usr/bin/sockagentd /usr/bin/sockctl /usr/lib/systemd/system/sockagentd.service \
  /etc/sockagent/sockagentd.textproto /usr/share/doc/sockagent/examples/policy.textproto; do
  grep -qx "$f" "$TMP/contents" || fail ".deb lacks $f: $(cat "$TMP/contents")"
done
grep -q '^/usr/local' "$TMP/contents" && fail ".deb installs under /usr/local"
grep -q '^/usr/include\|\.a$' "$TMP/contents" && fail ".deb carries development files"
[ "$(dpkg-deb -f "$DEB" Package)" == sockagent ] || fail "package name"
dpkg-deb -f "$DEB" Depends | grep -q 'libgrpc++1.51' || fail "Depends: $(dpkg-deb -f "$DEB" Depends)"
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/sockagent/sockagentd.textproto || fail "conffiles"
dpkg-deb -x "$DEB" "$TMP/unpacked"
grep -q '^ExecStart=/usr/bin/sockagentd --config /etc/sockagent/sockagentd.textproto' \
  "$TMP/unpacked/usr/lib/systemd/system/sockagentd.service" || fail "packaged unit ExecStart"
readelf -S "$TMP/unpacked/usr/bin/sockagentd" >"$TMP/sections.txt"
grep -q '\.debug_info' "$TMP/sections.txt" && fail "packaged binaries not stripped"
"$TMP/unpacked/usr/bin/sockagentd" --check-config "$TMP/unpacked/etc/sockagent/sockagentd.textproto" >/dev/null ||
  fail "packaged config rejected"
start_agent "$TMP/unpacked/usr/bin/sockagentd" --config "$TMP/unpacked/etc/sockagent/sockagentd.textproto" \
  --metrics-listen 127.0.0.1:0
[ "$(timeout 10 "$TMP/unpacked/usr/bin/sockctl" --agent "$TARGET" health)" == SERVING ] || fail "unpacked agent health"
stop_agent
pass "$(basename "$DEB"): contents, Depends, conffiles; the unpacked agent serves with the packaged config"

# --- 4. apt install into a throwaway Debian 12 ------------------------------------
# The base image and the clone's image store of tests/container/check.sh
# (tests/container/podman-env.sh), made here if it is not there yet.
if [ "${SOCKAGENT_SKIP_DEB_INSTALL:-0}" = 1 ]; then
  echo "skip: apt install of the .deb (SOCKAGENT_SKIP_DEB_INSTALL=1)"
elif [ "$(id -u)" != 0 ]; then
  echo "skip: apt install of the .deb (needs root for podman with runc)"
else
  # shellcheck source=tests/container/podman-env.sh
  source "$ROOT/tests/container/podman-env.sh"
  install_podman_tools
  podman_env "$ROOT" "$TMP"
  ensure_base_image || fail "no base image"
  BASE_IMAGE=$SOCKAGENT_BASE_IMAGE
  CONTAINER=sockagent-deb-check-$$
  cp "$DEB" "$TMP/pkg/install.deb"
  # Host network for apt's downloads; the agent listens on 127.0.0.1 port 0
  # (the flag wins over the packaged config's 7700), so it collides with
  # nothing on the host.
  podman run --name "$CONTAINER" --network host -v "$TMP/pkg:/pkg:ro" "$BASE_IMAGE" /bin/bash -c '
    set -e
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt install -y -q --no-install-recommends /pkg/install.deb >/tmp/apt.log 2>&1 ||
      { cat /tmp/apt.log; exit 1; }
    dpkg -s sockagent | grep -q "^Status: install ok installed"
    test -f /usr/lib/systemd/system/sockagentd.service
    sockagentd --check-config /etc/sockagent/sockagentd.textproto
    sockagentd --config /etc/sockagent/sockagentd.textproto --listen 127.0.0.1:0 \
      --metrics-listen 127.0.0.1:0 --port-file /tmp/port 2>/tmp/agent.log &
    for i in $(seq 300); do [ -s /tmp/port ] && break; sleep 0.1; done
    test -s /tmp/port || { cat /tmp/agent.log; exit 1; }
    sockctl --agent 127.0.0.1:$(cat /tmp/port) --timeout 5s health
    kill -TERM %1; wait %1
  ' >"$TMP/container.log" 2>&1 || { tail -n 30 "$TMP/container.log"; fail "apt install of the .deb in $BASE_IMAGE"; }
  grep -qx SERVING "$TMP/container.log" || fail "installed agent did not serve: $(tail "$TMP/container.log")"
  pass "apt install ./$(basename "$DEB") on Debian 12 ($BASE_IMAGE): installed, starts, SERVING"
fi
echo "PASS: install check"
