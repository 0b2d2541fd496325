#include "client/vocab/quantities.h"

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace sockagent::vocab {
namespace {

TEST(QuantitiesTest, TimeoutNoneIsBlockingZeroNonBlockingAndADurationWaits) {
  EXPECT_EQ(*ParseTimeout("none"), std::nullopt);
  EXPECT_EQ(*ParseTimeout("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseTimeout("2.5s"), absl::Milliseconds(2500));
  EXPECT_EQ(*ParseTimeout("2.5"), absl::Milliseconds(2500));
  EXPECT_EQ(*ParseTimeout("100ms"), absl::Milliseconds(100));
  EXPECT_FALSE(ParseTimeout("-1s").ok());
  EXPECT_FALSE(ParseTimeout("soon").ok());
  EXPECT_FALSE(ParseTimeout("inf").ok());
  EXPECT_FALSE(ParseTimeout("").ok());
}

TEST(QuantitiesTest, ByteCountsUseTheProjectSizeGrammarAndNameTheFlag) {
  EXPECT_EQ(*ParseByteCount("1000", "--bytes"), 1000u);
  EXPECT_EQ(*ParseByteCount("64K", "--bytes"), 65536u);
  EXPECT_EQ(*ParseByteCount("10m", "--bytes"), 10u << 20);
  EXPECT_EQ(*ParseByteCount("1GiB", "--bytes"), 1u << 30);
  EXPECT_EQ(*ParseByteCount("1MB", "--bytes"), 1000000u);
  EXPECT_EQ(*ParseByteCount("0", "--rate"), 0u);
  for (const char* bad :
       {"", "K", "-1", "1.5M", "12X", "99999999999999999999"}) {
    absl::StatusOr<uint64_t> parsed = ParseByteCount(bad, "--rate");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(absl::StartsWith(parsed.status().message(), "--rate"))
        << parsed.status();
  }
}

TEST(QuantitiesTest, DurationTextIsGoStyleWithBoundedPrecision) {
  EXPECT_EQ(DurationText(absl::Nanoseconds(359123)), "359us");
  EXPECT_EQ(DurationText(absl::Nanoseconds(9123456)), "9.12ms");
  EXPECT_EQ(DurationText(absl::Nanoseconds(2182739846)), "2.182s");
  EXPECT_EQ(DurationText(absl::Minutes(10)), "10m");
  EXPECT_EQ(DurationText(absl::Hours(24)), "24h");
  EXPECT_EQ(DurationSeconds(absl::Minutes(10)), "600");
  EXPECT_EQ(DurationSeconds(absl::Microseconds(359)), "0.000359");
}

}  // namespace
}  // namespace sockagent::vocab
