#include "client/fleet/probe.h"

#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "client/agent.h"
#include "client/fleet/parallel.h"

namespace sockagent {
namespace fleet {

std::vector<AgentProbe> ProbeAll(const std::vector<AgentEndpoint>& agents,
                                 const ProbeOptions& options) {
  std::vector<AgentProbe> probes(agents.size());
  RunParallel(agents.size(), options.concurrency, [&](size_t i) {
    AgentProbe& probe = probes[i];
    probe.endpoint = agents[i];
    probe.labels = agents[i].labels;
    const absl::Time start = absl::Now();
    absl::StatusOr<AgentOptions> agent_options = OptionsFor(agents[i]);
    if (!agent_options.ok()) {
      probe.status = agent_options.status();
      return;
    }
    agent_options->open_session = false;
    agent_options->keepalive = false;
    agent_options->fail_fast = true;
    agent_options->connect_timeout = options.timeout;
    agent_options->call_timeout = options.timeout;
    absl::StatusOr<std::unique_ptr<Agent>> agent =
        Agent::Connect(*std::move(agent_options));
    if (!agent.ok()) {
      probe.status = agent.status();
    } else if (absl::StatusOr<v1::GetAgentInfoResponse> info =
                   (*agent)->GetAgentInfo();
               !info.ok()) {
      probe.status = info.status();
    } else {
      probe.info = *std::move(info);
      for (const auto& [key, value] : probe.info.labels()) {
        probe.labels[key] = value;
      }
    }
    probe.latency = absl::Now() - start;
  });
  return probes;
}

const char* HealthOf(const AgentProbe& probe) {
  if (probe.status.ok()) return "ok";
  if (absl::StrContains(probe.status.message(), "shutting down")) {
    return "draining";
  }
  if (probe.status.code() == absl::StatusCode::kUnavailable ||
      probe.status.code() == absl::StatusCode::kDeadlineExceeded) {
    return "unreachable";
  }
  return "error";
}

}  // namespace fleet
}  // namespace sockagent
