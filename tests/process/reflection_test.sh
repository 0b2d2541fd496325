#!/usr/bin/env bash
# Server reflection over grpc.reflection.v1 (what grpcurl asks for first)
# and v1alpha, against a real sockagentd on loopback, with a Python client
# (Debian's python3-grpcio) whose stubs protoc generates here from
# /usr/share/grpc-proto.
#   reflection_test.sh SOCKAGENTD
set -euo pipefail
SOCKAGENTD=${1:?usage: $0 SOCKAGENTD}
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)

"$PYTHON" -c 'import grpc' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 77; }
command -v grpc_python_plugin >/dev/null || { echo "SKIP: no grpc_python_plugin"; exit 77; }

TMP=$(mktemp -d)
AGENT=
cleanup() {
  [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -s "$TMP/agent.log" ] && tail -n 20 "$TMP/agent.log" >&2; exit 1; }

for v in v1 v1alpha; do
  protoc -I /usr/share/grpc-proto --python_out "$TMP" --grpc_python_out "$TMP" \
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
    "grpc/reflection/$v/reflection.proto"
done
# Packages for the generated modules, under a name that does not shadow the
# real grpc package: the client imports grpc.reflection.* from $TMP/stubs.
mkdir -p "$TMP/stubs"
mv "$TMP/grpc" "$TMP/stubs/grpc_reflection_stubs"
find "$TMP/stubs" -type d -exec touch {}/__init__.py \;
sed -i 's/^from grpc.reflection/from grpc_reflection_stubs.reflection/' \
  "$TMP"/stubs/grpc_reflection_stubs/reflection/*/*_grpc.py
sed "s/from grpc.reflection./from grpc_reflection_stubs.reflection./" \
  "$HERE/reflection_client.py" >"$TMP/client.py"

"$SOCKAGENTD" --listen 127.0.0.1:0 --port-file "$TMP/port" >"$TMP/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 300); do
  [ -s "$TMP/port" ] && break
  kill -0 "$AGENT" 2>/dev/null || fail "sockagentd exited at start"
  sleep 0.1
done
[ -s "$TMP/port" ] || fail "no port file"
TARGET=127.0.0.1:$(cat "$TMP/port")

for v in v1 v1alpha; do
  "$PYTHON" "$TMP/client.py" "$TMP/stubs" "$TARGET" "$v" || fail "reflection $v"
done
echo "PASS: reflection_test"
