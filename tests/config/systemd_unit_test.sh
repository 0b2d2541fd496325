#!/usr/bin/env bash
# Checks deploy/systemd/sockagentd.service offline: `systemd-analyze verify`
# (with ExecStart pointing at the built binary), the hardening directives the
# unit promises, and `systemd-analyze security --offline` exposure <= 2.0.
# Then runs the unit's own ExecStartPre (--check-config) on the example config.
#   systemd_unit_test.sh SOCKAGENTD
# Exit 77 (skip) without systemd-analyze.
set -euo pipefail
SOCKAGENTD=${1:?usage: $0 SOCKAGENTD}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UNIT=$ROOT/deploy/systemd/sockagentd.service
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

sed "s|/usr/local/bin/sockagentd|$SOCKAGENTD|g" "$UNIT" >"$TMP/sockagentd.service"
systemd-analyze verify "$TMP/sockagentd.service" 2>"$TMP/verify.err" \
  || { cat "$TMP/verify.err"; fail "systemd-analyze verify"; }
for directive in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes \
  PrivateTmp=yes 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
  CapabilityBoundingSet= AmbientCapabilities= ProtectHome=yes; do
  grep -qx "$directive" "$UNIT" || fail "unit lacks '$directive'"
done
exposure=$(systemd-analyze security --offline=yes "$TMP/sockagentd.service" 2>/dev/null \
  | sed -n 's/.*Overall exposure level for sockagentd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "no exposure level from systemd-analyze security"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure > 2.0"
echo "ok: unit verifies, hardening present, exposure $exposure"

"$SOCKAGENTD" --check-config "$ROOT/deploy/config/sockagentd.textproto" >/dev/null \
  || fail "example config rejected"
"$SOCKAGENTD" --check-config "$ROOT/deploy/config/sockagentd.json" >/dev/null \
  || fail "example JSON config rejected"
"$SOCKAGENTD" --check-config "$ROOT/deploy/config/container.textproto" >/dev/null \
  || fail "container config rejected"
echo "ok: example configs pass --check-config"
