#!/usr/bin/env bash
# Multi-host test on Linux network namespaces:
#   netns_test.sh SOCKAGENTD SOCKCTL HARNESS
#
# Three "hosts", each a network namespace; A and B also get their own UTS
# namespace (their own hostname) and run sockagentd on their own address over
# mutual TLS; H is the harness host, holding a bridge that joins them:
#
#   sa-mh-PID-a  veth0 10.231.0.1 ---+
#                                    br0 10.231.0.3   sa-mh-PID-h (harness)
#   sa-mh-PID-b  veth0 10.231.0.2 ---+
#
# From H, the harness drives both agents twice: through the client library
# (HARNESS, tests/multihost/harness.cc) and through sockctl. Each run makes A
# listen, B connect to A's address, exchanges data both ways over TCP and
# UDP and checks the hostnames; the sockctl run also resets the connection
# (SO_LINGER 0, close) so A's recv fails with ECONNRESET. Afterwards neither
# agent holds a socket.
#
# Certificates (a throwaway CA, a server certificate for both agents' IP
# addresses, a client certificate for the harness) are made here with
# openssl; nothing secret is committed.
#
# Addresses: 10.231.0.0/24 (a private range chosen for this test) exists
# only inside the three namespaces this script creates; nothing is routed or
# sent from the machine's own namespace. Names include the script's pid so
# parallel runs do not collide. Everything (agents by pid, namespaces by
# name) is removed in the EXIT trap; every wait is bounded.
#
# Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): exits 77 (ctest SKIP) otherwise.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL HARNESS}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL HARNESS}
HARNESS=${3:?usage: $0 SOCKAGENTD SOCKCTL HARNESS}
SKIP=77
STEP_TIMEOUT=20

skip() { echo "SKIP: $*"; exit "$SKIP"; }
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"

NS_A="sa-mh-$$-a"
NS_B="sa-mh-$$-b"
NS_H="sa-mh-$$-h"
ADDR_A=10.231.0.1
ADDR_B=10.231.0.2
ADDR_H=10.231.0.3
AGENT_PORT=7700  # each agent has its own namespace: no collision
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

# --- the three hosts --------------------------------------------------------------
for ns in "$NS_A" "$NS_B" "$NS_H"; do
  ip netns add "$ns" || skip "cannot create network namespaces here"
  NAMESPACES+=("$ns")
done
# The bridge lives in H; each veth pair is created inside H with its far end
# moved straight into A or B: no interface exists in the machine's own
# namespace.
ip -n "$NS_H" link add br0 type bridge
ip -n "$NS_H" link add to-a type veth peer name veth0 netns "$NS_A"
ip -n "$NS_H" link add to-b type veth peer name veth0 netns "$NS_B"
for port in to-a to-b; do
  ip -n "$NS_H" link set "$port" master br0
  ip -n "$NS_H" link set "$port" up
done
ip -n "$NS_H" addr add "$ADDR_H/24" dev br0
ip -n "$NS_H" link set br0 up
ip -n "$NS_A" addr add "$ADDR_A/24" dev veth0
ip -n "$NS_B" addr add "$ADDR_B/24" dev veth0
for ns in "$NS_A" "$NS_B" "$NS_H"; do ip -n "$ns" link set lo up; done
for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set veth0 up; done
pass "namespaces $NS_A ($ADDR_A), $NS_B ($ADDR_B), harness $NS_H ($ADDR_H)"

# --- throwaway certificates ---------------------------------------------------------
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key "$TMP/ca.key"
openssl req -x509 -new -key "$TMP/ca.key" -subj /CN=multihost-test-ca -days 1 \
  -out "$TMP/ca.pem" 2>/dev/null
leaf() {  # leaf NAME SUBJECT_ALT_NAMES EXTENDED_KEY_USAGE
  key "$TMP/$1.key"
  openssl req -new -key "$TMP/$1.key" -subj "/CN=$1" -out "$TMP/$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "$3" >"$TMP/$1.ext"
  openssl x509 -req -in "$TMP/$1.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" \
    -CAcreateserial -days 1 -extfile "$TMP/$1.ext" -out "$TMP/$1.pem" 2>/dev/null
}
leaf agent "IP:$ADDR_A,IP:$ADDR_B" serverAuth
leaf harness "URI:spiffe://multihost.test/harness" clientAuth
pass "throwaway CA, agent and harness certificates"

# start_agent NAME NS HOSTNAME ADDRESS: sockagentd in NS with its own hostname,
# on ADDRESS with mutual TLS; the pid recorded is sockagentd's own (ip netns
# exec, unshare and sh all exec).
start_agent() {
  ip netns exec "$2" unshare --uts sh -c \
    'hostname "$1"; shift; exec "$@"' sh "$3" \
    "$SOCKAGENTD" --listen "$4:$AGENT_PORT" --port-file "$TMP/$1.port" \
    --tls-cert "$TMP/agent.pem" --tls-key "$TMP/agent.key" \
    --tls-client-ca "$TMP/ca.pem" --require-client-cert \
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
start_agent a "$NS_A" "sa-host-a-$$" "$ADDR_A"
start_agent b "$NS_B" "sa-host-b-$$" "$ADDR_B"

# --- the harness through the client library ---------------------------------------
timeout 120 ip netns exec "$NS_H" "$HARNESS" \
  --a "$ADDR_A:$AGENT_PORT" --b "$ADDR_B:$AGENT_PORT" \
  --ca "$TMP/ca.pem" --cert "$TMP/harness.pem" --key "$TMP/harness.key" \
  --host-a "sa-host-a-$$" --host-b "sa-host-b-$$" >"$TMP/harness.out" 2>"$TMP/harness.err" \
  || { cat "$TMP/harness.out"; fail "client-library harness failed"; }
sed 's/^/  harness: /' "$TMP/harness.out"
grep -q "all checks passed" "$TMP/harness.out" || fail "harness did not finish"
pass "client-library harness in $NS_H drove both agents"

# A harness without a client certificate gets nothing (mTLS is required).
rc=0
timeout "$STEP_TIMEOUT" ip netns exec "$NS_H" "$SOCKCTL" --agent "$ADDR_A:$AGENT_PORT" \
  --tls-ca "$TMP/ca.pem" --timeout 5s gethostname >/dev/null 2>"$TMP/nocert.err" || rc=$?
[ "$rc" -ne 0 ] || fail "an agent answered a harness without a client certificate"
pass "no client certificate, no answer (exit $rc)"

# --- the harness through sockctl ------------------------------------------------------
export SOCKAGENT_TLS_CA="$TMP/ca.pem" SOCKAGENT_TLS_CERT="$TMP/harness.pem" \
  SOCKAGENT_TLS_KEY="$TMP/harness.key"
# sa / sb: sockctl in the harness namespace against agent A / B.
sa() {
  timeout "$STEP_TIMEOUT" ip netns exec "$NS_H" "$SOCKCTL" \
    --agent "$ADDR_A:$AGENT_PORT" ${SESSION_A:+--session "$SESSION_A"} "$@"
}
sb() {
  timeout "$STEP_TIMEOUT" ip netns exec "$NS_H" "$SOCKCTL" \
    --agent "$ADDR_B:$AGENT_PORT" ${SESSION_B:+--session "$SESSION_B"} "$@"
}
sa health >/dev/null || fail "agent A not SERVING"
sb health >/dev/null || fail "agent B not SERVING"
SESSION_A=$(sa session open --ttl 60s --label multihost-a)
SESSION_B=$(sb session open --ttl 60s --label multihost-b)
pass "sockctl in $NS_H reached both agents over mTLS"

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

sa close "$S"
sa close "$L"
sa close "$UA"
sb close "$UB"
expect_eq "sockets left on A" 0 "$(sa ls | tail -n +2 | wc -l)"
expect_eq "sockets left on B" 0 "$(sb ls | tail -n +2 | wc -l)"
sa session close
sb session close
pass "torn down: no socket left, sessions closed"
echo "multihost: all checks passed"
