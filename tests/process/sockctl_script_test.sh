#!/usr/bin/env bash
# Process-level test of sockctl against a real sockagentd:
#   sockctl_script_test.sh SOCKAGENTD SOCKCTL
# Starts the agent on 127.0.0.1 port 0 and drives it only through sockctl:
# a TCP exchange between two handles, a UDP exchange, `sockctl nc` (both
# directions and the half-close) against a local python3 peer, agent-side
# traffic and faults (traffic, faults, abort), and the exit codes. Touches only 127.0.0.1; every wait is bounded; every process it
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

# --- Unix autobind: bind to "unix:" (Python's bind("")) -----------------------
UA=$(sc socket --family unix --type dgram)
UAADDR=$(sc bind "$UA" unix:)
case "$UAADDR" in abstract:?????) ;; *) fail "autobind gave '$UAADDR'" ;; esac
expect_eq "autobound name" "$UAADDR" "$(sc getsockname "$UA")"
sc close "$UA"
pass "Unix autobind"

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

# --- agent-side traffic and faults ------------------------------------------
# Three connected pairs: C1/A1 (source -> sink), C2/A2 (echo, faults),
# C3/A3 (abort).
TL=$(sc socket)
TLADDR=$(sc bind "$TL" 127.0.0.1:0)
sc listen "$TL"
for n in 1 2 3; do
  eval "C$n=\$(sc socket)"
  eval "sc connect \"\$C$n\" \"$TLADDR\" >/dev/null"
  read -r accepted _ < <(sc accept "$TL")
  eval "A$n=$accepted"
done
sc --json traffic sink "$A1" >"$TMP/sink.json" 2>"$TMP/sink.err" &
SINK=$!
PIDS+=($SINK)
sc --json traffic source "$C1" --bytes 1M --pattern random --seed 7 \
  --shutdown-write >"$TMP/source.json" 2>"$TMP/source.err" ||
  fail "traffic source exited with $?"
wait "$SINK" || fail "traffic sink exited with $?"
expect_eq "source bytes" 1048576 "$(json bytes_sent <"$TMP/source.json")"
expect_eq "source end" bytes "$(json end <"$TMP/source.json")"
expect_eq "sink bytes" 1048576 "$(json bytes_received <"$TMP/sink.json")"
expect_eq "sink end" eof "$(json end <"$TMP/sink.json")"
expect_eq "checksums" "$(json checksum <"$TMP/source.json")" \
  "$(json checksum <"$TMP/sink.json")"
# An independent implementation of the RANDOM pattern, checksummed with
# Debian's python3-xxhash (XXH3-64), agrees.
EXPECTED=$("$PYTHON" - <<'PY'
import xxhash
M = (1 << 64) - 1
def splitmix(seed, i):
    z = (seed + (i + 1) * 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
data = b"".join(splitmix(7, i).to_bytes(8, "little") for i in range(1 << 17))
print(xxhash.xxh3_64_hexdigest(data))
PY
)
expect_eq "checksum of seed 7" "$EXPECTED" "$(json checksum <"$TMP/sink.json")"
pass "traffic source -> sink"

sc traffic echo "$A2" --max-bytes 4 >"$TMP/echo.out" 2>"$TMP/echo.err" &
ECHO=$!
PIDS+=($ECHO)
sc send "$C2" ping --all
expect_eq "echoed" ping "$(sc recv "$C2" --max 4 --waitall)"
wait "$ECHO" || fail "traffic echo exited with $?"
grep -q '^end=bytes bytes_received=4 bytes_sent=4 ' "$TMP/echo.out" ||
  fail "echo printed: $(cat "$TMP/echo.out")"
# Faults: slow, sliced sends still deliver every byte; then a limit_data
# close after exactly 1000 bytes.
sc faults "$A2" --send-delay 10ms --rate 1M --slice-bytes 1K --slice-delay 1ms
sc traffic source "$A2" --bytes 20K >"$TMP/slow.out"
grep -q '^end=bytes bytes_received=0 bytes_sent=20480 ' "$TMP/slow.out" ||
  fail "slow source printed: $(cat "$TMP/slow.out")"
sc recvstream "$C2" --limit 20480 >"$TMP/slow.bin"
expect_eq "bytes under faults" 20480 "$(wc -c <"$TMP/slow.bin" | tr -d ' ')"
sc faults "$A2" --clear
sc faults "$A2" --close-after-bytes 1000
sc traffic source "$A2" --bytes 1M --pattern zero >"$TMP/fault.out"
grep -q '^end=fault bytes_received=0 bytes_sent=1000 ' "$TMP/fault.out" ||
  fail "fault source printed: $(cat "$TMP/fault.out")"
sc recvstream "$C2" >"$TMP/fault.bin"
expect_eq "bytes before the fault close" 1000 "$(wc -c <"$TMP/fault.bin" | tr -d ' ')"
rc=0
sc faults "$C2" 2>/dev/null || rc=$?
expect_eq "exit code of faults without a flag" 2 "$rc"
pass "traffic echo and faults"

sc abort "$A3"
rc=0
sc recv "$C3" 2>"$TMP/reset.err" || rc=$?
expect_eq "exit code of recv after the peer's abort" 4 "$rc"
grep -q 'ECONNRESET' "$TMP/reset.err" || fail "after abort: $(cat "$TMP/reset.err")"
sc close "$C1"
sc close "$C2"
sc close "$C3"
sc close "$A1"
sc close "$TL"
pass "abort"

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
sc recv "$T" 2>"$TMP/closed.err" || rc=$?   # closed above: EBADF, as Python
expect_eq "exit code for a closed handle" 4 "$rc"
grep -q 'EBADF' "$TMP/closed.err" || fail "closed handle: $(cat "$TMP/closed.err")"
sc close "$T" || fail "a second close is not OK"
# Well formed, unknown here: a handle of another session, since closed (a
# changed digit would fail the id's check digits: INVALID_ARGUMENT).
OTHER=$(sc session open --ttl 60s)
NEVER=$(sc --session "$OTHER" socket --family inet --type stream)
sc --session "$OTHER" session close
rc=0
sc recv "$NEVER" 2>"$TMP/unknown.err" || rc=$?
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
sc no-such-command 2>"$TMP/nosuch.err" || rc=$?
expect_eq "exit code for an unknown command" 2 "$rc"
grep -q "unknown subcommand 'no-such-command'" "$TMP/nosuch.err" \
  || fail "unknown command: $(cat "$TMP/nosuch.err")"
rc=0
sc hostname 2>"$TMP/hostname.err" || rc=$?
expect_eq "exit code for a misspelt command" 2 "$rc"
grep -q "unknown subcommand 'hostname' (did you mean gethostname?)" \
  "$TMP/hostname.err" || fail "misspelt command: $(cat "$TMP/hostname.err")"
rc=0
sc session opne 2>"$TMP/opne.err" || rc=$?
expect_eq "exit code for a misspelt nested command" 2 "$rc"
grep -q "unknown subcommand 'opne' of session (did you mean open?)" \
  "$TMP/opne.err" || fail "misspelt nested command: $(cat "$TMP/opne.err")"
pass "exit codes"

# --- session close ----------------------------------------------------------
K=$(sc socket)
sc session close
rc=0
sc close "$K" 2>/dev/null || rc=$?
expect_eq "exit code after session close" 3 "$rc"
pass "session close"
echo "PASS"
