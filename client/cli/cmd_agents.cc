// sockctl agents: every agent of a fleet (an agent source, see
// client/fleet/inventory.h) with its name, address, labels, version,
// incarnation and health, all contacted at once with a per-agent timeout.

#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/fleet/agents_report.h"
#include "client/fleet/inventory.h"
#include "client/fleet/probe.h"
#include "client/fleet/selector.h"

namespace sockagent {
namespace cli {
namespace {

// Without --timeout each agent gets this long to answer.
constexpr absl::Duration kDefaultProbeTimeout = absl::Seconds(3);

int ListAgents(const Cli& cli, const std::string& source,
               const std::string& select) {
  absl::StatusOr<std::vector<fleet::AgentEndpoint>> agents =
      fleet::LoadAgentsOrEnv(source);
  if (!agents.ok()) return cli.Usage(agents.status());
  absl::StatusOr<fleet::Selector> selector = fleet::Selector::Parse(select);
  if (!selector.ok()) return cli.Usage(selector.status());
  // Sources without security settings of their own (dns:, lists) use
  // sockctl's: --tls-* / SOCKAGENT_TLS_*, --token / SOCKAGENT_TOKEN.
  const GlobalOptions& g = cli.options();
  fleet::AgentEndpoint defaults;
  defaults.tls_ca = g.tls_ca;
  defaults.tls_cert = g.tls_cert;
  defaults.tls_key = g.tls_key;
  defaults.tls_server_name = g.tls_server_name;
  defaults.tls = !g.tls_ca.empty() || !g.tls_cert.empty() || !g.tls_key.empty();
  defaults.token = g.token;
  fleet::ApplyDefaults(defaults, &*agents);

  fleet::ProbeOptions options;
  options.timeout = cli.call_timeout() == absl::InfiniteDuration()
                        ? kDefaultProbeTimeout
                        : cli.call_timeout();
  std::vector<fleet::AgentProbe> probes = fleet::ProbeAll(*agents, options);
  std::vector<fleet::AgentProbe> selected;
  bool all_ok = true;
  for (fleet::AgentProbe& probe : probes) {
    if (!selector->Matches(probe.endpoint.name, probe.labels)) continue;
    if (!probe.status.ok()) all_ok = false;
    selected.push_back(std::move(probe));
  }
  std::cout << (cli.json() ? fleet::AgentsJsonLines(selected)
                           : fleet::AgentsTable(selected))
            << std::flush;
  return all_ok ? kExitOk : kExitFalse;
}

}  // namespace

void RegisterAgentsCommands(Cli& cli) {
  std::string& source = cli.Own<std::string>();
  std::string& select = cli.Own<std::string>();
  CLI::App* agents = cli.AddCommand(
      "agents",
      "List a fleet's agents: name, address, health, version, incarnation, "
      "latency and labels (the source's, with the agent's own on top), all "
      "contacted at once, each within --timeout (default 3s). SOURCE is an "
      "inventory file, dns:NAME:PORT (every A/AAAA record), env:VAR or "
      "NAME=HOST:PORT,...; default $SOCKAGENT_AGENTS. --select keeps the "
      "agents a selector matches (NAME, KEY=VALUE, KEY!=VALUE, "
      "comma-separated). Exit 1 when a listed agent did not answer. --json: "
      "one object per agent.\n\nExamples:\n  sockctl agents --agents "
      "fleet.yaml\n  sockctl --json agents --agents "
      "dns:sockagent-headless.sockagent.svc:7700 --select node=worker-3");
  agents->add_option("--agents", source, "agent source (see above)");
  agents->add_option("--select", select, "selector, e.g. node=worker-3");
  cli.OnRun(agents, [&] { return ListAgents(cli, source, select); });
}

}  // namespace cli
}  // namespace sockagent
