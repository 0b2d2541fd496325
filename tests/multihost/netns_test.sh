#!/usr/bin/env bash
# Multi-host test on Linux network namespaces:
#   netns_test.sh SOCKAGENTD SOCKCTL
#
# Two "hosts", each a network namespace (plus its own UTS namespace, so its
# own hostname) with its own sockagentd, joined by one veth pair:
#
#   sa-mh-PID-a  veth0 10.231.0.1/24 <---- veth ----> veth0 10.231.0.2/24  sa-mh-PID-b
#   sockagentd on 127.0.0.1:0 (its lo)                sockagentd on 127.0.0.1:0
#
# Without TLS an agent serves only loopback, so each agent is driven by
# `ip netns exec NS sockctl --agent 127.0.0.1:PORT ...` from inside its own
# namespace: the harness is this script. The test is the distributed test
# users write: A listens on its veth address, B connects to it across the
# veth, B sends 1 MiB and A receives it intact (sha256), A answers, a UDP
# exchange both ways, the hostnames differ, and B resets the connection
# (SO_LINGER 0, close) so A's recv fails with ECONNRESET.
#
# Addresses: 10.231.0.0/24 (a private range chosen for this test) exists
# only inside the two namespaces this script creates; nothing is routed or
# sent from the machine's own namespace. Names include the script's pid so
# parallel runs do not collide. Everything (agents by pid, namespaces by
# name) is removed in the EXIT trap; every wait is bounded.
#
# Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): exits 77 (ctest SKIP) otherwise.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL}
SKIP=77
STEP_TIMEOUT=20

skip() { echo "SKIP: $*"; exit "$SKIP"; }
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"

NS_A="sa-mh-$$-a"
NS_B="sa-mh-$$-b"
ADDR_A=10.231.0.1
ADDR_B=10.231.0.2
TMP=$(mktemp -d)
PIDS=()
NAMESPACES=()

cleanup() {
  local pid ns i
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.err "$TMP"/*.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}
pass() { echo "ok: $*"; }
expect_eq() { [ "$2" == "$3" ] || fail "$1: expected '$2', got '$3'"; }

# --- the two hosts ------------------------------------------------------------
ip netns add "$NS_A" || skip "cannot create network namespaces here"
NAMESPACES+=("$NS_A")
ip netns add "$NS_B" || skip "cannot create network namespaces here"
NAMESPACES+=("$NS_B")
# The veth pair is created inside A with its peer moved straight into B: it
# never exists in the machine's own namespace.
ip -n "$NS_A" link add veth0 type veth peer name veth0 netns "$NS_B"
ip -n "$NS_A" addr add "$ADDR_A/24" dev veth0
ip -n "$NS_B" addr add "$ADDR_B/24" dev veth0
for ns in "$NS_A" "$NS_B"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set veth0 up
done
pass "namespaces $NS_A ($ADDR_A) and $NS_B ($ADDR_B)"

# start_agent NAME NS HOSTNAME: sockagentd in NS with its own hostname; the
# pid recorded is sockagentd's own (ip netns exec, unshare and sh all exec).
start_agent() {
  ip netns exec "$2" unshare --uts sh -c \
    'hostname "$1"; shift; exec "$@"' sh "$3" \
    "$SOCKAGENTD" --listen 127.0.0.1:0 --port-file "$TMP/$1.port" \
    >"$TMP/$1.log" 2>&1 &
  PIDS+=($!)
  local pid=$! i
  for i in $(seq 100); do
    [ -s "$TMP/$1.port" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "sockagentd $1 exited at start"
    sleep 0.1
  done
  fail "sockagentd $1 wrote no port file"
}
start_agent a "$NS_A" "sa-host-a-$$"
start_agent b "$NS_B" "sa-host-b-$$"
PORT_A=$(cat "$TMP/a.port")
PORT_B=$(cat "$TMP/b.port")

# sa / sb: sockctl against agent A / B, run inside that agent's namespace.
sa() {
  timeout "$STEP_TIMEOUT" ip netns exec "$NS_A" "$SOCKCTL" \
    --agent "127.0.0.1:$PORT_A" ${SESSION_A:+--session "$SESSION_A"} "$@"
}
sb() {
  timeout "$STEP_TIMEOUT" ip netns exec "$NS_B" "$SOCKCTL" \
    --agent "127.0.0.1:$PORT_B" ${SESSION_B:+--session "$SESSION_B"} "$@"
}
sa health >/dev/null || fail "agent A not SERVING"
sb health >/dev/null || fail "agent B not SERVING"
SESSION_A=$(sa session open --ttl 60s --label multihost-a)
SESSION_B=$(sb session open --ttl 60s --label multihost-b)
pass "agents serving (A port $PORT_A, B port $PORT_B)"

HOST_A=$(sa gethostname)
HOST_B=$(sb gethostname)
expect_eq "hostname of A" "sa-host-a-$$" "$HOST_A"
expect_eq "hostname of B" "sa-host-b-$$" "$HOST_B"
pass "each host has its own name ($HOST_A, $HOST_B)"

# --- TCP across the veth --------------------------------------------------------
L=$(sa socket)
LADDR=$(sa bind "$L" "$ADDR_A:0")
[[ "$LADDR" =~ ^10\.231\.0\.1:[0-9]+$ ]] || fail "bind on A printed '$LADDR'"
sa listen "$L"
C=$(sb socket)
CLOCAL=$(sb connect "$C" "$LADDR")
[[ "$CLOCAL" =~ ^10\.231\.0\.2:[0-9]+$ ]] || fail "connect on B printed '$CLOCAL'"
read -r S PEER < <(sa accept "$L")
expect_eq "peer seen by A" "$CLOCAL" "$PEER"
expect_eq "B's peer" "$LADDR" "$(sb getpeername "$C")"
pass "B connected to A across the veth ($CLOCAL -> $LADDR)"

# 1 MiB from B to A: A streams while B sends (more than the socket buffers).
head -c 1048576 /dev/urandom >"$TMP/blob"
sa recvstream "$S" --limit 1048576 >"$TMP/blob.out" 2>"$TMP/recvstream.err" &
RECV_PID=$!
PIDS+=("$RECV_PID")
sb send "$C" --file "$TMP/blob" --all >/dev/null 2>"$TMP/send.err" \
  || fail "B send failed"
wait "$RECV_PID" || fail "A recvstream failed"
expect_eq "sha256 of 1 MiB received by A" \
  "$(sha256sum <"$TMP/blob" | cut -d' ' -f1)" \
  "$(sha256sum <"$TMP/blob.out" | cut -d' ' -f1)"
pass "1 MiB B -> A intact"

sa send "$S" "reply from A" --all >/dev/null
expect_eq "B receives A's reply" "reply from A" "$(sb recv "$C" --max 12 --waitall)"
pass "A -> B reply"

# --- UDP both ways ---------------------------------------------------------------
UA=$(sa socket --type dgram)
UB=$(sb socket --type dgram)
UAADDR=$(sa bind "$UA" "$ADDR_A:0")
UBADDR=$(sb bind "$UB" "$ADDR_B:0")
sb sendto "$UB" "$UAADDR" "datagram B->A" >/dev/null
sa --json recvfrom "$UA" --max 1500 >"$TMP/dgram_a.json"
grep -q '"text":"datagram B->A"' "$TMP/dgram_a.json" \
  || fail "A's datagram: $(cat "$TMP/dgram_a.json")"
grep -q "\"address\":\"$UBADDR\"" "$TMP/dgram_a.json" \
  || fail "A's datagram source: $(cat "$TMP/dgram_a.json")"
sa sendto "$UA" "$UBADDR" "datagram A->B" >/dev/null
sb --json recvfrom "$UB" --max 1500 >"$TMP/dgram_b.json"
grep -q '"text":"datagram A->B"' "$TMP/dgram_b.json" \
  || fail "B's datagram: $(cat "$TMP/dgram_b.json")"
grep -q "\"address\":\"$UAADDR\"" "$TMP/dgram_b.json" \
  || fail "B's datagram source: $(cat "$TMP/dgram_b.json")"
pass "UDP both ways ($UBADDR <-> $UAADDR)"

# --- B resets: SO_LINGER 0 then close sends RST; A sees ECONNRESET ------------
sb setsockopt "$C" SO_LINGER on:0
sb close "$C"
rc=0
sa --json recv "$S" >"$TMP/reset.json" 2>/dev/null || rc=$?
expect_eq "exit code of A's recv after the reset" 4 "$rc"
grep -q '"errno_name":"ECONNRESET"' "$TMP/reset.json" \
  || fail "A's recv after reset: $(cat "$TMP/reset.json")"
pass "B's reset reaches A as ECONNRESET"

sa session close
sb session close
echo "multihost: all checks passed"
