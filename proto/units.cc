#include "proto/units.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sockagent {
namespace {

struct SizeUnit {
  const char* name;  // lower case
  uint64_t factor;
};

constexpr SizeUnit kSizeUnits[] = {
    {"", 1},
    {"b", 1},
    {"k", uint64_t{1} << 10},
    {"kib", uint64_t{1} << 10},
    {"m", uint64_t{1} << 20},
    {"mib", uint64_t{1} << 20},
    {"g", uint64_t{1} << 30},
    {"gib", uint64_t{1} << 30},
    {"kb", 1000},
    {"mb", 1000 * 1000},
    {"gb", 1000 * 1000 * 1000},
};

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  const absl::string_view rest = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < rest.size() && absl::ascii_isdigit(rest[digits])) ++digits;
  uint64_t number = 0;
  if (digits == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text, "\" is not a size (e.g. 1024, 64K, 64KiB, 10MB)"));
  }
  if (!absl::SimpleAtoi(rest.substr(0, digits), &number)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is too large"));
  }
  const std::string unit =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(rest.substr(digits)));
  for (const SizeUnit& candidate : kSizeUnits) {
    if (unit != candidate.name) continue;
    if (number > UINT64_MAX / candidate.factor) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\" is too large"));
    }
    return number * candidate.factor;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text,
                   "\": unknown size unit (B; K, M, G = KiB, MiB, GiB; "
                   "kB, MB, GB)"));
}

absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(text);
  absl::Duration duration;
  double seconds = 0;
  if (absl::SimpleAtod(t, &seconds) && std::isfinite(seconds)) {
    duration = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(t, &duration)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text, "\" is not a duration (e.g. 200ms, 2.5s, 1m, 1.5)"));
  }
  if (duration < absl::ZeroDuration() || duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\": a duration must be finite and >= 0"));
  }
  return duration;
}

}  // namespace sockagent
