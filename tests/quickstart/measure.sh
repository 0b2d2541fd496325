#!/usr/bin/env bash
# Measures the quick start: seconds from an empty build directory to a
# serving agent, through deploy/run-agent.sh itself (install-deps finds
# everything installed; the build runs without ccache unless KEEP_CCACHE=1).
# Prints one line: "quickstart: serving after N s (build dir DIR, J cores, load L)".
# Usage: tests/quickstart/measure.sh [BUILD_DIR]   (default: a fresh temp dir)
# Exit 0 when the agent served and stopped cleanly; the time is reported,
# never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir=${1:-$(mktemp -d /tmp/sockagent-quickstart.XXXXXX)}
rm -rf "$build_dir"
[[ ${KEEP_CCACHE:-0} == 1 ]] || export CCACHE_DISABLE=1
port_file=$(mktemp /tmp/sockagent-quickstart-port.XXXXXX)
rm -f "$port_file"
log=$(mktemp /tmp/sockagent-quickstart-log.XXXXXX)
load=$(cut -d' ' -f1 /proc/loadavg)
start=$(date +%s.%N)
BUILD_DIR=$build_dir bash deploy/run-agent.sh --listen 127.0.0.1:0 \
  --port-file "$port_file" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; rm -f "$port_file" "$log"; }
trap cleanup EXIT
# Bounded: 40 minutes, far beyond any build on a loaded 2-core machine.
for ((i = 0; i < 24000; i++)); do
  [[ -s $port_file ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "quickstart: run-agent.sh exited" >&2; exit 1; }
  sleep 0.1
done
[[ -s $port_file ]] || { echo "quickstart: no agent after 40 min" >&2; exit 1; }
port=$(cat "$port_file")
"$build_dir/client/sockctl" --agent "127.0.0.1:$port" --timeout 5s health >/dev/null
end=$(date +%s.%N)
kill -TERM "$pid"
wait "$pid"
# CPU seconds of everything run-agent.sh ran (the compiler above all): on a
# quiet machine the wall time is about this divided by the cores.
# (`times` in this shell: in a $(...) subshell it would see no children.)
times >"$log"
cpu=$(awk 'NR == 2 {
  split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$log")
printf 'quickstart: serving after %.0f s, %.0f CPU s (build dir %s, %s cores, load %s at start, ccache %s)\n' \
  "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" "$cpu" "$build_dir" "$(nproc)" "$load" \
  "$([[ ${CCACHE_DISABLE:-0} == 1 ]] && echo off || echo on)"
