#ifndef SOCKAGENT_PROTO_LABELS_H_
#define SOCKAGENT_PROTO_LABELS_H_

// The grammar of agent labels (GetAgentInfoResponse.labels), shared by the
// agent (sockagentd --label KEY=VALUE) and the client (inventories and
// selectors such as `node=worker-3`). Lives in the bottom layer because
// both sides use it. Pure; thread-safe.
//
// A key is 1-253 characters of [A-Za-z0-9._/-] (Kubernetes label keys fit,
// prefix included); a value is at most 253 printable ASCII characters.

#include <cstddef>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sockagent {

inline constexpr size_t kMaxLabelLength = 253;

// Empty when `key` is a valid label key, otherwise what is wrong with it.
inline std::string LabelKeyError(absl::string_view key) {
  if (key.empty()) return "empty key";
  if (key.size() > kMaxLabelLength) {
    return absl::StrCat("key longer than ", kMaxLabelLength, " characters");
  }
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '/' && c != '-') {
      return absl::StrCat("key '", key, "' may hold only [A-Za-z0-9._/-]");
    }
  }
  return "";
}

// Empty when `value` is a valid label value, otherwise what is wrong.
inline std::string LabelValueError(absl::string_view value) {
  if (value.size() > kMaxLabelLength) {
    return absl::StrCat("value longer than ", kMaxLabelLength, " characters");
  }
  for (char c : value) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) {
      return "value may hold only printable ASCII characters";
    }
  }
  return "";
}

// "KEY=VALUE" -> (KEY, VALUE). INVALID_ARGUMENT naming `field` (e.g.
// "--label") and the text when the '=' is missing or a part is invalid.
inline absl::StatusOr<std::pair<std::string, std::string>> ParseLabel(
    absl::string_view text, absl::string_view field) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", text, "' is not KEY=VALUE"));
  }
  const absl::string_view key = text.substr(0, eq);
  const absl::string_view value = text.substr(eq + 1);
  std::string error = LabelKeyError(key);
  if (error.empty()) error = LabelValueError(value);
  if (!error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", text, "': ", error));
  }
  return std::make_pair(std::string(key), std::string(value));
}

}  // namespace sockagent

#endif  // SOCKAGENT_PROTO_LABELS_H_
