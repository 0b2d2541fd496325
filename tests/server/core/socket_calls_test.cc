// Tests for server/core/socket_calls.h through AgentCore: socket creation and
// its errno mapping, and socket options. Real kernel sockets (loopback
// 127.0.0.1 only, ports chosen by the kernel), errno paths forced through
// FakeSocketOps.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"
#include "server/core/agent_core.h"
#include "server/io/cancel_token.h"
#include "sockagent/v1/sockagent.pb.h"
#include "tests/server/core/core_fixture.h"
#include "tests/server/core_test_util.h"
#include "tests/server/fake_socket_ops.h"

namespace sockagent {
namespace {

using core_test::CoreFixture;
using core_test::ErrnoOf;
using core_test::FdCountReaches;
using core_test::kMaxRecvBytes;
using core_test::kMaxSendBytes;
using core_test::kWait;
using core_test::Loopback;
using core_test::Message;
using core_test::OpenFdCount;
using core_test::TcpPair;
using core_test::Waiter;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Call = FakeSocketOps::Call;

class SocketCallsTest : public CoreFixture {};

// --- Socket creation and errno mapping ---

TEST_F(SocketCallsTest, UnsupportedFamilyIsInvalidArgumentWithEafnosupport) {
  absl::StatusOr<std::string> handle =
      NewSocket(ctx_, 9 /* PF_X25 */, SOCK_STREAM);
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoOf(handle.status()), EAFNOSUPPORT) << handle.status();
  EXPECT_THAT(Message(handle.status()), StartsWith("family: "));
  EXPECT_EQ(fake_.calls(Call::kSocket), 0);
}

TEST_F(SocketCallsTest, RawSocketTypeIsInvalidArgumentWithEsocktnosupport) {
  absl::StatusOr<std::string> handle = NewSocket(ctx_, AF_INET, SOCK_RAW);
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoOf(handle.status()), ESOCKTNOSUPPORT) << handle.status();
  EXPECT_THAT(Message(handle.status()), StartsWith("type: "));
  EXPECT_EQ(fake_.calls(Call::kSocket), 0);
}

// Python: socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC) is a
// stream socket with timeout 0 whose type reads SOCK_STREAM.
TEST_F(SocketCallsTest, NonblockAndCloexecTypeFlagsAreAcceptedAndStripped) {
  absl::StatusOr<std::string> nonblocking =
      NewSocket(ctx_, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
  ASSERT_TRUE(nonblocking.ok()) << nonblocking.status();
  absl::StatusOr<v1::SocketInfo> info = InfoOf(ctx_, *nonblocking);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->type(), v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(info->has_timeout());
  EXPECT_EQ(info->timeout().seconds(), 0);
  EXPECT_EQ(info->timeout().nanos(), 0);
  ASSERT_TRUE(BindLoopback(ctx_, *nonblocking).ok());
  // Timeout 0: a Recv with nothing queued fails at once with EAGAIN.
  absl::StatusOr<std::string> data = Recv(ctx_, *nonblocking, 16);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(ErrnoOf(data.status()), EAGAIN) << data.status();

  absl::StatusOr<std::string> cloexec =
      NewSocket(ctx_, AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
  ASSERT_TRUE(cloexec.ok()) << cloexec.status();
  info = InfoOf(ctx_, *cloexec);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->type(), v1::SOCKET_TYPE_STREAM);
  EXPECT_FALSE(info->has_timeout()) << "SOCK_CLOEXEC alone stays blocking";
  v1::GetSockOptRequest so_type;
  so_type.set_handle(*cloexec);
  so_type.set_option(v1::OPT_SO_TYPE);
  absl::StatusOr<v1::GetSockOptResponse> got = core_->GetSockOpt(ctx_, so_type);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value().int_value(), SOCK_STREAM);

  // Any other bit is still an unsupported type.
  absl::StatusOr<std::string> odd =
      NewSocket(ctx_, AF_INET, SOCK_STREAM | 0x100);
  EXPECT_EQ(ErrnoOf(odd.status()), ESOCKTNOSUPPORT) << odd.status();
}

TEST_F(SocketCallsTest, InjectedEmfileOnSocketIsResourceExhaustedWithEmfile) {
  fake_.FailNext(Call::kSocket, EMFILE);

  absl::StatusOr<std::string> handle = NewSocket(ctx_, AF_INET, SOCK_STREAM);

  EXPECT_EQ(handle.status().code(), absl::StatusCode::kResourceExhausted);
  std::optional<ErrnoInfo> info = GetErrno(handle.status());
  ASSERT_TRUE(info.has_value()) << handle.status();
  EXPECT_EQ(info->number, EMFILE);
  EXPECT_EQ(info->name, "EMFILE");
  EXPECT_EQ(info->syscall, "socket");
  absl::StatusOr<v1::ListSocketsResponse> list = core_->ListSockets(ctx_);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->sockets_size(), 0);
  // The next attempt reaches the kernel again.
  EXPECT_TRUE(NewSocket(ctx_, AF_INET, SOCK_STREAM).ok());
}

TEST_F(SocketCallsTest, InjectedEconnresetOnRecvIsUnavailableWithEconnreset) {
  TcpPair pair = MustTcpPair(ctx_);
  fake_.FailNext(Call::kRecv, ECONNRESET);

  absl::StatusOr<std::string> data = Recv(ctx_, pair.server, 10);

  EXPECT_EQ(data.status().code(), absl::StatusCode::kUnavailable);
  std::optional<ErrnoInfo> info = GetErrno(data.status());
  ASSERT_TRUE(info.has_value()) << data.status();
  EXPECT_EQ(info->number, ECONNRESET);
  EXPECT_EQ(info->name, "ECONNRESET");
  EXPECT_EQ(info->syscall, "recv");
}

TEST_F(SocketCallsTest, EconnrefusedOnConnectIsDistinguishableFromEconnreset) {
  std::string client = MustSocket(ctx_);
  fake_.FailNext(Call::kConnect, ECONNREFUSED);
  absl::StatusOr<v1::ConnectResponse> refused = Connect(ctx_, client, 9);

  TcpPair pair = MustTcpPair(ctx_);
  fake_.FailNext(Call::kRecv, ECONNRESET);
  absl::StatusOr<std::string> reset = Recv(ctx_, pair.server, 10);

  // absl's own mapping folds both into UNAVAILABLE; the errno tells them
  // apart.
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reset.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoOf(refused.status()), ECONNREFUSED) << refused.status();
  EXPECT_EQ(ErrnoOf(reset.status()), ECONNRESET) << reset.status();
  EXPECT_EQ(GetErrno(refused.status())->syscall, "connect");
}

TEST_F(SocketCallsTest, ConnectToAClosedLoopbackPortIsEconnrefused) {
  // A bound but not listening socket owns the port; connecting to it is
  // refused by the kernel without anything leaving the host.
  std::string holder = MustSocket(ctx_);
  absl::StatusOr<uint32_t> port = BindLoopback(ctx_, holder);
  ASSERT_TRUE(port.ok()) << port.status();
  std::string client = MustSocket(ctx_);

  absl::StatusOr<v1::ConnectResponse> connected = Connect(ctx_, client, *port);

  EXPECT_EQ(connected.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoOf(connected.status()), ECONNREFUSED) << connected.status();
}

// --- Socket options ---

TEST_F(SocketCallsTest, ReuseAddrRoundTripsAsABool) {
  std::string handle = MustSocket(ctx_);
  v1::GetSockOptRequest get;
  get.set_handle(handle);
  get.set_option(v1::OPT_SO_REUSEADDR);
  absl::StatusOr<v1::GetSockOptResponse> before = core_->GetSockOpt(ctx_, get);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->value().value_case(), v1::OptionValue::kBoolValue);
  EXPECT_FALSE(before->value().bool_value());

  v1::SetSockOptRequest set;
  set.set_handle(handle);
  set.set_option(v1::OPT_SO_REUSEADDR);
  set.mutable_value()->set_bool_value(true);
  ASSERT_TRUE(core_->SetSockOpt(ctx_, set).ok());

  absl::StatusOr<v1::GetSockOptResponse> after = core_->GetSockOpt(ctx_, get);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->value().bool_value());
}

TEST_F(SocketCallsTest, RcvBufRoundTripsAsAnInt) {
  std::string handle = MustSocket(ctx_);
  v1::SetSockOptRequest set;
  set.set_handle(handle);
  set.set_option(v1::OPT_SO_RCVBUF);
  set.mutable_value()->set_int_value(65536);
  ASSERT_TRUE(core_->SetSockOpt(ctx_, set).ok());

  v1::GetSockOptRequest get;
  get.set_handle(handle);
  get.set_option(v1::OPT_SO_RCVBUF);
  absl::StatusOr<v1::GetSockOptResponse> got = core_->GetSockOpt(ctx_, get);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->value().value_case(), v1::OptionValue::kIntValue);
  // Linux doubles the requested size for bookkeeping.
  EXPECT_EQ(got->value().int_value(), 2 * 65536);
}

TEST_F(SocketCallsTest, LingerRoundTripsAsALinger) {
  std::string handle = MustSocket(ctx_);
  v1::SetSockOptRequest set;
  set.set_handle(handle);
  set.set_option(v1::OPT_SO_LINGER);
  set.mutable_value()->mutable_linger()->set_enabled(true);
  set.mutable_value()->mutable_linger()->set_seconds(7);
  ASSERT_TRUE(core_->SetSockOpt(ctx_, set).ok());

  v1::GetSockOptRequest get;
  get.set_handle(handle);
  get.set_option(v1::OPT_SO_LINGER);
  absl::StatusOr<v1::GetSockOptResponse> got = core_->GetSockOpt(ctx_, get);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->value().value_case(), v1::OptionValue::kLinger);
  EXPECT_TRUE(got->value().linger().enabled());
  EXPECT_EQ(got->value().linger().seconds(), 7);
}

TEST_F(SocketCallsTest, WrongValueKindIsInvalidArgumentNamingValue) {
  std::string handle = MustSocket(ctx_);
  v1::SetSockOptRequest bool_as_linger;
  bool_as_linger.set_handle(handle);
  bool_as_linger.set_option(v1::OPT_SO_REUSEADDR);
  bool_as_linger.mutable_value()->mutable_linger()->set_enabled(true);
  v1::SetSockOptRequest linger_as_int;
  linger_as_int.set_handle(handle);
  linger_as_int.set_option(v1::OPT_SO_LINGER);
  linger_as_int.mutable_value()->set_int_value(1);
  v1::SetSockOptRequest missing;
  missing.set_handle(handle);
  missing.set_option(v1::OPT_SO_RCVBUF);

  for (const v1::SetSockOptRequest* request :
       {&bool_as_linger, &linger_as_int, &missing}) {
    absl::Status status = core_->SetSockOpt(ctx_, *request).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << request->ShortDebugString();
    EXPECT_THAT(Message(status), StartsWith("value"))
        << request->ShortDebugString();
  }
  EXPECT_EQ(fake_.calls(Call::kSetSockOpt), 0);
}

TEST_F(SocketCallsTest, UnknownOrReadOnlyOptionIsInvalidArgumentNamingOption) {
  std::string handle = MustSocket(ctx_);
  v1::SetSockOptRequest set;
  set.set_handle(handle);
  set.set_option(static_cast<v1::SocketOption>(999));
  set.mutable_value()->set_int_value(1);
  absl::Status unknown = core_->SetSockOpt(ctx_, set).status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(unknown), StartsWith("option: "));

  set.set_option(v1::OPT_SO_ERROR);
  absl::Status read_only = core_->SetSockOpt(ctx_, set).status();
  EXPECT_EQ(read_only.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(read_only), StartsWith("option: "));
}

TEST_F(SocketCallsTest, RawOptionsReachTheKernelAsBytes) {
  std::string handle = MustSocket(ctx_);
  const int one = 1;
  v1::SetSockOptRequest set;
  set.set_handle(handle);
  set.mutable_raw_option()->set_level(SOL_SOCKET);
  set.mutable_raw_option()->set_name(SO_KEEPALIVE);
  set.mutable_value()->set_raw(
      std::string(reinterpret_cast<const char*>(&one), sizeof(one)));
  ASSERT_TRUE(core_->SetSockOpt(ctx_, set).ok());

  // The typed form sees what the raw form set ...
  v1::GetSockOptRequest typed;
  typed.set_handle(handle);
  typed.set_option(v1::OPT_SO_KEEPALIVE);
  absl::StatusOr<v1::GetSockOptResponse> keepalive =
      core_->GetSockOpt(ctx_, typed);
  ASSERT_TRUE(keepalive.ok()) << keepalive.status();
  EXPECT_TRUE(keepalive->value().bool_value());

  // ... and the raw form reads it back as 4 bytes.
  v1::GetSockOptRequest raw;
  raw.set_handle(handle);
  raw.mutable_raw_option()->set_level(SOL_SOCKET);
  raw.mutable_raw_option()->set_name(SO_KEEPALIVE);
  absl::StatusOr<v1::GetSockOptResponse> bytes = core_->GetSockOpt(ctx_, raw);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_EQ(bytes->value().raw().size(), sizeof(int));
  int value = 0;
  std::memcpy(&value, bytes->value().raw().data(), sizeof(value));
  EXPECT_EQ(value, 1);

  raw.set_raw_length(4096);
  absl::Status too_long = core_->GetSockOpt(ctx_, raw).status();
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(too_long), StartsWith("raw_length: "));
}

TEST_F(SocketCallsTest, KernelRejectionOfARawOptionCarriesItsErrno) {
  std::string handle = MustSocket(ctx_);
  v1::GetSockOptRequest raw;
  raw.set_handle(handle);
  raw.mutable_raw_option()->set_level(SOL_SOCKET);
  raw.mutable_raw_option()->set_name(12345);
  absl::Status status = core_->GetSockOpt(ctx_, raw).status();
  EXPECT_EQ(ErrnoOf(status), ENOPROTOOPT) << status;
  EXPECT_EQ(GetErrno(status)->syscall, "getsockopt");
}

}  // namespace
}  // namespace sockagent
