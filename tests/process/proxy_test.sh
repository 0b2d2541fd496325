#!/usr/bin/env bash
# Process-level test of `sockctl proxy`: a real client process -> the agent's
# proxy -> a real server process (tests/process/proxy_peers.py), with
# latency, bandwidth, reset and loss applied, faults changed while it runs
# (stdin, and `sockctl proxy-faults` through --control), --json figures,
# SIGTERM, and the policy refusing the upstream and a source.
#   proxy_test.sh SOCKAGENTD SOCKCTL
# Loopback only; bounds are wide (timings belong in bench/); every process
# started here is stopped by pid.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL}
# shellcheck source=tests/process/proxy_harness.sh
source "$(dirname "$0")/proxy_harness.sh"
peer() { timeout 60 "$PYTHON" "$PEERS" "$@"; }
# ge A B: A >= B (decimals).
ge() { "$PYTHON" -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2"; }

start_agent agent
AGENT=$AGENT_ADDR

start_peer_server tcp tcp
TCP_UP=$PEER_ADDR
start_peer_server udp udp
UDP_UP=$PEER_ADDR

# start_proxy NAME ARGS...: runs sockctl proxy with its stdin on a fifo
# (NAME.in, kept open) and waits for the bound address; sets PROXY_ADDR and
# PROXY_PID.
start_proxy() {
  local name=$1; shift
  mkfifo "$TMP/$name.in"
  "$SOCKCTL" --agent "$AGENT" proxy "$@" <"$TMP/$name.in" \
    >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  exec {fd}>"$TMP/$name.in"
  eval "FD_$name=$fd"
  wait_for "$TMP/$name.out" .
  PROXY_ADDR=$(head -n1 "$TMP/$name.out")
  case $PROXY_ADDR in
    \{*) PROXY_ADDR=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.readline())["address"])' <"$TMP/$name.out");;
  esac
}
stop_proxy() {  # stop_proxy PID: SIGTERM, exit 0
  kill -TERM "$1"
  local rc=0
  wait "$1" || rc=$?
  [ "$rc" -eq 0 ] || fail "proxy exited $rc after SIGTERM"
}

# 1. Latency toward the upstream: the round trip takes at least that long;
#    the way back has none.
start_proxy lat --listen 127.0.0.1:0 --upstream "$TCP_UP" --latency 300ms \
  --direction upstream
rtt=$(peer rtt "$PROXY_ADDR")
ge "$rtt" 0.3 || fail "latency: round trip $rtt s < 0.3 s"
ge 5 "$rtt" || fail "latency: round trip $rtt s (bound 5 s)"
pass "latency 300ms: round trip $rtt s; half-close passed in order"

# 2. Faults changed while it runs (stdin): a new latency applies.
echo "--latency 600ms --direction downstream" >&"$FD_lat"
wait_for "$TMP/lat.out" "faults set"
rtt=$(peer rtt "$PROXY_ADDR")
ge "$rtt" 0.6 || fail "changed faults: round trip $rtt s < 0.6 s"
echo "clear" >&"$FD_lat"
pass "faults changed while running: round trip $rtt s"
stop_proxy "$PROXY_PID"
# Its listener is gone with it.
if peer rtt "$PROXY_ADDR" >/dev/null 2>&1; then fail "listener outlived SIGTERM"; fi
pass "SIGTERM stops the proxy (exit 0) and closes its listener"

# 3. Bandwidth back to the client, with --json figures per connection.
start_proxy bw --json --listen 127.0.0.1:0 --upstream "$TCP_UP" --rate 400K \
  --direction downstream
secs=$(peer download "$PROXY_ADDR" 204800)
# 200 KiB at 400 KiB/s: at least 0.5 s less one pacing step (1/20 s).
ge "$secs" 0.45 || fail "bandwidth: 200 KiB in $secs s (< 0.45 s)"
wait_for "$TMP/bw.out" connection_end
"$PYTHON" - "$TMP/bw.out" <<'PY' || fail "bandwidth: --json figures"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
end = [e for e in events if e["event"] == "connection_end"][0]
assert end["end"] == "relayed", end
assert end["relay"]["from_peer"]["bytes_sent"] == 204800, end
assert end["relay"]["to_peer"]["end"] == "eof", end
PY
stop_proxy "$PROXY_PID"
pass "bandwidth 400K: 200 KiB in $secs s; --json connection figures"

# 3b. A connection still live at SIGTERM ends in order (EOF to the client)
#     and its figures are printed.
start_proxy live --json --listen 127.0.0.1:0 --upstream "$TCP_UP"
peer hold "$PROXY_ADDR" "$TMP/hold.ready" >"$TMP/hold.out" &
hold=$!
PIDS+=("$hold")
wait_for "$TMP/hold.ready" .
stop_proxy "$PROXY_PID"
wait "$hold" || fail "hold client: exit $?"
[ "$(cat "$TMP/hold.out")" == eof ] || fail "live connection at SIGTERM: client saw '$(cat "$TMP/hold.out")'"
"$PYTHON" - "$TMP/live.out" <<'PY' || fail "live connection at SIGTERM: --json figures"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
end = [e for e in events if e["event"] == "connection_end"]
assert len(end) == 1, events
assert end[0]["end"] == "relayed", end
assert end[0]["relay"]["to_peer"]["bytes_sent"] == 8, end   # "echo\nabc"
assert end[0]["relay"]["from_peer"]["bytes_sent"] == 3, end
PY
pass "SIGTERM with a live connection: the client gets EOF, --json prints its figures"

# 4. Reset: the client sees the bytes up to the limit, then ECONNRESET. The
#    limit counts the client socket's bytes both ways: the 7 of the request
#    ("send 4\n") and 3 of the reply.
start_proxy rst --listen 127.0.0.1:0 --upstream "$TCP_UP" \
  --close-after-bytes 10 --reset --direction downstream
got=$(peer reset "$PROXY_ADDR")
[ "$got" == "bbb ECONNRESET" ] || fail "reset: got '$got'"
stop_proxy "$PROXY_PID"
pass "close-after-bytes 10 --reset: client got 'bbb' then ECONNRESET"

# 5. Loss: the count is inside the seed's bound and replays exactly.
counts=()
for run in 1 2; do
  start_proxy "loss$run" --json --udp --listen 127.0.0.1:0 --upstream "$UDP_UP" \
    --loss 30 --seed 7 --direction upstream
  n=$(peer udp-loss "$PROXY_ADDR" 200)
  counts+=("$n")
  stop_proxy "$PROXY_PID"
  # Stopped, the datagram relay still reports its figures.
  "$PYTHON" - "$TMP/loss$run.out" <<'PY' || fail "udp stop: --json figures"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
end = [e for e in events if e["event"] == "connection_end"]
assert len(end) == 1 and end[0]["end"] == "fault", events
assert end[0]["relay"]["to_peer"]["datagrams_lost"] > 0, end
assert end[0]["relay"]["clients"] >= 1, end
PY
done
[ "${counts[0]}" == "${counts[1]}" ] || fail "loss: seed 7 gave ${counts[*]}"
# 30 % of 200 lost: mean 140 arrive, standard deviation 6.5.
ge "${counts[0]}" 110 && ge 170 "${counts[0]}" || fail "loss: ${counts[0]} of 200 arrived"
pass "udp loss 30% seed 7: ${counts[0]} of 200 arrived, twice"

# 6. Policy: the upstream is a destination; a refused source never reaches it.
cat >"$TMP/policy.textproto" <<EOF2
rules {
  name: "test"
  identities: "anonymous"
  allow_rpcs: "*"
  families: [ FAMILY_INET ]
  types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
  connect_allow { cidr: "127.0.0.0/8" }
  connect_deny { cidr: "127.0.0.1/32" port_min: ${TCP_UP##*:} port_max: ${TCP_UP##*:} }
  bind_allow { cidr: "127.0.0.0/8" }
  accept_deny { cidr: "127.0.0.2/32" }
  socket_options: [ OPT_SO_REUSEADDR ]
}
EOF2
start_agent policy --policy "$TMP/policy.textproto"
POLICY_AGENT=$AGENT_ADDR
AGENT_SAVED=$AGENT; AGENT=$POLICY_AGENT
start_proxy deny --json --listen 127.0.0.1:0 --upstream "$TCP_UP"
got=$(peer reset "$PROXY_ADDR")
case $got in " ECONNRESET"|" EPIPE"|" eof") ;; *) fail "denied upstream: client got '$got'";; esac
wait_for "$TMP/deny.out" PERMISSION_DENIED
stop_proxy "$PROXY_PID"
pass "policy: a denied upstream resets the client (PERMISSION_DENIED reported)"
# A second server the policy allows; a client from 127.0.0.2 is refused at
# accept (closed by the agent), one from 127.0.0.1 gets through.
start_peer_server tcp tcp2
start_proxy src --listen 127.0.0.1:0 --upstream "$PEER_ADDR"
got=$(peer refused-source "$PROXY_ADDR")
case $got in ECONNRESET|EPIPE|eof) ;; *) fail "refused source: client got '$got'";; esac
rtt=$(peer rtt "$PROXY_ADDR") || fail "an allowed source through the policy agent"
stop_proxy "$PROXY_PID"
start_proxy usrc --listen 127.0.0.1:0 --upstream "$UDP_UP" --udp
peer udp-ping "$PROXY_ADDR" | grep -q pong || fail "udp through the policy agent"
stop_proxy "$PROXY_PID"
AGENT=$AGENT_SAVED
pass "policy: a refused source is closed ($got), allowed ones pass (tcp, udp)"

# 7. `sockctl faults` shapes the socket's own sends (the issue's report:
#    --send-delay 500ms was ignored by `send`), and a fault the socket
#    cannot obey is refused by name.
export SOCKAGENT_AGENT=$AGENT
export SOCKAGENT_SESSION=$("$SOCKCTL" session open --ttl 2m)
H=$("$SOCKCTL" socket)
"$SOCKCTL" connect "$H" "$TCP_UP" >/dev/null
"$SOCKCTL" send "$H" "echo
" >/dev/null
"$SOCKCTL" faults "$H" --send-delay 500ms
start=$(date +%s.%N)
"$SOCKCTL" send "$H" x >/dev/null
took=$("$PYTHON" -c "import sys; print('%.3f' % ($(date +%s.%N) - $start))")
ge "$took" 0.5 || fail "faults --send-delay 500ms: send took $took s"
rc=0
"$SOCKCTL" faults "$H" --loss 5 2>"$TMP/loss.err" || rc=$?
[ "$rc" -ne 0 ] || fail "--loss on a TCP socket was accepted"
grep -q "faults.loss_percent" "$TMP/loss.err" || fail "--loss refusal does not name the fault"
"$SOCKCTL" session close >/dev/null
unset SOCKAGENT_SESSION SOCKAGENT_AGENT
pass "faults: send waited $took s for --send-delay 500ms; --loss on TCP refused by name"

# 8. A second process changes the faults: `sockctl proxy --control PATH`
#    and `sockctl proxy-faults --control PATH` (the stdin lines' syntax).
CTL=$TMP/ctl.sock
start_proxy ctl --listen 127.0.0.1:0 --upstream "$TCP_UP" --control "$CTL"
[ -S "$CTL" ] || fail "--control: no socket at $CTL"
[ "$(stat -c %a "$CTL")" == 600 ] || fail "--control: mode $(stat -c %a "$CTL"), expected 600"
"$SOCKCTL" proxy-faults --control "$CTL" --latency 300ms --direction upstream \
  >"$TMP/pf.out" || fail "proxy-faults: exit $?"
[ "$(cat "$TMP/pf.out")" == "faults set" ] || fail "proxy-faults printed '$(cat "$TMP/pf.out")'"
rtt=$(peer rtt "$PROXY_ADDR")
ge "$rtt" 0.3 || fail "proxy-faults --latency 300ms: round trip $rtt s < 0.3 s"
"$SOCKCTL" --json proxy-faults --control "$CTL" --clear >"$TMP/pf.json" ||
  fail "proxy-faults --clear: exit $?"
"$PYTHON" - "$TMP/pf.json" <<'PY' || fail "proxy-faults --json: $(cat "$TMP/pf.json")"
import json, sys
event = json.load(open(sys.argv[1]))
assert event["event"] == "faults", event
assert "send_delay" not in event["to_upstream"], event
PY
rc=0
"$SOCKCTL" proxy-faults --control "$CTL" --loss 5 2>"$TMP/pf.err" || rc=$?
[ "$rc" -ne 0 ] || fail "proxy-faults --loss on a TCP proxy was accepted"
grep -q "faults.loss_percent" "$TMP/pf.err" || fail "proxy-faults: the refusal does not name the fault: $(cat "$TMP/pf.err")"
# With --json the refusal is the proxy's faults event, its error one object.
rc=0
"$SOCKCTL" --json proxy-faults --control "$CTL" --loss 5 >"$TMP/pf.json" || rc=$?
[ "$rc" -ne 0 ] || fail "proxy-faults --json --loss on a TCP proxy was accepted"
"$PYTHON" - "$TMP/pf.json" <<'PY' || fail "proxy-faults --json refusal: $(cat "$TMP/pf.json")"
import json, sys
event = json.load(open(sys.argv[1]))
assert event["event"] == "faults", event
assert event["error"]["code"] == "INVALID_ARGUMENT", event
assert "faults.loss_percent" in event["error"]["message"], event
PY
# The proxy still carries data, without the refused fault.
peer rtt "$PROXY_ADDR" >/dev/null || fail "the proxy after a refused change"
rc=0
"$SOCKCTL" --agent "$AGENT" proxy --listen 127.0.0.1:0 --upstream "$TCP_UP" \
  --control "$TMP/$(printf 'x%.0s' $(seq 120))" </dev/null >/dev/null \
  2>"$TMP/long.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q -- "--control" "$TMP/long.err" ||
  fail "a --control path too long for a Unix socket: exit $rc, $(cat "$TMP/long.err")"
rc=0
"$SOCKCTL" --agent "$AGENT" proxy --listen 127.0.0.1:0 --upstream "$TCP_UP" \
  --control "$CTL" </dev/null >/dev/null 2>"$TMP/second.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a second proxy on a live --control path started"
grep -q -- "--control" "$TMP/second.err" || fail "the refusal does not name --control: $(cat "$TMP/second.err")"
stop_proxy "$PROXY_PID"
[ ! -e "$CTL" ] || fail "--control: $CTL left behind at exit"
rc=0
"$SOCKCTL" proxy-faults --control "$CTL" --clear 2>"$TMP/none.err" || rc=$?
[ "$rc" -ne 0 ] || fail "proxy-faults with nothing listening exited 0"
grep -q -- "--control $CTL: no proxy listens there" "$TMP/none.err" ||
  fail "proxy-faults with nothing listening: $(cat "$TMP/none.err")"
# A socket file left by a proxy killed outright is replaced.
start_proxy ctl2 --listen 127.0.0.1:0 --upstream "$TCP_UP" --control "$CTL"
kill -KILL "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null || true
[ -S "$CTL" ] || fail "SIGKILL removed the socket file (expected it left behind)"
start_proxy ctl3 --listen 127.0.0.1:0 --upstream "$TCP_UP" --control "$CTL"
"$SOCKCTL" proxy-faults --control "$CTL" --latency 1ms >/dev/null || fail "proxy-faults after a stale socket"
stop_proxy "$PROXY_PID"
pass "--control: proxy-faults from another process (latency, --json, refused --loss), one proxy per path, removed at exit, stale file replaced"

# 9. `sockctl traffic relay A B` over UDP: A bound, B connected to a real
#    UDP server (B's peer is the upstream); figures per direction in --json.
#    The flags of the other kind of relay are usage errors naming them.
export SOCKAGENT_AGENT=$AGENT
export SOCKAGENT_SESSION=$("$SOCKCTL" session open --ttl 2m)
A=$("$SOCKCTL" socket --type dgram)
RELAY_ADDR=$("$SOCKCTL" bind "$A" 127.0.0.1:0)
B=$("$SOCKCTL" socket --type dgram)
"$SOCKCTL" connect "$B" "$UDP_UP" >/dev/null
rc=0
"$SOCKCTL" traffic relay "$A" "$B" --reset-as-fin 2>"$TMP/rf.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--reset-as-fin" "$TMP/rf.err" ||
  fail "traffic relay --reset-as-fin on UDP: exit $rc, $(cat "$TMP/rf.err")"
"$SOCKCTL" --json traffic relay "$A" "$B" --duration 3s --idle-timeout 1s \
  >"$TMP/relay.json" &
relay=$!
PIDS+=("$relay")
# The relay may start after the first ping: ping until a pong comes back.
ok=0
for _ in $(seq 20); do
  if timeout 5 "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
host, port = sys.argv[1].rsplit(":", 1)
s.sendto(b"ping", (host, int(port)))
sys.exit(0 if s.recvfrom(100)[0] == b"pong" else 1)' "$RELAY_ADDR" 2>/dev/null; then ok=1; break; fi
done
[ "$ok" -eq 1 ] || fail "traffic relay over UDP: no pong through the relay"
wait "$relay" || fail "traffic relay over UDP: exit $?"
"$PYTHON" - "$TMP/relay.json" <<'PY' || fail "traffic relay --json: $(cat "$TMP/relay.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["end"] == "duration", r
assert r["relay"]["clients"] >= 1, r
assert r["relay"]["to_peer"]["datagrams_sent"] >= 1, r
assert r["relay"]["from_peer"]["datagrams_sent"] >= 1, r
PY
T=$("$SOCKCTL" socket)
rc=0
"$SOCKCTL" traffic relay "$T" "$B" --idle-timeout 1s 2>"$TMP/it.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--idle-timeout" "$TMP/it.err" ||
  fail "traffic relay --idle-timeout on TCP: exit $rc, $(cat "$TMP/it.err")"
"$SOCKCTL" session close >/dev/null
unset SOCKAGENT_SESSION SOCKAGENT_AGENT
pass "traffic relay over UDP (B's peer upstream): pong through it, --json figures; wrong-kind flags refused by name"

echo "PASS"
