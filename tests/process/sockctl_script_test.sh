#!/usr/bin/env bash
# Process-level test of sockctl against a real sockagentd:
#   sockctl_script_test.sh SOCKAGENTD SOCKCTL
# Starts the agent on 127.0.0.1 port 0 and drives it only through sockctl:
# a TCP exchange between two handles, a UDP exchange, `sockctl nc` (both
# directions and the half-close) against a local python3 peer, and the exit
# codes. Touches only 127.0.0.1; every wait is bounded; every process it
# starts is killed by pid on exit.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL}
PYTHON=${PYTHON:-/usr/bin/python3}
STEP_TIMEOUT=20

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.err "$TMP"/agent.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}
pass() { echo "ok: $*"; }

expect_eq() {  # expect_eq WHAT EXPECTED ACTUAL
  [ "$2" == "$3" ] || fail "$1: expected '$2', got '$3'"
}

# sockctl with a bounded run time.
sc() { timeout "$STEP_TIMEOUT" "$SOCKCTL" "$@"; }

# Field `$1` of the JSON object on stdin.
json() {
  "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Waits up to 30 s (generous for loaded CI machines) for file $1 to contain a
# line matching $2.
wait_for() {
  local i
  for i in $(seq 300); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "timed out waiting for '$2' in $1"
}

# --- the agent -------------------------------------------------------------
"$SOCKAGENTD" --listen 127.0.0.1:0 --port-file "$TMP/port" \
  >"$TMP/agent.log" 2>&1 &
PIDS+=($!)
for i in $(seq 300); do
  [ -s "$TMP/port" ] && break
  kill -0 "${PIDS[0]}" 2>/dev/null || fail "sockagentd exited at start"
  sleep 0.1
done
[ -s "$TMP/port" ] || fail "sockagentd wrote no port file"
export SOCKAGENT_AGENT="127.0.0.1:$(cat "$TMP/port")"
sc health >/dev/null || fail "agent not SERVING"
pass "agent serving on $SOCKAGENT_AGENT"

SOCKAGENT_SESSION=$(sc session open --ttl 60s --label sockctl_script_test)
export SOCKAGENT_SESSION
[ -n "$SOCKAGENT_SESSION" ] || fail "session open printed nothing"

# --- TCP between two handles on one agent -----------------------------------
L=$(sc socket --family inet --type stream)
sc setsockopt "$L" SO_REUSEADDR on
LADDR=$(sc bind "$L" 127.0.0.1:0)
[[ "$LADDR" =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "bind printed '$LADDR'"
expect_eq "getsockname" "$LADDR" "$(sc getsockname "$L")"
sc listen "$L" --backlog 4
C=$(sc socket)
CLOCAL=$(sc connect "$C" "$LADDR")
read -r A PEER < <(sc accept "$L")
[ -n "$A" ] || fail "accept printed no handle"
expect_eq "accept peer" "$CLOCAL" "$PEER"
expect_eq "getpeername" "$LADDR" "$(sc getpeername "$C")"

sc send "$C" "hello from C" --all
expect_eq "recv on A" "hello from C" "$(sc recv "$A" --max 100)"
printf 'hello from A' | sc send "$A" - --all
expect_eq "recv on C" "hello from A" "$(sc recv "$C" --max 100)"

# Binary bulk data: send a file, receive exactly its length as a stream.
head -c 200000 /dev/urandom >"$TMP/blob"
sc send "$C" --file "$TMP/blob" --all
sc recvstream "$A" --limit 200000 >"$TMP/blob.out"
cmp -s "$TMP/blob" "$TMP/blob.out" || fail "bulk data differs"

sc shutdown "$C" wr
expect_eq "EOF after shutdown wr (text)" "" "$(sc recv "$A")"
expect_eq "EOF after shutdown wr (json)" "True" "$(sc --json recv "$A" | json eof)"
# The other direction still works after the half-close.
sc send "$A" "after half-close" --all
expect_eq "recv after half-close" "after half-close" "$(sc recv "$C" --max 100)"
sc close "$A"
expect_eq "EOF after peer close" "" "$(sc recv "$C")"
sc close "$C"
sc close "$L"
pass "TCP exchange"

# --- UDP ------------------------------------------------------------------
U1=$(sc socket --type dgram)
U2=$(sc socket --type dgram)
U1ADDR=$(sc bind "$U1" 127.0.0.1:0)
U2ADDR=$(sc bind "$U2" 127.0.0.1:0)
sc sendto "$U1" "$U2ADDR" "ping-1-to-2"
sc --json recvfrom "$U2" --max 1500 >"$TMP/dgram1.json"
expect_eq "U2 data" "ping-1-to-2" "$(json text <"$TMP/dgram1.json")"
expect_eq "U2 source" "$U1ADDR" "$(json address <"$TMP/dgram1.json")"
sc sendto "$U2" "$U1ADDR" "pong-2-to-1"
sc --json recvfrom "$U1" >"$TMP/dgram2.json"
expect_eq "U1 data" "pong-2-to-1" "$(json text <"$TMP/dgram2.json")"
expect_eq "U1 source" "$U2ADDR" "$(json address <"$TMP/dgram2.json")"
sc close "$U1"
sc close "$U2"
pass "UDP exchange"

# --- sockctl nc -> a plain local TCP peer ------------------------------------
# The peer greets, reads until EOF (so it answers only once nc forwarded the
# stdin EOF as a half-close), answers with the reversed bytes, and closes.
cat >"$TMP/peer.py" <<'PY'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
s.settimeout(15)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
c.settimeout(15)
c.sendall(b"greeting\n")
data = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    data += d
c.sendall(b"got %d bytes: " % len(data) + data[::-1])
c.close()
PY
timeout 30 "$PYTHON" "$TMP/peer.py" >"$TMP/peer.port" 2>"$TMP/peer.err" &
PIDS+=($!)
wait_for "$TMP/peer.port" '^[0-9]'
PORT=$(head -n 1 "$TMP/peer.port")
printf 'abc\x00def' | sc nc 127.0.0.1 "$PORT" >"$TMP/nc.out" 2>"$TMP/nc.err" ||
  fail "nc exited with $?"
printf 'greeting\ngot 7 bytes: fed\x00cba' >"$TMP/nc.expected"
cmp -s "$TMP/nc.expected" "$TMP/nc.out" || fail "nc output: $(od -c "$TMP/nc.out")"
pass "nc connect: both directions and half-close"

# --- sockctl nc -l <- a plain local TCP client ------------------------------
printf 'from-nc' | sc -v nc -l 127.0.0.1 0 >"$TMP/ncl.out" 2>"$TMP/ncl.err" &
NCL=$!
PIDS+=($NCL)
wait_for "$TMP/ncl.err" 'listening on 127.0.0.1:'
NPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/ncl.err")
timeout 20 "$PYTHON" - "$NPORT" >"$TMP/client.out" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
c.sendall(b"to-nc")
c.shutdown(socket.SHUT_WR)
data = b""
while True:
    d = c.recv(100)
    if not d:
        break
    data += d
sys.stdout.write(data.decode())
PY
wait "$NCL" || fail "nc -l exited with $?"
expect_eq "nc -l stdout" "to-nc" "$(cat "$TMP/ncl.out")"
expect_eq "client received" "from-nc" "$(cat "$TMP/client.out")"
pass "nc listen: both directions and half-close"

# --- sockctl nc -u -> a plain local UDP peer ---------------------------------
cat >"$TMP/udp.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(15)
print(s.getsockname()[1], flush=True)
d, a = s.recvfrom(1500)
s.sendto(b"echo:" + d, a)
PY
timeout 30 "$PYTHON" "$TMP/udp.py" >"$TMP/udp.port" 2>"$TMP/udp.err" &
PIDS+=($!)
wait_for "$TMP/udp.port" '^[0-9]'
UPORT=$(head -n 1 "$TMP/udp.port")
OUT=$(printf 'dgram' | sc nc -u -q 10s 127.0.0.1 "$UPORT" 2>"$TMP/ncu.err") ||
  fail "nc -u exited with $?"
# -q waits up to 10 s after stdin EOF; the answer arrives well before.
expect_eq "nc -u reply" "echo:dgram" "$OUT"
pass "nc udp"

# --- exit codes -------------------------------------------------------------
# A loopback port that is certainly closed: bind one, read it, close it.
T=$(sc socket)
CLOSED=$(sc bind "$T" 127.0.0.1:0)
sc close "$T"
R=$(sc socket)
rc=0
sc connect "$R" "$CLOSED" 2>"$TMP/refused.err" || rc=$?
expect_eq "exit code of a refused connect" 4 "$rc"
grep -q 'ECONNREFUSED' "$TMP/refused.err" || fail "no ECONNREFUSED: $(cat "$TMP/refused.err")"
grep -q '^sockctl: connect: Connection refused (ECONNREFUSED)$' "$TMP/refused.err" ||
  fail "stderr: $(cat "$TMP/refused.err")"
sc close "$R"
R=$(sc socket)
rc=0
sc --json connect "$R" "$CLOSED" >"$TMP/refused.json" 2>/dev/null || rc=$?
expect_eq "--json exit code of a connect error" 4 "$rc"
"$PYTHON" -c '
import json, sys
e = json.load(sys.stdin)["error"]
assert e == {"code": "UNAVAILABLE", "message": e["message"], "errno": 111,
             "errno_name": "ECONNREFUSED", "syscall": "connect"}, e
' <"$TMP/refused.json" || fail "--json error: $(cat "$TMP/refused.json")"
sc close "$R"

rc=0
sc recv "$T" 2>"$TMP/unknown.err" || rc=$?   # closed above: an unknown handle
expect_eq "exit code for an unknown handle" 3 "$rc"
grep -q 'NOT_FOUND' "$TMP/unknown.err" || fail "unknown handle: $(cat "$TMP/unknown.err")"

rc=0
sc bind 2>/dev/null || rc=$?
expect_eq "exit code for a missing argument" 2 "$rc"
rc=0
sc socket --family bogus 2>/dev/null || rc=$?
expect_eq "exit code for a bad family" 2 "$rc"
rc=0
sc bind "$L" 'not an address' 2>/dev/null || rc=$?
expect_eq "exit code for a bad address" 2 "$rc"
rc=0
sc no-such-command 2>/dev/null || rc=$?
expect_eq "exit code for an unknown command" 2 "$rc"
pass "exit codes"

# --- session close ----------------------------------------------------------
K=$(sc socket)
sc session close
rc=0
sc close "$K" 2>/dev/null || rc=$?
expect_eq "exit code after session close" 3 "$rc"
pass "session close"
echo "PASS"
