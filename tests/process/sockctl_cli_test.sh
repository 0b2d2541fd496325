#!/usr/bin/env bash
# Process-level test of sockctl's command-line contract against a real
# sockagentd (issue 16):
#   sockctl_cli_test.sh SOCKAGENTD SOCKCTL
# - every row of the exit-code table (0 ok, 1 negative answer, 2 usage, 3 RPC
#   failure without errno, 4 errno, 5 resolution failure), each produced by
#   a real process;
# - a refused connection reports at once (bounded by `timeout 5`, so a
#   10 s wait fails the test; no timing is asserted beyond that bound);
# - a missing --agent port means 7700;
# - JSON: snake_case keys, integers as numbers, enums as the text's words,
#   durations as seconds in "_s" keys;
# - messages: no doubled prefix, "sockctl:" on usage errors, help texts whose
#   summary is not cut and whose "Example:" is followed by an example.
# Touches only 127.0.0.1 (and, for the resolution row, nothing: the agent
# resolves a service name from /etc/services). Every process it starts is
# stopped by pid.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL}
PYTHON=${PYTHON:-/usr/bin/python3}

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  [ -s "$TMP/agent.log" ] && { echo "--- agent.log" >&2; tail -n 20 "$TMP/agent.log" >&2; }
  exit 1
}
pass() { echo "ok: $*"; }

# sockctl bounded to 5 s: the fail-fast rows would take 10 s without it.
sc() { timeout 5 "$SOCKCTL" "$@"; }

# expect_rc WANT WHAT -- ARGS...: runs sockctl ARGS, checks the exit code,
# keeps stdout in $TMP/out and stderr in $TMP/err.
expect_rc() {
  local want=$1 what=$2
  shift 3
  local rc=0
  sc "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  [ "$rc" == "$want" ] ||
    fail "$what: exit $rc, want $want (stderr: $(cat "$TMP/err"))"
}
expect_err() {  # expect_err WHAT REGEX: stderr of the last expect_rc matches
  grep -Eq -- "$2" "$TMP/err" || fail "$1: stderr '$(cat "$TMP/err")' does not match /$2/"
}

"$SOCKAGENTD" --listen 127.0.0.1:0 --port-file "$TMP/port" \
  --label zone=z2 --label node=cli-test >"$TMP/agent.log" 2>&1 &
AGENT=$!
PIDS+=("$AGENT")
for _ in $(seq 300); do
  [ -s "$TMP/port" ] && break
  kill -0 "$AGENT" 2>/dev/null || fail "sockagentd exited at start"
  sleep 0.1
done
[ -s "$TMP/port" ] || fail "sockagentd wrote no port file"
PORT=$(cat "$TMP/port")
export SOCKAGENT_AGENT="127.0.0.1:$PORT"

# A port nothing listens on: bind a socket with the agent, read the port,
# close it (the agent's own sockets are on loopback).
SOCKAGENT_SESSION=$(sc session open --ttl 60s --label sockctl_cli_test)
export SOCKAGENT_SESSION
H=$(sc socket)
CLOSED=$(sc bind "$H" 127.0.0.1:0)
sc close "$H"
CLOSED_PORT=${CLOSED##*:}

# --- exit codes, one real process per row ----------------------------------
expect_rc 0 "health of a serving agent" -- health
[ "$(cat "$TMP/out")" == SERVING ] || fail "health printed $(cat "$TMP/out")"
# The agent's labels, in key order.
expect_rc 0 "info" -- info
grep -qx "labels: *node=cli-test, zone=z2" "$TMP/out" ||
  fail "info does not list the labels: $(cat "$TMP/out")"
pass "0: success"

expect_rc 1 "health of an unknown service" -- health --service no.such.Service
grep -q SERVICE_UNKNOWN "$TMP/out" || fail "health --service printed $(cat "$TMP/out")"
pass "1: a negative answer (health SERVICE_UNKNOWN)"

L=$(sc socket)
for bad in 127.0.0.1:abc 300.1.1.1:80 127.0.0.1:-1 127.0.0.1:70000 'no port' '[::1'; do
  expect_rc 2 "bind $bad" -- bind "$L" "$bad"
  expect_err "bind $bad" '^sockctl: address '
done
expect_rc 2 "connect 300.1.1.1:80" -- connect "$L" 300.1.1.1:80
expect_rc 2 "sendto to an unknown service" -- sendto "$L" 127.0.0.1:nosuchservice x
expect_rc 2 "missing handle" -- bind
expect_err "missing handle" '^sockctl: bind: HANDLE is required'
expect_rc 2 "bad --agent port" -- --agent 127.0.0.1:abc info
expect_err "bad --agent port" '^sockctl: --agent "127.0.0.1:abc": port'
expect_rc 2 "--agent port 0" -- --agent 127.0.0.1:0 info
expect_rc 2 "--agent 300.1.1.1" -- --agent 300.1.1.1:7700 info
expect_rc 2 "bare IPv6 --agent" -- --agent ::1 info
expect_rc 2 "nc without a port" -- nc 127.0.0.1
expect_err "nc without a port" '^sockctl: nc: PORT is required'
pass "2: usage errors, validated before any call"

# A handle of another session is NOT_FOUND, exactly like an unknown one.
OTHER=$(SOCKAGENT_SESSION=$(sc session open --ttl 60s) sc socket)
expect_rc 3 "unknown handle" -- recv "$OTHER"
expect_err "unknown handle" '^sockctl: recv: .*\(NOT_FOUND\)$'
expect_rc 3 "health of a refused port" -- --agent "127.0.0.1:$CLOSED_PORT" health
expect_err "health of a refused port" '^sockctl: health: .*(UNAVAILABLE)'
expect_rc 3 "info of a refused port" -- --agent "127.0.0.1:$CLOSED_PORT" info
expect_err "info of a refused port" "^sockctl: info: cannot reach the agent at 127.0.0.1:$CLOSED_PORT"
expect_rc 3 "port 1" -- --agent 127.0.0.1:1 ls
pass "3: RPC failures without errno; a refused connection reports within the 5 s bound"

C=$(sc socket)
expect_rc 4 "refused connect" -- connect "$C" "127.0.0.1:$CLOSED_PORT"
expect_err "refused connect" '^sockctl: connect: Connection refused \(ECONNREFUSED\)$'
pass "4: a socket error with its errno"

expect_rc 5 "unresolvable service" -- getaddrinfo localhost nosuchservice
expect_err "unresolvable service" '^sockctl: name resolution failed on the agent: .*\(EAI_SERVICE\)$'
grep -q 'getaddrinfo: getaddrinfo' "$TMP/err" && fail "doubled prefix: $(cat "$TMP/err")"
pass "5: a resolution failure (EAI_*)"

# A missing port is the default port 7700: nothing listens there unless an
# agent does, so either way the message names 127.0.0.1:7700.
rc=0
sc --agent 127.0.0.1 gethostname >"$TMP/out" 2>"$TMP/err" || rc=$?
if [ "$rc" != 0 ]; then
  [ "$rc" == 3 ] || fail "--agent 127.0.0.1: exit $rc"
  grep -q '127.0.0.1:7700' "$TMP/err" || fail "--agent 127.0.0.1: $(cat "$TMP/err")"
fi
pass "--agent without a port means 127.0.0.1:7700"

# --- messages ---------------------------------------------------------------
# A socket timeout: DEADLINE_EXCEEDED from the agent, said once.
R=$(sc socket)
sc bind "$R" 127.0.0.1:0 >/dev/null
sc listen "$R"
RC_=$(sc socket)
sc connect "$RC_" "$(sc getsockname "$R")" >/dev/null
sc settimeout "$RC_" 0.05
expect_rc 3 "recv timeout" -- recv "$RC_"
expect_err "recv timeout" '^sockctl: recv: [^:]*\(DEADLINE_EXCEEDED\)$'
grep -q 'recv: recv:' "$TMP/err" && fail "doubled prefix: $(cat "$TMP/err")"
pass "no doubled prefix (recv timed out)"

# Help: the one-line summaries of `sockctl traffic --help` are whole (no
# unbalanced parenthesis); every "Example:" has an example line after it.
for cmd in "" traffic "traffic echo" "traffic source" health nc run session "session open" bind faults; do
  # shellcheck disable=SC2086  # cmd is a subcommand path
  sc $cmd --help >"$TMP/help" 2>&1 || fail "sockctl $cmd --help: exit $?"
  "$PYTHON" - "$TMP/help" "$cmd" <<'PY' || fail "help of '$cmd'"
import re, sys
text = open(sys.argv[1]).read()
lines = text.splitlines()
for i, line in enumerate(lines):
    if line.rstrip() in ("Example:", "Examples:"):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not nxt.startswith("  ") or not nxt.strip():
            sys.exit("empty Example: in " + sys.argv[2])
section = None
for line in lines:
    if re.match(r"^[A-Z][a-z]+:$", line):
        section = line
    elif section == "Subcommands:" and line.startswith("  "):
        summary = line.strip().split(None, 1)[1] if len(line.split()) > 1 else ""
        if summary.count("(") != summary.count(")"):
            sys.exit("cut summary: " + line)
PY
done
grep -q 'HOST PORT' <(sc nc --help) || fail "nc --help does not say HOST PORT"
pass "help texts: whole summaries, examples present, nc HOST PORT"

# --- JSON -------------------------------------------------------------------
sc --json ls >"$TMP/ls.json"
sc --json info >"$TMP/info.json"
sc --json session list >"$TMP/sessions.json"
sc --json session keepalive >"$TMP/keepalive.json"
sc --json gettimeout "$RC_" >"$TMP/timeout.json"
sc --json getaddrinfo localhost 80 --type stream >"$TMP/gai.json"
"$PYTHON" - "$TMP" <<'PY' || fail "JSON shapes"
import json, os, re, sys
d = sys.argv[1]
load = lambda n: json.load(open(os.path.join(d, n)))
def walk(value, path):
    if isinstance(value, dict):
        for k, v in value.items():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", k), f"{path}.{k}: not snake_case"
            assert not (isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v) and k not in ("checksum",)), \
                f"{path}.{k}: number as a string {v!r}"
            assert not (isinstance(v, str) and re.fullmatch(r"[A-Z]+(_[A-Z0-9]+)+", v)), \
                f"{path}.{k}: protobuf enum name {v!r}"
            assert not (isinstance(v, str) and re.fullmatch(r"[0-9.]+s", v)), \
                f"{path}.{k}: duration as a string {v!r}"
            walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            walk(v, f"{path}[{i}]")
for name in ("ls.json", "info.json", "sessions.json", "keepalive.json",
             "timeout.json", "gai.json"):
    walk(load(name), name)
ls = load("ls.json")["sockets"]
states = {s["state"] for s in ls}
assert states <= {"open", "bound", "listening", "connecting", "connected", "shut_down"}, states
assert {s["family"] for s in ls} == {"inet"}, ls
assert all(isinstance(s["bytes_sent"], int) for s in ls), ls
assert any(s.get("timeout_s") == 0.05 for s in ls), ls
info = load("info.json")
assert info["limits"]["max_session_ttl_s"] == 86400, info["limits"]
assert isinstance(info["limits"]["default_session_ttl_s"], (int, float))
assert load("keepalive.json")["ttl_s"] == 60, load("keepalive.json")
assert load("timeout.json")["timeout_s"] == 0.05
sessions = load("sessions.json")["sessions"]
assert any(s["label"] == "sockctl_cli_test" and isinstance(s["socket_count"], int)
           for s in sessions), sessions
gai = load("gai.json")["results"]
assert gai and all(r["type"] == "stream" for r in gai), gai
assert all(re.fullmatch(r".*:80", r["address"]) for r in gai), gai
PY
sc ls >"$TMP/ls.txt"
grep -q ' listening ' "$TMP/ls.txt" || fail "ls text: $(cat "$TMP/ls.txt")"
pass "JSON: snake_case, numbers as numbers, enum words, durations in seconds"

sc session close
echo "PASS: sockctl_cli_test"
