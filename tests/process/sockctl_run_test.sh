#!/usr/bin/env bash
# Process-level test of `sockctl run` against two real sockagentd processes:
#   sockctl_run_test.sh SOCKAGENTD SOCKCTL SOURCE_DIR
# - every examples/scenarios/*.yaml passes (exit 0), with agents from
#   SOCKAGENT_AGENT_<NAME> and from --agent-NAME=...; --json and --junit;
# - the JUnit XML has the JUnit schema's structure (python3 xml.etree);
# - a failing expectation exits 1 and names the step, expected and actual in
#   the progress, the table, the JSON and the JUnit <failure>;
# - a scenario file error exits 2 with file:line:column;
# - SIGINT and SIGTERM during a run exit 130 / 143 after cleanup, and both
#   agents then hold zero sockets and zero sessions.
# Touches only 127.0.0.1; every wait is bounded; every process it starts is
# killed by pid on exit.
set -euo pipefail

SOCKAGENTD=${1:?usage: $0 SOCKAGENTD SOCKCTL SOURCE_DIR}
SOCKCTL=${2:?usage: $0 SOCKAGENTD SOCKCTL SOURCE_DIR}
SOURCE_DIR=${3:?usage: $0 SOCKAGENTD SOCKCTL SOURCE_DIR}
PYTHON=${PYTHON:-/usr/bin/python3}
RUN_TIMEOUT=120

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.err "$TMP"/*.out "$TMP"/agent*.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }
  done
  exit 1
}
pass() { echo "ok: $*"; }

# Runs sockctl run with a bounded time; sets RC.
run() {
  set +e
  timeout "$RUN_TIMEOUT" "$SOCKCTL" run "$@"
  RC=$?
  set -e
}

# --- two agents ------------------------------------------------------------
start_agent() {  # start_agent N
  "$SOCKAGENTD" --listen 127.0.0.1:0 --port-file "$TMP/port$1" \
    >"$TMP/agent$1.log" 2>&1 &
  PIDS+=($!)
  local i
  for i in $(seq 300); do
    [ -s "$TMP/port$1" ] && return 0
    sleep 0.1
  done
  fail "agent $1 wrote no port file"
}
start_agent 1
start_agent 2
A="127.0.0.1:$(cat "$TMP/port1")"
B="127.0.0.1:$(cat "$TMP/port2")"

# Both agents hold no socket and no session.
assert_empty() {  # assert_empty WHAT
  local target info
  for target in "$A" "$B"; do
    info=$(timeout 20 "$SOCKCTL" --agent "$target" --json info) ||
      fail "$1: sockctl info $target"
    "$PYTHON" - "$info" "$1 on $target" <<'PY' || fail "$1: agent not empty"
import json, sys
stats = json.loads(sys.argv[1])["stats"]
open_sockets = int(stats.get("open_sockets", 0))
sessions = int(stats.get("sessions", 0))
if open_sockets or sessions:
    sys.exit(f"{sys.argv[2]}: {open_sockets} sockets, {sessions} sessions")
PY
  done
}

# The JUnit structure: <testsuites> of <testsuite name tests failures errors
# time> of <testcase name classname time> with at most one <failure message>,
# <error message> or <skipped>; the counts add up. Prints the failure texts.
check_junit() {  # check_junit FILE
  "$PYTHON" - "$1" <<'PY' || fail "JUnit structure of $1"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
for a in ("tests", "failures", "errors", "time"):
    assert a in root.attrib, f"testsuites lacks {a}"
total = {"tests": 0, "failures": 0, "errors": 0}
suites = root.findall("testsuite")
assert suites, "no testsuite"
for suite in suites:
    for a in ("name", "tests", "failures", "errors", "skipped", "time",
              "timestamp", "hostname"):
        assert a in suite.attrib, f"testsuite lacks {a}"
    float(suite.get("time"))
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases), "tests != testcases"
    counts = {"failure": 0, "error": 0, "skipped": 0}
    for case in cases:
        for a in ("name", "classname", "time"):
            assert a in case.attrib, f"testcase lacks {a}"
        float(case.get("time"))
        children = [c for c in case if c.tag in counts]
        assert len(children) <= 1, "more than one outcome"
        for c in children:
            counts[c.tag] += 1
            if c.tag != "skipped":
                assert c.get("message"), f"{c.tag} without message"
                print(f"{c.tag}: {case.get('name')}: {c.text}")
    assert int(suite.get("failures")) == counts["failure"], "failures"
    assert int(suite.get("errors")) == counts["error"], "errors"
    assert int(suite.get("skipped")) == counts["skipped"], "skipped"
    total["tests"] += len(cases)
    total["failures"] += counts["failure"]
    total["errors"] += counts["error"]
for k, v in total.items():
    assert int(root.get(k)) == v, f"testsuites {k}"
PY
}

# --- the examples pass ------------------------------------------------------
cd "$SOURCE_DIR"
SOCKAGENT_AGENT_A=$A SOCKAGENT_AGENT_B=$B run examples/scenarios/*.yaml \
  --junit "$TMP/examples.xml" >"$TMP/examples.out" 2>"$TMP/examples.err"
[ "$RC" -eq 0 ] ||
  fail "examples: exit $RC: $(grep -E '^\[ *[0-9-]+\] (FAIL|ERROR)' "$TMP/examples.err")"
grep -q "^PASSED: " "$TMP/examples.out" || fail "examples: no PASSED line"
grep -q "A sees ECONNRESET" "$TMP/examples.out" || fail "examples: table"
grep -q "PASS  a        A receives 1 MiB intact" "$TMP/examples.err" ||
  fail "examples: progress"
[ -z "$(check_junit "$TMP/examples.xml")" ] || fail "examples: JUnit failures"
[ "$("$PYTHON" -c 'import sys, xml.etree.ElementTree as ET
print(len(ET.parse(sys.argv[1]).getroot().findall("testsuite")))' \
  "$TMP/examples.xml")" -eq "$(ls examples/scenarios/*.yaml | wc -l)" ] ||
  fail "examples: one testsuite per file"
n_files=$(ls examples/scenarios/*.yaml | wc -l)
tail -n 1 "$TMP/examples.out" | grep -Eq "^TOTAL PASSED: $n_files scenarios \($n_files passed\), steps: [0-9]+ passed, 0 failed, 0 errors, 0 skipped in " ||
  fail "examples: last line is not the total: $(tail -n 1 "$TMP/examples.out")"
# JUnit counts the steps of each file, not its session and cleanup entries:
# --check's step count is the testsuite's tests.
run --check examples/scenarios/*.yaml >"$TMP/check.out" 2>"$TMP/check.err"
"$PYTHON" - "$TMP/examples.xml" "$TMP/check.out" <<'PY' || fail "examples: JUnit counts"
import re, sys
import xml.etree.ElementTree as ET
steps = {}
for line in open(sys.argv[2]):
    m = re.match(r"(.*): (.*), (\d+) steps, agents", line)
    steps[m.group(2)] = int(m.group(3))
root = ET.parse(sys.argv[1]).getroot()
for suite in root.findall("testsuite"):
    assert int(suite.get("tests")) == steps[suite.get("name")], \
        (suite.get("name"), suite.get("tests"), steps[suite.get("name")])
    for case in suite.findall("testcase"):
        assert re.match(r"\d\d ", case.get("name")), case.get("name")
        assert case.get("file", "").endswith(".yaml") and int(case.get("line")) > 0, case.attrib
assert int(root.get("tests")) == sum(steps.values())
PY
assert_empty "after the examples"
pass "examples pass (SOCKAGENT_AGENT_A/B), JUnit counts steps only, total line"

# --agent-NAME wins over the environment (also as two words, like the global
# --agent); --json.
SOCKAGENT_AGENT_A=127.0.0.1:1 run examples/scenarios/tcp_transfer_reset.yaml \
  --agent-a "$A" --agent-b "$B" --json >"$TMP/json.out" 2>"$TMP/json.err"
[ "$RC" -eq 0 ] || fail "--agent-a/--json: exit $RC"
"$PYTHON" - "$TMP/json.out" <<'PY' || fail "--json report"
import json, sys
report = json.load(open(sys.argv[1]))
assert report["ok"] is True
(scenario,) = report["scenarios"]
assert scenario["name"] == "tcp transfer and reset"
assert scenario["counts"]["failed"] == 0
steps = [s for s in scenario["steps"] if s["kind"] == "recv_stream"]
assert steps[0]["status"] == "passed" and steps[0]["agent"] == "a"
PY
grep -q "^PASSED" "$TMP/json.err" || fail "--json: table not on stderr"
grep -q "^TOTAL PASSED: 1 scenario " "$TMP/json.err" || fail "--json: total not on stderr"
pass "--agent-NAME overrides, --json"

# --- a failing expectation ----------------------------------------------------
cat >"$TMP/fail.yaml" <<'EOF'
name: failing expectation
agents: {a: , b: }
steps:
  - {agent: a, socket: {type: dgram}, save_as: u}
  - bind: {socket: u, address: "127.0.0.1:0"}
  - {agent: b, socket: {type: dgram}, save_as: v}
  - sendto: {socket: v, address: "${u.address}", data: "actual bytes"}
  - name: A gets what B did not send
    recvfrom: u
    expect: {data: "expected bytes", within: 30s}
  - name: never runs
    close: u
EOF
run "$TMP/fail.yaml" --agent-a="$A" --agent-b="$B" --junit "$TMP/fail.xml" \
  >"$TMP/fail.out" 2>"$TMP/fail.err"
[ "$RC" -eq 1 ] || fail "failing expectation: exit $RC, want 1"
grep -q "FAIL  a        A gets what B did not send (.*) at $TMP/fail.yaml:8\$" "$TMP/fail.err" ||
  fail "failing expectation: progress line names file:line: $(grep FAIL "$TMP/fail.err")"
grep -q 'expected: data: 14 bytes "expected bytes"' "$TMP/fail.err" ||
  fail "failing expectation: expected"
grep -q 'actual:   data: 12 bytes "actual bytes"' "$TMP/fail.err" ||
  fail "failing expectation: actual"
grep -q 'A gets what B did not send.*FAIL.*expected data: 14 bytes' \
  "$TMP/fail.out" || fail "failing expectation: table"
grep -q 'never runs.*SKIP' "$TMP/fail.out" || fail "later step not skipped"
grep -q '^FAILED: 4 passed, 1 failed, 0 errors, 1 skipped' "$TMP/fail.out" ||
  fail "no FAILED line counting the 6 steps: $(grep FAILED "$TMP/fail.out")"
tail -n 1 "$TMP/fail.out" | grep -q '^TOTAL FAILED: 1 scenario (0 passed), steps: 4 passed, 1 failed' ||
  fail "failing run: total line $(tail -n 1 "$TMP/fail.out")"
"$PYTHON" - "$TMP/fail.xml" "$TMP/fail.yaml" <<'PY' || fail "JUnit failure names file:line"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.get("tests") == "6", root.attrib
(case,) = [c for c in root.iter("testcase") if c.find("failure") is not None]
assert case.get("file") == sys.argv[2] and case.get("line") == "8", case.attrib
failure = case.find("failure")
assert failure.get("message").startswith(sys.argv[2] + ":8: expected "), failure.get("message")
assert ("at:       " + sys.argv[2] + ":8") in failure.text, failure.text
PY
check_junit "$TMP/fail.xml" >"$TMP/fail.junit"
grep -q '^failure: 05 A gets what B did not send: ' "$TMP/fail.junit" ||
  fail "JUnit failure element"
grep -q 'actual:   data: 12 bytes "actual bytes"' "$TMP/fail.junit" ||
  fail "JUnit failure text"
assert_empty "after the failing run"
pass "failing expectation: exit 1, step/expected/actual reported"

# --- usage and file errors ----------------------------------------------------
printf 'agents: {a: }\nsteps:\n  - {agent: a, sokcet: {}}\n' >"$TMP/bad.yaml"
run "$TMP/bad.yaml" >"$TMP/bad.out" 2>"$TMP/bad.err"
[ "$RC" -eq 2 ] || fail "bad file: exit $RC, want 2"
grep -q "bad.yaml:3:16: sokcet: unknown step key" "$TMP/bad.err" ||
  fail "bad file: location"
run "$TMP/bad.yaml" --json >"$TMP/bad.out" 2>"$TMP/bad.err"
[ "$RC" -eq 2 ] || fail "bad file --json: exit $RC, want 2"
"$PYTHON" -c 'import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert e["code"] == "INVALID_ARGUMENT" and "bad.yaml:3:16" in e["message"]' \
  "$TMP/bad.out" || fail "bad file --json: error object"
run --check examples/scenarios/*.yaml >"$TMP/check.out" 2>"$TMP/check.err"
[ "$RC" -eq 0 ] || fail "--check: exit $RC"
grep -q "tcp_transfer_reset.yaml: tcp transfer and reset, 11 steps, agents a, b" \
  "$TMP/check.out" || fail "--check output"
run --check "$TMP/bad.yaml" >"$TMP/check.out" 2>"$TMP/check.err"
[ "$RC" -eq 2 ] || fail "--check bad file: exit $RC, want 2"
grep -q 'sokcet: unknown step key .*(did you mean "socket"?)' "$TMP/check.err" ||
  fail "--check: no did-you-mean for sokcet: $(cat "$TMP/check.err")"
printf 'agents: {a: }\nsteps:\n  - {agent: a, socket: {}, save_as: s}\n  - recv: s\n    expect: {errno: ECONNRESETT}\n' >"$TMP/errno.yaml"
run --check "$TMP/errno.yaml" >"$TMP/check.out" 2>"$TMP/check.err"
[ "$RC" -eq 2 ] || fail "--check unknown errno: exit $RC, want 2"
grep -q 'errno.yaml:5:.*"ECONNRESETT" is not an errno name.*(did you mean "ECONNRESET"?)' "$TMP/check.err" ||
  fail "--check: unknown errno: $(cat "$TMP/check.err")"
printf 'agents: {a: }\nsteps:\n  - {agent: a, socket: {}, save_as: s}\n  - recv: s\n    expect: {errnum: ECONNRESET}\n' >"$TMP/key.yaml"
run --check "$TMP/key.yaml" >"$TMP/check.out" 2>"$TMP/check.err"
[ "$RC" -eq 2 ] || fail "--check unknown expectation: exit $RC, want 2"
grep -q 'errnum: unknown expectation .*(did you mean "errno"?)' "$TMP/check.err" ||
  fail "--check: unknown expectation key: $(cat "$TMP/check.err")"
run "$TMP/fail.yaml" --agent-c="$A" >"$TMP/bad.out" 2>"$TMP/bad.err"
[ "$RC" -eq 2 ] || fail "--agent-c: exit $RC, want 2"
grep -q -- "--agent-c: no agent of that name" "$TMP/bad.err" ||
  fail "--agent-c: message"
set +e
timeout 20 "$SOCKCTL" --agent-a="$A" info >/dev/null 2>"$TMP/bad.err"
RC=$?
set -e
[ "$RC" -eq 2 ] || fail "--agent-a outside run: exit $RC, want 2"
run "$TMP/fail.yaml" --agent-a=127.0.0.1:1 --agent-b="$B" --timeout 2s \
  >"$TMP/unreachable.out" 2>"$TMP/unreachable.err"
[ "$RC" -eq 3 ] || fail "unreachable agent: exit $RC, want 3"
# Without --timeout a refused agent is reported at once, not after the
# 10 s connect timeout (the 5 s bound turns a wait into exit 124).
set +e
timeout 5 "$SOCKCTL" run "$TMP/fail.yaml" --agent-a 127.0.0.1:1 --agent-b "$B" \
  >"$TMP/refused.out" 2>"$TMP/refused.err"
RC=$?
set -e
[ "$RC" -eq 3 ] || fail "refused agent without --timeout: exit $RC, want 3 at once"
grep -q "cannot reach the agent at 127.0.0.1:1" "$TMP/refused.err" ||
  fail "refused agent: $(cat "$TMP/refused.err")"
run "$TMP/fail.yaml" --agent-a 127.0.0.1:abc --agent-b "$B" >/dev/null 2>"$TMP/badport.err"
[ "$RC" -eq 2 ] || fail "--agent-a 127.0.0.1:abc: exit $RC, want 2"
assert_empty "after the unreachable run"
pass "file error exit 2 with file:line:column; unknown agent 2; unreachable 3"

# --- interrupted runs ---------------------------------------------------------
cat >"$TMP/hang.yaml" <<'EOF'
name: waits forever
agents: {a: , b: }
steps:
  - {agent: a, socket: {}, save_as: l}
  - bind: {socket: l, address: "127.0.0.1:0"}
  - listen: l
  - {agent: b, socket: {}, save_as: c}
  - {agent: b, socket: {type: dgram}, save_as: u}
  - name: B is ready
    bind: {socket: u, address: "127.0.0.1:0"}
  - parallel:
      - name: A waits for a connection that never comes
        accept: l
        timeout: 600s
      - name: B waits for a datagram that never comes
        recvfrom: u
        timeout: 600s
EOF
for sig in INT TERM; do
  want=$([ "$sig" = INT ] && echo 130 || echo 143)
  # The background run truncates its files only once it starts: the last
  # iteration's lines must be gone before the waits below read them.
  rm -f "$TMP/hang.out" "$TMP/hang.err" "$TMP/hang.xml"
  "$SOCKCTL" run "$TMP/hang.yaml" --agent-a="$A" --agent-b="$B" \
    --junit "$TMP/hang.xml" >"$TMP/hang.out" 2>"$TMP/hang.err" &
  RUN_PID=$!
  PIDS+=("$RUN_PID")
  for i in $(seq 300); do
    grep -q "PASS  b        B is ready" "$TMP/hang.err" && break
    sleep 0.1
  done
  grep -q "PASS  b        B is ready" "$TMP/hang.err" ||
    fail "SIG$sig: the run did not get to its waiting steps: $(cat "$TMP/hang.err")"
  # Both waiting calls have reached their agents once each agent counts a
  # waiting call (session list's WAITING, the fifth column from the end).
  for agent in "$A" "$B"; do
    for i in $(seq 300); do
      "$SOCKCTL" --agent "$agent" session list 2>/dev/null |
        awk 'NR > 1 && $(NF-4) > 0 { n++ } END { exit n > 0 ? 0 : 1 }' && break
      sleep 0.1
    done
    "$SOCKCTL" --agent "$agent" session list |
      awk 'NR > 1 && $(NF-4) > 0 { n++ } END { exit n > 0 ? 0 : 1 }' ||
      fail "SIG$sig: no call is waiting on $agent"
  done
  kill -"$sig" "$RUN_PID"
  set +e
  for i in $(seq 300); do
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.1
  done
  wait "$RUN_PID"
  RC=$?
  set -e
  [ "$RC" -eq "$want" ] || fail "SIG$sig: exit $RC, want $want"
  grep -q "SIG$sig: stopping, cleaning up" "$TMP/hang.err" ||
    fail "SIG$sig: no notice"
  grep -q "PASS  a        cleanup on a" "$TMP/hang.err" ||
    fail "SIG$sig: no cleanup on a"
  grep -q "PASS  b        cleanup on b" "$TMP/hang.err" ||
    fail "SIG$sig: no cleanup on b"
  grep -q "interrupted" "$TMP/hang.out" || fail "SIG$sig: summary"
  check_junit "$TMP/hang.xml" | grep -q "^error: interrupted" ||
    fail "SIG$sig: JUnit interrupted testcase"
  assert_empty "after SIG$sig"
  pass "SIG$sig: exit $want, cleanup ran, zero sockets on both agents"
done

echo "sockctl run test: all passed"
