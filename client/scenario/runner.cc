// Scenario::Run: executes a parsed scenario against its agents.
//
// Threads: the caller's thread runs the steps; each branch of a parallel
// group runs in a thread of its own; an interrupt watcher thread turns
// RunOptions::interrupt into a stop. Shared state (variables, sockets,
// signals, results) is guarded by Run::mu_. Sockets are kept as handles and
// used through non-owning Agent::AttachSocket objects, so a stop may close
// a handle from any thread while a step is waiting on it (the waiting call
// then ends with ABORTED).

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/credentials.h"
#include "client/fleet/inventory.h"
#include "client/fleet/parallel.h"
#include "client/fleet/selector.h"
#include "client/scenario/expectations.h"
#include "client/scenario/interpolation.h"
#include "client/scenario/model.h"
#include "client/scenario/scenario.h"
#include "client/scenario/step_kinds.h"
#include "client/socket.h"
#include "client/vocab/addresses.h"
#include "proto/errno_status.h"
#include "proto/traffic_data.h"
#include "proto/units.h"

namespace sockagent {
namespace scenario {
namespace {

// Deadline of the calls that do not wait for a socket.
constexpr absl::Duration kCallTimeout = absl::Seconds(10);

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

std::string Run::Where(const Step& step) const {
  if (step.location.line == 0) return model_.file;
  return model_.file.empty()
             ? absl::StrCat(step.location.line)
             : absl::StrCat(model_.file, ":", step.location.line);
}

void Run::Record(StepResult result, int key_index, int order) {
  if (options_.on_step) {
    absl::MutexLock lock(&report_mu_);
    options_.on_step(result);
  }
  absl::MutexLock lock(&mu_);
  if (result.kind == "session" || result.kind == "vars") {
    sessions_.push_back(std::move(result));
  } else if (result.kind == "cleanup") {
    cleanup_.push_back(std::move(result));
  } else {
    const int index = key_index < 0 ? result.index : key_index;
    results_[{index, order}] = std::move(result);
  }
}

ScenarioResult Run::Execute() {
  ScenarioResult result;
  result.name = model_.name;
  result.file = model_.file;
  result.started = absl::Now();

  absl::Notification done;
  std::thread watcher;
  if (options_.interrupt != nullptr) {
    watcher = std::thread([this, &done] {
      while (!done.HasBeenNotified()) {
        if (options_.interrupt->WaitForNotificationWithTimeout(
                absl::Milliseconds(50))) {
          Stop("interrupted", true);
          return;
        }
      }
    });
  }

  for (const auto& [name, value] : model_.vars) {
    absl::StatusOr<std::string> text = Interpolate(value);
    if (!text.ok()) {
      StepResult r;
      r.kind = "vars";
      r.name = absl::StrCat("vars.", name);
      r.status = StepStatus::kError;
      r.attempts = 1;
      r.message = std::string(text.status().message());
      Record(std::move(r));
      Stop(absl::StrCat("vars.", name, " has no value"), false);
      break;
    }
    absl::MutexLock lock(&mu_);
    vars_[name][""] = *text;
  }
  specs_ = model_.agents;
  if (!stopping() && !model_.agents_from.empty()) LoadSourcedAgents();
  if (!stopping()) ConnectAgents();
  if (!stopping()) RunSteps(model_.steps);
  MarkSkipped(model_.steps);
  Cleanup();

  done.Notify();
  if (watcher.joinable()) watcher.join();

  absl::MutexLock lock(&mu_);
  result.interrupted = interrupted_;
  for (StepResult& r : sessions_) result.steps.push_back(std::move(r));
  for (auto& [index, r] : results_) result.steps.push_back(std::move(r));
  for (auto& [index, m] : matrices_) result.matrices.push_back(std::move(m));
  for (StepResult& r : cleanup_) result.steps.push_back(std::move(r));
  result.duration = absl::Now() - result.started;
  return result;
}

Run::Run(Run* parent)
    : model_(parent->model_),
      options_([&] {
        RunOptions options = parent->options_;
        options.on_step = nullptr;
        options.interrupt = nullptr;
        return options;
      }()),
      agents_(parent->agents_),
      root_(parent->root_),
      parent_(parent) {
  std::map<std::string, Fields> vars;
  std::map<std::string, std::string> socket_agents;
  {
    absl::MutexLock lock(&parent->mu_);
    vars = parent->vars_;
    socket_agents = parent->socket_agents_;
  }
  absl::MutexLock lock(&mu_);
  vars_ = std::move(vars);
  socket_agents_ = std::move(socket_agents);
}

bool Run::LoadSourcedAgents() {
  StepResult r;
  r.kind = "session";
  r.name = "agents_from";
  r.attempts = 1;
  absl::Status status;
  absl::StatusOr<std::string> source = Interpolate(model_.agents_from);
  absl::StatusOr<std::vector<fleet::AgentEndpoint>> endpoints =
      source.ok() ? fleet::LoadAgents(*source) : source.status();
  absl::StatusOr<fleet::Selector> selector =
      fleet::Selector::Parse(model_.select);
  if (!endpoints.ok()) status = endpoints.status();
  if (status.ok() && !selector.ok()) status = selector.status();
  int added = 0;
  if (status.ok()) {
    for (const fleet::AgentEndpoint& endpoint : *endpoints) {
      if (!selector->Matches(endpoint.name, endpoint.labels)) continue;
      if (std::any_of(specs_.begin(), specs_.end(), [&](const AgentSpec& s) {
            return s.name == endpoint.name;
          })) {
        status = absl::InvalidArgumentError(
            absl::StrCat("agent ", endpoint.name,
                         " is both under agents: and in ", model_.agents_from));
        break;
      }
      AgentSpec spec;
      spec.name = endpoint.name;
      spec.address = endpoint.address;
      if (endpoint.tls || !endpoint.token.empty() ||
          !endpoint.token_file.empty()) {
        // fleet::OptionsFor reads the token file.
        absl::StatusOr<AgentOptions> options = fleet::OptionsFor(endpoint);
        if (!options.ok()) {
          status = options.status();
          break;
        }
        spec.has_security = true;
        spec.tls = endpoint.tls;
        spec.token = options->token;
        spec.tls_ca = endpoint.tls_ca;
        spec.tls_cert = endpoint.tls_cert;
        spec.tls_key = endpoint.tls_key;
        spec.tls_server_name = endpoint.tls_server_name;
      }
      labels_[spec.name] = endpoint.labels;
      specs_.push_back(std::move(spec));
      ++added;
    }
  }
  if (status.ok() && added == 0) {
    status =
        absl::NotFoundError(absl::StrCat("no agent of ", model_.agents_from,
                                         " matches select: ", model_.select));
  }
  r.status = status.ok() ? StepStatus::kPassed : StepStatus::kError;
  r.message = status.ok()
                  ? absl::StrCat(added, " agent(s) from ", model_.agents_from)
                  : StatusText(status);
  Record(std::move(r));
  if (!status.ok()) Stop("agents_from failed", false);
  return status.ok();
}

std::vector<std::string> Run::Select(const std::string& text) const {
  std::vector<std::string> names;
  absl::StatusOr<fleet::Selector> selector = fleet::Selector::Parse(text);
  if (!selector.ok()) return names;  // checked by the parser
  for (const AgentSpec& spec : root_->specs_) {
    auto labels = root_->labels_.find(spec.name);
    if (selector->Matches(spec.name, labels == root_->labels_.end()
                                         ? std::map<std::string, std::string>()
                                         : labels->second)) {
      names.push_back(spec.name);
    }
  }
  return names;
}

Fields Run::AgentVar(const std::string& name) const {
  Fields fields;
  fields[""] = name;
  auto target = root_->targets_.find(name);
  if (target == root_->targets_.end()) return fields;
  const std::string& address = target->second;
  fields["address"] = address;
  const size_t colon = address.rfind(':');
  if (colon != std::string::npos) {
    std::string host = address.substr(0, colon);
    if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
      host = host.substr(1, host.size() - 2);
    }
    fields["host"] = host;
    fields["port"] = address.substr(colon + 1);
  }
  return fields;
}

void Run::RunFanOut(const Step& group) {
  const bool matrix = group.shape == StepShape::kMatrix;
  MatrixResult table;
  table.name = group.name;
  table.where = Where(group);
  table.from = Select(group.from);
  table.to = matrix ? Select(group.to) : std::vector<std::string>{""};
  table.cells.resize(table.from.size() * table.to.size());
  struct Pair {
    size_t from, to;
  };
  std::vector<Pair> pairs;
  for (size_t i = 0; i < table.from.size(); ++i) {
    for (size_t j = 0; j < table.to.size(); ++j) {
      if (matrix && table.from[i] == table.to[j]) continue;
      pairs.push_back({i, j});
    }
  }
  if (pairs.empty()) {
    StepResult r;
    r.kind = matrix ? "matrix" : "for_each";
    r.name = group.name;
    r.where = Where(group);
    r.status = StepStatus::kError;
    r.attempts = 1;
    r.message =
        matrix ? absl::StrCat("no pair: from \"", group.from, "\" selects ",
                              table.from.size(), " agent(s), to \"", group.to,
                              "\" selects ", table.to.size())
               : absl::StrCat("agents \"", group.from, "\" selects no agent");
    const std::string reason = absl::StrCat(r.name, " has no agents");
    Record(std::move(r), group.first_leaf, 0);
    Stop(reason, false);
    return;
  }
  absl::Mutex table_mu;
  fleet::RunParallel(pairs.size(), group.concurrency, [&](size_t k) {
    const std::string& from = table.from[pairs[k].from];
    const std::string& to = table.to[pairs[k].to];
    std::map<std::string, Fields> bindings;
    if (matrix) {
      bindings["from"] = AgentVar(from);
      bindings["to"] = AgentVar(to);
    } else {
      bindings["agent"] = AgentVar(from);
    }
    StepResult r = RunScope(
        group, matrix ? absl::StrCat(from, " -> ", to) : from, from, bindings);
    {
      absl::MutexLock lock(&table_mu);
      MatrixResult::Cell& cell =
          table.cells[pairs[k].from * table.to.size() + pairs[k].to];
      cell.ran = true;
      cell.status = r.status;
      cell.latency = r.duration;
    }
    Record(std::move(r), group.first_leaf, static_cast<int>(k) + 1);
  });
  if (matrix) {
    absl::MutexLock lock(&mu_);
    matrices_[group.first_leaf] = std::move(table);
  }
}

StepResult Run::RunScope(const Step& group, const std::string& name,
                         const std::string& agent,
                         const std::map<std::string, Fields>& bindings) {
  StepResult r;
  r.kind = group.shape == StepShape::kMatrix ? "matrix" : "for_each";
  r.name = name;
  r.agent = agent;
  r.where = Where(group);
  r.attempts = 1;
  const absl::Time start = absl::Now();
  Run scope(this);
  {
    absl::MutexLock lock(&scope.mu_);
    for (const auto& [var, fields] : bindings) scope.vars_[var] = fields;
  }
  {
    absl::MutexLock lock(&children_mu_);
    children_.insert(&scope);
  }
  if (stopping()) scope.Stop("stopped", false);
  scope.RunSteps(group.children);
  scope.MarkSkipped(group.children);
  std::vector<std::string> held_lines, held_figures;
  scope.StopHeld("", &held_lines, &held_figures);
  scope.CloseAllHandles();
  {
    absl::MutexLock lock(&children_mu_);
    children_.erase(&scope);
  }
  r.duration = absl::Now() - start;
  int passed = 0;
  int skipped = 0;
  std::optional<StepResult> bad;
  {
    absl::MutexLock lock(&scope.mu_);
    for (const auto& [key, step] : scope.results_) {
      if (step.status == StepStatus::kPassed) ++passed;
      if (step.status == StepStatus::kSkipped) ++skipped;
      if ((step.status == StepStatus::kFailed ||
           step.status == StepStatus::kError) &&
          !bad.has_value()) {
        bad = step;
      }
    }
  }
  if (bad.has_value()) {
    r.status = bad->status;
    r.where = bad->where;
    r.expected = bad->expected;
    r.actual = bad->actual;
    r.checks = bad->checks;
    r.message = absl::StrCat("step ", bad->index, " (", bad->name, ") on ",
                             bad->agent, ": ", bad->message);
  } else if (skipped > 0) {
    r.status = StepStatus::kSkipped;
    r.message = absl::StrCat(skipped, " step(s) not run");
  } else {
    r.status = StepStatus::kPassed;
    r.message = absl::StrCat(passed, " step(s) passed");
  }
  return r;
}

void Run::ConnectAgents() {
  for (const AgentSpec& spec : specs_) {
    StepResult r;
    r.kind = "session";
    r.agent = spec.name;
    r.name = absl::StrCat("session on ", spec.name);
    if (stopping()) {
      // An earlier agent failed or the run was interrupted: the steps will
      // not run, so there is no point in waiting for this agent.
      r.status = StepStatus::kSkipped;
      {
        absl::MutexLock lock(&mu_);
        r.message = absl::StrCat("not connected: ", stop_reason_);
      }
      Record(std::move(r));
      continue;
    }
    r.attempts = 1;
    const absl::Time start = absl::Now();
    std::string env_name =
        absl::StrCat("SOCKAGENT_AGENT_", absl::AsciiStrToUpper(spec.name));
    for (char& c : env_name) {
      if (c == '-') c = '_';
    }
    std::string target;
    absl::Status status;
    if (auto it = options_.agent_targets.find(spec.name);
        it != options_.agent_targets.end()) {
      target = it->second;
    } else if (const char* env = std::getenv(env_name.c_str());
               env != nullptr && *env != '\0') {
      target = env;
    } else if (!spec.address.empty()) {
      absl::StatusOr<std::string> text = Interpolate(spec.address);
      if (text.ok()) {
        target = *text;
      } else {
        status = text.status();
      }
    }
    if (target.empty() && status.ok()) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "agent ", spec.name, " has no address: set address: in the file, ",
          env_name, ", or --agent-", spec.name, "=HOST:PORT"));
    }
    if (!target.empty() && status.ok()) {
      // The same rules as sockctl's --agent: no port means 7700.
      absl::StatusOr<std::string> normalized = vocab::AgentTarget(target);
      if (normalized.ok()) {
        target = *normalized;
      } else {
        status = absl::InvalidArgumentError(absl::StrCat(
            "agent ", spec.name, ": ",
            absl::StripPrefix(normalized.status().message(), "--agent ")));
      }
    }
    AgentOptions agent_options;
    agent_options.target = target;
    agent_options.fail_fast = options_.fail_fast;
    agent_options.session_ttl = spec.ttl;
    agent_options.session_label =
        absl::StrCat("scenario ", model_.name, " agent ", spec.name);
    agent_options.connect_timeout = options_.connect_timeout;
    agent_options.call_timeout = kCallTimeout;
    AgentSecurity security = options_.default_security;
    if (spec.has_security) {
      security = AgentSecurity();
      security.tls = spec.tls;
      for (auto [from, to] :
           std::vector<std::pair<const std::string*, std::string*>>{
               {&spec.tls_ca, &security.tls_ca},
               {&spec.tls_cert, &security.tls_cert},
               {&spec.tls_key, &security.tls_key},
               {&spec.tls_server_name, &security.tls_server_name},
               {&spec.token, &security.token}}) {
        absl::StatusOr<std::string> text = Interpolate(*from);
        if (!text.ok() && status.ok()) status = text.status();
        if (text.ok()) *to = *text;
      }
    }
    agent_options.token = security.token;
    agent_options.tls_server_name = security.tls_server_name;
    if (status.ok() &&
        (security.tls || !security.tls_ca.empty() ||
         !security.tls_cert.empty() || !security.tls_key.empty())) {
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
          TlsCredentialsFromFiles(security.tls_ca, security.tls_cert,
                                  security.tls_key);
      if (credentials.ok()) {
        agent_options.credentials = *credentials;
      } else {
        status = credentials.status();
      }
    }
    if (status.ok()) {
      absl::StatusOr<std::unique_ptr<Agent>> agent =
          Agent::Connect(agent_options);
      if (agent.ok()) {
        absl::MutexLock lock(&mu_);
        agents_[spec.name].agent = *std::move(agent);
      } else {
        status = agent.status();
      }
    }
    r.duration = absl::Now() - start;
    if (status.ok()) {
      targets_[spec.name] = target;
      r.status = StepStatus::kPassed;
      absl::MutexLock lock(&mu_);
      r.message = absl::StrCat(target, " session ",
                               agents_.at(spec.name).agent->session_id());
    } else {
      r.status = StepStatus::kError;
      r.message =
          absl::StrCat(target.empty() ? "" : target + ": ", StatusText(status));
      Stop(absl::StrCat("no session on agent ", spec.name), false);
    }
    Record(std::move(r));
  }
}

void Run::RunSteps(const std::vector<Step>& steps) {
  for (const Step& step : steps) {
    if (stopping()) return;
    RunStep(step);
  }
}

void Run::RunStep(const Step& step) {
  if (step.shape == StepShape::kGroup) {
    RunSteps(step.children);
    return;
  }
  if (step.shape == StepShape::kMatrix || step.shape == StepShape::kForEach) {
    RunFanOut(step);
    return;
  }
  if (step.shape == StepShape::kParallel) {
    std::vector<std::thread> branches;
    branches.reserve(step.children.size());
    for (const Step& child : step.children) {
      branches.emplace_back([this, &child] { RunStep(child); });
    }
    for (std::thread& branch : branches) branch.join();
    return;
  }
  RunLeaf(step);
}

void Run::MarkSkipped(const std::vector<Step>& steps) {
  for (const Step& step : steps) {
    const bool fan_out =
        step.shape == StepShape::kMatrix || step.shape == StepShape::kForEach;
    if (step.index == 0 && !fan_out) {
      MarkSkipped(step.children);
      continue;
    }
    const int key = fan_out ? step.first_leaf : step.index;
    std::string reason;
    {
      absl::MutexLock lock(&mu_);
      auto at = results_.lower_bound({key, 0});
      if (at != results_.end() && at->first.first == key) continue;
      reason = stop_reason_;
    }
    StepResult r;
    r.index = step.index;
    r.name = step.name;
    r.kind = step.kind_name;
    r.agent = AgentOf(step);
    r.where = Where(step);
    r.status = StepStatus::kSkipped;
    r.message = absl::StrCat("not run: ", reason);
    Record(std::move(r), fan_out ? key : -1, fan_out ? 1 : 0);
  }
}

absl::StatusOr<std::string> Run::Interpolate(absl::string_view text) {
  return scenario::Interpolate(
      text, [this](const std::string& name) -> std::optional<Fields> {
        absl::MutexLock lock(&mu_);
        auto var = vars_.find(name);
        if (var == vars_.end()) return std::nullopt;
        return var->second;
      });
}

absl::StatusOr<std::string> Run::Materialize(const DataSpec& spec) {
  return MaterializeData(
      spec, [this](absl::string_view text) { return Interpolate(text); });
}

std::vector<Check> Run::Evaluate(const Step& step, const Outcome& outcome,
                                 absl::Duration elapsed, absl::Status* error) {
  return EvaluateExpectations(
      step.expect, outcome, elapsed,
      [this](absl::string_view text) { return Interpolate(text); }, error);
}

absl::Status Run::Target(const Step& step, const Fields& args,
                         std::string* agent, std::string* handle) {
  *agent = step.agent;
  if (HasReference(step.agent)) {
    absl::StatusOr<std::string> text = Interpolate(step.agent);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent: ", text.status().message()));
    }
    *agent = *text;
  }
  auto socket = args.find("socket");
  if (socket != args.end()) {
    absl::MutexLock lock(&mu_);
    auto known = socket_agents_.find(socket->second);
    if (known == socket_agents_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("socket ", socket->second,
                       " does not exist (its step did not run or failed)"));
    }
    if (!agent->empty() && *agent != known->second) {
      return absl::InvalidArgumentError(
          absl::StrCat("socket ", socket->second, " lives on agent ",
                       known->second, ", not ", *agent));
    }
    *agent = known->second;
    *handle = vars_[socket->second]["handle"];
  }
  return absl::OkStatus();
}

void Run::RunLeaf(const Step& step) {
  StepResult r;
  r.index = step.index;
  r.name = step.name;
  r.kind = step.kind_name;
  r.agent = AgentOf(step);
  r.where = Where(step);
  const absl::Time first_start = absl::Now();
  const absl::Duration timeout = step.timeout.value_or(model_.default_timeout);
  const absl::Time retry_deadline = step.retry.until > absl::ZeroDuration()
                                        ? first_start + step.retry.until
                                        : absl::InfiniteFuture();

  // What the last attempt that ran to its end found; see `cut` below.
  struct Answer {
    std::vector<Check> checks;
    std::string expected, actual;
  };
  std::optional<Answer> answer;
  while (true) {
    ++r.attempts;
    r.checks.clear();
    r.expected.clear();
    r.actual.clear();
    // Arguments and data after substitution.
    Fields args;
    absl::Status error;
    for (const auto& [key, value] : step.args) {
      absl::StatusOr<std::string> text = Interpolate(value);
      if (!text.ok()) {
        error = absl::InvalidArgumentError(
            absl::StrCat(key, ": ", text.status().message()));
        break;
      }
      args[key] = *text;
    }
    std::string data;
    if (error.ok() && step.data.has_value()) {
      absl::StatusOr<std::string> bytes = Materialize(*step.data);
      if (bytes.ok()) {
        data = *std::move(bytes);
      } else {
        error = absl::InvalidArgumentError(
            absl::StrCat("data: ", bytes.status().message()));
      }
    }
    std::string agent_name, handle;
    if (error.ok()) error = Target(step, args, &agent_name, &handle);
    if (error.ok()) r.agent = agent_name;

    Outcome outcome;
    absl::Duration elapsed;
    // True when the retry deadline, not the step's timeout, ended the call.
    bool cut = false;
    if (error.ok()) {
      const absl::Time start = absl::Now();
      // A retried step's attempts end with the retry deadline.
      absl::Time deadline = std::min(start + timeout, retry_deadline);
      if (step.expect.no_data_for.has_value()) {
        deadline = start + *step.expect.no_data_for;
      }
      outcome = Perform(step, args, data, agent_name, handle, deadline);
      cut = deadline == retry_deadline && deadline < start + timeout &&
            absl::IsDeadlineExceeded(outcome.status);
      elapsed = absl::Now() - start;
      if (outcome.new_socket.has_value()) {
        absl::MutexLock lock(&mu_);
        handles_[agent_name].push_back(*outcome.new_socket);
      }
      error = outcome.runner_error;
    }
    r.duration = elapsed;
    bool held = false;
    if (error.ok()) {
      r.checks = Evaluate(step, outcome, elapsed, &error);
      held = error.ok();
      for (const Check& check : r.checks) {
        if (!check.held) {
          held = false;
          if (r.expected.empty() && r.actual.empty()) {
            r.expected = absl::StrCat(check.what, ": ", check.expected);
            r.actual = absl::StrCat(check.what, ": ", check.actual);
          }
        }
      }
    }
    if (held || (error.ok() && outcome.status.ok())) {
      Save(step, agent_name, outcome);
    }
    r.figures = outcome.figures;
    if (!outcome.agent.empty()) r.agent = outcome.agent;
    if (held) {
      r.status = StepStatus::kPassed;
      if (!outcome.status.ok()) {
        r.message = std::string(outcome.status.message());
      } else if (outcome.has_data) {
        r.message = Preview(outcome.data);
      } else if (step.kind->sends) {
        r.message = absl::StrCat(outcome.fields["bytes"], " bytes sent");
      } else if (outcome.fields.count("") != 0) {
        r.message = outcome.fields[""];
      }
      break;
    }
    if (cut && answer.has_value()) {
      // An attempt that started just before the retry deadline and was cut
      // by it found nothing; the step reports the attempt before it (an
      // ECONNREFUSED, not a DEADLINE_EXCEEDED of the runner's making).
      r.checks = answer->checks;
      r.expected = answer->expected;
      r.actual = answer->actual;
    } else if (error.ok()) {
      answer = Answer{r.checks, r.expected, r.actual};
    }
    const bool stopped = stopping();
    if (!stopped && step.retry.enabled && error.ok() &&
        (step.retry.attempts == 0 || r.attempts < step.retry.attempts) &&
        absl::Now() + step.retry.interval < retry_deadline &&
        SleepUnlessStopped(step.retry.interval)) {
      continue;
    }
    if (stopped) {
      // A call cut short by the stop is not this step's failure.
      absl::MutexLock lock(&mu_);
      r.status = StepStatus::kSkipped;
      r.message = absl::StrCat("stopped: ", stop_reason_);
    } else if (!error.ok()) {
      r.status = StepStatus::kError;
      r.message = std::string(error.message());
    } else {
      r.status = StepStatus::kFailed;
      r.message = absl::StrCat("expected ", r.expected, "; actual ", r.actual);
    }
    break;
  }
  r.duration = r.attempts > 1 ? absl::Now() - first_start : r.duration;
  const bool failed =
      r.status == StepStatus::kFailed || r.status == StepStatus::kError;
  const std::string reason = absl::StrCat("step ", r.index, " (", r.name, ") ",
                                          StepStatusName(r.status));
  Record(std::move(r));
  if (failed) Stop(reason, false);
}

absl::Status Run::Hold(const std::string& name, const std::string& agent,
                       std::shared_ptr<Held> held) {
  absl::MutexLock lock(&mu_);
  for (const HeldEntry& entry : held_) {
    if (entry.name == name) {
      return absl::AlreadyExistsError(
          absl::StrCat("\"", name, "\" is already running"));
    }
  }
  held_.push_back(HeldEntry{name, agent, std::move(held)});
  return absl::OkStatus();
}

std::shared_ptr<Held> Run::Find(const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    for (const HeldEntry& entry : held_) {
      if (entry.name == name) return entry.held;
    }
  }
  return parent_ == nullptr ? nullptr : parent_->Find(name);
}

std::shared_ptr<Held> Run::Release(const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->name == name) {
        std::shared_ptr<Held> held = std::move(it->held);
        held_.erase(it);
        return held;
      }
    }
  }
  return parent_ == nullptr ? nullptr : parent_->Release(name);
}

void Run::StopHeld(const std::string& agent, std::vector<std::string>* lines,
                   std::vector<std::string>* figures) {
  std::vector<HeldEntry> stopping;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = held_.begin(); it != held_.end();) {
      if (agent.empty() || it->agent == agent) {
        stopping.push_back(std::move(*it));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = stopping.rbegin(); it != stopping.rend(); ++it) {
    lines->push_back(
        absl::StrCat("stopped ", it->name, ": ", it->held->Stop(figures)));
  }
}

bool Run::SleepUnlessStopped(absl::Duration duration) {
  absl::MutexLock lock(&mu_);
  auto stopped = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
  return !mu_.AwaitWithTimeout(absl::Condition(&stopped), duration);
}

void Run::Signal(const std::string& name) {
  absl::MutexLock lock(&mu_);
  signals_.insert(name);
}

absl::Status Run::WaitFor(const std::string& name, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto ready = [this, &name]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || signals_.count(name) != 0;
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  if (signals_.count(name) != 0) return absl::OkStatus();
  return stopping_ ? absl::CancelledError("run stopped")
                   : absl::DeadlineExceededError(
                         absl::StrCat("signal ", name, " did not come"));
}

Outcome Run::Perform(const Step& step, const Fields& args,
                     const std::string& data, const std::string& agent_name,
                     const std::string& handle, absl::Time deadline) {
  Agent* agent = nullptr;
  if (step.kind->calls_agent) {
    auto agent_it = agents_.find(agent_name);
    if (agent_it == agents_.end() || agent_it->second.agent == nullptr) {
      Outcome out;
      out.runner_error = absl::FailedPreconditionError(
          absl::StrCat("agent ", agent_name, " is not connected"));
      return out;
    }
    agent = agent_it->second.agent.get();
  }
  Socket socket = handle.empty() || agent == nullptr
                      ? Socket()
                      : agent->AttachSocket(handle);
  const StepCall call{step,       args,   data,     agent,
                      agent_name, socket, deadline, *this};
  return step.kind->run(call);
}

std::string Run::AgentOf(const Step& step) {
  if (!step.agent.empty()) return step.agent;
  auto socket = step.args.find("socket");
  if (socket == step.args.end()) return "";
  absl::MutexLock lock(&mu_);
  auto known = socket_agents_.find(socket->second);
  return known == socket_agents_.end() ? "" : known->second;
}

void Run::Save(const Step& step, const std::string& agent, const Outcome& out) {
  absl::MutexLock lock(&mu_);
  auto socket = step.args.find("socket");
  if (socket != step.args.end() && socket_agents_.count(socket->second) != 0) {
    Fields& var = vars_[socket->second];
    for (const auto& [key, value] : out.socket_updates) {
      if (!key.empty()) var[key] = value;
    }
    if (out.closed_socket) closed_.insert(var["handle"]);
  }
  if (step.save_as.empty()) return;
  Fields fields = out.fields;
  if (out.has_data) {
    fields["data"] = out.data;
    fields[""] = out.data;
  }
  if (out.new_socket.has_value()) {
    socket_agents_[step.save_as] = agent;
    fields[""] = *out.new_socket;
  }
  vars_[step.save_as] = std::move(fields);
}

void Run::Stop(const std::string& reason, bool interrupted) {
  {
    absl::MutexLock lock(&mu_);
    if (interrupted) interrupted_ = true;
    if (stopping_) return;
    stopping_ = true;
    stop_reason_ = reason;
  }
  CloseAllHandles();
  absl::MutexLock lock(&children_mu_);
  for (Run* child : children_) child->Stop(reason, interrupted);
}

void Run::CloseAllHandles() {
  std::vector<std::pair<Agent*, std::string>> open;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, handles] : handles_) {
      auto state = agents_.find(name);
      if (state == agents_.end() || state->second.agent == nullptr) continue;
      for (const std::string& handle : handles) {
        if (closed_.count(handle) == 0) {
          open.emplace_back(state->second.agent.get(), handle);
        }
      }
    }
  }
  for (auto& [agent, handle] : open) {
    // NOT_FOUND: the step that used it closed it meanwhile.
    agent->AttachSocket(handle).Close().IgnoreError();
    absl::MutexLock lock(&mu_);
    closed_.insert(handle);
  }
}

void Run::Cleanup() {
  for (const AgentSpec& spec : specs_) {
    auto it = agents_.find(spec.name);
    if (it == agents_.end() || it->second.agent == nullptr) continue;
    AgentState& state = it->second;
    StepResult r;
    r.kind = "cleanup";
    r.agent = spec.name;
    r.name = absl::StrCat("cleanup on ", spec.name);
    r.attempts = 1;
    const absl::Time start = absl::Now();
    // What steps started on this agent (proxies) ends first, while the
    // session still holds its sockets.
    std::vector<std::string> stopped;
    StopHeld(spec.name, &stopped, &r.figures);
    int closed = 0;
    std::vector<std::string> problems;
    std::vector<std::string> handles;
    {
      absl::MutexLock lock(&mu_);
      for (const std::string& handle : handles_[spec.name]) {
        if (closed_.count(handle) == 0) handles.push_back(handle);
      }
    }
    for (const std::string& handle : handles) {
      absl::Status status = state.agent->AttachSocket(handle).Close();
      if (status.ok()) {
        ++closed;
      } else if (!absl::IsNotFound(status)) {
        problems.push_back(
            absl::StrCat("close ", handle, ": ", StatusText(status)));
      }
      absl::MutexLock lock(&mu_);
      closed_.insert(handle);
    }
    absl::StatusOr<uint32_t> session_closed = state.agent->CloseSession();
    if (!session_closed.ok()) {
      problems.push_back(
          absl::StrCat("close session: ", StatusText(session_closed.status())));
    }
    r.duration = absl::Now() - start;
    r.status = problems.empty() ? StepStatus::kPassed : StepStatus::kError;
    r.message = problems.empty()
                    ? absl::StrCat("closed ", closed,
                                   " open handle(s); session closed (",
                                   *session_closed, " socket(s) left in it)")
                    : absl::StrJoin(problems, "; ");
    if (!stopped.empty()) {
      r.message = absl::StrCat(absl::StrJoin(stopped, "; "), "; ", r.message);
    }
    Record(std::move(r));
  }
}

}  // namespace
}  // namespace scenario

std::string StepStatusName(StepStatus status) {
  switch (status) {
    case StepStatus::kPassed:
      return "passed";
    case StepStatus::kFailed:
      return "failed";
    case StepStatus::kError:
      return "error";
    case StepStatus::kSkipped:
      return "skipped";
  }
  return "unknown";
}

int ScenarioResult::Count(StepStatus status) const {
  int n = 0;
  for (const StepResult& step : steps) n += step.status == status ? 1 : 0;
  return n;
}

bool ScenarioResult::ok() const {
  return !interrupted && !steps.empty() &&
         Count(StepStatus::kPassed) == static_cast<int>(steps.size());
}

ScenarioResult Scenario::Run(const RunOptions& options) const {
  scenario::Run run(*model_, options);
  return run.Execute();
}

}  // namespace sockagent
