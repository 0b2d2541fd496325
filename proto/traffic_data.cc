#include "proto/traffic_data.h"

#include <cstring>

// The library's code compiled in here (header-only use of libxxhash-dev), so
// neither the agent nor the client library needs libxxhash at run time.
#define XXH_INLINE_ALL
#include <xxhash.h>

#ifdef SOCKAGENT_XXH3_AVX2
#include "proto/xxh3_avx2.h"
#endif

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
#ifdef SOCKAGENT_XXH3_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) {
    return internal::Xxh3UpdateAvx2(&state_->xxh, data.data(), data.size());
  }
#endif
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
      // Byte b of word k is stream byte 8k + b (little-endian order).
      size_t i = 0;
      auto bytes_of_word = [&](uint64_t position) {
        const uint64_t word = SplitMix64At(seed, position / 8);
        for (uint64_t b = position % 8; b < 8 && i < n; ++b, ++i) {
          out[i] = static_cast<char>((word >> (8 * b)) & 0xff);
        }
      };
      if ((stream_offset % 8) != 0) bytes_of_word(stream_offset);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      // Whole words at once: their bytes in memory are the same.
      for (; n - i >= 8; i += 8) {
        const uint64_t word = SplitMix64At(seed, (stream_offset + i) / 8);
        std::memcpy(out + i, &word, sizeof(word));
      }
#endif
      while (i < n) bytes_of_word(stream_offset + i);
      return;
    }
    default: {
      // The sequence repeats every 256 bytes: write one period, then copy
      // what is written onto what follows, doubling each time.
      const size_t first = n < 256 ? n : 256;
      for (size_t i = 0; i < first; ++i) {
        out[i] = static_cast<char>((stream_offset + i) & 0xff);
      }
      for (size_t done = first; done < n;) {
        const size_t copy = done < n - done ? done : n - done;
        std::memcpy(out + done, out, copy);
        done += copy;
      }
      return;
    }
  }
}

}  // namespace sockagent
