#ifndef SOCKAGENT_CLIENT_CLI_FAULT_FLAGS_H_
#define SOCKAGENT_CLIENT_CLI_FAULT_FLAGS_H_

// The fault flags of `sockctl faults` and `sockctl proxy`: Toxiproxy's
// vocabulary plus datagram loss, duplication and reordering, as text until
// FaultsFromFlags parses them into a sockagent.v1.Faults.

#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
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

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_FAULT_FLAGS_H_
