#include "proto/traffic_data.h"

#include <cstring>

// The library's code compiled in here (header-only use of libxxhash-dev), so
// neither the agent nor the client library needs libxxhash at run time.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sockagent {
namespace {

constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

// The index-th output of splitmix64 seeded with `seed` (index from 0).
uint64_t SplitMix64At(uint64_t seed, uint64_t index) {
  uint64_t z = seed + (index + 1) * kGoldenGamma;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

struct StreamChecksum::State {
  XXH3_state_t xxh;
};

StreamChecksum::StreamChecksum() : state_(std::make_unique<State>()) {
  XXH3_64bits_reset(&state_->xxh);
}
StreamChecksum::StreamChecksum(StreamChecksum&&) noexcept = default;
StreamChecksum& StreamChecksum::operator=(StreamChecksum&&) noexcept = default;
StreamChecksum::~StreamChecksum() = default;

void StreamChecksum::Update(absl::string_view data) {
  if (data.empty()) return;
  XXH3_64bits_update(&state_->xxh, data.data(), data.size());
}

uint64_t StreamChecksum::value() const {
  return XXH3_64bits_digest(&state_->xxh);
}

std::string StreamChecksum::Hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  uint64_t v = value();
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kDigits[v & 0xf];
    v >>= 4;
  }
  return out;
}

std::string StreamChecksumHex(absl::string_view data) {
  StreamChecksum hash;
  hash.Update(data);
  return hash.Hex();
}

bool IsKnownPattern(int pattern) {
  return pattern == v1::TRAFFIC_PATTERN_UNSPECIFIED ||
         pattern == v1::TRAFFIC_PATTERN_SEQUENCE ||
         pattern == v1::TRAFFIC_PATTERN_RANDOM ||
         pattern == v1::TRAFFIC_PATTERN_ZERO;
}

void FillPattern(v1::TrafficPattern pattern, uint64_t seed,
                 uint64_t stream_offset, char* out, size_t n) {
  switch (pattern) {
    case v1::TRAFFIC_PATTERN_ZERO:
      std::memset(out, 0, n);
      return;
    case v1::TRAFFIC_PATTERN_RANDOM: {
      size_t i = 0;
      while (i < n) {
        const uint64_t position = stream_offset + i;
        const uint64_t word = SplitMix64At(seed, position / 8);
        for (uint64_t b = position % 8; b < 8 && i < n; ++b, ++i) {
          out[i] = static_cast<char>((word >> (8 * b)) & 0xff);
        }
      }
      return;
    }
    default:
      for (size_t i = 0; i < n; ++i) {
        out[i] = static_cast<char>((stream_offset + i) & 0xff);
      }
      return;
  }
}

}  // namespace sockagent
