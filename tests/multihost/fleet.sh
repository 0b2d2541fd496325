#!/usr/bin/env bash
# A fleet of agents on one machine, each in its own network namespace:
#
#   bash tests/multihost/fleet.sh --agents 100
#       [--sockagentd PATH] [--harness PATH] [--sockctl PATH]
#       [--results FILE] [--heat-map FILE.png] [--concurrency N]
#
# (binaries default to build/server/sockagentd, build/tests/multihost/
# fleet_harness and build/client/sockctl under the repository root).
#
# Creates a harness namespace and N agent namespaces, each agent joined to
# the harness namespace by a veth pair created inside the harness namespace
# (no interface ever exists in the machine's own namespace); the harness
# namespace routes between them:
#
#   saf-PID-1  veth0 10.232.0.11/32 --- to-1 -+
#   saf-PID-2  veth0 10.232.0.12/32 --- to-2 -+- saf-PID-h (harness, router)
#   ...                                       |  10.232.255.1
#   saf-PID-N  veth0 10.232.X.Y/32  --- to-N -+
#
# Routed, not bridged: the kernel's ARP table is one for all namespaces
# (net.ipv4.neigh.default.gc_thresh3, 1024 by default), and a bridge of 100
# hosts talking all-to-all needs 100 x 99 entries ("neighbor table
# overflow", SYNs that never leave). Routed, each agent namespace has one
# neighbour (the harness namespace) and the harness namespace N.
#
# One sockagentd per agent namespace, on its own address, over mutual TLS
# (a throwaway CA made here), labelled node=fleet-I, zone=zI%3 and
# netns=NAME. From the harness namespace:
#   1. discovery: an inventory file (YAML: names, addresses, TLS, labels)
#      and a DNS-like hosts file (/etc/netns/saf-PID-h/hosts: N A records of
#      one name, which `ip netns exec` shows as /etc/hosts) both give the N
#      agents, every one reachable (fleet_harness --expect N);
#   2. `sockctl agents` lists them with their labels (when sockctl has it);
#   3. the ring (each agent connects to the next and exchanges 1 KiB) and
#      the all-pairs matrix (N*(N-1) pairs, TCP connect + 1 KiB echo),
#      reporting wall time, per-pair p50/p99, failures and the agents' open
#      sockets afterwards (must be 0);
#   4. no TCP socket other than the agents' listeners is left in any
#      namespace (TIME-WAIT aside), checked with ss;
#   5. the same ring and matrix through ONE agent (in the harness
#      namespace, --allow-network-namespaces) that creates every socket
#      inside the agent namespaces per call; each use is in its audit log.
#
# Addresses: 10.232.0.0/16 exists only inside the namespaces this script
# creates; nothing is sent from the machine's own namespace. Names include
# the script's pid. The EXIT trap (also on SIGINT/SIGTERM) stops every agent
# by pid and deletes every namespace (which deletes the veths) and
# /etc/netns/NAME.
#
# Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): exits 77 (ctest SKIP) otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
AGENTS=10
SOCKAGENTD=$ROOT/build/server/sockagentd
HARNESS=$ROOT/build/tests/multihost/fleet_harness
SOCKCTL=$ROOT/build/client/sockctl
RESULTS=
HEAT_MAP=
CONCURRENCY=32
while (($#)); do
  case $1 in
    --agents) AGENTS=$2; shift 2 ;;
    --sockagentd) SOCKAGENTD=$2; shift 2 ;;
    --harness) HARNESS=$2; shift 2 ;;
    --sockctl) SOCKCTL=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --heat-map) HEAT_MAP=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    *) echo "fleet.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$AGENTS" =~ ^[0-9]+$ ]] && ((AGENTS >= 2 && AGENTS <= 1000)) \
  || { echo "fleet.sh: --agents must be 2..1000" >&2; exit 2; }

SKIP=77
skip() { echo "SKIP: $*"; exit "$SKIP"; }
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v ss >/dev/null || skip "ss (iproute2) is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"
for bin in "$SOCKAGENTD" "$HARNESS" "$SOCKCTL"; do
  [ -x "$bin" ] || { echo "fleet.sh: $bin is not built" >&2; exit 2; }
done

PREFIX="saf-$$"
NS_H="$PREFIX-h"
ADDR_H=10.232.255.1
AGENT_PORT=7700  # each agent has its own namespace: no collision
DNS_NAME=fleet-agents.test
TMP=$(mktemp -d)
MADE_ETC_NETNS=0
[ -d /etc/netns ] || MADE_ETC_NETNS=1
PIDS=()
NAMESPACES=()

cleanup() {
  local pid i
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "/etc/netns/$NS_H" "$TMP"
  [ "$MADE_ETC_NETNS" = 1 ] && rmdir /etc/netns 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 143' INT TERM

fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.out "$TMP"/*.err "$TMP"/logs/*.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}
pass() { echo "ok: $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# addr_of I: the address of agent I (1-based), 10.232.X.Y with Y in 11..210.
addr_of() { echo "10.232.$((($1 - 1) / 200)).$((($1 - 1) % 200 + 11))"; }
ns_of() { echo "$PREFIX-$1"; }

# --- the namespaces and the routes -------------------------------------------------
T0=$(now)
ip netns add "$NS_H" || skip "cannot create network namespaces here"
NAMESPACES+=("$NS_H")
for i in $(seq "$AGENTS"); do
  ip netns add "$(ns_of "$i")"
  NAMESPACES+=("$(ns_of "$i")")
done
# Everything inside the harness namespace in one batch: each veth pair with
# its far end moved straight into agent namespace I, and a host route to it.
{
  echo "link set lo up"
  echo "addr add $ADDR_H/32 dev lo"
  for i in $(seq "$AGENTS"); do
    echo "link add to-$i type veth peer name veth0 netns $(ns_of "$i")"
    echo "link set to-$i up"
    echo "route add $(addr_of "$i")/32 dev to-$i"
  done
} | ip -n "$NS_H" -batch -
ip netns exec "$NS_H" sysctl -qw net.ipv4.ip_forward=1
for i in $(seq "$AGENTS"); do
  printf '%s\n' "addr add $(addr_of "$i")/32 dev veth0" "link set veth0 up" \
    "link set lo up" "route add $ADDR_H/32 dev veth0" \
    "route add 10.232.0.0/16 via $ADDR_H dev veth0" \
    | ip -n "$(ns_of "$i")" -batch -
done
pass "$AGENTS agent namespaces routed through harness $NS_H ($(since "$T0") s)"

# --- throwaway certificates ---------------------------------------------------------
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key "$TMP/ca.key"
openssl req -x509 -new -key "$TMP/ca.key" -subj /CN=fleet-test-ca -days 1 \
  -out "$TMP/ca.pem" 2>/dev/null
leaf() {  # leaf NAME SUBJECT_ALT_NAMES EXTENDED_KEY_USAGE
  key "$TMP/$1.key"
  openssl req -new -key "$TMP/$1.key" -subj "/CN=$1" -out "$TMP/$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "$3" >"$TMP/$1.ext"
  openssl x509 -req -in "$TMP/$1.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" \
    -CAcreateserial -days 1 -extfile "$TMP/$1.ext" -out "$TMP/$1.pem" 2>/dev/null
}
SANS=
for i in $(seq "$AGENTS"); do SANS+="${SANS:+,}IP:$(addr_of "$i")"; done
leaf agent "$SANS" serverAuth
leaf harness "URI:spiffe://fleet.test/harness" clientAuth
pass "throwaway CA, agent and harness certificates"

# --- one agent per namespace ------------------------------------------------------
mkdir -p "$TMP/logs" "$TMP/ports"
T0=$(now)
for i in $(seq "$AGENTS"); do
  ns=$(ns_of "$i")
  ip netns exec "$ns" "$SOCKAGENTD" --listen "$(addr_of "$i"):$AGENT_PORT" \
    --port-file "$TMP/ports/$i" \
    --tls-cert "$TMP/agent.pem" --tls-key "$TMP/agent.key" \
    --tls-client-ca "$TMP/ca.pem" --require-client-cert \
    --label "node=fleet-$i" --label "zone=z$((i % 3))" --label "netns=$ns" \
    --log-level warn >"$TMP/logs/$i.log" 2>&1 &
  PIDS+=($!)
done
for i in $(seq "$AGENTS"); do
  for _ in $(seq 300); do
    [ -s "$TMP/ports/$i" ] && break
    kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null || fail "sockagentd $i exited at start"
    sleep 0.1
  done
  [ -s "$TMP/ports/$i" ] || fail "sockagentd $i wrote no port file"
done
pass "$AGENTS agents serving ($(since "$T0") s)"

# --- discovery: an inventory, and DNS-like records in a hosts file ---------------
INVENTORY=$TMP/inventory.yaml
{
  echo "defaults:"
  echo "  port: $AGENT_PORT"
  echo "  tls: {ca: ca.pem, cert: harness.pem, key: harness.key}"
  echo "  labels: {fleet: fleet-test}"
  echo "agents:"
  for i in $(seq "$AGENTS"); do
    echo "  fleet-$i: {address: $(addr_of "$i"), labels: {rack: r$((i % 4))}}"
  done
} >"$INVENTORY"
mkdir -p "/etc/netns/$NS_H"
{
  echo "127.0.0.1 localhost"
  for i in $(seq "$AGENTS"); do echo "$(addr_of "$i") $DNS_NAME"; done
} >"/etc/netns/$NS_H/hosts"

in_h() { ip netns exec "$NS_H" "$@"; }
RESULTS_TMP=$TMP/results.jsonl
in_h "$HARNESS" --agents "$INVENTORY" --expect "$AGENTS" --timeout 20s \
  >"$TMP/probe-inventory.out" 2>"$TMP/probe-inventory.err" \
  || { cat "$TMP/probe-inventory.out"; fail "inventory discovery"; }
grep '^probe:' "$TMP/probe-inventory.out"
pass "inventory: $AGENTS agents, all reachable"

SOCKAGENT_TLS_CA=$TMP/ca.pem SOCKAGENT_TLS_CERT=$TMP/harness.pem \
  SOCKAGENT_TLS_KEY=$TMP/harness.key \
  in_h "$HARNESS" --agents "dns:$DNS_NAME:$AGENT_PORT" --expect "$AGENTS" \
  --select "zone=z1" --timeout 20s \
  >"$TMP/probe-dns.out" 2>"$TMP/probe-dns.err" \
  || { cat "$TMP/probe-dns.out"; fail "DNS discovery"; }
grep '^probe:' "$TMP/probe-dns.out"
# Selection by a label the agents report themselves (zone=z1: I % 3 == 1).
expect_selected=$(((AGENTS + 2) / 3))
grep -q "$expect_selected selected" "$TMP/probe-dns.out" \
  || fail "zone=z1 should select $expect_selected agents: $(cat "$TMP/probe-dns.out")"
pass "dns:$DNS_NAME: $AGENTS agents; zone=z1 selects $expect_selected"

# --- sockctl agents (when this sockctl has the command) ---------------------------
in_h "$SOCKCTL" agents --agents "$INVENTORY" --json >"$TMP/agents.json" \
  2>"$TMP/agents.err" || fail "sockctl agents: $(cat "$TMP/agents.err")"
n=$(grep -o '"health":"ok"' "$TMP/agents.json" | wc -l)
[ "$n" -eq "$AGENTS" ] || fail "sockctl agents: $n of $AGENTS ok"
grep -q "\"node\":\"fleet-$AGENTS\"" "$TMP/agents.json" \
  || fail "sockctl agents shows no node label: $(head -c 400 "$TMP/agents.json")"
# An agent that cannot answer is reported, exit 1; the rest still are.
# (10.232.254.254 has no route in the harness namespace: ENETUNREACH
# there, nothing leaves it.)
rc=0
in_h "$SOCKCTL" agents --agents "$INVENTORY" --select "zone=z1" \
  >"$TMP/agents-z1.out" 2>"$TMP/agents-z1.err" || rc=$?
[ "$rc" -eq 0 ] || fail "sockctl agents --select zone=z1 exited $rc"
[ "$(tail -n +2 "$TMP/agents-z1.out" | wc -l)" -eq "$(((AGENTS + 2) / 3))" ] \
  || fail "sockctl agents --select zone=z1: $(cat "$TMP/agents-z1.out")"
cp "$INVENTORY" "$TMP/inventory-gone.yaml"
echo "  gone: {address: 10.232.254.254}" >>"$TMP/inventory-gone.yaml"
rc=0
in_h "$SOCKCTL" --timeout 2s agents --agents "$TMP/inventory-gone.yaml" --json \
  >"$TMP/agents-gone.json" 2>"$TMP/agents-gone.err" || rc=$?
[ "$rc" -eq 1 ] || fail "sockctl agents with an unreachable agent exited $rc, expected 1"
grep -q '"name":"gone".*"health":"unreachable"' "$TMP/agents-gone.json" \
  || fail "the unreachable agent: $(grep gone "$TMP/agents-gone.json")"
[ "$(grep -c '"health":"ok"' "$TMP/agents-gone.json")" -eq "$AGENTS" ] \
  || fail "an unreachable agent hid the others"
pass "sockctl agents: $AGENTS ok with their labels; --select; an unreachable one reported (exit 1)"

# --- ring and all-pairs matrix ------------------------------------------------------
rc=0
in_h "$HARNESS" --agents "$INVENTORY" --expect "$AGENTS" --ring --matrix \
  --concurrency "$CONCURRENCY" --bytes 1024 --timeout 30s \
  --heat-map "$TMP/matrix.png" \
  --results "$RESULTS_TMP" >"$TMP/matrix.out" 2>"$TMP/matrix.err" || rc=$?
sed 's/^/  /' "$TMP/matrix.out"
[ "$rc" -eq 0 ] || fail "ring/matrix (exit $rc)"
grep -q "^ring: $AGENTS pairs, 0 failed" "$TMP/matrix.out" || fail "ring"
grep -q "^matrix: $((AGENTS * (AGENTS - 1))) pairs, 0 failed" "$TMP/matrix.out" \
  || fail "matrix"
grep -q "^sockets left: 0$" "$TMP/matrix.out" || fail "sockets left on the agents"
head -c 8 "$TMP/matrix.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" \
  || fail "the matrix heat map is not a PNG"
[ -z "$HEAT_MAP" ] || cp "$TMP/matrix.png" "$HEAT_MAP"
pass "ring and matrix: 0 failures, 0 sockets left on the agents, heat map written"

# --- the same all-pairs matrix as a scenario file (sockctl run) -----------------
# Agents come from the inventory; every pair is a JUnit testcase "from -> to".
cat >"$TMP/matrix-scenario.yaml" <<EOF
name: fleet all-pairs
agents_from: $INVENTORY
steps:
- matrix:
    from: "*"
    to: "*"
    concurrency: $CONCURRENCY
    steps:
      - {agent: "\${to}", socket: {}, save_as: l}
      - bind: {socket: l, address: "\${to.host}:0"}
      - listen: l
      - {agent: "\${from}", socket: {}, save_as: c}
      - connect: {socket: c, address: "\${to.host}:\${l.port}"}
      - {accept: l, save_as: s}
      - sendall: {socket: c, data: {bytes: 1KiB, pattern: random, seed: 1}}
      - recv_all: {socket: s, bytes: 1KiB}
        expect: {data: {bytes: 1KiB, pattern: random, seed: 1}}
EOF
T=$(now)
rc=0
in_h "$SOCKCTL" run "$TMP/matrix-scenario.yaml" --junit "$TMP/matrix.xml" \
  --heat-map "$TMP/matrix-scenario.png" >"$TMP/run.out" 2>"$TMP/run.err" || rc=$?
if [ "$rc" -ne 0 ]; then
  tail -n 30 "$TMP/run.out" "$TMP/run.err"
  fail "matrix scenario exited $rc"
fi
pairs=$(grep -c '<testcase name="fleet-[0-9]* -&gt; fleet-[0-9]*"' "$TMP/matrix.xml")
[ "$pairs" -eq $((AGENTS * (AGENTS - 1))) ] \
  || fail "matrix scenario: $pairs JUnit pair testcases, expected $((AGENTS * (AGENTS - 1)))"
if grep -q '<failure' "$TMP/matrix.xml"; then fail "matrix scenario: a pair failed"; fi
head -c 8 "$TMP/matrix-scenario.png" | od -An -tx1 | grep -q "89 50 4e 47" \
  || fail "the matrix scenario's heat map is not a PNG"
pass "matrix scenario (sockctl run, agents from the inventory): $pairs pairs passed in $(since "$T") s"

# --- no connection left in any namespace ------------------------------------------
# Everything but the agents' own listeners and TIME-WAIT; closing sockets
# pass through FIN-WAIT/LAST-ACK briefly, so wait (bounded) for 0.
left=-1
for _ in $(seq 100); do
  left=0
  for i in $(seq "$AGENTS"); do
    n=$(ip netns exec "$(ns_of "$i")" ss -Htan exclude time-wait \
      '( not sport = :7700 )' | wc -l)
    left=$((left + n))
  done
  [ "$left" -eq 0 ] && break
  sleep 0.1
done
[ "$left" -eq 0 ] || fail "$left TCP sockets left in the agent namespaces"
pass "no TCP socket left in any agent namespace"

# --- the same matrix through ONE agent that targets the namespaces per call -----
# sockagentd in the harness namespace, allowed to create sockets in other
# network namespaces; every pair's sockets are created by it inside the
# namespaces the fleet's agents name in their netns label. Every use is
# audited.
ip netns exec "$NS_H" "$SOCKAGENTD" --listen 127.0.0.1:0 \
  --port-file "$TMP/ports/via" --allow-network-namespaces \
  --audit-log "$TMP/via-audit.jsonl" --log-level warn \
  >"$TMP/logs/via.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  [ -s "$TMP/ports/via" ] && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || fail "the via agent exited at start"
  sleep 0.1
done
[ -s "$TMP/ports/via" ] || fail "the via agent wrote no port file"
rc=0
in_h "$HARNESS" --agents "$INVENTORY" --expect "$AGENTS" --ring --matrix \
  --via "127.0.0.1:$(cat "$TMP/ports/via")" --via-netns-label netns \
  --concurrency "$CONCURRENCY" --bytes 1024 --timeout 30s \
  --results "$RESULTS_TMP" >"$TMP/via.out" 2>"$TMP/via.err" || rc=$?
sed 's/^/  /' "$TMP/via.out"
[ "$rc" -eq 0 ] || fail "ring/matrix through one agent (exit $rc)"
grep -q "^via-matrix: $((AGENTS * (AGENTS - 1))) pairs, 0 failed" "$TMP/via.out" \
  || fail "via-matrix"
grep -q "^sockets left: 0$" "$TMP/via.out" || fail "sockets left on the via agent"
# One audited Socket decision per socket made in a namespace: a listener per
# agent, and per pair of the ring and the matrix one connecting socket. The
# audit log writes at most 200 lines a second and counts the rest in
# {"event":"suppressed","suppressed":N} lines: written + suppressed must
# cover every use.
# sockctl too: a socket made in agent 1's namespace binds agent 1's address
# (which exists only there); a pid of 0 is refused naming the field.
# sc: sockctl in the harness namespace against the via agent.
sc() { in_h "$SOCKCTL" --agent "127.0.0.1:$(cat "$TMP/ports/via")" "$@"; }
VS=$(sc session open --ttl 30s)
H1=$(sc --session "$VS" socket --netns "$(ns_of 1)")
BOUND=$(sc --session "$VS" bind "$H1" "$(addr_of 1):0")
[[ "$BOUND" == "$(addr_of 1):"* ]] || fail "bind in $(ns_of 1) printed '$BOUND'"
rc=0
sc --session "$VS" socket --netns pid:0 >/dev/null 2>"$TMP/netns-pid0.err" || rc=$?
[ "$rc" -eq 2 ] || fail "socket --netns pid:0 exited $rc, expected 2"
sc --session "$VS" session close >/dev/null || fail "closing the via session"
pass "sockctl socket --netns $(ns_of 1): bound $BOUND there"

# Stop the via agent first: the audit log writes its last suppressed count
# when it closes.
VIA_PID=${PIDS[-1]}
kill -TERM "$VIA_PID"
for _ in $(seq 100); do kill -0 "$VIA_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$VIA_PID" 2>/dev/null && fail "the via agent did not stop on SIGTERM"
audited=$(grep '"method":"Socket"' "$TMP/via-audit.jsonl" | grep -c "netns $PREFIX-" || true)
suppressed=$({ grep -o '"suppressed":[0-9]*' "$TMP/via-audit.jsonl" || true; } \
  | awk -F: '{ n += $2 } END { print n + 0 }')
want=$((AGENTS + AGENTS + AGENTS * (AGENTS - 1)))
[ "$audited" -gt 0 ] || fail "audit: no namespace Socket decision"
[ $((audited + suppressed)) -ge "$want" ] \
  || fail "audit: $audited namespace Socket decisions + $suppressed suppressed lines < $want uses"
pass "the matrix through one agent targeting $AGENTS namespaces: 0 failures, 0 sockets left, $want uses audited ($audited written, the rest counted under the audit log's rate limit)"

if [ -n "$RESULTS" ]; then
  sed "s/^{/{\"run\":\"fleet.sh\",\"n\":$AGENTS,/" "$RESULTS_TMP" >>"$RESULTS"
fi
echo "fleet: all checks passed ($AGENTS agents)"
