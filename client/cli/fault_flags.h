#ifndef SOCKAGENT_CLIENT_CLI_FAULT_FLAGS_H_
#define SOCKAGENT_CLIENT_CLI_FAULT_FLAGS_H_

// The fault flags of `sockctl faults` and `sockctl proxy`: Toxiproxy's
// vocabulary plus datagram loss, duplication and reordering, as text until
// FaultsFromFlags parses them into a sockagent.v1.Faults.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace cli {

// Every fault flag as text, parsed by FaultsFromFlags.
struct FaultFlagText {
  std::string send_delay;
  std::string jitter;
  std::string rate;
  std::string slice_bytes;
  std::string slice_variation;
  std::string slice_delay;
  std::string close_after_bytes;
  std::string close_after_time;
  std::string close_delay;
  bool reset = false;
  bool blackhole = false;
  bool stop_reading = false;
  std::string loss;
  std::string duplicate;
  std::string reorder;
  std::string seed;
  bool any() const;
};

// Adds the fault flags (--send-delay/--latency, --jitter, --rate,
// --slice-bytes, --slice-variation, --slice-delay, --close-after-bytes,
// --close-after-time, --close-delay, --reset, --blackhole, --stop-reading,
// --loss, --duplicate, --reorder, --seed) to `command`.
void AddFaultFlags(CLI::App* command, FaultFlagText* flags);

// The Faults the flags describe; INVALID_ARGUMENT naming the flag.
absl::StatusOr<v1::Faults> FaultsFromFlags(const FaultFlagText& flags);

// The flags that are set, as command-line words ("--rate", "1M",
// "--blackhole"), each flag by its first name; AddFaultFlags reads them back.
std::vector<std::string> FaultFlagWords(const FaultFlagText& flags);

// One change of a running proxy's faults (`sockctl proxy`'s stdin lines and
// its --control socket, `sockctl proxy-faults`).
struct FaultChange {
  // Which faults it replaces: both, upstream (toward the upstream) or
  // downstream (back to the client).
  std::string direction = "both";
  bool clear = false;  // the direction's faults are removed
  v1::Faults faults;
};

// Parses a change line: fault flags with an optional --direction (none: the
// direction's faults are removed), or `clear` (also `--clear` with an
// optional --direction). INVALID_ARGUMENT naming the flag.
absl::StatusOr<FaultChange> ParseFaultChange(absl::string_view line);

// Replaces the faults of the direction(s) `change` names.
void ApplyFaultChange(const FaultChange& change, v1::Faults* to_upstream,
                      v1::Faults* to_client);

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_FAULT_FLAGS_H_
