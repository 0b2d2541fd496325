#!/usr/bin/env bash
# A secured sockagentd driven by sockctl:
#   secure_agent_test.sh SOCKAGENTD SOCKCTL
# mTLS (certificates made here with openssl), a bearer token, a policy file
# and the audit log. Checks: without a certificate nothing works; the
# harness certificate works and its SPIFFE identity is in the audit log;
# a denied sendto exits 3 (PERMISSION_DENIED) and the loopback canary gets
# nothing; a reloaded policy (file change) is enforced; a bad policy file
# keeps the old one; neither the token nor any payload appears in any log.
# Touches only 127.0.0.1; bounded waits; processes killed by pid.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL}
PYTHON=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/agent.log "$TMP"/audit.log "$TMP"/*.err; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}
pass() { echo "ok: $*"; }
sc() { timeout 20 "$SOCKCTL" --agent "127.0.0.1:$PORT" --tls-server-name localhost "$@"; }

cd "$TMP"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -subj /CN=test-ca -days 1 -out ca.pem 2>/dev/null
leaf() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
leaf server DNS:localhost
leaf harness URI:spiffe://sockagent.test/harness
TOKEN=tok-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN token-ci" > tokens

policy() {  # policy CANARY_PORT_DENY
  cat > policy.textproto.tmp <<POLICY
rules {
  name: "harness"
  identities: [ "spiffe://sockagent.test/harness", "token-ci" ]
  allow_rpcs: "*"
  families: FAMILY_INET
  types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
  connect_allow { cidr: "127.0.0.1" }
  connect_deny { cidr: "127.0.0.1" port_min: $1 }
  bind_allow { cidr: "127.0.0.1" }
}
POLICY
  mv policy.textproto.tmp policy.textproto
}
# Canary: a UDP socket on 127.0.0.1 that counts datagrams for 120 s (it is
# stopped by its pid when the test ends).
"$PYTHON" - > canary.port 2> canary.err <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1], flush=True)
s.settimeout(0.2); n = 0; end = time.time() + 120
while time.time() < end:
    try:
        s.recv(2048); n += 1; open("canary.count", "w").write(str(n))
    except socket.timeout:
        pass
PY
PIDS+=($!)
for i in $(seq 300); do [ -s canary.port ] && break; sleep 0.1; done
[ -s canary.port ] || fail "the canary did not start: $(cat canary.err)"
CANARY=$(cat canary.port)
policy "$CANARY"

"$SOCKAGENTD" --listen 127.0.0.1:0 --port-file port --tls-cert server.pem \
  --tls-key server.key --tls-client-ca ca.pem --token-file tokens \
  --policy policy.textproto --policy-reload-interval 200ms \
  --audit-log audit.log --metrics-listen 127.0.0.1:0 > agent.log 2>&1 &
PIDS+=($!)
for i in $(seq 300); do [ -s port ] && break; sleep 0.1; done
[ -s port ] || fail "agent did not start"
PORT=$(cat port)

# 1. No certificate and no token: refused (exit 3, UNAUTHENTICATED).
set +e
sc --tls-ca ca.pem info > /dev/null 2> nocert.err; rc=$?
set -e
[ "$rc" -eq 3 ] || fail "no credentials: exit $rc"
grep -qi "unauthenticated\|token or a client certificate" nocert.err || fail "no reason given"
pass "a client without certificate or token is refused"

# 2. The harness certificate works; the identity is audited.
export SOCKAGENT_TLS_CA=ca.pem SOCKAGENT_TLS_CERT=harness.pem SOCKAGENT_TLS_KEY=harness.key
export SOCKAGENT_SESSION=$(sc session open --ttl 1m)
U=$(sc socket --type dgram)
sc bind "$U" 127.0.0.1:0 > /dev/null
grep -q '"identity":"spiffe://sockagent.test/harness"' audit.log || fail "identity not audited"
pass "mTLS identity reaches the policy and the audit log"

# 3. sendto the canary is denied by connect_deny: exit 3, nothing arrives.
set +e
sc sendto "$U" "127.0.0.1:$CANARY" secret-payload-1 > /dev/null 2> denied.err; rc=$?
set -e
[ "$rc" -eq 3 ] || fail "denied sendto: exit $rc"
grep -q "harness.connect_deny\[0\]" denied.err || fail "denial does not name the rule"
pass "denied sendto is PERMISSION_DENIED naming the rule"

# 4. Policy file change: allow the canary port (deny another one).
policy 1
for i in $(seq 50); do
  sc sendto "$U" "127.0.0.1:$CANARY" secret-payload-2 > /dev/null 2>&1 && break
  sleep 0.1
done
for i in $(seq 50); do [ -s canary.count ] && break; sleep 0.1; done
[ "$(cat canary.count 2>/dev/null)" == "1" ] || fail "canary count $(cat canary.count 2>/dev/null)"
pass "a changed policy file is enforced (the canary got exactly the allowed datagram)"

# 5. A broken policy file keeps the last valid policy.
echo "rules { name: " > policy.textproto
for i in $(seq 50); do grep -q "policy reload rejected" agent.log && break; sleep 0.1; done
grep -q "policy reload rejected" agent.log || fail "bad policy not reported"
sc sendto "$U" "127.0.0.1:$CANARY" x > /dev/null || fail "old policy lost"
METRICS_PORT=$(grep -o 'metrics on [^ ]* (port [0-9]*' agent.log | grep -o '[0-9]*$')
"$PYTHON" -c 'import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode())' \
  "$METRICS_PORT" > metrics.txt || fail "metrics scrape"
grep -Eq '^sockagent_policy_reloads_rejected_total [1-9]' metrics.txt \
  || fail "rejected reload not counted: $(grep rejected metrics.txt)"
pass "an invalid policy file keeps the previous policy and is counted in the metrics"

# 5b. Sessions: each identity lists only its own; a non-admin cannot close
# another identity's session (exit 3 naming the rule) but can close its own.
S=$SOCKAGENT_SESSION
sc session list > list.cert || fail "session list"
grep -q "$S" list.cert || fail "own session not listed"
sc --json sessions list | grep -q '"identity": *"spiffe://sockagent.test/harness"' \
  || fail "sessions list --json lacks the identity"
(
  unset SOCKAGENT_TLS_CERT SOCKAGENT_TLS_KEY SOCKAGENT_SESSION
  export SOCKAGENT_TOKEN="$TOKEN"
  sc session list > list.token || exit 1
  ! grep -q "$S" list.token || exit 2
  set +e
  sc session close --id "$S" > /dev/null 2> close.err; rc=$?
  [ "$rc" -eq 3 ] || exit 3
  grep -q "harness.admin" close.err || exit 4
) || fail "token identity saw or closed another identity's session ($?)"
sc session close --id "$S" || fail "closing its own session by id"
set +e
sc sendto "$U" "127.0.0.1:$CANARY" x > /dev/null 2>&1; rc=$?
set -e
[ "$rc" -eq 3 ] || fail "the closed session still works (exit $rc)"
pass "session list shows only the caller's sessions; non-admins close only their own"

# 6. The token works without a certificate (TLS only).
unset SOCKAGENT_TLS_CERT SOCKAGENT_TLS_KEY SOCKAGENT_SESSION
SOCKAGENT_TOKEN="$TOKEN" sc info > /dev/null 2> token.err || fail "token refused"
set +e
SOCKAGENT_TOKEN=tok-wrong-wrong-wrong-wrong sc info > /dev/null 2> badtoken.err; rc=$?
set -e
[ "$rc" -eq 3 ] || fail "bad token: exit $rc"
pass "bearer token accepted, a wrong one refused"

# 7. Nothing secret in any log.
kill -TERM "${PIDS[1]}"; wait "${PIDS[1]}" || true
for f in agent.log audit.log *.err; do
  ! grep -q "$TOKEN" "$f" || fail "token leaked into $f"
  ! grep -q "secret-payload" "$f" || fail "payload leaked into $f"
done
grep -q '"event":"close"' audit.log || fail "no close line in the audit log"
pass "no token or payload in the logs; closes audited"
