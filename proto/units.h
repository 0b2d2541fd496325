#ifndef SOCKAGENT_PROTO_UNITS_H_
#define SOCKAGENT_PROTO_UNITS_H_

// The one grammar for sizes and the one parser for durations written by
// people: sockctl's flags, scenario files, and anything else that reads a
// "64K" or a "2.5s". Documented once, in docs/cli.md ("Sizes and
// durations"). No gRPC. Pure functions; thread-safe.

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sockagent {

// A size in bytes: decimal digits, optional spaces, an optional unit,
// case-insensitive:
//   (none), B          1
//   K, KiB             1024           (binary: K = KiB)
//   M, MiB             1024^2
//   G, GiB             1024^3
//   kB (KB)            1000           (decimal: the unit ends in "B"
//   MB                 1000^2          without the "i")
//   GB                 1000^3
// Leading and trailing spaces are ignored. INVALID_ARGUMENT (the message
// quotes `text`) for anything else, a negative or fractional number, or a
// value above 2^64 - 1.
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// A non-negative, finite duration: a plain decimal number of seconds
// ("1.5", "30") or absl::ParseDuration's form ("200ms", "2.5s", "1m30s",
// "1h"; units ns, us, ms, s, m, h). Leading and trailing spaces are ignored.
// INVALID_ARGUMENT (the message quotes `text`) otherwise, also for "inf"
// and negative values.
absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text);

}  // namespace sockagent

#endif  // SOCKAGENT_PROTO_UNITS_H_
