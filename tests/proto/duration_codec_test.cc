#include "proto/duration_codec.h"

#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/duration.pb.h"
#include "gtest/gtest.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

google::protobuf::Duration Proto(int64_t seconds, int32_t nanos) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  d.set_nanos(nanos);
  return d;
}

TEST(DurationCodecTest, PositiveDurationSplitsIntoSecondsAndNanos) {
  const google::protobuf::Duration d =
      ToProtoDuration(absl::Milliseconds(2500));
  EXPECT_EQ(d.seconds(), 2);
  EXPECT_EQ(d.nanos(), 500000000);
}

TEST(DurationCodecTest, NegativeDurationKeepsBothPartsNegative) {
  const google::protobuf::Duration d =
      ToProtoDuration(-absl::Milliseconds(1500));
  EXPECT_EQ(d.seconds(), -1);
  EXPECT_EQ(d.nanos(), -500000000);
}

TEST(DurationCodecTest, SubNanosecondPartIsTruncatedTowardZero) {
  const google::protobuf::Duration d =
      ToProtoDuration(absl::Nanoseconds(7) + absl::Nanoseconds(1) / 4);
  EXPECT_EQ(d.seconds(), 0);
  EXPECT_EQ(d.nanos(), 7);
}

TEST(DurationCodecTest, InfiniteDurationSaturatesAtTheLargestNanosecondCount) {
  const google::protobuf::Duration d =
      ToProtoDuration(absl::InfiniteDuration());
  EXPECT_EQ(d.seconds(), std::numeric_limits<int64_t>::max() / 1000000000);
  EXPECT_EQ(d.nanos(), std::numeric_limits<int64_t>::max() % 1000000000);
}

TEST(DurationCodecTest, RoundTripIsExactAtNanosecondResolution) {
  for (absl::Duration d :
       {absl::ZeroDuration(), absl::Nanoseconds(1), absl::Microseconds(359),
        absl::Seconds(1), absl::Hours(24 * 365 * 200) + absl::Nanoseconds(3),
        -absl::Seconds(3) - absl::Nanoseconds(999999999)}) {
    EXPECT_EQ(FromProtoDuration(ToProtoDuration(d)), d) << d;
  }
}

TEST(DurationCodecTest, SetProtoDurationWritesTheSameMessage) {
  google::protobuf::Duration out = Proto(99, 99);
  SetProtoDuration(absl::Seconds(10), &out);
  EXPECT_EQ(out.seconds(), 10);
  EXPECT_EQ(out.nanos(), 0);
}

TEST(DurationCodecTest, FromProtoSumsTheLargestProtobufDuration) {
  EXPECT_EQ(FromProtoDuration(Proto(315576000000, 999999999)),
            absl::Seconds(315576000000) + absl::Nanoseconds(999999999));
}

TEST(DurationCodecTest, CheckedAcceptsZeroOnlyWhenNonNegativeIsAsked) {
  EXPECT_EQ(*CheckedFromProtoDuration(Proto(0, 0), "timeout",
                                      DurationBound::kNonNegative),
            absl::ZeroDuration());
  absl::StatusOr<absl::Duration> zero =
      CheckedFromProtoDuration(Proto(0, 0), "ttl", DurationBound::kPositive);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(zero.status().message(), "ttl: must be a positive duration");
}

TEST(DurationCodecTest,
     CheckedRejectsMalformedAndNegativeValuesNamingTheField) {
  for (const google::protobuf::Duration& bad :
       {Proto(0, 1000000000), Proto(1, -1), Proto(-1, 1), Proto(-1, 0),
        Proto(0, -5), Proto(315576000001, 0)}) {
    absl::StatusOr<absl::Duration> d =
        CheckedFromProtoDuration(bad, "timeout", DurationBound::kNonNegative);
    ASSERT_FALSE(d.ok()) << bad.ShortDebugString();
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(d.status().message(),
                HasSubstr("timeout: must be a non-negative duration"));
  }
}

TEST(DurationCodecTest, CheckedReturnsTheValueOfACanonicalDuration) {
  EXPECT_EQ(*CheckedFromProtoDuration(Proto(2, 500000000), "duration",
                                      DurationBound::kPositive),
            absl::Milliseconds(2500));
}

}  // namespace
}  // namespace sockagent
