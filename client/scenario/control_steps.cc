// The step kinds that coordinate the run instead of calling an agent:
// signal, wait and sleep (RunControl).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/scenario/step_kinds.h"
#include "proto/units.h"

namespace sockagent::scenario {
namespace {

Outcome Signal(const StepCall& call) {
  call.run.Signal(call.Arg("name"));
  return Outcome();
}

Outcome Wait(const StepCall& call) {
  Outcome out;
  out.status = call.run.WaitFor(call.Arg("name"), call.deadline);
  return out;
}

Outcome Sleep(const StepCall& call) {
  absl::StatusOr<absl::Duration> d = ParseDurationText(call.Arg("duration"));
  if (!d.ok()) return StepCall::Bad("duration", d.status());
  Outcome out;
  if (!call.run.SleepUnlessStopped(*d)) {
    out.status = absl::CancelledError("run stopped");
  }
  return out;
}

}  // namespace

void AddControlSteps(std::vector<StepKind>* kinds) {
  kinds->push_back(StepKind("signal", Signal)
                       .Required("name", ArgType::kString)
                       .Shorthand("name")
                       .Coordinates());
  kinds->push_back(StepKind("wait", Wait)
                       .Required("name", ArgType::kString)
                       .Shorthand("name")
                       .Coordinates());
  kinds->push_back(StepKind("sleep", Sleep)
                       .Required("duration", ArgType::kDuration)
                       .Shorthand("duration")
                       .Coordinates());
}

}  // namespace sockagent::scenario
