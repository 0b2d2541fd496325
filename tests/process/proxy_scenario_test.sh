#!/usr/bin/env bash
# Process-level test of the scenario proxy steps (proxy, proxy_faults,
# proxy_stop): a real `sockctl run` against a real agent puts a proxy
# between a real client process and a real server process
# (tests/process/proxy_peers.py), partitions it for 2 s, heals it and stops
# it; a UDP proxy with seeded loss reports its relay's figures; the cleanup
# stops a proxy that a failed or an interrupted run left
# running, and no socket is left on the agent in any case.
#   proxy_scenario_test.sh SOCKAGENTD SOCKCTL
# Loopback only; no timing is asserted; every process started here is
# stopped by pid.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL}
# shellcheck source=tests/process/proxy_harness.sh
source "$(dirname "$0")/proxy_harness.sh"
free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# The agent's open sockets, all sessions together (sockctl info).
open_sockets() {
  "$SOCKCTL" --agent "$AGENT" info | sed -n 's/.*open_sockets=\([0-9]*\).*/\1/p'
}
# interrupt_run WHAT: SIGINT to the background `sockctl run` $run, which
# must end within 20 s with exit 130 and leave no socket on the agent.
interrupt_run() {
  local rc=0
  kill -INT "$run"
  for _ in $(seq 200); do kill -0 "$run" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$run" 2>/dev/null; then fail "$1 kept running after SIGINT"; fi
  wait "$run" || rc=$?
  [ "$rc" -eq 130 ] || fail "$1: exit $rc, expected 130"
  [ "$(open_sockets)" == 0 ] || fail "$1 left $(open_sockets) socket(s)"
}
# accepts PORT: whether something listens on 127.0.0.1:PORT.
accepts() {
  "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5).close()' "$1" 2>/dev/null
}

start_agent agent
AGENT=$AGENT_ADDR
start_peer_server tcp tcp
export SOCKAGENT_AGENT=$AGENT
export UPSTREAM=$PEER_ADDR

# 1. Partition for 2 s, then heal, between a real client and a real server.
#    The client connects as soon as the proxy listens; the scenario sees its
#    connection (the listener, the proxy's fault checker and the two
#    relayed sockets), partitions, heals, waits until the client is done
#    (the two relayed sockets closed) and stops the proxy.
export PROXY_PORT=$(free_port)
cat >"$TMP/partition.yaml" <<'EOF'
name: partition and heal between real processes
agents:
  a: ${env.SOCKAGENT_AGENT}
defaults:
  timeout: 30s
steps:
  - agent: a
    proxy: {listen: "127.0.0.1:${env.PROXY_PORT}", upstream: "${env.UPSTREAM}"}
    save_as: p
  - name: the client is connected
    agent: a
    list_sockets:
    expect: {values: {count: 4}}
    retry: 30s
  - name: partition
    proxy_faults: {proxy: p, blackhole: true}
  - sleep: 2s
  - name: heal
    proxy_faults: {proxy: p, clear: true}
  - name: the client is done
    agent: a
    list_sockets:
    expect: {values: {count: 2}}
    retry: 30s
  - proxy_stop: {proxy: p, connections: 1}
    expect: {values: {connections: 1, errors: 0}}
EOF
timeout 90 "$PYTHON" "$PEERS" partition "127.0.0.1:$PROXY_PORT" \
  >"$TMP/client.out" 2>"$TMP/client.err" &
client=$!
PIDS+=("$client")
rc=0
timeout 120 "$SOCKCTL" --json run "$TMP/partition.yaml" >"$TMP/run.out" \
  2>"$TMP/run.err" || rc=$?
[ "$rc" -eq 0 ] || fail "partition scenario: exit $rc"
wait "$client" || fail "partition client: exit $?"
read -r lost after echoed < <(sed 's/[a-z]*=//g' "$TMP/client.out")
[ "${lost:-0}" -ge 1 ] || fail "no line was lost during the partition: $(cat "$TMP/client.out")"
[ "${after:-0}" -ge 5 ] || fail "no line came back after healing: $(cat "$TMP/client.out")"
"$PYTHON" - "$TMP/run.out" <<'PY' || fail "partition scenario: JSON report"
import json, sys
report = json.load(open(sys.argv[1]))
steps = report["scenarios"][0]["steps"]
stop = [s for s in steps if s["kind"] == "proxy_stop"][0]
assert stop["status"] == "passed", stop
assert len(stop["figures"]) == 1, stop
conn = stop["figures"][0]
assert conn["end"] == "relayed", conn
up, down = conn["relay"]["to_peer"], conn["relay"]["from_peer"]
# What the partition swallowed is counted, not sent.
assert up["bytes_blackholed"] + down["bytes_blackholed"] > 0, conn
assert up["bytes_sent"] > 0 and down["bytes_sent"] > 0, conn
cleanup = [s for s in steps if s["kind"] == "cleanup"][0]
assert "0 socket(s) left" in cleanup["message"], cleanup
PY
[ "$(open_sockets)" == 0 ] || fail "partition scenario left $(open_sockets) socket(s) on the agent"
pass "partition 2 s then heal: client $(cat "$TMP/client.out"); figures in the report; 0 sockets left"

# 2. A failed run: the proxy it started is stopped by the cleanup. The
#    failing step is a fault the proxy's TCP sockets cannot obey, refused
#    by name.
cat >"$TMP/failed.yaml" <<'EOF'
name: a failed run stops its proxy
agents:
  a: ${env.SOCKAGENT_AGENT}
steps:
  - agent: a
    proxy: {listen: "127.0.0.1:0", upstream: "${env.UPSTREAM}"}
    save_as: p
  - proxy_faults: {proxy: p, loss_percent: 5}
EOF
rc=0
timeout 60 "$SOCKCTL" run "$TMP/failed.yaml" >"$TMP/failed.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "failed scenario: exit $rc, expected 1"
grep -q "loss_percent" "$TMP/failed.out" || fail "the refused fault is not named"
grep -q "stopped p: " "$TMP/failed.out" || fail "the cleanup did not stop the proxy"
[ "$(open_sockets)" == 0 ] || fail "failed scenario left $(open_sockets) socket(s)"
pass "failed run: loss_percent refused by name, proxy stopped by the cleanup, 0 sockets left"

# 3. An interrupted run: SIGINT while the proxy runs and a step waits.
export PROXY_PORT=$(free_port)
cat >"$TMP/interrupted.yaml" <<'EOF'
name: an interrupted run stops its proxy
agents:
  a: ${env.SOCKAGENT_AGENT}
steps:
  - agent: a
    proxy: {listen: "127.0.0.1:${env.PROXY_PORT}", upstream: "${env.UPSTREAM}"}
    save_as: p
  - wait: never
    timeout: 120s
EOF
# Not under timeout(1): it would pass the SIGINT on twice (to the child and
# to its process group), and a second SIGINT skips the cleanup. The wait
# step's own timeout bounds the run.
"$SOCKCTL" run "$TMP/interrupted.yaml" >"$TMP/interrupted.out" 2>&1 &
run=$!
PIDS+=("$run")
for _ in $(seq 300); do accepts "$PROXY_PORT" && break; sleep 0.1; done
accepts "$PROXY_PORT" || fail "the interrupted scenario's proxy never listened"
interrupt_run "interrupted scenario"
grep -q "stopped p: " "$TMP/interrupted.out" || fail "the cleanup did not stop the interrupted run's proxy"
if accepts "$PROXY_PORT"; then fail "the proxy still listens after the interrupted run"; fi
pass "interrupted run (SIGINT, exit 130): proxy stopped, its port closed, 0 sockets left"

# 3b. SIGINT while proxy_stop waits for connections that never come: the
#     wait ends with the run (well before its 120 s timeout) and the proxy
#     is stopped.
cat >"$TMP/waiting.yaml" <<'EOF'
name: an interrupted proxy_stop wait
agents:
  a: ${env.SOCKAGENT_AGENT}
steps:
  - agent: a
    proxy: {listen: "127.0.0.1:0", upstream: "${env.UPSTREAM}"}
    save_as: p
  - proxy_stop: {proxy: p, connections: 1}
    timeout: 120s
EOF
"$SOCKCTL" run "$TMP/waiting.yaml" >"$TMP/waiting.out" 2>&1 &
run=$!
PIDS+=("$run")
wait_for "$TMP/waiting.out" "PASS .*proxy p"
interrupt_run "interrupted proxy_stop"
pass "SIGINT during proxy_stop's wait: the run ends (exit 130), 0 sockets left"

# 4. A UDP proxy with seeded loss toward the upstream: a source of 200
#    datagrams through it to a sink; proxy_stop reports the datagram
#    relay's figures (it ends with a close fault, so the agent gives them).
cat >"$TMP/udp.yaml" <<'EOF'
name: udp proxy with loss
agents:
  a: ${env.SOCKAGENT_AGENT}
defaults:
  timeout: 30s
steps:
  - {agent: a, socket: {type: dgram}, save_as: server}
  - bind: {socket: server, address: "127.0.0.1:0"}
  - agent: a
    proxy: {listen: "127.0.0.1:0", upstream: "${server.address}", udp: true,
            direction: upstream, loss_percent: 30, seed: 7}
    save_as: p
  - {agent: a, socket: {type: dgram}, save_as: client}
  - parallel:
      - traffic: {socket: server, mode: sink, duration: 3s}
      - traffic: {socket: client, mode: source, bytes: 20000,
                  datagram_bytes: 100, rate: 200K, destination: "${p.address}"}
        expect: {values: {datagrams_sent: 200}}
  - proxy_stop: p
    expect: {values: {connections: 1, errors: 0}}
EOF
rc=0
timeout 120 "$SOCKCTL" --json run "$TMP/udp.yaml" >"$TMP/udp.out" 2>"$TMP/udp.err" || rc=$?
[ "$rc" -eq 0 ] || fail "udp scenario: exit $rc"
"$PYTHON" - "$TMP/udp.out" <<'PY' || fail "udp scenario: figures"
import json, sys
steps = json.load(open(sys.argv[1]))["scenarios"][0]["steps"]
stop = [s for s in steps if s["kind"] == "proxy_stop"][0]
relay = stop["figures"][0]["relay"]
up = relay["to_peer"]
assert stop["figures"][0]["end"] == "fault", stop
assert relay["clients"] == 1, relay
# Every datagram the relay read was sent or lost to the seeded fault.
assert up["datagrams_received"] == up["datagrams_sent"] + up["datagrams_lost"], up
assert up["datagrams_lost"] > 0 and up["datagrams_sent"] > 0, up
PY
[ "$(open_sockets)" == 0 ] || fail "udp scenario left $(open_sockets) socket(s)"
pass "udp proxy with loss 30% in a scenario: the relay's figures at proxy_stop, 0 sockets left"

# 5. A proxy started inside a for_each pair is stopped when that pair ends
#    (its name is the pair's own), before the steps after the group.
cat >"$TMP/scope.yaml" <<'EOF'
name: a for_each pair stops its proxy
agents:
  a: ${env.SOCKAGENT_AGENT}
steps:
  - for_each:
      agents: "*"
      steps:
        - agent: "${agent}"
          proxy: {listen: "127.0.0.1:0", upstream: "${env.UPSTREAM}"}
          save_as: p
        - proxy_faults: {proxy: p, send_delay: 10ms}
  - name: nothing of the pair's proxy is left
    agent: a
    list_sockets:
    expect: {values: {count: 0}}
EOF
rc=0
timeout 60 "$SOCKCTL" run "$TMP/scope.yaml" >"$TMP/scope.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "for_each scenario: exit $rc"
pass "a proxy started in a for_each pair is stopped when the pair ends"

echo "PASS"
