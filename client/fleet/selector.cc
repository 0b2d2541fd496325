#include "client/fleet/selector.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "proto/labels.h"

namespace sockagent {
namespace fleet {

absl::StatusOr<Selector> Selector::Parse(absl::string_view text) {
  Selector selector;
  selector.text_ = std::string(absl::StripAsciiWhitespace(text));
  for (absl::string_view raw : absl::StrSplit(text, ',')) {
    const absl::string_view term = absl::StripAsciiWhitespace(raw);
    if (term.empty() || term == "*") continue;
    Term parsed;
    size_t eq = term.find("!=");
    size_t value_at = eq + 2;
    parsed.kind = Term::Kind::kNotEqual;
    if (eq == absl::string_view::npos) {
      eq = term.find('=');
      value_at = eq + 1;
      parsed.kind = Term::Kind::kEqual;
    }
    if (eq == absl::string_view::npos) {
      parsed.kind = Term::Kind::kName;
      parsed.value = std::string(term);
    } else {
      parsed.key = std::string(absl::StripAsciiWhitespace(term.substr(0, eq)));
      parsed.value =
          std::string(absl::StripAsciiWhitespace(term.substr(value_at)));
      if (std::string error = LabelKeyError(parsed.key); !error.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "selector '", selector.text_, "': term '", term, "': ", error));
      }
      if (parsed.key == "name" && parsed.kind == Term::Kind::kEqual) {
        parsed.kind = Term::Kind::kName;
      }
    }
    selector.terms_.push_back(std::move(parsed));
  }
  return selector;
}

bool Selector::Matches(absl::string_view name,
                       const std::map<std::string, std::string>& labels) const {
  for (const Term& term : terms_) {
    switch (term.kind) {
      case Term::Kind::kName:
        if (name != term.value) return false;
        break;
      case Term::Kind::kEqual: {
        auto it = labels.find(term.key);
        if (it == labels.end() || it->second != term.value) return false;
        break;
      }
      case Term::Kind::kNotEqual: {
        auto it = labels.find(term.key);
        if (it != labels.end() && it->second == term.value) return false;
        break;
      }
    }
  }
  return true;
}

}  // namespace fleet
}  // namespace sockagent
