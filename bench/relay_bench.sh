#!/usr/bin/env bash
# Pump and relay throughput beside iperf3 and socat, in one run on loopback:
#   bash bench/relay_bench.sh [BUILD_DIR]      (default: build-bench, Release)
# Prints one JSON line per figure and writes bench/results/relay.md:
# - TCP MB/s: iperf3 single stream (direct); agent-side source -> sink,
#   source -> echo -> sink and source -> relay -> sink on one agent;
#   iperf3 through socat and through `sockctl proxy`.
# - UDP datagrams/s at 1400 B: iperf3 direct, through socat, through
#   bench/udp_floor_relay (one recvfrom + one send per datagram: the floor
#   of any user-space relay) and through `sockctl proxy --udp`.
# BENCH_IO_THREADS=N starts the agent with --io-threads N (default: the
# agent's own default); the report names the count the agent ran with.
# Loopback only; every process started here is stopped by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-$root/build-bench}
if [[ ! -x $build/server/sockagentd ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSOCKAGENT_BUILD_TESTS=OFF -DSOCKAGENT_BUILD_BENCH=ON >/dev/null
  ninja -C "$build" sockagentd sockctl udp_floor_relay
fi
load_start=$(cat /proc/loadavg)
SOCKCTL=$build/client/sockctl
secs=${BENCH_SECONDS:-3}
bytes=${BENCH_BYTES:-2G}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_file() {
  for _ in $(seq 100); do [[ -s $1 ]] && { cat "$1"; return 0; }; sleep 0.1; done
  echo "bench: $1 never appeared" >&2; return 1
}
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
emit() {  # emit CASE VALUE UNIT
  printf '{"case": "%s", "value": %s, "unit": "%s"}\n' "$1" "$2" "$3" | tee -a "$work/raw.jsonl"
}
iperf_tcp() {  # iperf_tcp PORT -> MB/s
  iperf3 -c 127.0.0.1 -p "$1" -t "$secs" -J >"$work/iperf.json"
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f" % (d["end"]["sum_received"]["bits_per_second"]/8e6))' "$work/iperf.json"
}
iperf_udp() {  # iperf_udp PORT -> datagrams/s received
  iperf3 -c 127.0.0.1 -p "$1" -u -b 0 -l 1400 -t "$secs" -J >"$work/iperf.json"
  /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["end"]["sum"]
print("%.0f" % ((d["packets"] - d["lost_packets"]) / d["seconds"]))' "$work/iperf.json"
}
start_iperf() {  # start_iperf PORT
  iperf3 -s -B 127.0.0.1 -p "$1" >/dev/null 2>&1 & pids+=($!)
  sleep 0.3
}

"$build/server/sockagentd" --listen 127.0.0.1:0 --port-file "$work/agent.port" \
  --log-level warn ${BENCH_IO_THREADS:+--io-threads "$BENCH_IO_THREADS"} & pids+=($!)
export SOCKAGENT_AGENT=127.0.0.1:$(wait_file "$work/agent.port")
io_threads=$("$SOCKCTL" --json info | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"].get("io_threads", 1))')

up=$(free_port); start_iperf "$up"
emit tcp.iperf3 "$(iperf_tcp "$up")" MB/s

# Agent-side pumps, one agent, loopback pairs made with sockctl.
export SOCKAGENT_SESSION=$("$SOCKCTL" session open --ttl 10m)
pair() {  # pair -> "CLIENT SERVER" handles, connected
  local l c a
  l=$("$SOCKCTL" socket); "$SOCKCTL" bind "$l" 127.0.0.1:0 >/dev/null; "$SOCKCTL" listen "$l"
  c=$("$SOCKCTL" socket); "$SOCKCTL" connect "$c" "$("$SOCKCTL" getsockname "$l")" >/dev/null
  a=$("$SOCKCTL" accept "$l" | cut -d' ' -f1)
  "$SOCKCTL" close "$l"
  echo "$c $a"
}
mbps() { /usr/bin/python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["bytes_received"] / json.load(open(sys.argv[1]))["elapsed_s"] / 1e6))' "$1"; }
sink_mbps() {  # sink_mbps JSONFILE
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f" % (d["bytes_received"] / d["elapsed_s"] / 1e6))' "$1"
}
read -r c a < <(pair)
"$SOCKCTL" --json traffic sink "$a" >"$work/sink.json" & s=$!
"$SOCKCTL" traffic source "$c" --bytes "$bytes" --shutdown-write >/dev/null
wait "$s"
emit tcp.source_sink "$(sink_mbps "$work/sink.json")" MB/s
# source -> echo -> sink: the source and the sink share one socket.
read -r c a < <(pair)
"$SOCKCTL" --json traffic sink "$c" >"$work/sink.json" & s=$!
"$SOCKCTL" traffic echo "$a" >/dev/null & e=$!
"$SOCKCTL" traffic source "$c" --bytes "$bytes" --shutdown-write >/dev/null
wait "$e"; "$SOCKCTL" shutdown "$a" write; wait "$s"
emit tcp.source_echo_sink "$(sink_mbps "$work/sink.json")" MB/s
# source -> relay -> sink: the source's EOF reaches the sink through the
# relay; the sink's side then ends the other direction.
read -r c a < <(pair)
read -r b d < <(pair)
"$SOCKCTL" --json traffic sink "$d" >"$work/sink.json" & s=$!
"$SOCKCTL" traffic relay "$a" "$b" >/dev/null & r=$!
"$SOCKCTL" traffic source "$c" --bytes "$bytes" --shutdown-write >/dev/null
wait "$s"; "$SOCKCTL" shutdown "$d" write; wait "$r"
emit tcp.source_relay_sink "$(sink_mbps "$work/sink.json")" MB/s
"$SOCKCTL" session close >/dev/null
unset SOCKAGENT_SESSION

# iperf3 through socat and through sockctl proxy (TCP and UDP on one port,
# since iperf3's UDP test keeps a TCP control connection).
p=$(free_port)
socat TCP-LISTEN:"$p",bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:"$up" & pids+=($!)
socat UDP-RECVFROM:"$p",bind=127.0.0.1,fork UDP:127.0.0.1:"$up" & pids+=($!)
sleep 0.3
emit tcp.iperf3_via_socat "$(iperf_tcp "$p")" MB/s
p2=$(free_port)
"$SOCKCTL" proxy --listen 127.0.0.1:"$p2" --upstream 127.0.0.1:"$up" </dev/null >"$work/p1" & pids+=($!)
"$SOCKCTL" proxy --udp --listen 127.0.0.1:"$p2" --upstream 127.0.0.1:"$up" </dev/null >"$work/p2" & pids+=($!)
wait_file "$work/p1" >/dev/null; wait_file "$work/p2" >/dev/null
emit tcp.iperf3_via_sockagent_proxy "$(iperf_tcp "$p2")" MB/s
emit udp.iperf3 "$(iperf_udp "$up")" datagrams/s
emit udp.iperf3_via_socat "$(iperf_udp "$p")" datagrams/s
if [[ -x $build/bench/udp_floor_relay ]]; then
  p3=$(free_port)
  socat TCP-LISTEN:"$p3",bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:"$up" & pids+=($!)
  "$build/bench/udp_floor_relay" "$p3" "$up" & pids+=($!)
  sleep 0.3
  emit udp.iperf3_via_floor_relay "$(iperf_udp "$p3")" datagrams/s
fi
emit udp.iperf3_via_sockagent_proxy "$(iperf_udp "$p2")" datagrams/s

mkdir -p bench/results
/usr/bin/python3 - "$work/raw.jsonl" "$(cat /proc/loadavg)" "$load_start" "$io_threads" >bench/results/relay.md <<'PY'
import json, sys
rows = {r["case"]: r for r in map(json.loads, open(sys.argv[1]))}
def v(k): return rows[k]["value"]
print("# Pumps and relay beside iperf3 and socat (bench/relay_bench.sh)\n")
print("One run on loopback, the agent with %s io threads; load average at "
      "the start: %s; at the end: %s.\n" % (sys.argv[4], sys.argv[3], sys.argv[2]))
print("| case | value | vs |")
print("| --- | --- | --- |")
for k, r in rows.items():
    ref = ""
    if k.startswith("tcp.") and k != "tcp.iperf3":
        ref = "%.0f %% of iperf3" % (100 * r["value"] / v("tcp.iperf3"))
    if k == "tcp.iperf3_via_sockagent_proxy":
        ref += ", %.2fx socat" % (r["value"] / v("tcp.iperf3_via_socat"))
    if k.startswith("udp.") and k != "udp.iperf3":
        ref = "%.0f %% of iperf3" % (100 * r["value"] / v("udp.iperf3"))
    if k == "udp.iperf3_via_sockagent_proxy":
        ref += ", %.2fx socat" % (r["value"] / v("udp.iperf3_via_socat"))
        if "udp.iperf3_via_floor_relay" in rows:
            ref += ", %.2fx the floor relay" % (
                r["value"] / v("udp.iperf3_via_floor_relay"))
    print("| %s | %s %s | %s |" % (k, r["value"], r["unit"], ref))
PY
cat bench/results/relay.md
