#ifndef SOCKAGENT_CLIENT_FLEET_AGENTS_REPORT_H_
#define SOCKAGENT_CLIENT_FLEET_AGENTS_REPORT_H_

// What `sockctl agents` prints for a probed fleet: a table (NAME, ADDRESS,
// HEALTH, VERSION, INCARNATION, LATENCY, LABELS, and the error of an agent
// that did not answer), or one JSON object per agent (sockctl's --json
// conventions: snake_case keys, durations in seconds in keys ending _s, a
// failure as "error": {"code", "message"}). Pure; thread-safe.

#include <string>
#include <vector>

#include "client/fleet/probe.h"

namespace sockagent {
namespace fleet {

std::string AgentsTable(const std::vector<AgentProbe>& probes);
// One line per agent, each a JSON object.
std::string AgentsJsonLines(const std::vector<AgentProbe>& probes);

}  // namespace fleet
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_FLEET_AGENTS_REPORT_H_
