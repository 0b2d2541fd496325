#ifndef SOCKAGENT_PROTO_TRAFFIC_DATA_H_
#define SOCKAGENT_PROTO_TRAFFIC_DATA_H_

// The bytes of agent-side traffic, shared by the agent, the client library
// and anything that checks a transfer: the checksum (XXH3-64, xxHash's
// 64-bit XXH3 with seed 0) and the source patterns. Both are defined by
// stream position only, so the result never depends on how a transfer was
// cut into sends, receives or datagrams. No gRPC; thread-compatible.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// The checksum of agent-side traffic: XXH3-64 (xxHash 0.8's XXH3_64bits,
// seed 0, no secret) over every byte passed to Update() in order; equal to
// Python's xxhash.xxh3_64_hexdigest(data). Move-only.
class StreamChecksum {
 public:
  StreamChecksum();
  StreamChecksum(StreamChecksum&&) noexcept;
  StreamChecksum& operator=(StreamChecksum&&) noexcept;
  ~StreamChecksum();

  void Update(absl::string_view data);
  uint64_t value() const;
  // 16 lowercase hex digits, zero-padded, of value(): the wire form of
  // TrafficResponse.checksum.
  std::string Hex() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The checksum of `data` as 16 lowercase hex digits.
std::string StreamChecksumHex(absl::string_view data);

// Writes the `n` pattern bytes at stream positions stream_offset ..
// stream_offset + n - 1 to `out`:
// - SEQUENCE (and UNSPECIFIED): position mod 256.
// - RANDOM: the little-endian bytes of the splitmix64 sequence started at
//   `seed` (byte p is byte p % 8 of its (p / 8)-th output), so equal seeds
//   give equal streams however they are chunked.
// - ZERO: zeros.
// An unknown pattern value is filled like SEQUENCE; callers validate first
// (IsKnownPattern).
void FillPattern(v1::TrafficPattern pattern, uint64_t seed,
                 uint64_t stream_offset, char* out, size_t n);

// Whether `pattern` is one of the values FillPattern defines.
bool IsKnownPattern(int pattern);

}  // namespace sockagent

#endif  // SOCKAGENT_PROTO_TRAFFIC_DATA_H_
