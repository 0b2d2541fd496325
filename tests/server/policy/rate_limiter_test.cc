// Tests for server/policy/rate_limiter.h: time is passed in, so no test
// waits.

#include "server/policy/rate_limiter.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace sockagent {
namespace {

using Direction = RateLimiter::Direction;

const absl::Time kStart = absl::FromUnixSeconds(1000000);

TEST(RateLimiterTest, CountsOperationsInAWindowOfOneSecond) {
  RateLimiter limiter;
  EXPECT_TRUE(limiter.TakeOp("a", 2, kStart));
  EXPECT_TRUE(limiter.TakeOp("a", 2, kStart + absl::Milliseconds(10)));
  EXPECT_FALSE(limiter.TakeOp("a", 2, kStart + absl::Milliseconds(20)));
  EXPECT_TRUE(limiter.TakeOp("a", 2, kStart + absl::Seconds(1)));
}

TEST(RateLimiterTest, ABucketInDebtRefusesUntilTheRateRepaysIt) {
  RateLimiter limiter;
  EXPECT_TRUE(limiter.AdmitBytes("a", Direction::kSend, 1000, kStart));
  // One large call overdraws the one-second bucket: 1000 -> -2000.
  limiter.ChargeBytes("a", Direction::kSend, 1000, 3000, kStart);
  EXPECT_FALSE(limiter.AdmitBytes("a", Direction::kSend, 1000,
                                  kStart + absl::Seconds(1)));
  EXPECT_FALSE(limiter.AdmitBytes("a", Direction::kSend, 1000,
                                  kStart + absl::Seconds(2)));
  EXPECT_TRUE(limiter.AdmitBytes("a", Direction::kSend, 1000,
                                 kStart + absl::Milliseconds(2001)));
}

TEST(RateLimiterTest, ABucketHoldsAtMostOneSecondsWorth) {
  RateLimiter limiter;
  EXPECT_TRUE(limiter.AdmitBytes("a", Direction::kRecv, 1000, kStart));
  // An hour idle still leaves only 1000 bytes: 1500 puts it in debt.
  limiter.ChargeBytes("a", Direction::kRecv, 1000, 1500,
                      kStart + absl::Hours(1));
  EXPECT_FALSE(
      limiter.AdmitBytes("a", Direction::kRecv, 1000, kStart + absl::Hours(1)));
}

TEST(RateLimiterTest, IdentitiesAndDirectionsHaveTheirOwnBuckets) {
  RateLimiter limiter;
  limiter.ChargeBytes("a", Direction::kSend, 10, 1000, kStart);
  EXPECT_FALSE(limiter.AdmitBytes("a", Direction::kSend, 10, kStart));
  EXPECT_TRUE(limiter.AdmitBytes("a", Direction::kRecv, 10, kStart));
  EXPECT_TRUE(limiter.AdmitBytes("b", Direction::kSend, 10, kStart));
  EXPECT_FALSE(limiter.TakeOp("c", 1, kStart) &&
               limiter.TakeOp("c", 1, kStart));
  EXPECT_TRUE(limiter.TakeOp("d", 1, kStart));
}

}  // namespace
}  // namespace sockagent
