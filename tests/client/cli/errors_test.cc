#include "client/cli/errors.h"

#include <netdb.h>

#include <cerrno>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"

namespace sockagent::cli {
namespace {

TEST(ExitCodeTest, ErrnoIsASocketErrorAndAnyOtherFailureAnRpcError) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), kExitOk);
  EXPECT_EQ(ExitCodeFor(OsError(ECONNREFUSED, "connect")), kExitSocket);
  EXPECT_EQ(ExitCodeFor(absl::NotFoundError("unknown handle")), kExitRpc);
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("unreachable")), kExitRpc);
}

TEST(ExitCodeTest, ResolutionFailureHasItsOwnCode) {
  absl::Status eai = NamedOsError(
      absl::StatusCode::kNotFound, EAI_NONAME, "EAI_NONAME", "getaddrinfo",
      "address.inet.host: 'x' did not resolve: Name or service not known "
      "(EAI_NONAME)");
  EXPECT_EQ(ExitCodeFor(eai), kExitResolve);
  EXPECT_EQ(DescribeError("sendto", eai),
            "name resolution failed on the agent: address.inet.host: 'x' did "
            "not resolve: Name or service not known (EAI_NONAME)");
}

TEST(DescribeErrorTest, ErrnoErrorReadsLikeOsError) {
  EXPECT_EQ(DescribeError("connect", OsError(ECONNREFUSED, "connect")),
            "connect: Connection refused (ECONNREFUSED)");
}

TEST(DescribeErrorTest, ErrnoWithoutASyscallKeepsTheAgentsMessage) {
  EXPECT_EQ(
      DescribeError(
          "recv", OsErrorWithCode(absl::StatusCode::kFailedPrecondition, EBADF,
                                  "", "handle: the socket is closed")),
      "handle: the socket is closed (EBADF)");
}

TEST(DescribeErrorTest, PlainErrorNamesContextAndCode) {
  EXPECT_EQ(DescribeError("recv", absl::NotFoundError("no such handle")),
            "recv: no such handle (NOT_FOUND)");
}

TEST(DescribeErrorTest, ContextIsNotRepeated) {
  EXPECT_EQ(
      DescribeError("recv", absl::DeadlineExceededError("recv: timed out")),
      "recv: timed out (DEADLINE_EXCEEDED)");
}

TEST(ErrorJsonTest, CarriesErrnoFields) {
  EXPECT_EQ(ErrorJson(OsError(ECONNREFUSED, "connect")),
            "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"connect: "
            "Connection refused (ECONNREFUSED)\",\"errno\":111,\"errno_name\":"
            "\"ECONNREFUSED\",\"syscall\":\"connect\"}}");
}

TEST(ErrorJsonTest, OmitsErrnoFieldsWithoutDetail) {
  EXPECT_EQ(ErrorJson(absl::NotFoundError("x")),
            "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"x\"}}");
}

}  // namespace
}  // namespace sockagent::cli
