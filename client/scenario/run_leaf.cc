// Run's leaf steps: one step's arguments and data after substitution, the
// agent and socket it runs on, its attempts (retry:), its expectations, and
// the variables it saves.

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/scenario/expectations.h"
#include "client/scenario/interpolation.h"
#include "client/scenario/run.h"
#include "client/socket.h"

namespace sockagent {
namespace scenario {
namespace internal {

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
  StepResult r = ResultOf(step);
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

}  // namespace internal
}  // namespace scenario
}  // namespace sockagent
