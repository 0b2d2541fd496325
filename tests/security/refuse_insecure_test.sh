#!/bin/bash
# sockagentd refuses a non-loopback address without TLS: exit 2 and a message
# naming the way out. Nothing is bound (the check runs before the server).
set -u
agent="$1"
out=$("$agent" --listen 0.0.0.0:0 2>&1); rc=$?
[ "$rc" -eq 2 ] || { echo "expected exit 2, got $rc: $out"; exit 1; }
echo "$out" | grep -q "refusing to listen on 0.0.0.0:0" || { echo "no message: $out"; exit 1; }
echo "$out" | grep -q -- "--insecure-allow-non-loopback-without-tls" || { echo "no hint: $out"; exit 1; }
out=$("$agent" --listen '[::]:0' 2>&1); rc=$?
[ "$rc" -eq 2 ] || { echo "expected exit 2 for [::], got $rc: $out"; exit 1; }
# A TLS flag without a readable certificate is refused too (exit 1).
out=$("$agent" --listen 127.0.0.1:0 --tls-cert /nonexistent.pem --tls-key /nonexistent.key 2>&1); rc=$?
[ "$rc" -ne 0 ] || { echo "started with a missing certificate"; exit 1; }
echo "$out" | grep -q "cannot read" || { echo "no message: $out"; exit 1; }
# An invalid policy file is refused at start (exit 2).
policy=$(mktemp); echo 'rules { name: ' > "$policy"
out=$("$agent" --listen 127.0.0.1:0 --policy "$policy" 2>&1); rc=$?
rm -f "$policy"
[ "$rc" -eq 2 ] || { echo "expected exit 2 for a bad policy, got $rc: $out"; exit 1; }
echo ok
