#ifndef SOCKAGENT_CLIENT_SCENARIO_RUN_H_
#define SOCKAGENT_CLIENT_SCENARIO_RUN_H_

// Internal to the scenario runner: Run, one execution of a parsed scenario
// (Scenario::Run). Its rooms: runner.cc schedules (steps in order, groups,
// parallel branches, stop, signals and held work); run_agents.cc connects
// the agents and cleans up after them; run_fan_out.cc runs matrix: and
// for_each: groups in scopes; run_leaf.cc runs one leaf step (arguments,
// retries, expectations, saved variables). The step kinds themselves live
// in *_steps.cc (step_kinds.h).
//
// Threads: the caller's thread runs the steps; each branch of a parallel
// group runs in a thread of its own; an interrupt watcher thread turns
// RunOptions::interrupt into a stop. Shared state (variables, sockets,
// signals, results) is guarded by Run::mu_. Sockets are kept as handles and
// used through non-owning Agent::AttachSocket objects, so a stop may close
// a handle from any thread while a step is waiting on it (the waiting call
// then ends with ABORTED).

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/agent.h"
#include "client/scenario/model.h"
#include "client/scenario/scenario.h"
#include "client/scenario/step_kinds.h"

namespace sockagent {
namespace scenario {
namespace internal {

class Run : public RunControl {
 public:
  Run(const Model& model, const RunOptions& options)
      : model_(model), options_(options), agents_(own_agents_), root_(this) {}

  ScenarioResult Execute();

 private:
  struct AgentState {
    std::unique_ptr<Agent> agent;
  };

  // A scope of `parent` for one pair of a matrix (one agent of a for_each):
  // it shares the parent's sessions and starts with a copy of its
  // variables; its sockets, results and failure are its own.
  explicit Run(Run* parent);

  // Adds the agents of model_.agents_from to specs_; false (after
  // recording the error) when the source fails.
  bool LoadSourcedAgents();
  // The agents (in specs_ order) that `selector` selects.
  std::vector<std::string> Select(const std::string& selector) const;
  // The variable ${NAME} of an agent: its name, address, host and port.
  Fields AgentVar(const std::string& name) const;
  // matrix: and for_each:.
  void RunFanOut(const Step& group);
  // Runs the group's steps in a scope with `bindings` and returns its
  // result as one entry named `name`.
  StepResult RunScope(const Step& group, const std::string& name,
                      const std::string& agent,
                      const std::map<std::string, Fields>& bindings);
  void ConnectAgents();
  void RunSteps(const std::vector<Step>& steps);
  void RunStep(const Step& step);
  void RunLeaf(const Step& step);
  void MarkSkipped(const std::vector<Step>& steps);
  void Cleanup();

  absl::StatusOr<std::string> Interpolate(absl::string_view text);
  absl::StatusOr<std::string> Materialize(const DataSpec& spec);
  // The agent a step runs on, and the socket handle it uses ("" if none).
  absl::Status Target(const Step& step, const Fields& args, std::string* agent,
                      std::string* handle);
  Outcome Perform(const Step& step, const Fields& args, const std::string& data,
                  const std::string& agent_name, const std::string& handle,
                  absl::Time deadline);
  std::vector<Check> Evaluate(const Step& step, const Outcome& outcome,
                              absl::Duration elapsed, absl::Status* error);
  void Save(const Step& step, const std::string& agent, const Outcome& out);
  // The step's agent for reports: explicit, or its socket's when known.
  std::string AgentOf(const Step& step);

  // Stops the run: later steps are skipped, waits end, and every open
  // handle is closed so that waiting calls return.
  void Stop(const std::string& reason, bool interrupted);
  void CloseAllHandles();
  bool stopping() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return true;
    }
    return parent_ != nullptr && parent_->stopping();
  }
  // RunControl, for signal, wait and sleep.
  void Signal(const std::string& name) override;
  absl::Status WaitFor(const std::string& name, absl::Time deadline) override;
  bool SleepUnlessStopped(absl::Duration duration) override;
  absl::Status Hold(const std::string& name, const std::string& agent,
                    std::shared_ptr<Held> held) override;
  std::shared_ptr<Held> Find(const std::string& name) override;
  std::shared_ptr<Held> Release(const std::string& name) override;
  // Stops everything this run (or scope) still holds on `agent` ("" = on
  // every agent), newest first; appends their summaries and figures.
  void StopHeld(const std::string& agent, std::vector<std::string>* lines,
                std::vector<std::string>* figures);
  // `order` places a matrix pair's entry after the group's (first_leaf) key.
  // Keyed by (key_index, order); key_index -1 means result.index.
  void Record(StepResult result, int key_index = -1, int order = 0);
  // "FILE:LINE" of `step` (StepResult::where).
  std::string Where(const Step& step) const;
  // A result entry for `step`: its index, name, kind, agent and where.
  StepResult ResultOf(const Step& step);

  const Model& model_;
  const RunOptions options_;
  std::map<std::string, AgentState> own_agents_;
  // The root run's own_agents_: filled before steps run, then only read.
  std::map<std::string, AgentState>& agents_;
  Run* const root_;              // the run that owns the sessions
  Run* const parent_ = nullptr;  // for a scope
  // Set up by the root before steps run, then only read: every agent
  // (file order, then source order), the labels a source gave it, and
  // the target it was reached at.
  std::vector<AgentSpec> specs_;
  std::map<std::string, std::map<std::string, std::string>> labels_;
  std::map<std::string, std::string> targets_;

  // Scopes running now; a stop reaches them (children_mu_ is held while
  // stopping them, so none goes away meanwhile).
  absl::Mutex children_mu_;
  std::set<Run*> children_ ABSL_GUARDED_BY(children_mu_);

  absl::Mutex mu_;
  std::map<std::string, Fields> vars_ ABSL_GUARDED_BY(mu_);
  // Socket variable -> agent name.
  std::map<std::string, std::string> socket_agents_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> closed_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> signals_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  std::string stop_reason_ ABSL_GUARDED_BY(mu_);
  std::vector<StepResult> sessions_ ABSL_GUARDED_BY(mu_);
  // (index, order) -> result: leaves by index; a matrix's pairs after it.
  std::map<std::pair<int, int>, StepResult> results_ ABSL_GUARDED_BY(mu_);
  // Agent -> every handle this run (or scope) made, in order.
  std::map<std::string, std::vector<std::string>> handles_ ABSL_GUARDED_BY(mu_);
  // first_leaf of a matrix -> its table.
  std::map<int, MatrixResult> matrices_ ABSL_GUARDED_BY(mu_);
  std::vector<StepResult> cleanup_ ABSL_GUARDED_BY(mu_);
  // What steps started and the run stops at its end (Hold), in order.
  struct HeldEntry {
    std::string name;
    std::string agent;
    std::shared_ptr<Held> held;
  };
  std::vector<HeldEntry> held_ ABSL_GUARDED_BY(mu_);

  absl::Mutex report_mu_;  // serializes on_step
};

}  // namespace internal
}  // namespace scenario
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_SCENARIO_RUN_H_
