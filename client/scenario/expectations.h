#ifndef SOCKAGENT_CLIENT_SCENARIO_EXPECTATIONS_H_
#define SOCKAGENT_CLIENT_SCENARIO_EXPECTATIONS_H_

// A step's expect: against what one attempt found, as the Checks a report
// shows (what, expected, actual, held). Pure functions; thread-safe when the
// interpolator is.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/scenario/interpolation.h"
#include "client/scenario/model.h"
#include "client/scenario/scenario.h"
#include "client/scenario/step_kinds.h"

namespace sockagent::scenario {

// The checks of `e` on `outcome` (the call took `elapsed`): without status
// or errno expectations the call must succeed; data expectations (data,
// contains, matches, bytes, checksum, values) apply to a successful call;
// no_data_for holds when the wait timed out with nothing received; within
// bounds `elapsed`. An expected value that cannot be interpolated or
// materialized sets `*error` (the first such error), as does a bad regex.
std::vector<Check> EvaluateExpectations(const Expectation& e,
                                        const Outcome& outcome,
                                        absl::Duration elapsed,
                                        const Interpolator& interpolate,
                                        absl::Status* error);

// Received or compared bytes in a report: printable text quoted and
// shortened to 64 bytes, anything else as a hex preview of 16, both after
// the count ("5 bytes \"hello\"").
std::string Preview(absl::string_view data);

// "OK" or "CODE: message".
std::string StatusText(const absl::Status& status);

}  // namespace sockagent::scenario

#endif  // SOCKAGENT_CLIENT_SCENARIO_EXPECTATIONS_H_
