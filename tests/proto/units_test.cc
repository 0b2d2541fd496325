#include "proto/units.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

TEST(ByteSizeTest, PlainNumberIsBytes) {
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  EXPECT_EQ(*ParseByteSize("1000"), 1000u);
  EXPECT_EQ(*ParseByteSize("12B"), 12u);
}

TEST(ByteSizeTest, SingleLetterUnitsAreBinary) {
  EXPECT_EQ(*ParseByteSize("64K"), 65536u);
  EXPECT_EQ(*ParseByteSize("10m"), uint64_t{10} << 20);
  EXPECT_EQ(*ParseByteSize("1G"), uint64_t{1} << 30);
}

TEST(ByteSizeTest, IbUnitsAreBinary) {
  EXPECT_EQ(*ParseByteSize("64KiB"), 65536u);
  EXPECT_EQ(*ParseByteSize("1MiB"), uint64_t{1} << 20);
  EXPECT_EQ(*ParseByteSize("2gib"), uint64_t{2} << 30);
}

TEST(ByteSizeTest, BUnitsWithoutIAreDecimal) {
  EXPECT_EQ(*ParseByteSize("10kB"), 10000u);
  EXPECT_EQ(*ParseByteSize("10KB"), 10000u);
  EXPECT_EQ(*ParseByteSize("1MB"), 1000000u);
  EXPECT_EQ(*ParseByteSize("3GB"), 3000000000u);
}

TEST(ByteSizeTest, SpacesAroundAndBeforeTheUnitAreAllowed) {
  EXPECT_EQ(*ParseByteSize(" 1 MB "), 1000000u);
  EXPECT_EQ(*ParseByteSize("4 KiB"), 4096u);
}

TEST(ByteSizeTest, ValuesUpTo2To64Minus1AreAccepted) {
  EXPECT_EQ(*ParseByteSize("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(*ParseByteSize("17179869183G"), uint64_t{17179869183} << 30);
}

TEST(ByteSizeTest, MalformedTextIsAnErrorQuotingIt) {
  for (const char* bad : {"", "K", "MiB", "-1", "1.5M", "+5", "0x10"}) {
    absl::StatusOr<uint64_t> size = ParseByteSize(bad);
    ASSERT_FALSE(size.ok()) << bad;
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(size.status().message(),
                HasSubstr(absl::StrCat("\"", bad, "\"")));
  }
}

TEST(ByteSizeTest, UnknownUnitIsNamedAsSuch) {
  EXPECT_THAT(ParseByteSize("1XB").status().message(),
              HasSubstr("\"1XB\": unknown size unit"));
  EXPECT_THAT(ParseByteSize("2TiB").status().message(),
              HasSubstr("unknown size unit"));
}

TEST(ByteSizeTest, OverflowIsTooLarge) {
  EXPECT_THAT(ParseByteSize("18446744073709551616").status().message(),
              HasSubstr("is too large"));
  EXPECT_THAT(ParseByteSize("17179869184G").status().message(),
              HasSubstr("is too large"));
}

TEST(DurationTextTest, PlainNumberIsSeconds) {
  EXPECT_EQ(*ParseDurationText("30"), absl::Seconds(30));
  EXPECT_EQ(*ParseDurationText("1.5"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseDurationText("0"), absl::ZeroDuration());
}

TEST(DurationTextTest, AbseilUnitsAreAccepted) {
  EXPECT_EQ(*ParseDurationText("200ms"), absl::Milliseconds(200));
  EXPECT_EQ(*ParseDurationText("2.5s"), absl::Milliseconds(2500));
  EXPECT_EQ(*ParseDurationText("10m"), absl::Minutes(10));
  EXPECT_EQ(*ParseDurationText("1m30s"), absl::Seconds(90));
  EXPECT_EQ(*ParseDurationText(" 359us "), absl::Microseconds(359));
}

TEST(DurationTextTest, NegativeInfiniteAndNanAreRejected) {
  for (const char* bad : {"-2s", "-1", "inf", "nan"}) {
    absl::StatusOr<absl::Duration> d = ParseDurationText(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(ParseDurationText("-2s").status().message(),
              HasSubstr("must be finite and >= 0"));
}

TEST(DurationTextTest, WordsAreNotADuration) {
  for (const char* bad : {"", "soon", "ten minutes", "5 parsecs"}) {
    absl::StatusOr<absl::Duration> d = ParseDurationText(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_THAT(d.status().message(), HasSubstr("is not a duration"));
  }
}

}  // namespace
}  // namespace sockagent
