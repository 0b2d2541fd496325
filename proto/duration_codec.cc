#include "proto/duration_codec.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace sockagent {

using google::protobuf::util::TimeUtil;

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  // ToInt64Nanoseconds truncates toward zero and saturates at the int64
  // bounds, which lie inside the range a Duration message can hold.
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

void SetProtoDuration(absl::Duration d, google::protobuf::Duration* out) {
  *out = ToProtoDuration(d);
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::StatusOr<absl::Duration> CheckedFromProtoDuration(
    const google::protobuf::Duration& d, absl::string_view field,
    DurationBound bound) {
  constexpr int32_t kNanosPerSecond = 1000000000;
  const bool canonical = d.seconds() >= TimeUtil::kDurationMinSeconds &&
                         d.seconds() <= TimeUtil::kDurationMaxSeconds &&
                         d.nanos() > -kNanosPerSecond &&
                         d.nanos() < kNanosPerSecond &&
                         !(d.seconds() > 0 && d.nanos() < 0) &&
                         !(d.seconds() < 0 && d.nanos() > 0);
  const absl::Duration value = FromProtoDuration(d);
  const bool in_bound = bound == DurationBound::kPositive
                            ? value > absl::ZeroDuration()
                            : value >= absl::ZeroDuration();
  if (!canonical || !in_bound) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, bound == DurationBound::kPositive
                                ? ": must be a positive duration"
                                : ": must be a non-negative duration"));
  }
  return value;
}

}  // namespace sockagent
