#include "client/fleet/agents_report.h"

#include <algorithm>
#include <cstddef>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace sockagent {
namespace fleet {
namespace {

std::string LabelsText(const AgentProbe& probe) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : probe.labels) {
    parts.push_back(absl::StrCat(key, "=", value));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ",");
}

std::string LatencyText(const AgentProbe& probe) {
  return absl::StrFormat("%.1fms", absl::ToDoubleMilliseconds(probe.latency));
}

// "UNAVAILABLE" for kUnavailable: gRPC's spelling, as sockctl prints codes.
std::string CodeName(absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);
  absl::AsciiStrToUpper(&name);
  for (char& c : name) {
    if (c == ' ') c = '_';
  }
  return name;
}

}  // namespace

std::string AgentsTable(const std::vector<AgentProbe>& probes) {
  const std::vector<std::string> header = {"NAME",    "ADDRESS",     "HEALTH",
                                           "VERSION", "INCARNATION", "LATENCY",
                                           "LABELS"};
  std::vector<std::vector<std::string>> rows = {header};
  for (const AgentProbe& probe : probes) {
    const bool ok = probe.status.ok();
    std::vector<std::string> row = {
        probe.endpoint.name,
        probe.endpoint.address,
        HealthOf(probe),
        ok ? probe.info.agent_version() : "-",
        ok ? probe.info.incarnation() : "-",
        LatencyText(probe),
        ok ? LabelsText(probe)
           : absl::StrCat(LabelsText(probe), "  (", probe.status.message(),
                          ")")};
    rows.push_back(std::move(row));
  }
  std::vector<size_t> widths(header.size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i + 1 < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 < row.size()) {
        absl::StrAppend(&out, row[i],
                        std::string(widths[i] - row[i].size() + 2, ' '));
      } else {
        absl::StrAppend(&out, row[i], "\n");
      }
    }
  }
  return out;
}

std::string AgentsJsonLines(const std::vector<AgentProbe>& probes) {
  std::string out;
  for (const AgentProbe& probe : probes) {
    nlohmann::ordered_json agent;
    agent["name"] = probe.endpoint.name;
    agent["address"] = probe.endpoint.address;
    agent["health"] = HealthOf(probe);
    agent["labels"] = nlohmann::ordered_json::object();
    for (const auto& [key, value] : probe.labels) agent["labels"][key] = value;
    agent["latency_s"] = absl::ToDoubleSeconds(probe.latency);
    if (probe.status.ok()) {
      agent["version"] = probe.info.agent_version();
      agent["incarnation"] = probe.info.incarnation();
      agent["hostname"] = probe.info.hostname();
      agent["sessions"] = probe.info.stats().sessions();
      agent["open_sockets"] = probe.info.stats().open_sockets();
    } else {
      agent["error"] = {{"code", CodeName(probe.status.code())},
                        {"message", std::string(probe.status.message())}};
    }
    absl::StrAppend(&out, agent.dump(), "\n");
  }
  return out;
}

}  // namespace fleet
}  // namespace sockagent
