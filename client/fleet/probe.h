#ifndef SOCKAGENT_CLIENT_FLEET_PROBE_H_
#define SOCKAGENT_CLIENT_FLEET_PROBE_H_

// ProbeAll: asks every agent of a fleet who it is (GetAgentInfo), all at
// once, each bounded by its own timeout: an unreachable agent is reported
// as such after at most `timeout`, and never delays the answer of another
// (so a fleet of any size answers within about one timeout while
// concurrency >= its size). Opens no session. Thread-safe.

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/fleet/inventory.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace fleet {

struct ProbeOptions {
  // Connect plus GetAgentInfo, per agent.
  absl::Duration timeout = absl::Seconds(3);
  // Agents contacted at once.
  size_t concurrency = 256;
};

struct AgentProbe {
  AgentEndpoint endpoint;
  // OK when the agent answered; otherwise why not (UNAVAILABLE or
  // DEADLINE_EXCEEDED for an unreachable agent, UNAUTHENTICATED, ...).
  absl::Status status;
  // The agent's answer (empty unless status is OK).
  v1::GetAgentInfoResponse info;
  // The source's labels with the agent's own on top (the agent wins).
  std::map<std::string, std::string> labels;
  // Connect plus GetAgentInfo.
  absl::Duration latency = absl::ZeroDuration();
};

// One probe per endpoint, in the order of `agents`.
std::vector<AgentProbe> ProbeAll(const std::vector<AgentEndpoint>& agents,
                                 const ProbeOptions& options);

// "ok" for a probe whose agent answered and is not draining, else
// "unreachable", "draining" or "error" (the status says more).
const char* HealthOf(const AgentProbe& probe);

}  // namespace fleet
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_FLEET_PROBE_H_
