// Tests for proto/errno_status.h: the errno -> code table, errno names, and
// the ErrorDetail payload that OsError() attaches.

#include "proto/errno_status.h"

#include <cerrno>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/types/optional.h"
#include "gtest/gtest.h"
#include "sockagent/v1/error_detail.pb.h"

namespace sockagent {
namespace {

struct CodeCase {
  int err;
  absl::StatusCode code;
};

TEST(ErrnoStatusTest, ErrnoToCodeFollowsTheTable) {
  const CodeCase cases[] = {
      {0, absl::StatusCode::kOk},
      {EINVAL, absl::StatusCode::kInvalidArgument},
      {EAFNOSUPPORT, absl::StatusCode::kInvalidArgument},
      {EADDRNOTAVAIL, absl::StatusCode::kInvalidArgument},
      {EMSGSIZE, absl::StatusCode::kInvalidArgument},
      {EACCES, absl::StatusCode::kPermissionDenied},
      {EPERM, absl::StatusCode::kPermissionDenied},
      {EADDRINUSE, absl::StatusCode::kAlreadyExists},
      {ENOENT, absl::StatusCode::kNotFound},
      {ECONNREFUSED, absl::StatusCode::kUnavailable},
      {ECONNRESET, absl::StatusCode::kUnavailable},
      {EPIPE, absl::StatusCode::kUnavailable},
      {EHOSTUNREACH, absl::StatusCode::kUnavailable},
      {EAGAIN, absl::StatusCode::kUnavailable},
      {EINPROGRESS, absl::StatusCode::kUnavailable},
      {ETIMEDOUT, absl::StatusCode::kDeadlineExceeded},
      {ENOTCONN, absl::StatusCode::kFailedPrecondition},
      {EISCONN, absl::StatusCode::kFailedPrecondition},
      {EBADF, absl::StatusCode::kFailedPrecondition},
      {EMFILE, absl::StatusCode::kResourceExhausted},
      {ENOBUFS, absl::StatusCode::kResourceExhausted},
      {EINTR, absl::StatusCode::kCancelled},
      {ENOSYS, absl::StatusCode::kUnimplemented},
      {EIO, absl::StatusCode::kUnknown},
      {-1, absl::StatusCode::kUnknown},
      {100000, absl::StatusCode::kUnknown},
  };
  for (const CodeCase& c : cases) {
    EXPECT_EQ(ErrnoToCode(c.err), c.code) << "errno " << c.err;
  }
}

TEST(ErrnoStatusTest, RefusedAndResetShareACodeButGetErrnoTellsThemApart) {
  const absl::Status refused = OsError(ECONNREFUSED, "connect");
  const absl::Status reset = OsError(ECONNRESET, "recv");
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reset.code(), absl::StatusCode::kUnavailable);
  std::optional<ErrnoInfo> refused_info = GetErrno(refused);
  std::optional<ErrnoInfo> reset_info = GetErrno(reset);
  ASSERT_TRUE(refused_info.has_value());
  ASSERT_TRUE(reset_info.has_value());
  EXPECT_EQ(refused_info->number, ECONNREFUSED);
  EXPECT_EQ(refused_info->name, "ECONNREFUSED");
  EXPECT_EQ(refused_info->syscall, "connect");
  EXPECT_EQ(reset_info->number, ECONNRESET);
  EXPECT_EQ(reset_info->name, "ECONNRESET");
  EXPECT_EQ(reset_info->syscall, "recv");
}

TEST(ErrnoStatusTest, ErrnoNameNamesKnownErrnos) {
  EXPECT_EQ(ErrnoName(ECONNREFUSED), "ECONNREFUSED");
  EXPECT_EQ(ErrnoName(EAGAIN), "EAGAIN");
  EXPECT_EQ(ErrnoName(EADDRINUSE), "EADDRINUSE");
}

TEST(ErrnoStatusTest, ErrnoNameOfAnUnnamedNumberIsENumber) {
  EXPECT_EQ(ErrnoName(4000), "E4000");
  EXPECT_EQ(ErrnoName(-5), "E-5");
}

TEST(ErrnoStatusTest, ErrnoNameAndErrnoFromNameRoundTrip) {
  int named = 0;
  for (int err = 1; err < 200; ++err) {
    const std::string name = ErrnoName(err);
    if (name == "E" + std::to_string(err)) continue;  // No C library name.
    ++named;
    EXPECT_EQ(ErrnoFromName(name), err) << name;
  }
  EXPECT_GT(named, 100);
}

TEST(ErrnoStatusTest, ErrnoFromNameOfAnUnknownNameIsZero) {
  EXPECT_EQ(ErrnoFromName(""), 0);
  EXPECT_EQ(ErrnoFromName("ENOTANERRNO"), 0);
  EXPECT_EQ(ErrnoFromName("econnrefused"), 0);
  EXPECT_EQ(ErrnoFromName(std::string("ECONNREFUSED\0", 13)), 0);
}

TEST(ErrnoStatusTest, OsErrorHasCodeMessageAndPayload) {
  const absl::Status status = OsError(ECONNREFUSED, "connect");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "connect: Connection refused (ECONNREFUSED)");
  absl::optional<absl::Cord> payload = status.GetPayload(kErrorDetailTypeUrl);
  ASSERT_TRUE(payload.has_value());
  v1::ErrorDetail detail;
  ASSERT_TRUE(detail.ParseFromString(std::string(*payload)));
  EXPECT_EQ(detail.errno_number(), ECONNREFUSED);
  EXPECT_EQ(detail.errno_name(), "ECONNREFUSED");
  EXPECT_EQ(detail.syscall(), "connect");
}

TEST(ErrnoStatusTest, OsErrorWithCodeKeepsTheGivenCodeAndMessage) {
  const absl::Status status =
      OsErrorWithCode(absl::StatusCode::kInvalidArgument, EAFNOSUPPORT,
                      "socket", "family: 42 is not supported");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "family: 42 is not supported");
  std::optional<ErrnoInfo> info = GetErrno(status);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->number, EAFNOSUPPORT);
  EXPECT_EQ(info->name, "EAFNOSUPPORT");
  EXPECT_EQ(info->syscall, "socket");
}

TEST(ErrnoStatusTest, NamedOsErrorCarriesANameOutsideTheErrnoSpace) {
  const absl::Status status =
      NamedOsError(absl::StatusCode::kNotFound, -2, "EAI_NONAME", "getaddrinfo",
                   "host: 'x' did not resolve");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "host: 'x' did not resolve");
  std::optional<ErrnoInfo> info = GetErrno(status);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->number, -2);
  EXPECT_EQ(info->name, "EAI_NONAME");
  EXPECT_EQ(info->syscall, "getaddrinfo");
}

TEST(ErrnoStatusTest, GetErrnoOfAStatusWithoutDetailIsEmpty) {
  EXPECT_FALSE(GetErrno(absl::OkStatus()).has_value());
  EXPECT_FALSE(GetErrno(absl::UnavailableError("no detail")).has_value());
}

TEST(ErrnoStatusTest, GetErrnoOfAGarbagePayloadIsEmpty) {
  absl::Status status = absl::UnavailableError("garbage");
  status.SetPayload(kErrorDetailTypeUrl, absl::Cord("\xff\xff\xff"));
  EXPECT_FALSE(GetErrno(status).has_value());
  status.SetPayload(kErrorDetailTypeUrl, absl::Cord("\x0a\x05"
                                                    "ab"));
  EXPECT_FALSE(GetErrno(status).has_value());
}

}  // namespace
}  // namespace sockagent
