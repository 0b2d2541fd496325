// libFuzzer target: the scenario file parser (client/scenario/parser.cc,
// YAML via yaml-cpp). Parses only; never runs a scenario.
//
// Invariants: no crash and no exception leaves Scenario::ParseString (any
// escaping exception is reported by libFuzzer as a crash); an error is
// INVALID_ARGUMENT whose message starts with the origin; a parsed scenario
// has a name, distinct agent names and a step count that is not negative.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "client/scenario/scenario.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sockagent::Scenario> scenario =
      sockagent::Scenario::ParseString(text, "fuzz.yaml");
  if (!scenario.ok()) {
    FUZZ_CHECK(scenario.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(absl::StartsWith(scenario.status().message(), "fuzz.yaml"));
    return 0;
  }
  FUZZ_CHECK(!scenario->name().empty());
  FUZZ_CHECK(scenario->step_count() >= 0);
  const std::vector<std::string> agents = scenario->agent_names();
  FUZZ_CHECK(std::set<std::string>(agents.begin(), agents.end()).size() ==
             agents.size());
  return 0;
}
