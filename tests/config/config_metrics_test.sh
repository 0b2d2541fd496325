#!/usr/bin/env bash
# Operating sockagentd: config file, --check-config, JSON logs, SIGHUP,
# Prometheus metrics, a busy metrics port.
#   config_metrics_test.sh SOCKAGENTD SOCKCTL
# Real processes on 127.0.0.1 port 0 only; every wait is bounded; every
# process it starts is killed by pid on exit.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL}
PYTHON=${PYTHON:-/usr/bin/python3}
STEP_TIMEOUT=20

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.log "$TMP"/*.err; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}
pass() { echo "ok: $*"; }
sc() { timeout "$STEP_TIMEOUT" "$SOCKCTL" "$@"; }
# wait_for FILE PATTERN: up to 10 s for a line matching PATTERN.
wait_for() {
  local i
  for i in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "timed out waiting for '$2' in $1"
}
# scrape PORT: the /metrics page (python3, no curl needed).
scrape() {
  "$PYTHON" -c 'import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode())' "$1"
}

# --- --check-config --------------------------------------------------------------
cat >"$TMP/good.textproto" <<'CFG'
# sockagentd config (protobuf text format)
listen: "127.0.0.1:0"
session_ttl: "7s"
max_sessions: 33
log_format: "json"
log_level: "debug"
metrics_listen: "127.0.0.1:0"
health_listen: "127.0.0.1:0"
io_threads: 3
CFG
echo '{"sessionTtl": "9s", "maxSessions": 44, "logLevel": "warn"}' >"$TMP/good.json"
printf 'log_level: "info"\nsesion_ttl: "5s"\n' >"$TMP/typo.textproto"
printf '# comment\nsession_ttl: "soon"\n' >"$TMP/bad_duration.textproto"
printf '{\n  "max_sessions": 0\n}\n' >"$TMP/bad_range.json"
printf '{\n  "log_level": "info",\n  "sesion_ttl": "5s"\n}\n' >"$TMP/typo.json"
printf 'session_ttl: \n' >"$TMP/syntax.textproto"
printf 'io_threads: 0\n' >"$TMP/bad_io_threads.textproto"

"$SOCKAGENTD" --check-config "$TMP/good.textproto" >"$TMP/check.out" \
  || fail "good.textproto rejected: $(cat "$TMP/check.out")"
"$SOCKAGENTD" --check-config "$TMP/good.json" >"$TMP/check.out" \
  || fail "good.json rejected: $(cat "$TMP/check.out")"
# A bad file: exit 2, one line "sockagentd: FILE:LINE[:COLUMN]: what", no
# CLI11 "Run with --help".
expect_invalid() {  # expect_invalid FILE REGEX-OF-THE-MESSAGE
  local rc=0
  "$SOCKAGENTD" --check-config "$1" >"$TMP/check.out" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "$1: exit $rc, want 2: $(cat "$TMP/check.out")"
  grep -Eq -- "^sockagentd: $1:$2" "$TMP/check.out" ||
    fail "$1: message is not '$1:$2': $(cat "$TMP/check.out")"
  [ "$(wc -l <"$TMP/check.out")" -eq 1 ] || fail "$1: more than one line: $(cat "$TMP/check.out")"
}
expect_invalid "$TMP/typo.textproto" '2:[0-9]+: unknown field "sesion_ttl" \(did you mean "session_ttl"\?\)'
expect_invalid "$TMP/typo.json" '3: unknown field "sesion_ttl" \(did you mean "session_ttl"\?\)'
expect_invalid "$TMP/bad_duration.textproto" '2: session_ttl: not a positive duration'
expect_invalid "$TMP/bad_range.json" '2: max_sessions: .*range'
expect_invalid "$TMP/syntax.textproto" '2:1: '
expect_invalid "$TMP/bad_io_threads.textproto" '1: io_threads: Value 0 not in range 1 to 256'
rc=0
"$SOCKAGENTD" --io-threads 300 >"$TMP/check.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q -- '^sockagentd: --io-threads: Value 300 not in range' "$TMP/check.out" ||
  fail "--io-threads 300: exit $rc: $(cat "$TMP/check.out")"
rc=0
"$SOCKAGENTD" --check-config "$TMP/missing.textproto" >"$TMP/check.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "missing file: exit $rc, want 2"
grep -q "^sockagentd: $TMP/missing.textproto: cannot be read: No such file" "$TMP/check.out" ||
  fail "missing file: $(cat "$TMP/check.out")"
pass "--check-config accepts text and JSON; a bad file is exit 2 with FILE:LINE and what is wrong"

# --- a config file, a flag overriding it, JSON logs, metrics ---------------------
"$SOCKAGENTD" --config "$TMP/good.textproto" --max-sessions 55 \
  --port-file "$TMP/port" 2>"$TMP/agent.log" &
AGENT=$!
PIDS+=("$AGENT")
wait_for "$TMP/port" '[0-9]'
wait_for "$TMP/agent.log" 'metrics on'
grep -q 'incarnation [0-9a-f]*, 3 io threads' "$TMP/agent.log" ||
  fail "io_threads from the config file not applied: $(cat "$TMP/agent.log")"
export SOCKAGENT_AGENT="127.0.0.1:$(cat "$TMP/port")"
sc --json info >"$TMP/info.json"
"$PYTHON" - "$TMP/info.json" <<'PY' || fail "limits: $(cat "$TMP/info.json")"
import json, sys
info = json.load(open(sys.argv[1]))
limits = info["limits"]
assert limits["max_sessions"] == 55, limits            # the flag wins
assert limits["default_session_ttl_s"] == 7, limits
PY
pass "config file applied, flag overrides it"

"$PYTHON" - "$TMP/agent.log" <<'PY' || fail "log is not JSON lines"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines
for l in lines:
    o = json.loads(l)
    assert {"time", "level", "msg"} <= set(o), o
PY
pass "JSON log lines"

METRICS_PORT=$(grep -o 'metrics on [^ ]* (port [0-9]*' "$TMP/agent.log" | grep -o '[0-9]*$')
SOCKAGENT_SESSION=$(sc session open --ttl 60s)
export SOCKAGENT_SESSION
U1=$(sc socket --type dgram)
U2=$(sc socket --type dgram)
U2ADDR=$(sc bind "$U2" 127.0.0.1:0)
sc sendto "$U1" "$U2ADDR" "0123456789" >/dev/null
sc recvfrom "$U2" >/dev/null 2>&1
C=$(sc socket)
sc connect "$C" 127.0.0.1:1 2>/dev/null && fail "connect to port 1 succeeded"
# The agent's own metrics port is on the hard-deny list: refused before any
# packet is sent, and counted by rule.
D=$(sc socket)
sc connect "$D" "127.0.0.1:$METRICS_PORT" 2>"$TMP/deny.err" \
  && fail "connect to the agent's own metrics port was allowed"
grep -q PERMISSION_DENIED "$TMP/deny.err" || fail "not denied: $(cat "$TMP/deny.err")"
sc close "$D"
scrape "$METRICS_PORT" >"$TMP/metrics.txt" || fail "scrape failed"
for series in \
  'sockagent_rpcs_total{code="OK",method="SendTo",service="sockagent.v1.SocketAgent"} 1' \
  'sockagent_rpcs_total{code="UNAVAILABLE",method="Connect",service="sockagent.v1.SocketAgent"} 1' \
  'sockagent_socket_errors_total{errno="ECONNREFUSED",method="Connect"} 1' \
  'sockagent_bytes_total{direction="out"} 10' \
  'sockagent_bytes_total{direction="in"} 10' \
  'sockagent_datagrams_total{direction="in"} 1' \
  'sockagent_sessions 1' \
  'sockagent_open_sockets 3' \
  'sockagent_open_sockets_by_kind{family="inet",state="bound",type="dgram"} 1' \
  'sockagent_open_sockets_by_kind{family="inet",state="open",type="dgram"} 1' \
  'sockagent_policy_denials_total{decision="deny",rule="hard-deny:' \
  'sockagent_active_streams 0' \
  'sockagent_build_info{'; do
  grep -qF "$series" "$TMP/metrics.txt" || fail "metrics lack '$series'"
done
grep -q '^sockagent_rpc_duration_seconds_bucket{le="0.001",method="Socket"' "$TMP/metrics.txt" \
  || grep -q '^sockagent_rpc_duration_seconds_bucket{.*method="Socket"' "$TMP/metrics.txt" \
  || fail "no latency histogram for Socket"
pass "metrics: RPCs by method and code, errno, bytes, datagrams, sessions, sockets"

# --- the health-only port ---------------------------------------------------------
wait_for "$TMP/agent.log" 'health on'
HEALTH_PORT=$(grep -o 'health on [^ ]* (port [0-9]*' "$TMP/agent.log" | grep -o '[0-9]*$')
[ "$(sc --agent "127.0.0.1:$HEALTH_PORT" health)" == SERVING ] \
  || fail "health port does not answer SERVING"
rc=0
sc --agent "127.0.0.1:$HEALTH_PORT" gethostname >/dev/null 2>"$TMP/health_api.err" || rc=$?
[ "$rc" -ne 0 ] || fail "the health port serves the socket API"
grep -q UNIMPLEMENTED "$TMP/health_api.err" || fail "health port API call: $(cat "$TMP/health_api.err")"
H=$(sc socket)
sc connect "$H" "127.0.0.1:$HEALTH_PORT" 2>"$TMP/deny.err" \
  && fail "connect to the agent's own health port was allowed"
grep -q 'hard-deny:agent-port' "$TMP/deny.err" || fail "health port not protected: $(cat "$TMP/deny.err")"
sc close "$H"
pass "health port: SERVING, no socket API, protected like the API port"

# --- a busy metrics port is a clean startup error ---------------------------------
rc=0
timeout "$STEP_TIMEOUT" "$SOCKAGENTD" --listen 127.0.0.1:0 \
  --metrics-listen "127.0.0.1:$METRICS_PORT" 2>"$TMP/busy.err" || rc=$?
[ "$rc" -eq 1 ] || fail "busy metrics port: exit $rc, expected 1"
grep -q "cannot serve metrics on 127.0.0.1:$METRICS_PORT: Address already in use (EADDRINUSE)" "$TMP/busy.err" \
  || fail "busy metrics port: $(cat "$TMP/busy.err")"
grep -q "CivetServer" "$TMP/busy.err" && fail "busy metrics port: CivetServer's message: $(cat "$TMP/busy.err")"
pass "busy metrics port: exit 1 with the reason"
rc=0
timeout "$STEP_TIMEOUT" "$SOCKAGENTD" --listen 127.0.0.1:0 \
  --health-listen "127.0.0.1:$HEALTH_PORT" 2>"$TMP/busy_health.err" || rc=$?
[ "$rc" -eq 1 ] || fail "busy health port: exit $rc, expected 1"
grep -q "cannot serve health on 127.0.0.1:$HEALTH_PORT" "$TMP/busy_health.err" \
  || fail "busy health port: $(cat "$TMP/busy_health.err")"
pass "busy health port: exit 1 with the reason"

# --- SIGHUP re-reads the log level ------------------------------------------------
sed -i 's/log_level: "debug"/log_level: "warn"/' "$TMP/good.textproto"
kill -HUP "$AGENT"
wait_for "$TMP/agent.log" 'log level warn'
lines_before=$(wc -l <"$TMP/agent.log")
sc session close
kill -TERM "$AGENT"
for i in $(seq 100); do kill -0 "$AGENT" 2>/dev/null || break; sleep 0.1; done
rc=0
wait "$AGENT" || rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc"
# At warn, the drain's info lines are no longer logged.
[ "$(wc -l <"$TMP/agent.log")" -eq "$lines_before" ] \
  || fail "info lines logged after SIGHUP set warn: $(tail -3 "$TMP/agent.log")"
pass "SIGHUP reloads the log level; SIGTERM exits 0"
echo "config_metrics_test: all checks passed"
