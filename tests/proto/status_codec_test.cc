// Tests for proto/status_codec.h: absl::Status <-> grpc::Status keeps the
// code, the message and every payload (above all the errno detail), and
// malformed wire details never crash the conversion.

#include "proto/status_codec.h"

#include <cerrno>
#include <optional>
#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/types/optional.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"

namespace sockagent {
namespace {

TEST(StatusCodecTest, OkRoundTripsAsOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusCodecTest, RoundTripKeepsCodeMessageAndErrnoDetail) {
  const absl::Status original = OsError(ECONNRESET, "recv");
  const grpc::Status wire = ToGrpcStatus(original);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(wire.error_message(), std::string(original.message()));
  EXPECT_FALSE(wire.error_details().empty());

  const absl::Status back = FromGrpcStatus(wire);
  EXPECT_EQ(back.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(back.message(), original.message());
  std::optional<ErrnoInfo> info = GetErrno(back);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->number, ECONNRESET);
  EXPECT_EQ(info->name, "ECONNRESET");
  EXPECT_EQ(info->syscall, "recv");
  EXPECT_EQ(back, original);
}

TEST(StatusCodecTest, DetailsAreAGoogleRpcStatusWithTheSameTypeUrl) {
  const grpc::Status wire = ToGrpcStatus(OsError(ECONNREFUSED, "connect"));
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(wire.error_details()));
  EXPECT_EQ(rich.code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(rich.message(), wire.error_message());
  ASSERT_EQ(rich.details_size(), 1);
  EXPECT_EQ(rich.details(0).type_url(), kErrorDetailTypeUrl);
}

TEST(StatusCodecTest, EveryCodeRoundTrips) {
  for (int code = 1; code <= 16; ++code) {
    const absl::Status original(static_cast<absl::StatusCode>(code), "m");
    const grpc::Status wire = ToGrpcStatus(original);
    EXPECT_EQ(static_cast<int>(wire.error_code()), code);
    EXPECT_EQ(FromGrpcStatus(wire), original) << code;
  }
}

TEST(StatusCodecTest, OtherPayloadsSurviveTheRoundTrip) {
  absl::Status original = absl::NotFoundError("no handle");
  original.SetPayload("type.googleapis.com/example.Other", absl::Cord("abc"));
  const absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  absl::optional<absl::Cord> payload =
      back.GetPayload("type.googleapis.com/example.Other");
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(std::string(*payload), "abc");
  EXPECT_FALSE(GetErrno(back).has_value());
}

TEST(StatusCodecTest, StatusWithoutPayloadHasNoWireDetails) {
  const grpc::Status wire = ToGrpcStatus(absl::InvalidArgumentError("x: bad"));
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wire.error_message(), "x: bad");
  EXPECT_TRUE(wire.error_details().empty());
}

TEST(StatusCodecTest, GrpcStatusWithoutDetailsConvertsCleanly) {
  const absl::Status back = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "too slow"));
  EXPECT_EQ(back.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(back.message(), "too slow");
  EXPECT_FALSE(GetErrno(back).has_value());
  int payloads = 0;
  back.ForEachPayload(
      [&payloads](absl::string_view, const absl::Cord&) { ++payloads; });
  EXPECT_EQ(payloads, 0);
}

TEST(StatusCodecTest, GarbageDetailsDoNotCrash) {
  for (const std::string& garbage :
       {std::string("\xff\xff\xff\xff"), std::string("\x1a\x7f", 2),
        std::string("\x1a\x04\x0a\x02zz", 6), std::string(1000, '\0'),
        std::string("not a proto at all")}) {
    const absl::Status back = FromGrpcStatus(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "garbled", garbage));
    EXPECT_EQ(back.code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(back.message(), "garbled");
    EXPECT_FALSE(GetErrno(back).has_value());
  }
}

TEST(StatusCodecTest, ErrnoDetailWithGarbageValueIsNotAnErrno) {
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  google::protobuf::Any* any = rich.add_details();
  any->set_type_url(kErrorDetailTypeUrl);
  any->set_value("\xff\xff\xff");
  const absl::Status back = FromGrpcStatus(grpc::Status(
      grpc::StatusCode::UNAVAILABLE, "bad detail", rich.SerializeAsString()));
  EXPECT_EQ(back.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(GetErrno(back).has_value());
}

TEST(StatusCodecTest, NonCanonicalGrpcCodeBecomesUnknown) {
  // 20 is no canonical code but is a valid value of grpc::StatusCode's type
  // (42 would already be undefined behaviour in the cast).
  const absl::Status back = FromGrpcStatus(
      grpc::Status(static_cast<grpc::StatusCode>(20), "strange"));
  EXPECT_FALSE(back.ok());
  EXPECT_EQ(back.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(back.message(), "strange");
}

}  // namespace
}  // namespace sockagent
