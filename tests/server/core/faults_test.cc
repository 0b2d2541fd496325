// Tests for the fault vocabulary's decisions (server/core/faults.h).

#include "server/core/faults.h"

#include <sys/socket.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(FaultsTest, DatagramFaultsOnAStreamSocketAreRefusedByName) {
  v1::Faults faults;
  faults.set_loss_percent(5);
  absl::Status status = CheckFaultsApply(faults, SOCK_STREAM);
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_THAT(std::string(status.message()), StartsWith("faults.loss_percent"));
  EXPECT_TRUE(CheckFaultsApply(faults, SOCK_DGRAM).ok());
}

TEST(FaultsTest, SlicingAndResetOnADatagramSocketAreRefusedByName) {
  v1::Faults slice;
  slice.set_slice_bytes(10);
  EXPECT_THAT(std::string(CheckFaultsApply(slice, SOCK_DGRAM).message()),
              StartsWith("faults.slice_bytes"));
  v1::Faults reset;
  reset.set_close_after_bytes(10);
  reset.set_close_with_reset(true);
  EXPECT_THAT(std::string(CheckFaultsApply(reset, SOCK_DGRAM).message()),
              StartsWith("faults.close_with_reset"));
  EXPECT_TRUE(CheckFaultsApply(reset, SOCK_STREAM).ok());
  v1::Faults slow_close;
  slow_close.mutable_close_delay()->set_seconds(1);
  EXPECT_THAT(std::string(CheckFaultsApply(slow_close, SOCK_DGRAM).message()),
              StartsWith("faults.close_delay"));
}

TEST(FaultsTest, IncompleteProfilesNameTheMissingPart) {
  v1::Faults reset;
  reset.set_close_with_reset(true);
  EXPECT_THAT(std::string(CheckFaultsApply(reset, SOCK_STREAM).message()),
              HasSubstr("close_after_bytes or close_after_time"));
  v1::Faults jitter;
  jitter.mutable_send_delay_jitter()->set_seconds(1);
  EXPECT_THAT(std::string(CheckFaultsApply(jitter, SOCK_STREAM).message()),
              StartsWith("faults.send_delay_jitter"));
}

TEST(FaultsTest, PercentagesAndDurationsAreValidated) {
  v1::Faults faults;
  faults.set_duplicate_percent(101);
  EXPECT_THAT(std::string(ValidateFaults(faults).message()),
              StartsWith("faults.duplicate_percent"));
  faults.set_duplicate_percent(0);
  faults.mutable_close_after_time()->set_seconds(-1);
  EXPECT_THAT(std::string(ValidateFaults(faults).message()),
              StartsWith("faults.close_after_time"));
}

TEST(FaultsTest, JitterStaysWithinItsBoundsAndReplaysFromTheSeed) {
  v1::Faults faults;
  faults.mutable_send_delay()->set_nanos(100000000);
  faults.mutable_send_delay_jitter()->set_nanos(50000000);
  FaultDice a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const absl::Duration d = DrawSendDelay(faults, a);
    EXPECT_GE(d, absl::Milliseconds(50));
    EXPECT_LE(d, absl::Milliseconds(150));
    EXPECT_EQ(d, DrawSendDelay(faults, b));
    if (d != DrawSendDelay(faults, c)) differs = true;
  }
  EXPECT_TRUE(differs);
}

TEST(FaultsTest, SliceSizesStayWithinTheVariation) {
  v1::Faults faults;
  faults.set_slice_bytes(100);
  faults.set_slice_bytes_variation(20);
  FaultDice dice(7);
  size_t low = 1000, high = 0;
  for (int i = 0; i < 2000; ++i) {
    const size_t n = DrawSliceBytes(faults, dice);
    low = std::min(low, n);
    high = std::max(high, n);
  }
  EXPECT_EQ(low, 80u);
  EXPECT_EQ(high, 120u);
}

TEST(FaultsTest, ShapesSendsIgnoresOnlyStopReadingAndTheSeed) {
  v1::Faults faults;
  faults.set_stop_reading(true);
  faults.set_seed(9);
  EXPECT_FALSE(ShapesSends(faults));
  faults.set_blackhole(true);
  EXPECT_TRUE(ShapesSends(faults));
}

}  // namespace
}  // namespace sockagent
