#!/usr/bin/env bash
# Checks deploy/systemd/sockagentd.service, then runs the agent the way the
# unit runs it.
#
# Offline (any user): `systemd-analyze verify` (ExecStart pointing at the
# built binary), the directives the unit and the README promise (hardening,
# LogsDirectory, RuntimeDirectory, UMask), `systemd-analyze security
# --offline` exposure <= 2.0, and the unit's ExecStartPre (--check-config)
# on the example configs.
#
# Emulated service (root only; systemd is not PID 1 here, so no
# systemd-run): the ExecStart line of the unit's documented LoadCredential
# drop-in, with %d = a credentials directory, runs as an unprivileged user
# (nobody, standing in for the DynamicUser) with the unit's UMask, its
# LogsDirectory and RuntimeDirectory made as systemd makes them (owner,
# mode). It shows that: the root-owned 0600 TLS key and token files are
# unreadable to that user, and the copies systemd's LoadCredential makes
# serve mTLS + token; --audit-log /var/log/sockagent/audit.jsonl (the
# LogsDirectory) is writable; a Unix socket bound in /run/sockagent (the
# RuntimeDirectory) can be connected to by another user. Not emulated:
# the mount namespace (ProtectSystem, PrivateTmp), seccomp and capability
# settings, which only systemd applies (systemd-analyze checks their text).
#   systemd_unit_test.sh SOCKAGENTD [SOCKCTL]
# Exit 77 (skip) without systemd-analyze.
set -euo pipefail
SOCKAGENTD=$(realpath "${1:?usage: $0 SOCKAGENTD [SOCKCTL]}")
SOCKCTL=${2:-$(dirname "$SOCKAGENTD")/../client/sockctl}
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UNIT=$ROOT/deploy/systemd/sockagentd.service
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
TMP=$(mktemp -d)
AGENT=
cleanup() {
  if [ -n "$AGENT" ]; then kill "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -s "$TMP/agent.log" ] && tail -n 20 "$TMP/agent.log" >&2; exit 1; }

sed "s|/usr/bin/sockagentd|$SOCKAGENTD|g" "$UNIT" >"$TMP/sockagentd.service"
systemd-analyze verify "$TMP/sockagentd.service" 2>"$TMP/verify.err" \
  || { cat "$TMP/verify.err"; fail "systemd-analyze verify"; }
for directive in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes \
  PrivateTmp=yes 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
  CapabilityBoundingSet= AmbientCapabilities= ProtectHome=yes \
  LogsDirectory=sockagent LogsDirectoryMode=0750 RuntimeDirectory=sockagent \
  RuntimeDirectoryMode=0755 UMask=0000 \
  'ExecStart=/usr/bin/sockagentd --config /etc/sockagent/sockagentd.textproto'; do
  grep -qx "$directive" "$UNIT" || fail "unit lacks '$directive'"
done
exposure=$(systemd-analyze security --offline=yes "$TMP/sockagentd.service" 2>/dev/null \
  | sed -n 's/.*Overall exposure level for sockagentd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "no exposure level from systemd-analyze security"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure > 2.0"
echo "ok: unit verifies, hardening and directories present, exposure $exposure"

"$SOCKAGENTD" --check-config "$ROOT/deploy/config/sockagentd.textproto" >/dev/null \
  || fail "example config rejected"
"$SOCKAGENTD" --check-config "$ROOT/deploy/config/sockagentd.json" >/dev/null \
  || fail "example JSON config rejected"
"$SOCKAGENTD" --check-config "$ROOT/deploy/config/container.textproto" >/dev/null \
  || fail "container config rejected"
echo "ok: example configs pass --check-config"

# --- the service, emulated ------------------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || ! command -v openssl >/dev/null; then
  echo "skip: emulated service run (needs root, setpriv, openssl)"
  echo "PASS: systemd_unit_test (offline checks only)"
  exit 0
fi
[ -x "$SOCKCTL" ] || fail "no sockctl at $SOCKCTL"
SERVICE_UID=65534   # nobody: the DynamicUser stand-in
OTHER_UID=1         # daemon: the system under test
chmod 0755 "$TMP"
# The agent binary must be reachable by the service user.
install -m 0755 "$SOCKAGENTD" "$TMP/sockagentd"

# Secrets as an operator keeps them: root-owned, 0600.
mkdir -m 0700 "$TMP/secret"
(
  cd "$TMP/secret"
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  key ca.key
  openssl req -x509 -new -key ca.key -subj /CN=unit-test-ca -days 1 -out ca.pem 2>/dev/null
  leaf() {
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
      -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  }
  leaf agent DNS:localhost
  leaf harness URI:spiffe://sockagent.test/harness
  echo "unit-test-token-0123456789 harness-token" >tokens
  chmod 0600 ./*
)
setpriv --reuid=$SERVICE_UID --regid=$SERVICE_UID --clear-groups \
  cat "$TMP/secret/agent.key" >/dev/null 2>&1 &&
  fail "the service user can read the root-owned key: the test proves nothing"

# LoadCredential=NAME:PATH copies each file into the credentials directory
# (%d), readable by the service user.
CREDS=$TMP/credentials
mkdir -m 0500 "$CREDS"
drop_in_creds=$(sed -n 's/^#     LoadCredential=\([^:]*\):\(.*\)$/\1 \2/p' "$UNIT")
[ -n "$drop_in_creds" ] || fail "the unit documents no LoadCredential drop-in"
while read -r name path; do
  case "$path" in
    /etc/sockagent/tls/agent.pem) src=agent.pem ;;
    /etc/sockagent/tls/agent.key) src=agent.key ;;
    /etc/sockagent/tls/ca.pem) src=ca.pem ;;
    /etc/sockagent/tokens) src=tokens ;;
    *) fail "unexpected credential $name:$path" ;;
  esac
  install -m 0400 -o $SERVICE_UID "$TMP/secret/$src" "$CREDS/$name"
done <<<"$drop_in_creds"
chown $SERVICE_UID "$CREDS"

# LogsDirectory=sockagent and RuntimeDirectory=sockagent as systemd makes
# them: owned by the service user, with the unit's modes.
mkdir -p "$TMP/var/log" "$TMP/run"
install -d -m 0750 -o $SERVICE_UID "$TMP/var/log/sockagent"
install -d -m 0755 -o $SERVICE_UID "$TMP/run/sockagent"
install -m 0644 "$ROOT/deploy/config/sockagentd.textproto" "$TMP/sockagentd.textproto"

# The drop-in's ExecStart, with the paths of this emulation; port 0 instead
# of the config's fixed ports (flags win over the file).
exec_start=$(sed -n 's/^#     ExecStart=\(\/usr\/bin\/sockagentd .*\)$/\1/p' "$UNIT")
[ -n "$exec_start" ] || fail "the unit documents no drop-in ExecStart"
exec_start=${exec_start//\/usr\/bin\/sockagentd/$TMP/sockagentd}
exec_start=${exec_start//\/etc\/sockagent\/sockagentd.textproto/$TMP/sockagentd.textproto}
exec_start=${exec_start//%d/$CREDS}
exec_start=${exec_start//\/var\/log\/sockagent/$TMP/var/log/sockagent}
umask_value=$(sed -n 's/^UMask=//p' "$UNIT")
# shellcheck disable=SC2086  # exec_start is a command line, split as systemd splits it
setpriv --reuid=$SERVICE_UID --regid=$SERVICE_UID --clear-groups --no-new-privs \
  bash -c "umask $umask_value; exec \"\$@\"" sockagentd $exec_start \
  --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --port-file "$TMP/run/sockagent/port" \
  >"$TMP/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 300); do
  [ -s "$TMP/run/sockagent/port" ] && break
  kill -0 "$AGENT" 2>/dev/null || fail "the agent exited at start (as the service user)"
  sleep 0.1
done
[ -s "$TMP/run/sockagent/port" ] || fail "no port file"
export SOCKAGENT_AGENT=127.0.0.1:$(cat "$TMP/run/sockagent/port")
sc() {
  timeout 20 "$SOCKCTL" --tls-ca "$TMP/secret/ca.pem" --tls-cert "$TMP/secret/harness.pem" \
    --tls-key "$TMP/secret/harness.key" --tls-server-name localhost "$@"
}
[ "$(SOCKAGENT_TOKEN=unit-test-token-0123456789 sc health)" == SERVING ] || fail "health over mTLS"
echo "ok: as the service user, TLS key, certificates and tokens come from the credentials directory (%d)"

SOCKAGENT_SESSION=$(SOCKAGENT_TOKEN=unit-test-token-0123456789 sc session open --ttl 60s)
export SOCKAGENT_SESSION SOCKAGENT_TOKEN=unit-test-token-0123456789
U=$(sc socket --family unix)
sc bind "$U" "$TMP/run/sockagent/sut.sock" >/dev/null
sc listen "$U"
stat -c '%U %a' "$TMP/run/sockagent/sut.sock" | grep -q '^nobody 777$' ||
  fail "socket file: $(stat -c '%U %a' "$TMP/run/sockagent/sut.sock")"
setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"from the system under test")
' "$TMP/run/sockagent/sut.sock" || fail "another user cannot connect to the agent's socket in /run/sockagent"
A=$(sc accept "$U" | cut -d' ' -f1)
got=$(sc recv "$A" --max 64 --waitall)
[ "$got" == "from the system under test" ] || fail "received '$got'"
echo "ok: a Unix socket the agent binds in /run/sockagent (UMask=$umask_value) is reachable by another user"

sc session close
for _ in $(seq 100); do
  [ -s "$TMP/var/log/sockagent/audit.jsonl" ] && break
  sleep 0.1
done
grep -q '"method":"Bind"' "$TMP/var/log/sockagent/audit.jsonl" ||
  fail "no audit line in /var/log/sockagent/audit.jsonl: $(cat "$TMP/var/log/sockagent/audit.jsonl" 2>&1)"
[ "$(stat -c %U "$TMP/var/log/sockagent/audit.jsonl")" == nobody ] || fail "audit log owner"
echo "ok: --audit-log /var/log/sockagent/audit.jsonl (LogsDirectory) is written by the service user"

kill -TERM "$AGENT"
rc=0
wait "$AGENT" || rc=$?
AGENT=
[ "$rc" == 0 ] || fail "agent exit $rc after SIGTERM"
echo "PASS: systemd_unit_test"
