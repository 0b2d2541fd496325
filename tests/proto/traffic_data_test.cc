#include "proto/traffic_data.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

// xxHash's portable build, to check StreamChecksum (which may use its AVX2
// build) against.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sockagent {
namespace {

std::string Pattern(v1::TrafficPattern pattern, uint64_t seed, uint64_t offset,
                    size_t n) {
  std::string out(n, '\x55');
  FillPattern(pattern, seed, offset, out.data(), n);
  return out;
}

// Values from xxHash 0.8 (xxhsum -H3, Python's xxhash.xxh3_64_hexdigest).
TEST(StreamChecksumTest, MatchesXxh3Vectors) {
  EXPECT_EQ(StreamChecksumHex(""), "2d06800538d394c2");
  EXPECT_EQ(StreamChecksumHex("a"), "e6c632b61e964e1f");
  EXPECT_EQ(StreamChecksumHex("foobar"), "d78fda63144c5c84");
  std::string long_input;
  for (int i = 0; i < 256000; ++i) long_input.push_back(static_cast<char>(i));
  EXPECT_EQ(StreamChecksumHex(long_input), "776474c39d20f9aa");
}

TEST(StreamChecksumTest, IncrementalUpdatesEqualOneUpdate) {
  StreamChecksum split;
  split.Update("foo");
  split.Update("");
  split.Update("bar");
  EXPECT_EQ(split.Hex(), StreamChecksumHex("foobar"));
  EXPECT_EQ(split.value(), 0xd78fda63144c5c84ULL);
  // Chunk boundaries across XXH3's internal 256-byte stripes and blocks.
  const std::string whole = Pattern(v1::TRAFFIC_PATTERN_RANDOM, 5, 0, 100000);
  for (size_t chunk : {1u, 63u, 64u, 255u, 1024u, 65536u}) {
    StreamChecksum pieces;
    for (size_t offset = 0; offset < whole.size(); offset += chunk) {
      pieces.Update(absl::string_view(whole).substr(offset, chunk));
    }
    EXPECT_EQ(pieces.Hex(), StreamChecksumHex(whole)) << "chunk " << chunk;
  }
}

// Whatever code path the CPU selects, chunked updates give XXH3's one-shot
// value for long inputs (the stripes and blocks of XXH3's long mode).
TEST(StreamChecksumTest, LongChunkedInputsEqualPortableXxh3) {
  const std::string whole = Pattern(v1::TRAFFIC_PATTERN_RANDOM, 11, 3, 3 << 20);
  const uint64_t want = XXH3_64bits(whole.data(), whole.size());
  for (size_t chunk : {7u, 4096u, 65536u, 200000u, 3u << 20}) {
    StreamChecksum pieces;
    for (size_t offset = 0; offset < whole.size(); offset += chunk) {
      pieces.Update(absl::string_view(whole).substr(offset, chunk));
    }
    EXPECT_EQ(pieces.value(), want) << "chunk " << chunk;
  }
}

TEST(StreamChecksumTest, HexIsZeroPaddedLowercase) {
  // Search a short input whose hash has a leading zero nibble.
  for (int i = 0; i < 100000; ++i) {
    const std::string input = std::to_string(i);
    StreamChecksum hash;
    hash.Update(input);
    if ((hash.value() >> 60) != 0) continue;
    EXPECT_EQ(hash.Hex().size(), 16u);
    EXPECT_EQ(hash.Hex()[0], '0');
    return;
  }
  FAIL() << "no hash with a leading zero nibble in 100000 inputs";
}

TEST(FillPatternTest, SequenceIsPositionModulo256) {
  const std::string bytes = Pattern(v1::TRAFFIC_PATTERN_SEQUENCE, 0, 250, 10);
  for (size_t i = 0; i < bytes.size(); ++i) {
    EXPECT_EQ(static_cast<unsigned char>(bytes[i]), (250 + i) % 256);
  }
  EXPECT_EQ(Pattern(v1::TRAFFIC_PATTERN_UNSPECIFIED, 7, 3, 300),
            Pattern(v1::TRAFFIC_PATTERN_SEQUENCE, 9, 3, 300));
}

TEST(FillPatternTest, ZeroIsZeros) {
  EXPECT_EQ(Pattern(v1::TRAFFIC_PATTERN_ZERO, 1, 77, 33),
            std::string(33, '\0'));
}

TEST(FillPatternTest, EveryPatternIsIndependentOfChunking) {
  for (v1::TrafficPattern pattern :
       {v1::TRAFFIC_PATTERN_SEQUENCE, v1::TRAFFIC_PATTERN_RANDOM,
        v1::TRAFFIC_PATTERN_ZERO}) {
    const std::string whole = Pattern(pattern, 42, 0, 5000);
    for (size_t chunk : {1u, 3u, 7u, 8u, 9u, 1000u, 4999u}) {
      std::string pieces;
      for (size_t offset = 0; offset < whole.size(); offset += chunk) {
        const size_t n = std::min(chunk, whole.size() - offset);
        pieces += Pattern(pattern, 42, offset, n);
      }
      EXPECT_EQ(pieces, whole) << "pattern " << pattern << " chunk " << chunk;
    }
  }
}

// The patterns' definitions, a byte at a time (what the proto documents).
char ReferenceByte(v1::TrafficPattern pattern, uint64_t seed,
                   uint64_t position) {
  switch (pattern) {
    case v1::TRAFFIC_PATTERN_ZERO:
      return 0;
    case v1::TRAFFIC_PATTERN_RANDOM: {
      uint64_t z = seed + (position / 8 + 1) * 0x9e3779b97f4a7c15ULL;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      return static_cast<char>((z >> (8 * (position % 8))) & 0xff);
    }
    default:
      return static_cast<char>(position & 0xff);
  }
}

TEST(FillPatternTest, LargeAndUnalignedFillsMatchTheBytewiseDefinition) {
  for (v1::TrafficPattern pattern :
       {v1::TRAFFIC_PATTERN_SEQUENCE, v1::TRAFFIC_PATTERN_RANDOM,
        v1::TRAFFIC_PATTERN_ZERO}) {
    for (uint64_t offset : {0ull, 1ull, 7ull, 8ull, 255ull, 256ull, 257ull,
                            65535ull, (1ull << 40) + 3}) {
      for (size_t n :
           {0u, 1u, 9u, 255u, 256u, 257u, 511u, 4096u, 65536u, 70001u}) {
        const std::string got = Pattern(pattern, 99, offset, n);
        ASSERT_EQ(got.size(), n);
        for (size_t i = 0; i < n; ++i) {
          ASSERT_EQ(got[i], ReferenceByte(pattern, 99, offset + i))
              << "pattern " << pattern << " offset " << offset << " n " << n
              << " byte " << i;
        }
      }
    }
  }
}

TEST(FillPatternTest, RandomDependsOnTheSeedAndIsStable) {
  const std::string a = Pattern(v1::TRAFFIC_PATTERN_RANDOM, 1, 0, 64);
  EXPECT_EQ(a, Pattern(v1::TRAFFIC_PATTERN_RANDOM, 1, 0, 64));
  EXPECT_NE(a, Pattern(v1::TRAFFIC_PATTERN_RANDOM, 2, 0, 64));
  EXPECT_NE(a, std::string(64, '\0'));
  // Pinned so the agent, the client and other checkers stay in step: the
  // first output of splitmix64 seeded with 0 is 0xe220a8397b1dcdaf.
  const std::string first = Pattern(v1::TRAFFIC_PATTERN_RANDOM, 0, 0, 8);
  uint64_t word = 0;
  for (int b = 7; b >= 0; --b) {
    word = (word << 8) | static_cast<unsigned char>(first[b]);
  }
  EXPECT_EQ(word, 0xe220a8397b1dcdafULL);
}

TEST(FillPatternTest, KnownPatterns) {
  EXPECT_TRUE(IsKnownPattern(v1::TRAFFIC_PATTERN_UNSPECIFIED));
  EXPECT_TRUE(IsKnownPattern(v1::TRAFFIC_PATTERN_ZERO));
  EXPECT_FALSE(IsKnownPattern(4));
  EXPECT_FALSE(IsKnownPattern(-1));
}

}  // namespace
}  // namespace sockagent
