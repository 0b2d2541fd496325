#ifndef SOCKAGENT_CLIENT_SCENARIO_STEP_KINDS_H_
#define SOCKAGENT_CLIENT_SCENARIO_STEP_KINDS_H_

// The one registry of scenario step kinds: for each, its name, its argument
// schema (what the parser accepts and checks) and its handler (what the
// runner calls). The parser and the runner know no kind by name; grouping
// (parallel:, steps:) is structure, not a kind. Internal to the scenario
// library. The registry is built once and immutable; thread-safe.
//
// To add a step kind: add a StepKind to its family's Add*Steps (e.g.
// AddSocketSteps in socket_steps.cc), and document it in docs/scenarios.md.
// To add a family: write <family>_steps.cc with Add<Family>Steps, declare it
// below, and add one line to StepKinds::Get() (step_kinds.cc).
//
// A step that starts something lasting (a proxy) hands it to the run with
// RunControl::Hold: later steps find it by name (Find), a step that ends it
// takes it back (Release), and whatever is still held when the run ends —
// passed, failed or interrupted — or when the matrix/for_each scope that
// started it ends, is stopped by the run (Held::Stop), before the sessions
// close. That is the registry's cleanup hook.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/agent.h"
#include "client/scenario/model.h"
#include "client/socket.h"

namespace sockagent::scenario {

// The outcome of one attempt at a step.
struct Outcome {
  absl::Status status;
  Fields fields;
  std::string data;  // bytes received, for data/contains/matches
  bool has_data = false;
  std::optional<std::string> new_socket;  // a handle made by socket/accept
  Fields socket_updates;                  // merged into the socket variable
  bool closed_socket = false;
  // The runner could not make the call (a bad value after substitution).
  absl::Status runner_error;
  // JSON objects reported with the step (StepResult::figures).
  std::vector<std::string> figures;
  // The agent the step acted on, for one that names no agent of its own
  // (proxy_faults, proxy_stop: the proxy's); "" = the step's.
  std::string agent;
};

// Something a step started that outlives the step, kept by the run.
// Implementations are thread-safe.
class Held {
 public:
  virtual ~Held() = default;
  // Ends it and releases everything it holds on the agent; idempotent.
  // Returns a one-line summary and JSON objects for the report.
  virtual std::string Stop(std::vector<std::string>* figures) = 0;
};

// What the runner offers the steps that coordinate rather than call an
// agent. Thread-safe.
class RunControl {
 public:
  virtual ~RunControl() = default;
  // Marks `name` as signalled for every present and later WaitFor.
  virtual void Signal(const std::string& name) = 0;
  // OK once `name` is signalled; CANCELLED when the run stops first,
  // DEADLINE_EXCEEDED at `deadline`.
  virtual absl::Status WaitFor(const std::string& name,
                               absl::Time deadline) = 0;
  // Sleeps up to `duration`; false if the run was stopped meanwhile.
  virtual bool SleepUnlessStopped(absl::Duration duration) = 0;
  // Keeps `held` (living on agent `agent`) under `name` until Release or
  // the end of the run or scope; ALREADY_EXISTS when the name is taken.
  virtual absl::Status Hold(const std::string& name, const std::string& agent,
                            std::shared_ptr<Held> held) = 0;
  // What is held under `name` (this scope, then the enclosing ones); null
  // when nothing is.
  virtual std::shared_ptr<Held> Find(const std::string& name) = 0;
  // Like Find, and the run forgets it (the caller stops it).
  virtual std::shared_ptr<Held> Release(const std::string& name) = 0;
};

// One attempt's inputs, valid during the handler call.
struct StepCall {
  const Step& step;
  const Fields& args;       // after ${...} substitution
  const std::string& data;  // the step's data:, materialized
  Agent* agent;             // the step's agent; null when !calls_agent
  const std::string& agent_name;
  Socket& socket;  // the step's socket; not valid unless on_socket
  absl::Time deadline;
  RunControl& run;

  // args[key], or `fallback` when absent.
  std::string Arg(absl::string_view key, absl::string_view fallback = "") const;
  // Whether the step gave `key`.
  bool Has(absl::string_view key) const;
  // An outcome reporting a value that became bad after substitution:
  // runner_error "KEY: <why>".
  static Outcome Bad(absl::string_view key, const absl::Status& why);
};

// One argument of a step kind.
struct ArgDef {
  std::string key;
  ArgType type;
  bool required;
};

struct StepKind {
  using Handler = std::function<Outcome(const StepCall&)>;
  // Extra checks of the literal arguments after each was checked on its
  // own; the message is reported at the step.
  using Check = std::function<absl::Status(const Fields& args)>;

  StepKind(std::string name, Handler handler)
      : name(std::move(name)), run(std::move(handler)) {}

  // Builders, for the Add*Steps lists.
  StepKind& Required(std::string key, ArgType type) {
    args.push_back({std::move(key), type, true});
    return *this;
  }
  StepKind& Optional(std::string key, ArgType type) {
    args.push_back({std::move(key), type, false});
    return *this;
  }
  // `kind: VALUE` stands for `kind: {key: VALUE}`.
  StepKind& Shorthand(std::string key) {
    shorthand = std::move(key);
    return *this;
  }
  StepKind& OnSocket() {
    on_socket = true;
    return *this;
  }
  StepKind& MakesSocket() {
    makes_socket = true;
    return *this;
  }
  StepKind& NeedsAgent() {
    needs_agent = true;
    return *this;
  }
  StepKind& NeedsSaveAs() {
    needs_save_as = true;
    return *this;
  }
  StepKind& TakesData() {
    takes_data = true;
    return *this;
  }
  StepKind& Receives() {
    receives = true;
    return *this;
  }
  StepKind& Sends() {
    sends = true;
    return *this;
  }
  StepKind& Coordinates() {
    calls_agent = false;
    return *this;
  }
  StepKind& Checked(Check c) {
    check = std::move(c);
    return *this;
  }

  std::string name;
  std::vector<ArgDef> args;
  std::string shorthand;       // "" = a scalar value is not allowed
  bool on_socket = false;      // `socket:` (a save_as name) picks the agent
  bool makes_socket = false;   // save_as names the socket it makes
  bool needs_agent = false;    // not on a socket: `agent:` is required
  bool needs_save_as = false;  // save_as is required
  bool takes_data = false;     // `data:` (required) is the bytes to send
  bool receives = false;       // expect: no_data_for is allowed
  bool sends = false;          // a pass reports "N bytes sent"
  bool calls_agent = true;     // false: signal/wait/sleep, no agent
  Check check;
  Handler run;
};

class StepKinds {
 public:
  // Every kind, in the order docs/scenarios.md lists them.
  static const StepKinds& Get();

  // The kind named `name` (also the alias recv_all = recv_stream), or null.
  const StepKind* Find(absl::string_view name) const;
  const std::vector<StepKind>& all() const { return kinds_; }

 private:
  std::vector<StepKind> kinds_;
};

// The families of step kinds (one file each).
void AddSocketSteps(std::vector<StepKind>* kinds);   // socket_steps.cc
void AddTrafficSteps(std::vector<StepKind>* kinds);  // traffic_steps.cc
void AddControlSteps(std::vector<StepKind>* kinds);  // control_steps.cc
void AddProxySteps(std::vector<StepKind>* kinds);    // proxy_steps.cc

// Adds the fault arguments (FaultsFromArgs in traffic_steps.h) to `kind`.
void AddFaultArgs(StepKind& kind);

// Result fields shared by the handlers: "bytes" and "checksum" of `data`;
// "address", "host", "port" of `address` (with `prefix`: "peer",
// "peer_host", "peer_port").
void DataFields(absl::string_view data, Fields* fields);
void AddressFields(const v1::Address& address, absl::string_view prefix,
                   Fields* fields);

}  // namespace sockagent::scenario

#endif  // SOCKAGENT_CLIENT_SCENARIO_STEP_KINDS_H_
