// Traffic steps when the build has no Socket::Traffic (SOCKAGENT_SCENARIO_
// TRAFFIC off): the steps parse, and running one fails with UNIMPLEMENTED.

#include "client/scenario/traffic_steps.h"

namespace sockagent::scenario {
namespace {

absl::Status Unavailable() {
  return absl::UnimplementedError("traffic steps need the traffic branch");
}

}  // namespace

bool TrafficStepsAvailable() { return false; }

absl::Status RunTrafficStep(Socket&, const StepArgs&, absl::Time, StepFields*) {
  return Unavailable();
}

absl::Status RunAbortStep(Socket&) { return Unavailable(); }

absl::Status RunFaultsStep(Socket&, const StepArgs&) { return Unavailable(); }

}  // namespace sockagent::scenario
