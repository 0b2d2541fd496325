#ifndef SOCKAGENT_PROTO_DURATION_CODEC_H_
#define SOCKAGENT_PROTO_DURATION_CODEC_H_

// The one conversion between absl::Duration and google.protobuf.Duration,
// for the agent, the client library, the CLI and the scenario runner. No
// gRPC. Pure functions; thread-safe.

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"

namespace sockagent {

// `d` as a google.protobuf.Duration in canonical form (seconds and nanos of
// the same sign, |nanos| < 10^9), truncated toward zero to whole
// nanoseconds. Saturates at +-(2^63 - 1) ns (about 292 years), so
// absl::InfiniteDuration() becomes that maximum.
google::protobuf::Duration ToProtoDuration(absl::Duration d);
// The same, written to `*out`.
void SetProtoDuration(absl::Duration d, google::protobuf::Duration* out);

// `d` as an absl::Duration: seconds + nanos, exact for every value the
// message can hold (also non-canonical ones, which callers that take a
// duration from the wire reject with CheckedFromProtoDuration first).
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);

// What a duration taken from the wire may be.
enum class DurationBound { kNonNegative, kPositive };

// FromProtoDuration for a duration a caller sent: INVALID_ARGUMENT
// "<field>: must be a non-negative duration" (or "positive") when `d` is not
// canonical (|nanos| >= 10^9, seconds and nanos of different signs, seconds
// outside the +-10,000 years protobuf defines) or outside `bound`.
absl::StatusOr<absl::Duration> CheckedFromProtoDuration(
    const google::protobuf::Duration& d, absl::string_view field,
    DurationBound bound);

}  // namespace sockagent

#endif  // SOCKAGENT_PROTO_DURATION_CODEC_H_
