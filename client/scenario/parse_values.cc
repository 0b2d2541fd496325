// The scenario parser's value grammar: scalars (and lists joined with ","),
// durations, ${...} references checked against what is known so far, a
// kind's argument types, and the error text, with its "did you mean" for an
// unknown key or name.

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/scenario/parser.h"
#include "proto/edit_distance.h"
#include "proto/units.h"

namespace sockagent {
namespace scenario {
namespace internal {
namespace {

// The name of `names` closest to `word` (case-insensitive), when it is close
// enough to be a likely typo; "" otherwise.
std::string Closest(absl::string_view word,
                    const std::vector<std::string>& names) {
  const std::string lower = absl::AsciiStrToLower(word);
  std::string best;
  size_t best_distance = std::max<size_t>(2, lower.size() / 3) + 1;
  for (const std::string& name : names) {
    const size_t d = EditDistance(lower, absl::AsciiStrToLower(name));
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  return best;
}

// The lower-case words of `text` (letters, digits, '_'), e.g. the key list
// of an "unknown key (a, b, c)" message.
std::vector<std::string> Words(absl::string_view text) {
  std::vector<std::string> words;
  std::string current;
  for (char c : text) {
    if (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_') {
      current += c;
    } else if (!current.empty()) {
      words.push_back(current);
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(current);
  return words;
}

}  // namespace

std::string DidYouMean(absl::string_view word,
                       const std::vector<std::string>& names) {
  const std::string best = Closest(word, names);
  return best.empty() ? "" : absl::StrCat(" (did you mean \"", best, "\"?)");
}

absl::Status Parser::Error(const YAML::Node& node, absl::string_view key,
                           absl::string_view what) const {
  Location at = Where(node);
  std::string suggestion;
  if (!key.empty() && absl::StartsWith(what, "unknown")) {
    const size_t open = what.find('(');
    suggestion = DidYouMean(
        key, absl::StartsWith(what, "unknown step key")
                 ? StepKeyNames()
                 : Words(open == absl::string_view::npos ? absl::string_view()
                                                         : what.substr(open)));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      origin_, ":", at.line, ":", at.column, ": ",
      key.empty() ? "" : absl::StrCat(key, ": "), what, suggestion));
}

absl::StatusOr<std::string> Parser::Scalar(const YAML::Node& node,
                                           absl::string_view key,
                                           bool allow_list) const {
  if (node.IsNull()) return std::string();
  if (node.IsScalar()) return node.Scalar();
  if (allow_list && node.IsSequence()) {
    std::vector<std::string> parts;
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) return Error(item, key, "expected a scalar");
      parts.push_back(item.Scalar());
    }
    return absl::StrJoin(parts, ",");
  }
  return Error(node, key, "expected a scalar value");
}

absl::StatusOr<absl::Duration> Parser::Duration(const YAML::Node& node,
                                                absl::string_view key) const {
  absl::StatusOr<std::string> text = Scalar(node, key);
  if (!text.ok()) return text.status();
  absl::StatusOr<absl::Duration> duration = ParseDurationText(*text);
  if (!duration.ok()) return Error(node, key, duration.status().message());
  return *duration;
}

absl::Status Parser::CheckRefs(const YAML::Node& node, absl::string_view key,
                               absl::string_view text) const {
  size_t pos = 0;
  while ((pos = text.find("${", pos)) != absl::string_view::npos) {
    size_t end = text.find('}', pos);
    if (end == absl::string_view::npos) {
      return Error(node, key,
                   absl::StrCat("unterminated ${ in \"", text, "\""));
    }
    absl::string_view ref = text.substr(pos + 2, end - pos - 2);
    absl::string_view root = ref.substr(0, ref.find_first_of(".:"));
    if (root.empty()) {
      return Error(node, key,
                   absl::StrCat("empty reference in \"", text, "\""));
    }
    if (root != "env" && names_.count(std::string(root)) == 0) {
      return Error(node, key,
                   absl::StrCat("${", ref, "}: \"", root,
                                "\" is not a var or an earlier save_as"));
    }
    if (root == "env" && !absl::StartsWith(ref, "env.")) {
      return Error(node, key,
                   absl::StrCat("${", ref, "}: expected ${env.NAME}"));
    }
    pos = end + 1;
  }
  return absl::OkStatus();
}

absl::Status Parser::CheckArgValue(const YAML::Node& node,
                                   absl::string_view key, ArgType type,
                                   const std::string& value) const {
  if (absl::Status s = CheckRefs(node, key, value); !s.ok()) return s;
  if (HasReference(value)) return absl::OkStatus();
  if (absl::Status s = CheckArg(type, value); !s.ok()) {
    return Error(node, key, s.message());
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace scenario
}  // namespace sockagent
