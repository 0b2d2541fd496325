# The harness proxy_test.sh and proxy_scenario_test.sh share; sourced after
# `set -euo pipefail`. Sets PYTHON (default /usr/bin/python3), PEERS
# (proxy_peers.py), TMP (removed at exit) and PIDS (every process started
# here, stopped by pid at exit), and defines fail, pass, wait_for,
# start_agent and start_peer_server. Needs SOCKAGENTD.

PYTHON=${PYTHON:-/usr/bin/python3}
PEERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/proxy_peers.py"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
# fail WHAT: says what failed, shows the end of every output and log file.
fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.out "$TMP"/*.err "$TMP"/*.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}
pass() { echo "ok: $*"; }
# wait_for FILE PATTERN: bounded wait (30 s) for a line in a file.
wait_for() {
  local i
  for i in $(seq 300); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "timed out waiting for '$2' in $1"
}
# start_agent NAME [ARGS...]: a sockagentd on 127.0.0.1 (log NAME.log); sets
# AGENT_ADDR. Not called in $(...): the pid must reach PIDS in this shell,
# or cleanup would leave the agent running.
start_agent() {
  local name=$1; shift
  "$SOCKAGENTD" --listen 127.0.0.1:0 --port-file "$TMP/$name.port" "$@" \
    >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  wait_for "$TMP/$name.port" .
  AGENT_ADDR="127.0.0.1:$(cat "$TMP/$name.port")"
}
# start_peer_server KIND NAME: proxy_peers.py's KIND-server (tcp, udp) on
# 127.0.0.1 (stderr NAME-server.err); sets PEER_ADDR. Not called in $(...).
start_peer_server() {
  "$PYTHON" "$PEERS" "$1-server" "$TMP/$2.port" 2>"$TMP/$2-server.err" &
  PIDS+=($!)
  wait_for "$TMP/$2.port" .
  PEER_ADDR="127.0.0.1:$(cat "$TMP/$2.port")"
}
