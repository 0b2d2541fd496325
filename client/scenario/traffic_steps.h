#ifndef SOCKAGENT_CLIENT_SCENARIO_TRAFFIC_STEPS_H_
#define SOCKAGENT_CLIENT_SCENARIO_TRAFFIC_STEPS_H_

// The agent-side traffic and fault steps of a scenario (`traffic`, `abort`,
// `faults`), on the Socket::Traffic / Abort / SetFaults client calls.
//
// `args` are the step's arguments after ${...} substitution, already checked
// by the parser's value rules. Results go to `fields` (bytes_received,
// bytes_sent, datagrams_received, datagrams_sent, checksum, end,
// bytes_per_second, elapsed_ms, bytes).

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/socket.h"

namespace sockagent::scenario {

using StepArgs = std::map<std::string, std::string>;
using StepFields = std::map<std::string, std::string>;

absl::Status RunTrafficStep(Socket& socket, const StepArgs& args,
                            absl::Time deadline, StepFields* fields);
absl::Status RunAbortStep(Socket& socket);
absl::Status RunFaultsStep(Socket& socket, const StepArgs& args);

// The fault arguments shared by `faults`, `proxy` and `proxy_faults` (the
// names of sockagent.v1.Faults' fields, send_rate for its bytes per second):
// the Faults they describe (absent = off); INVALID_ARGUMENT naming the key.
absl::StatusOr<v1::Faults> FaultsFromArgs(const StepArgs& args);

}  // namespace sockagent::scenario

#endif  // SOCKAGENT_CLIENT_SCENARIO_TRAFFIC_STEPS_H_
