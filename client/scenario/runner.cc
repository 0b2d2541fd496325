// Scenario::Run: executes a parsed scenario against its agents. This file
// holds Run's scheduling: the run's phases (Execute), steps in order,
// groups and parallel branches, skipped steps, the stop, and what steps
// share while they run (signals, held work). Run and its other rooms:
// run.h.

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/scenario/run.h"
#include "client/scenario/scenario.h"

namespace sockagent {
namespace scenario {
namespace internal {

std::string Run::Where(const Step& step) const {
  if (step.location.line == 0) return model_.file;
  return model_.file.empty()
             ? absl::StrCat(step.location.line)
             : absl::StrCat(model_.file, ":", step.location.line);
}

StepResult Run::ResultOf(const Step& step) {
  StepResult r;
  r.index = step.index;
  r.name = step.name;
  r.kind = step.kind_name;
  r.agent = AgentOf(step);
  r.where = Where(step);
  return r;
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
    StepResult r = ResultOf(step);
    r.status = StepStatus::kSkipped;
    r.message = absl::StrCat("not run: ", reason);
    Record(std::move(r), fan_out ? key : -1, fan_out ? 1 : 0);
  }
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

}  // namespace internal
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
  scenario::internal::Run run(*model_, options);
  return run.Execute();
}

}  // namespace sockagent
