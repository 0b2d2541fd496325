#ifndef SOCKAGENT_CLIENT_VOCAB_QUANTITIES_H_
#define SOCKAGENT_CLIENT_VOCAB_QUANTITIES_H_

// Timeouts, byte counts and durations as sockctl and scenario files write and
// print them. Parsing follows the project's one grammar (proto/units.h,
// docs/cli.md "Sizes and durations"). Pure functions; thread-safe.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sockagent {
namespace vocab {

// "none" -> nullopt (blocking); "0" -> zero (non-blocking); "2.5s", "100ms",
// "1m" or a plain number of seconds ("2.5") -> that duration.
// INVALID_ARGUMENT for anything else or a negative value.
absl::StatusOr<std::optional<absl::Duration>> ParseTimeout(
    absl::string_view text);

// A byte count or rate in the project's one size grammar (ParseByteSize:
// "64K" = "64KiB" = 65536, "1MB" = 1000000). `what` names the flag or key in
// errors ("--rate: ...").
absl::StatusOr<uint64_t> ParseByteCount(absl::string_view text,
                                        absl::string_view what);

// A duration as sockctl and `sockctl run` print it in text, Go style:
// "0s", "359us", "9.12ms", "2.182s", "10m", "24h" (microseconds below 1 ms, 10
// us steps below 1 s, milliseconds above). JSON carries durations as numbers of
// seconds in keys ending "_s" (see MessageJson).
std::string DurationText(absl::Duration duration);
// A duration as a JSON number of seconds ("0.000359", "600").
std::string DurationSeconds(absl::Duration duration);

}  // namespace vocab
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_VOCAB_QUANTITIES_H_
