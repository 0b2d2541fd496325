#ifndef SOCKAGENT_CLIENT_SCENARIO_FNV1A_H_
#define SOCKAGENT_CLIENT_SCENARIO_FNV1A_H_

// FNV-1a 64 over a byte stream, as the agent's Traffic RPC reports it
// (TrafficResponse.checksum: 16 lowercase hex digits). A stand-in with the
// interface of sockagent::Fnv1a64 from proto/traffic_data.h, which replaces
// it once the traffic branch is merged. Not thread-safe; cheap to copy.

#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace sockagent::scenario {

class Fnv1a64 {
 public:
  void Update(absl::string_view data) {
    for (unsigned char byte : data) {
      hash_ ^= byte;
      hash_ *= kPrime;
    }
  }
  uint64_t value() const { return hash_; }
  std::string Hex() const { return absl::StrFormat("%016x", hash_); }

 private:
  static constexpr uint64_t kOffsetBasis = 0xcbf29ce484222325ULL;
  static constexpr uint64_t kPrime = 0x100000001b3ULL;
  uint64_t hash_ = kOffsetBasis;
};

}  // namespace sockagent::scenario

#endif  // SOCKAGENT_CLIENT_SCENARIO_FNV1A_H_
