// Run's fan-out groups: matrix: (every pair of two agent selections) and
// for_each: (every selected agent), each pair run in a scope of its own,
// in parallel up to the group's concurrency, reported as one entry per pair
// (and, for a matrix, a table).

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/fleet/parallel.h"
#include "client/scenario/run.h"

namespace sockagent {
namespace scenario {
namespace internal {

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

}  // namespace internal
}  // namespace scenario
}  // namespace sockagent
