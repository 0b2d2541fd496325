#ifndef SOCKAGENT_CLIENT_SCENARIO_PARSER_H_
#define SOCKAGENT_CLIENT_SCENARIO_PARSER_H_

// Internal to the scenario parser (Scenario::ParseFile / ParseString): the
// Parser that turns YAML into a scenario::Model, rejecting anything the
// runner could not do with the file:line:column and key where it is
// written. Its rooms: parser.cc, the document (top-level keys, agents:,
// vars:, defaults:) and Scenario's parse entry points; parse_steps.cc, the
// step tree (steps, groups, matrix:/for_each:, a kind's arguments);
// parse_expect.cc, a step's data:, expect: and retry:; parse_values.cc, the
// value grammar (scalars, durations, ${...} references, argument types) and
// the error text with its "did you mean". yaml-cpp reports errors by
// throwing; the exceptions are caught in parser.cc and never leave it.

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/scenario/model.h"
#include "client/scenario/step_kinds.h"

namespace sockagent {
namespace scenario {
namespace internal {

// " (did you mean \"x\"?)" when a name of `names` is close enough to `word`
// (case-insensitive) to be a likely typo; "" otherwise (parse_values.cc).
std::string DidYouMean(absl::string_view word,
                       const std::vector<std::string>& names);
// Names a step may use as keys: every kind and the common keys
// (parse_steps.cc).
std::vector<std::string> StepKeyNames();

class Parser {
 public:
  explicit Parser(std::string origin) : origin_(std::move(origin)) {}

  absl::Status Parse(absl::string_view text, Model* model);

 private:
  // "FILE:LINE:COLUMN: KEY: WHAT". For an "unknown ..." key whose
  // message lists the known ones in parentheses, adds the closest of them
  // ("did you mean").
  absl::Status Error(const YAML::Node& node, absl::string_view key,
                     absl::string_view what) const;
  static Location Where(const YAML::Node& node) {
    YAML::Mark mark = node.Mark();
    if (mark.is_null()) return Location{0, 0};
    return Location{mark.line + 1, mark.column + 1};
  }

  // A scalar's text (null -> ""); sequences of scalars are joined with ","
  // when `allow_list`.
  absl::StatusOr<std::string> Scalar(const YAML::Node& node,
                                     absl::string_view key,
                                     bool allow_list = false) const;
  // INVALID_ARGUMENT at the second occurrence of a key repeated in any
  // mapping under `node`. `checked` holds the nodes already walked (by
  // position and type), so an alias is walked once.
  absl::Status CheckUniqueKeys(const YAML::Node& node,
                               std::set<std::pair<int, int>>* checked) const;
  absl::Status ParseAgents(const YAML::Node& node, Model* model);
  absl::Status ParseSteps(const YAML::Node& node, absl::string_view key,
                          std::vector<Step>* steps);
  absl::Status ParseStep(const YAML::Node& node, Step* step);
  // matrix: / for_each: (`body` is the mapping under the key).
  absl::Status ParseFanOut(const YAML::Node& node, const std::string& key,
                           const YAML::Node& body, Step* step);
  absl::Status ParseKindArgs(const StepKind& def, const YAML::Node& node,
                             Step* step);
  absl::Status ParseData(const YAML::Node& node, absl::string_view key,
                         DataSpec* data);
  absl::Status ParseExpect(const YAML::Node& node, Step* step);
  absl::Status ParseRetry(const YAML::Node& node, Retry* retry);
  absl::StatusOr<absl::Duration> Duration(const YAML::Node& node,
                                          absl::string_view key) const;
  // Checks every ${...} in `text` names env, a var or an earlier save_as.
  absl::Status CheckRefs(const YAML::Node& node, absl::string_view key,
                         absl::string_view text) const;
  absl::Status CheckArgValue(const YAML::Node& node, absl::string_view key,
                             ArgType type, const std::string& value) const;

  std::string origin_;
  std::set<std::string> agents_;
  // agents_from: is set, so agent names are known only at run time.
  bool sourced_agents_ = false;
  std::set<std::string> names_;  // vars and save_as names seen so far
  // Saved socket -> its agent ("" when not known statically).
  absl::flat_hash_map<std::string, std::string> socket_agents_;
  int leaves_ = 0;
  // Steps parsed so far, groups included, counting an alias each time it is
  // used (kMaxSteps).
  int steps_parsed_ = 0;
  // How deep the step list being parsed is nested (kMaxNesting).
  int nesting_ = 0;
};

}  // namespace internal
}  // namespace scenario
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_SCENARIO_PARSER_H_
