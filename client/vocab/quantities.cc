#include "client/vocab/quantities.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proto/units.h"

namespace sockagent {
namespace vocab {

absl::StatusOr<std::optional<absl::Duration>> ParseTimeout(
    absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "none" || lower == "blocking") {
    return std::optional<absl::Duration>();
  }
  absl::StatusOr<absl::Duration> duration = ParseDurationText(text);
  if (!duration.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "timeout \"", text, "\": expected none, 0, or a duration like 2.5s"));
  }
  return std::optional<absl::Duration>(*duration);
}

absl::StatusOr<uint64_t> ParseByteCount(absl::string_view text,
                                        absl::string_view what) {
  absl::StatusOr<uint64_t> size = ParseByteSize(text);
  if (!size.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", size.status().message()));
  }
  return size;
}

std::string DurationText(absl::Duration duration) {
  if (duration == absl::ZeroDuration()) return "0s";
  const absl::Duration magnitude = absl::AbsDuration(duration);
  absl::Duration unit = absl::Milliseconds(1);
  if (magnitude < absl::Milliseconds(1)) {
    unit = absl::Microseconds(1);
  } else if (magnitude < absl::Seconds(1)) {
    unit = absl::Microseconds(10);
  }
  return absl::FormatDuration(absl::Trunc(duration, unit));
}

std::string DurationSeconds(absl::Duration duration) {
  return absl::StrFormat("%.9g", absl::ToDoubleSeconds(duration));
}

}  // namespace vocab
}  // namespace sockagent
