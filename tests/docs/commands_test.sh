#!/usr/bin/env bash
# The docs cannot drift from the code: every ```sh block of README.md and
# docs/*.md is either run here, as written, against two live agents (marker
# <!-- test: run -->), or names the tests that run its commands (marker
# <!-- test: tests/... -->, checked by tests/docs/doc_commands.py).
#   commands_test.sh SOCKAGENTD SOCKCTL
# The run blocks see sockctl and sockagentd on PATH, SOCKAGENT_AGENT set to
# agent A, and 127.0.0.1:7700 / 127.0.0.1:7701 replaced by agents A and B
# (ports chosen by the kernel); they run in a scratch directory holding the
# repository's examples/ and deploy/. Only 127.0.0.1; every process started
# here is stopped by pid.
set -euo pipefail
SOCKAGENTD=$(realpath "${1:?usage: $0 SOCKAGENTD SOCKCTL}")
SOCKCTL=$(realpath "${2:?usage: $0 SOCKAGENTD SOCKCTL}")
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$PYTHON" "$ROOT/tests/docs/doc_commands.py" "$ROOT" check || fail "docs commands without a test"

start_agent() {  # start_agent NAME
  "$SOCKAGENTD" --listen 127.0.0.1:0 --port-file "$TMP/$1.port" >"$TMP/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do
    [ -s "$TMP/$1.port" ] && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || fail "agent $1 exited"
    sleep 0.1
  done
  fail "agent $1 wrote no port file"
}
start_agent a
start_agent b
A=127.0.0.1:$(cat "$TMP/a.port")
B=127.0.0.1:$(cat "$TMP/b.port")

mkdir -p "$TMP/bin" "$TMP/work"
ln -s "$SOCKCTL" "$TMP/bin/sockctl"
ln -s "$SOCKAGENTD" "$TMP/bin/sockagentd"
ln -s "$ROOT/examples" "$TMP/work/examples"
ln -s "$ROOT/deploy" "$TMP/work/deploy"
mkdir -p "$TMP/work/build/client" "$TMP/work/build/server"
ln -s "$SOCKCTL" "$TMP/work/build/client/sockctl"
ln -s "$SOCKAGENTD" "$TMP/work/build/server/sockagentd"

ran=0
for doc in "$ROOT/README.md" "$ROOT"/docs/*.md; do
  "$PYTHON" "$ROOT/tests/docs/doc_commands.py" "$ROOT" script "$doc" >"$TMP/blocks.sh"
  [ -s "$TMP/blocks.sh" ] || continue
  sed -i "s/127\.0\.0\.1:7700/$A/g; s/127\.0\.0\.1:7701/$B/g" "$TMP/blocks.sh"
  echo "== running the sh blocks of ${doc#"$ROOT"/}"
  (
    cd "$TMP/work"
    export PATH="$TMP/bin:$PATH" SOCKAGENT_AGENT=$A
    unset SOCKAGENT_SESSION
    timeout 120 bash -euo pipefail "$TMP/blocks.sh"
  ) >"$TMP/out" 2>&1 || { tail -n 30 "$TMP/out" >&2; fail "a run block of ${doc#"$ROOT"/} failed"; }
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || fail "no run block anywhere"
# What the blocks started in the background has ended or is stopped with us;
# both agents hold no socket afterwards only if the blocks cleaned up.
echo "PASS: docs commands ($ran files with run blocks)"
