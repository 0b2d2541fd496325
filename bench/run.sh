#!/usr/bin/env bash
# The sockagent benchmark suite: builds in Release (build-bench/), runs the
# agent beside its floor (a bare gRPC echo service) and its peers (iperf3,
# RPyC classic) on loopback, the Python client beside a bare grpcio call and
# RPyC, and writes a report.
#
#   bash bench/run.sh           full run (about 6 minutes): writes
#                               bench/results/latest.md, latest.png, raw.jsonl
#   bash bench/run.sh --smoke   seconds; every case once with tiny sizes,
#                               no targets asserted; writes to build-bench/smoke/
#
# BENCH_BUILD_DIR=DIR uses an existing build tree instead (configured with
# -DSOCKAGENT_BUILD_BENCH=ON; tests/run-all.sh passes its own build for the
# smoke run, so CI compiles the project once less). Full runs keep Release.
#
# Loopback only. Every process started here is stopped by its pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

smoke=0
if [[ "${1:-}" == --smoke ]]; then smoke=1; fi

have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

bash deploy/install-deps.sh
missing=()
for p in iperf3 python3-rpyc gnuplot-nox; do have "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=120 \
      install -y -q --no-install-recommends "${missing[@]}"; then
    if ((smoke)); then
      echo "bench: could not install ${missing[*]}; the smoke run goes on without them"
    else
      echo "bench: could not install ${missing[*]}" >&2; exit 1
    fi
  fi
fi

if [[ -n "${BENCH_BUILD_DIR:-}" ]]; then
  build=$(cd "$BENCH_BUILD_DIR" && pwd)
  echo "== build (reusing $build)"
else
  build=$root/build-bench
  echo "== build (Release, $build)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSOCKAGENT_BUILD_TESTS=OFF -DSOCKAGENT_BUILD_BENCH=ON >/dev/null
fi
ninja -C "$build" sockagentd sockbench echo_floor_server python_stubs \
  bench_python_stubs

if ((smoke)); then
  out=$build/smoke; reps=1; fast_reps=1; seconds=0.3; bulk=$((4 << 20))
  iperf_s=1
else
  # The quick cases (latencies, lifecycles, streams) move most from run to
  # run on a shared 2-core machine: 5 repetitions steady their medians. The
  # long ones (10,000 sockets, the 30 s storm, the slow consumer) get 3.
  out=$root/bench/results; reps=${SOCKAGENT_BENCH_REPS:-3}; seconds=3
  fast_reps=${SOCKAGENT_BENCH_FAST_REPS:-5}
  bulk=$((256 << 20)); iperf_s=3
fi
mkdir -p "$out"
work=$(mktemp -d)
raw=$out/raw.jsonl
: >"$raw"

load_start=$(cat /proc/loadavg)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (bounded) for a port file; prints its content.
wait_file() {
  for _ in $(seq 100); do
    [[ -s $1 ]] && { cat "$1"; return 0; }
    sleep 0.1
  done
  echo "bench: $1 never appeared" >&2; return 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The agent needs a descriptor per socket: raise the soft limit to the hard.
ulimit -n "$(ulimit -Hn)" || true

"$build/bench/echo_floor_server" "$work/floor.port" & pids+=($!)
floor="127.0.0.1:$(wait_file "$work/floor.port")"

start_agent() {
  rm -f "$work/agent.port"
  "$build/server/sockagentd" --listen 127.0.0.1:0 --port-file "$work/agent.port" \
    --log-level warn --session-ttl 60s & agent_pid=$!
  pids+=("$agent_pid")
  agent="127.0.0.1:$(wait_file "$work/agent.port")"
}

smoke_flag=(); ((smoke)) && smoke_flag=(--smoke)
# Each group gets a fresh agent; the memory cases (many, slow) one per
# repetition, so that every RSS figure starts from a clean process.
run_group() {  # cases first_rep reps
  echo "== cases: $1 (repetitions from $2: $3)"
  start_agent
  "$build/bench/sockbench" run --agent="$agent" --agent-pid="$agent_pid" \
    --floor="$floor" --cases="$1" --first-rep="$2" --reps="$3" \
    "${smoke_flag[@]}" | tee -a "$raw"
  stop "$agent_pid"
}
run_group small,lifecycle,streams 0 "$fast_reps"
for ((rep = 0; rep < reps; rep++)); do run_group many "$rep" 1; done
run_group storm 0 "$reps"
for ((rep = 0; rep < reps; rep++)); do run_group slow "$rep" 1; done

if have iperf3; then
  echo "== iperf3 (loopback, single stream)"
  port=$(free_port)
  for ((rep = 0; rep < fast_reps; rep++)); do
    iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 & ipid=$!; pids+=("$ipid")
    sleep 0.3
    iperf3 -c 127.0.0.1 -p "$port" -t "$iperf_s" -J >"$work/iperf.json" || true
    stop "$ipid"
    /usr/bin/python3 - "$work/iperf.json" "$rep" <<'PY' | tee -a "$raw"
import json, sys
d = json.load(open(sys.argv[1]))
bps = d["end"]["sum_received"]["bits_per_second"]
print(json.dumps({"case": "streams", "metric": "iperf3", "unit": "MB/s",
                  "rep": int(sys.argv[2]), "value": bps / 8 / 1e6}))
PY
  done
fi

if have python3-rpyc; then
  echo "== RPyC classic"
  "$build/bench/sockbench" peers "$work/peers.port" & pids+=($!)
  read -r echo_port source_port < <(wait_file "$work/peers.port")
  rport=$(free_port)
  /usr/bin/rpyc_classic --host 127.0.0.1 --port "$rport" -q \
    & pids+=($!)
  for _ in $(seq 50); do
    /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $rport), 1)" \
      2>/dev/null && break
    sleep 0.1
  done
  /usr/bin/python3 bench/rpyc_bench.py --port "$rport" --echo "$echo_port" \
    --source "$source_port" --reps "$fast_reps" --seconds "$seconds" \
    --bulk-bytes "$bulk" | tee -a "$raw"
fi

echo "== Python client (bench/python_bench.py; RPyC as the peer when installed)"
start_agent
rpyc_args=()
if [[ -n ${rport:-} ]]; then rpyc_args=(--rpyc-port "$rport"); fi
SOCKAGENT_PYTHON_GEN=$build/client/python PYTHONPATH=$root/client/python \
  /usr/bin/python3 bench/python_bench.py --agent "$agent" --floor "$floor" \
  --floor-stubs "$build/bench/python" "${rpyc_args[@]}" --reps "$fast_reps" \
  --seconds "$seconds" --count "$( ((smoke)) && echo 200 || echo 3000)" \
  | tee -a "$raw"
stop "$agent_pid"

echo "== report"
/usr/bin/python3 bench/report.py --raw "$raw" --out "$out" \
  --mode "$( ((smoke)) && echo smoke || echo full)" --load-start "$load_start" \
  --notes bench/NOTES.md
if have gnuplot-nox && [[ -f $out/plot.gp ]]; then
  (cd "$out" && gnuplot plot.gp)
fi
echo "bench: wrote $out/latest.md"
