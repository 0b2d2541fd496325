#ifndef SOCKAGENT_CLIENT_SCENARIO_SCENARIO_H_
#define SOCKAGENT_CLIENT_SCENARIO_SCENARIO_H_

// sockagent::Scenario: a declarative distributed socket test, read from a
// YAML file and run against named agents.
//
//   absl::StatusOr<Scenario> scenario = Scenario::ParseFile("x.yaml");
//   ScenarioResult result = scenario->Run(RunOptions{});
//   if (!result.ok()) std::cerr << SummaryTable(result);
//
// A scenario names its agents, then lists steps that map one-to-one onto the
// agent's RPCs (socket, bind, listen, accept, connect, send, recv, ...),
// structural steps (parallel, steps, signal, wait, sleep) and the
// expectations each step must meet. The file format is documented in the
// README's "Scenarios" section.
//
// Guarantees: Run() always ends with cleanup: every handle the run created is
// closed and every session it opened is closed, also when a step failed or
// the run was interrupted (RunOptions::interrupt). A Scenario is immutable
// after parsing; Run() may be called several times and from several threads
// (each run has its own sessions).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace sockagent {

namespace scenario {
struct Model;
}  // namespace scenario

// Security for an agent whose entry in the file sets none.
struct AgentSecurity {
  // TLS even when no file is named (the system's roots verify the agent).
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  std::string token;
};

enum class StepStatus {
  kPassed,   // every expectation held
  kFailed,   // an expectation did not hold (also: the call failed unexpectedly)
  kError,    // the runner could not perform the step (bad value, no agent)
  kSkipped,  // not run: an earlier step failed or the run was interrupted
};

// "passed", "failed", "error", "skipped".
std::string StepStatusName(StepStatus status);

// One expectation of a step and how it came out.
struct Check {
  std::string what;      // "status", "errno", "data", "within", ...
  std::string expected;  // "ECONNRESET"
  std::string actual;    // "none (OK)"
  bool held = false;
};

struct StepResult {
  int index = 0;      // 1-based position among all steps of the file
  std::string name;   // the step's `name`, or one made from kind and socket
  std::string kind;   // "recv", "connect", ... "session", "cleanup"
  std::string agent;  // the agent's name in the file ("" if none)
  // Where the step is written: "FILE:LINE" ("LINE" for a scenario parsed
  // from a string; "" for session, vars and cleanup entries).
  std::string where;
  StepStatus status = StepStatus::kSkipped;
  // The first expectation that did not hold (empty when passed).
  std::string expected;
  std::string actual;
  // Why it failed, errored or was skipped; for a pass, a short result
  // ("1048576 bytes", "127.0.0.1:40413").
  std::string message;
  absl::Duration duration = absl::ZeroDuration();
  int attempts = 0;
  std::vector<Check> checks;
  // JSON objects the step reports beside its message (proxy_stop and a
  // cleanup that stopped a proxy: one per relayed connection).
  std::vector<std::string> figures;
};

// A matrix: group as a from x to table. Each pair that ran is also an entry
// of ScenarioResult::steps (kind "matrix", name "FROM -> TO").
struct MatrixResult {
  struct Cell {
    bool ran = false;  // false: an agent with itself, or not reached
    StepStatus status = StepStatus::kSkipped;
    absl::Duration latency = absl::ZeroDuration();  // the pair's wall time
  };
  std::string name;  // the group's name ("matrix FROM -> TO" by default)
  std::string where;
  std::vector<std::string> from;  // rows, in agent order
  std::vector<std::string> to;    // columns
  std::vector<Cell> cells;        // cells[row * to.size() + column]
};

struct ScenarioResult {
  std::string name;  // the scenario's `name`
  std::string file;  // the file it came from ("" for a string)
  absl::Time started = absl::InfinitePast();
  absl::Duration duration = absl::ZeroDuration();
  bool interrupted = false;
  // Agent sessions ("session" kind), then every step in file order, then one
  // "cleanup" entry per agent.
  std::vector<StepResult> steps;
  // One per matrix: group that ran, in file order.
  std::vector<MatrixResult> matrices;

  int Count(StepStatus status) const;
  // True when every entry passed and the run was not interrupted.
  bool ok() const;
};

struct RunOptions {
  // Agent name -> gRPC target; wins over SOCKAGENT_AGENT_<NAME> and the
  // file's `address`.
  std::map<std::string, std::string> agent_targets;
  // Used for agents whose entry has no `tls` and no `token`.
  AgentSecurity default_security;
  // Called as each entry of ScenarioResult::steps ends (from the thread that
  // ran it; calls are serialized).
  std::function<void(const StepResult&)> on_step;
  // When notified, the run stops: waiting steps end, the rest is skipped,
  // cleanup runs, and the result says `interrupted`. Not owned; may be null.
  const absl::Notification* interrupt = nullptr;
  // How long connecting to each agent may take.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Report an agent whose connection fails (refused, unreachable) at once
  // instead of retrying until connect_timeout (AgentOptions::fail_fast).
  bool fail_fast = false;
};

class Scenario {
 public:
  // Errors: INVALID_ARGUMENT "FILE:LINE:COLUMN: <key>: <what is wrong>" for
  // YAML syntax errors, unknown or missing keys, bad values and references
  // to undefined variables, agents or sockets; NOT_FOUND if the file cannot
  // be read.
  static absl::StatusOr<Scenario> ParseFile(const std::string& path);
  // `origin` names the text in error messages.
  static absl::StatusOr<Scenario> ParseString(
      absl::string_view yaml, const std::string& origin = "<string>");

  Scenario(Scenario&&) noexcept;
  Scenario& operator=(Scenario&&) noexcept;
  ~Scenario();

  const std::string& name() const;
  const std::string& file() const;
  // The agent names, in file order.
  std::vector<std::string> agent_names() const;
  // How many steps (leaves, also inside parallel groups) the file has.
  int step_count() const;

  // Runs the scenario. Never throws; every problem is in the result.
  ScenarioResult Run(const RunOptions& options) const;

 private:
  explicit Scenario(std::unique_ptr<scenario::Model> model);
  std::unique_ptr<scenario::Model> model_;
};

// Reports. Pure functions of the results.
//
// A JUnit XML document: <testsuites> with one <testsuite> per result (name,
// tests, failures, errors, skipped, time, timestamp) holding one <testcase>
// per step of the file (name "NN name", classname "<scenario>.<agent>",
// time, file, line) with a <failure>, <error> or <skipped> child where it did
// not pass; failure and error messages start with "FILE:LINE: ". Session,
// vars and cleanup entries are test cases only when they failed.
std::string JUnitXml(const std::vector<ScenarioResult>& results);
// One JSON object: {"ok":..,"scenarios":[{"name","file","ok","interrupted",
// "duration_s","counts":{..},"steps":[{..}]}]}; a step with figures
// (StepResult::figures) has them as "figures": [{..}].
std::string ResultsJson(const std::vector<ScenarioResult>& results);
// A right-padded text table: #, STEP, AGENT, STATUS, TIME, DETAIL, then a
// totals line, then MatrixTable of each matrix.
std::string SummaryTable(const ScenarioResult& result);
// A from x to table: a header row of the `to` agents, then one row per
// `from` agent whose cells read "PASS 1.2ms", "FAIL 3s", "ERROR 1ms",
// "SKIP" or "-" (not run).
std::string MatrixTable(const MatrixResult& matrix);
// The matrix as a PNG heat map (fleet::WriteHeatMapPng). INVALID_ARGUMENT
// for an empty matrix; the errno of writing `path`.
absl::Status WriteMatrixHeatMap(const MatrixResult& matrix,
                                const std::string& path);
// The last line of every `sockctl run`: "TOTAL PASSED: 2 scenarios (2
// passed), steps: 22 passed, 0 failed, 0 errors, 0 skipped in 120ms";
// `not_run` counts scenarios that never started (interrupted before them).
std::string TotalLine(const std::vector<ScenarioResult>& results, int not_run);
// One progress line: "[ 3] PASS  a  accept listener (12ms)"; a failed or
// errored step adds " at FILE:LINE" and, for a failure,
// "      expected: ...\n      actual:   ...".
std::string ProgressLine(const StepResult& step);

}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_SCENARIO_SCENARIO_H_
