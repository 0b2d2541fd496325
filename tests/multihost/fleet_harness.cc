// The harness half of the fleet test (fleet.sh): finds a fleet of agents
// through an agent source (client/fleet), then drives TCP between them the
// way a fleet-wide connectivity check does:
//
//   fleet_harness --agents SOURCE [--select SELECTOR] [--expect N]
//                 [--ring] [--matrix] [--concurrency 32] [--bytes 1024]
//                 [--timeout 20s] [--results FILE]
//                 [--via HOST:PORT --via-netns-label KEY]
//                 [--heat-map FILE.png]
//
// --expect N   the source must give N agents, all reachable (probe).
// --ring       each agent connects to the next (the last to the first) and
//              exchanges BYTES: the agent connected to echoes them back.
// --matrix     every ordered pair (from, to) of distinct agents does the
//              same: N*(N-1) pairs, at most CONCURRENCY at once.
//
// --heat-map  the matrix as a PNG heat map (rows from, columns to; green
//             to red by latency, black failed).
// --via       drive every agent's part through ONE agent instead, which
//             creates each socket inside the network namespace the agent
//             of that part names in its label KEY (per-call namespace
//             targeting: SocketRequest.network_namespace). The phases are
//             then called via-ring and via-matrix.
//
// A pair is: `from` creates a TCP socket and connects to the listener `to`
// holds on its own address, sends BYTES; `to` accepts one connection,
// receives BYTES and sends them back; `from` receives them, compares, and
// both close. A pair's latency runs from socket() to the last byte back.
// Each step is bounded by --timeout; a failed pair is reported with its
// error, never retried.
//
// TLS and token settings come from the source (an inventory) or, for
// agents it gives none, from SOCKAGENT_TLS_CA/_CERT/_KEY and SOCKAGENT_TOKEN.
//
// Prints one line per phase, e.g.
//   matrix: 90 pairs, 0 failed, wall 1.234 s, p50 5.10 ms, p99 9.80 ms
// and "sockets left: N" (the agents' open sockets after every listener is
// closed; 0 unless something leaked). With --results, the same figures go to
// FILE as JSON lines. Exit 0 when every check passed, 1 otherwise.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/fleet/heat_map.h"
#include "client/fleet/inventory.h"
#include "client/fleet/parallel.h"
#include "client/fleet/probe.h"
#include "client/fleet/selector.h"
#include "client/socket.h"

namespace {

using sockagent::Agent;
using sockagent::Socket;
namespace fleet = sockagent::fleet;
namespace v1 = sockagent::v1;

struct Flags {
  std::string agents;
  std::string select;
  std::string results;
  std::string via;
  std::string via_netns_label;
  std::string heat_map;
  size_t expect = 0;
  bool ring = false;
  bool matrix = false;
  size_t concurrency = 32;
  size_t bytes = 1024;
  absl::Duration timeout = absl::Seconds(20);
};

[[noreturn]] void Usage(absl::string_view what) {
  std::cerr << "fleet_harness: " << what
            << "\nusage: fleet_harness --agents SOURCE [--select SELECTOR] "
               "[--expect N] [--ring] [--matrix] [--concurrency N] "
               "[--bytes N] [--timeout DURATION] [--results FILE]\n";
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view name = argv[i];
    if (name == "--ring") {
      flags.ring = true;
      continue;
    }
    if (name == "--matrix") {
      flags.matrix = true;
      continue;
    }
    if (i + 1 >= argc) Usage(absl::StrCat(name, ": missing value"));
    const std::string value = argv[++i];
    bool ok = true;
    if (name == "--agents") {
      flags.agents = value;
    } else if (name == "--select") {
      flags.select = value;
    } else if (name == "--results") {
      flags.results = value;
    } else if (name == "--heat-map") {
      flags.heat_map = value;
    } else if (name == "--via") {
      flags.via = value;
    } else if (name == "--via-netns-label") {
      flags.via_netns_label = value;
    } else if (name == "--expect") {
      ok = absl::SimpleAtoi(value, &flags.expect);
    } else if (name == "--concurrency") {
      ok = absl::SimpleAtoi(value, &flags.concurrency) && flags.concurrency > 0;
    } else if (name == "--bytes") {
      ok = absl::SimpleAtoi(value, &flags.bytes) && flags.bytes > 0;
    } else if (name == "--timeout") {
      ok = absl::ParseDuration(value, &flags.timeout) &&
           flags.timeout > absl::ZeroDuration();
    } else {
      Usage(absl::StrCat("unknown flag ", name));
    }
    if (!ok) Usage(absl::StrCat(name, ": bad value '", value, "'"));
  }
  return flags;
}

// One agent of the fleet, connected, with a listener on its own address.
// With --via, `agent` is the one agent and `netns` names the namespace of
// this node's sockets.
struct Node {
  std::string name;
  std::string host;
  std::unique_ptr<Agent> own_agent;
  Agent* agent = nullptr;
  std::optional<v1::NetworkNamespace> netns;
  Socket listener;
  v1::Address listen_address;
};

absl::StatusOr<Socket> NewTcpSocket(const Node& node) {
  if (node.netns.has_value()) {
    return node.agent->CreateSocketIn(*node.netns, v1::FAMILY_INET,
                                      v1::SOCKET_TYPE_STREAM);
  }
  return node.agent->CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
}

struct PairResult {
  absl::Status status;
  absl::Duration latency = absl::ZeroDuration();
};

// The payload: distinct per pair, so an echo of another pair's bytes fails.
std::string Payload(size_t bytes, size_t from, size_t to) {
  std::string data(bytes, '\0');
  uint64_t x = (from * 1000003u + to) | 1u;
  for (char& c : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return data;
}

absl::Status Annotate(const absl::Status& status, absl::string_view step) {
  return absl::Status(status.code(),
                      absl::StrCat(step, ": ", status.message()));
}

// One pair, as the file comment describes. The connection `to` accepts may
// be another pair's (pairs to one agent share its listener); every accepted
// connection is echoed once, so each pair's bytes come back either way.
PairResult RunPair(Node& from, Node& to, size_t from_index, size_t to_index,
                   const Flags& flags) {
  PairResult result;
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + flags.timeout;
  const std::string payload = Payload(flags.bytes, from_index, to_index);
  absl::StatusOr<Socket> client = NewTcpSocket(from);
  if (!client.ok()) {
    result.status = Annotate(client.status(), "socket");
    return result;
  }
  if (absl::StatusOr<v1::Address> local =
          client->Connect(to.listen_address, deadline);
      !local.ok()) {
    result.status = Annotate(local.status(), "connect");
    return result;
  }
  if (absl::Status sent = client->SendAll(payload, 0, deadline); !sent.ok()) {
    result.status = Annotate(sent, "send");
    return result;
  }
  absl::StatusOr<sockagent::AcceptResult> accepted =
      to.listener.Accept(deadline);
  if (!accepted.ok()) {
    result.status = Annotate(accepted.status(), "accept");
    return result;
  }
  absl::StatusOr<v1::TrafficResponse> echoed =
      accepted->socket.Echo(flags.bytes, std::nullopt, deadline);
  if (!echoed.ok()) {
    result.status = Annotate(echoed.status(), "echo");
    return result;
  }
  std::string back;
  while (back.size() < payload.size()) {
    absl::StatusOr<std::string> chunk =
        client->Recv(payload.size() - back.size(), 0, deadline);
    if (!chunk.ok()) {
      result.status = Annotate(chunk.status(), "recv");
      return result;
    }
    if (chunk->empty()) {
      result.status = absl::DataLossError(
          absl::StrCat("recv: EOF after ", back.size(), " bytes"));
      return result;
    }
    back += *chunk;
  }
  result.latency = absl::Now() - start;
  if (absl::Status closed = client->Close(); !closed.ok()) {
    result.status = Annotate(closed, "close");
  } else if (absl::Status closed = accepted->socket.Close(); !closed.ok()) {
    result.status = Annotate(closed, "close accepted");
  }
  // Whoever accepted our connection echoed it: the bytes must be ours.
  if (result.status.ok() && back != payload) {
    result.status = absl::DataLossError("echo: the bytes came back changed");
  }
  return result;
}

struct Summary {
  std::string phase;
  size_t pairs = 0;
  size_t failed = 0;
  absl::Duration wall;
  double p50_ms = 0;
  double p99_ms = 0;
  std::vector<std::string> errors;
  std::vector<PairResult> results;
};

double PercentileMs(std::vector<absl::Duration>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t at = std::min(
      sorted.size() - 1, static_cast<size_t>(q * (sorted.size() - 1) + 0.5));
  return absl::ToDoubleMilliseconds(sorted[at]);
}

Summary RunPairs(const std::string& phase, std::vector<Node>& nodes,
                 const std::vector<std::pair<size_t, size_t>>& pairs,
                 const Flags& flags) {
  Summary summary;
  summary.phase = phase;
  summary.pairs = pairs.size();
  std::vector<PairResult> results(pairs.size());
  const absl::Time start = absl::Now();
  fleet::RunParallel(pairs.size(), flags.concurrency, [&](size_t i) {
    const auto [from, to] = pairs[i];
    results[i] = RunPair(nodes[from], nodes[to], from, to, flags);
  });
  summary.wall = absl::Now() - start;
  std::vector<absl::Duration> latencies;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (results[i].status.ok()) {
      latencies.push_back(results[i].latency);
      continue;
    }
    ++summary.failed;
    if (summary.errors.size() < 10) {
      summary.errors.push_back(absl::StrCat(nodes[pairs[i].first].name, " -> ",
                                            nodes[pairs[i].second].name, ": ",
                                            results[i].status.ToString()));
    }
  }
  summary.results = std::move(results);
  std::sort(latencies.begin(), latencies.end());
  summary.p50_ms = PercentileMs(latencies, 0.50);
  summary.p99_ms = PercentileMs(latencies, 0.99);
  return summary;
}

std::string SummaryLine(const Summary& s) {
  return absl::StrFormat(
      "%s: %d pairs, %d failed, wall %.3f s, p50 %.2f ms, p99 %.2f ms", s.phase,
      s.pairs, s.failed, absl::ToDoubleSeconds(s.wall), s.p50_ms, s.p99_ms);
}

std::string SummaryJson(const Summary& s, size_t agents) {
  return absl::StrFormat(
      "{\"phase\":\"%s\",\"agents\":%d,\"pairs\":%d,\"failed\":%d,"
      "\"wall_s\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}",
      s.phase, agents, s.pairs, s.failed, absl::ToDoubleSeconds(s.wall),
      s.p50_ms, s.p99_ms);
}

// The host part of "host:port" / "[v6]:port".
std::string HostOf(const std::string& address) {
  if (!address.empty() && address[0] == '[') {
    return address.substr(1, address.find(']') - 1);
  }
  return address.substr(0, address.rfind(':'));
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  bool ok = true;
  std::vector<std::string> json;

  absl::StatusOr<std::vector<fleet::AgentEndpoint>> endpoints =
      fleet::LoadAgentsOrEnv(flags.agents);
  if (!endpoints.ok()) Usage(endpoints.status().ToString());
  fleet::ApplyDefaults(fleet::DefaultsFromEnvironment(), &*endpoints);
  absl::StatusOr<fleet::Selector> selector =
      fleet::Selector::Parse(flags.select);
  if (!selector.ok()) Usage(selector.status().ToString());

  // Probe: who answers, and what each says it is.
  fleet::ProbeOptions probe_options;
  probe_options.timeout = flags.timeout;
  absl::Time start = absl::Now();
  std::vector<fleet::AgentProbe> probes =
      fleet::ProbeAll(*endpoints, probe_options);
  const absl::Duration probe_wall = absl::Now() - start;
  std::vector<fleet::AgentProbe> selected;
  size_t unreachable = 0;
  for (fleet::AgentProbe& probe : probes) {
    if (!probe.status.ok()) {
      ++unreachable;
      std::cout << "unreachable: " << probe.endpoint.name << " ("
                << probe.endpoint.address << "): " << probe.status << "\n";
      continue;
    }
    if (selector->Matches(probe.endpoint.name, probe.labels)) {
      selected.push_back(std::move(probe));
    }
  }
  std::cout << absl::StrFormat(
      "probe: %d agents, %d reachable, %d unreachable, %d selected, wall "
      "%.3f s\n",
      probes.size(), probes.size() - unreachable, unreachable, selected.size(),
      absl::ToDoubleSeconds(probe_wall));
  json.push_back(absl::StrFormat(
      "{\"phase\":\"probe\",\"agents\":%d,\"unreachable\":%d,\"wall_s\":%.3f}",
      probes.size(), unreachable, absl::ToDoubleSeconds(probe_wall)));
  if (flags.expect != 0 &&
      (probes.size() != flags.expect || unreachable != 0)) {
    std::cout << "FAIL: expected " << flags.expect
              << " agents, all reachable\n";
    ok = false;
  }

  // With --via: one agent for every node; each node's sockets go into the
  // namespace its agent names in the label --via-netns-label.
  std::unique_ptr<Agent> via;
  if (!flags.via.empty()) {
    if (flags.via_netns_label.empty()) Usage("--via needs --via-netns-label");
    sockagent::AgentOptions options;
    options.target = flags.via;
    options.connect_timeout = flags.timeout;
    options.call_timeout = flags.timeout;
    options.session_label = "fleet_harness via";
    absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
    if (!agent.ok()) {
      std::cout << "FAIL: --via " << flags.via << ": " << agent.status()
                << "\n";
      return 1;
    }
    via = *std::move(agent);
  }
  const std::string phase_prefix = via != nullptr ? "via-" : "";

  // Sessions and one listener per selected agent, all at once.
  std::vector<Node> nodes(selected.size());
  std::vector<absl::Status> setup(selected.size());
  start = absl::Now();
  fleet::RunParallel(selected.size(), 64, [&](size_t i) {
    Node& node = nodes[i];
    node.name = selected[i].endpoint.name;
    node.host = HostOf(selected[i].endpoint.address);
    if (via != nullptr) {
      node.agent = via.get();
      auto label = selected[i].labels.find(flags.via_netns_label);
      if (label == selected[i].labels.end()) {
        setup[i] = absl::NotFoundError(
            absl::StrCat("no label ", flags.via_netns_label));
        return;
      }
      node.netns.emplace();
      node.netns->set_name(label->second);
    } else {
      absl::StatusOr<sockagent::AgentOptions> options =
          fleet::OptionsFor(selected[i].endpoint);
      if (!options.ok()) {
        setup[i] = options.status();
        return;
      }
      options->connect_timeout = flags.timeout;
      options->call_timeout = flags.timeout;
      options->session_label = "fleet_harness";
      absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(*options);
      if (!agent.ok()) {
        setup[i] = agent.status();
        return;
      }
      node.own_agent = *std::move(agent);
      node.agent = node.own_agent.get();
    }
    absl::StatusOr<Socket> listener = NewTcpSocket(node);
    if (!listener.ok()) {
      setup[i] = listener.status();
      return;
    }
    node.listener = *std::move(listener);
    absl::StatusOr<v1::Address> bound =
        node.listener.Bind(sockagent::InetAddress(node.host, 0));
    if (!bound.ok()) {
      setup[i] = bound.status();
      return;
    }
    node.listen_address = *bound;
    setup[i] = node.listener.Listen(1024);
  });
  for (size_t i = 0; i < setup.size(); ++i) {
    if (!setup[i].ok()) {
      std::cout << "FAIL: setting up " << nodes[i].name << ": " << setup[i]
                << "\n";
      return 1;
    }
  }
  std::cout << absl::StrFormat(
      "setup: %d sessions and listeners, wall %.3f s\n", nodes.size(),
      absl::ToDoubleSeconds(absl::Now() - start));

  std::vector<Summary> summaries;
  if (flags.ring && nodes.size() >= 2) {
    std::vector<std::pair<size_t, size_t>> pairs;
    for (size_t i = 0; i < nodes.size(); ++i) {
      pairs.emplace_back(i, (i + 1) % nodes.size());
    }
    summaries.push_back(RunPairs(phase_prefix + "ring", nodes, pairs, flags));
  }
  if (flags.matrix && nodes.size() >= 2) {
    std::vector<std::pair<size_t, size_t>> pairs;
    for (size_t i = 0; i < nodes.size(); ++i) {
      for (size_t j = 0; j < nodes.size(); ++j) {
        if (i != j) pairs.emplace_back(i, j);
      }
    }
    summaries.push_back(RunPairs(phase_prefix + "matrix", nodes, pairs, flags));
    if (!flags.heat_map.empty()) {
      std::vector<fleet::MatrixCell> cells(nodes.size() * nodes.size());
      for (size_t i = 0; i < pairs.size(); ++i) {
        fleet::MatrixCell& cell =
            cells[pairs[i].first * nodes.size() + pairs[i].second];
        const PairResult& result = summaries.back().results[i];
        cell.state = result.status.ok() ? fleet::MatrixCell::State::kPassed
                                        : fleet::MatrixCell::State::kFailed;
        cell.latency = result.latency;
      }
      if (absl::Status written = fleet::WriteHeatMapPng(
              flags.heat_map, nodes.size(), nodes.size(), cells);
          !written.ok()) {
        std::cout << "FAIL: heat map: " << written << "\n";
        ok = false;
      }
    }
  }
  for (const Summary& s : summaries) {
    std::cout << SummaryLine(s) << "\n";
    for (const std::string& error : s.errors) {
      std::cout << "  failed: " << error << "\n";
    }
    json.push_back(SummaryJson(s, nodes.size()));
    if (s.failed != 0) ok = false;
  }

  // Close the listeners; then every agent must hold no socket at all.
  std::atomic<size_t> info_errors{0};
  fleet::RunParallel(nodes.size(), 64, [&](size_t i) {
    if (!nodes[i].listener.Close().ok()) ++info_errors;
  });
  std::vector<Agent*> agents;
  if (via != nullptr) agents.push_back(via.get());
  for (Node& node : nodes) {
    if (node.own_agent != nullptr) agents.push_back(node.own_agent.get());
  }
  std::atomic<uint64_t> left{0};
  fleet::RunParallel(agents.size(), 64, [&](size_t i) {
    absl::StatusOr<v1::GetAgentInfoResponse> info = agents[i]->GetAgentInfo();
    if (!info.ok()) {
      ++info_errors;
      return;
    }
    left += info->stats().open_sockets();
  });
  std::cout << "sockets left: " << left.load() << "\n";
  json.push_back(absl::StrCat(
      "{\"phase\":\"cleanup\",\"sockets_left\":", left.load(), "}"));
  if (left.load() != 0 || info_errors.load() != 0) ok = false;

  if (!flags.results.empty()) {
    std::ofstream out(flags.results, std::ios::app);
    for (const std::string& line : json) out << line << "\n";
  }
  std::cout << (ok ? "fleet: all checks passed" : "fleet: FAILED") << "\n";
  return ok ? 0 : 1;
}
