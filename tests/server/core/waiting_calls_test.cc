// Tests for server/core/waiting_calls.h (and the *_op.h operations under it)
// through AgentCore: a real TCP and UDP conversation, timeouts and
// cancellation, argument checks and the receive flags.
// Real kernel sockets (loopback 127.0.0.1 only, ports chosen by the
// kernel), errno paths forced through FakeSocketOps.

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

class WaitingCallsTest : public CoreFixture {};

// --- A real TCP conversation ---

TEST_F(WaitingCallsTest, TcpRoundTripOnLoopback) {
  std::string listener = MustSocket(ctx_);
  v1::BindRequest bind;
  bind.set_handle(listener);
  *bind.mutable_address() = Loopback(0);
  absl::StatusOr<v1::BindResponse> bound = core_->Bind(ctx_, bind);
  ASSERT_TRUE(bound.ok()) << bound.status();
  ASSERT_EQ(bound->address().inet().host(), "127.0.0.1");
  const uint32_t port = bound->address().inet().port();
  ASSERT_NE(port, 0u);
  v1::GetSockNameRequest name;
  name.set_handle(listener);
  absl::StatusOr<v1::GetSockNameResponse> sockname =
      core_->GetSockName(ctx_, name);
  ASSERT_TRUE(sockname.ok()) << sockname.status();
  EXPECT_EQ(sockname->address().inet().port(), port);
  ASSERT_TRUE(Listen(ctx_, listener).ok());

  v1::AcceptRequest accept;
  accept.set_handle(listener);
  Waiter<v1::AcceptResponse> accepted;
  core_->Accept(ctx_, accept, accepted.callback());
  EXPECT_FALSE(accepted.done());  // nobody connected yet

  std::string client = MustSocket(ctx_);
  absl::StatusOr<v1::ConnectResponse> connected = Connect(ctx_, client, port);
  ASSERT_TRUE(connected.ok()) << connected.status();
  absl::StatusOr<v1::AcceptResponse> server = accepted.Wait();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(server->peer().inet().host(), "127.0.0.1");
  EXPECT_EQ(server->peer().inet().port(), connected->local().inet().port());
  EXPECT_NE(server->handle(), client);

  absl::StatusOr<uint64_t> sent = Send(ctx_, client, "ping");
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(*sent, 4u);
  absl::StatusOr<std::string> got = Recv(ctx_, server->handle(), 100);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ping");

  Waiter<v1::RecvResponse> reply = StartRecv(ctx_, client, 100);
  ASSERT_TRUE(Send(ctx_, server->handle(), "pong").ok());
  absl::StatusOr<v1::RecvResponse> pong = reply.Wait();
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->data(), "pong");

  v1::GetPeerNameRequest peer;
  peer.set_handle(client);
  absl::StatusOr<v1::GetPeerNameResponse> peername =
      core_->GetPeerName(ctx_, peer);
  ASSERT_TRUE(peername.ok()) << peername.status();
  EXPECT_EQ(peername->address().inet().port(), port);

  // Orderly EOF reads as empty data.
  ASSERT_TRUE(Close(ctx_, client).ok());
  absl::StatusOr<std::string> eof = Recv(ctx_, server->handle(), 100);
  ASSERT_TRUE(eof.ok()) << eof.status();
  EXPECT_EQ(*eof, "");
}

TEST_F(WaitingCallsTest, UdpSendToAndRecvFromOnLoopback) {
  std::string receiver = MustSocket(ctx_, SOCK_DGRAM);
  absl::StatusOr<uint32_t> port = BindLoopback(ctx_, receiver);
  ASSERT_TRUE(port.ok()) << port.status();
  std::string sender = MustSocket(ctx_, SOCK_DGRAM);
  absl::StatusOr<uint32_t> sender_port = BindLoopback(ctx_, sender);
  ASSERT_TRUE(sender_port.ok());

  v1::SendToRequest send;
  send.set_handle(sender);
  send.set_data("datagram");
  *send.mutable_address() = Loopback(*port);
  Waiter<v1::SendToResponse> sent;
  core_->SendTo(ctx_, send, sent.callback());
  ASSERT_TRUE(sent.Wait().ok());

  v1::RecvFromRequest recv;
  recv.set_handle(receiver);
  recv.set_max_bytes(100);
  Waiter<v1::RecvFromResponse> received;
  core_->RecvFrom(ctx_, recv, received.callback());
  absl::StatusOr<v1::RecvFromResponse> response = received.Wait();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->data(), "datagram");
  EXPECT_EQ(response->address().inet().host(), "127.0.0.1");
  EXPECT_EQ(response->address().inet().port(), *sender_port);
}

// Every inet_aton spelling is parsed to the address it names, and that
// address is what the hard-deny list judges: each spelling of the cloud
// metadata address is refused before any connect(2). (Forced failures stand
// in for the kernel so that not even a broken build sends a SYN there.)
TEST_F(WaitingCallsTest,
       EveryInetAtonSpellingOfTheMetadataAddressIsHardDenied) {
  const char* const spellings[] = {
      "169.254.169.254",     "169.254.43518",   "169.16689662",
      "2852039166",          "0xa9fea9fe",      "0251.0376.0251.0376",
      "0xa9.0xfe.0xa9.0xfe", "0XA9.254.0xa9fe",
  };
  fake_.FailNext(Call::kConnect, ENETUNREACH, std::size(spellings));
  for (const char* host : spellings) {
    SCOPED_TRACE(host);
    std::string handle = MustSocket(ctx_);
    v1::ConnectRequest request;
    request.set_handle(handle);
    request.mutable_address()->mutable_inet()->set_host(host);
    request.mutable_address()->mutable_inet()->set_port(80);
    Waiter<v1::ConnectResponse> waiter;
    core_->Connect(ctx_, request, waiter.callback());
    absl::StatusOr<v1::ConnectResponse> connected = waiter.Wait();
    EXPECT_EQ(connected.status().code(), absl::StatusCode::kPermissionDenied)
        << connected.status();
  }
  EXPECT_EQ(fake_.calls(Call::kConnect), 0);
  fake_.ClearFailures();
}

// --- Timeouts and cancellation ---

TEST_F(WaitingCallsTest, NonblockingSocketRecvFailsAtOnceWithEagain) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(SetTimeout(ctx_, pair.server, absl::ZeroDuration()).ok());

  Waiter<v1::RecvResponse> waiter = StartRecv(ctx_, pair.server, 10);

  ASSERT_TRUE(waiter.done()) << "a non-blocking recv waited";
  absl::StatusOr<v1::RecvResponse> received = waiter.Wait();
  EXPECT_EQ(ErrnoOf(received.status()), EAGAIN) << received.status();
  EXPECT_EQ(core_->waiting_ops(), 0u);
}

TEST_F(WaitingCallsTest,
       SocketTimeoutEndsRecvWithDeadlineExceededThenRecvWorks) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(SetTimeout(ctx_, pair.server, absl::Milliseconds(50)).ok());

  absl::StatusOr<std::string> timed_out = Recv(ctx_, pair.server, 10);

  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded)
      << timed_out.status();
  EXPECT_THAT(Message(timed_out.status()), HasSubstr("timed out"));
  ASSERT_TRUE(Send(ctx_, pair.client, "later").ok());
  absl::StatusOr<std::string> later = Recv(ctx_, pair.server, 10);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(*later, "later");
}

TEST_F(WaitingCallsTest, GetTimeoutReportsWhatSetTimeoutSet) {
  std::string handle = MustSocket(ctx_);
  v1::GetTimeoutRequest request;
  request.set_handle(handle);
  absl::StatusOr<v1::GetTimeoutResponse> blocking =
      core_->GetTimeout(ctx_, request);
  ASSERT_TRUE(blocking.ok());
  EXPECT_FALSE(blocking->has_timeout());

  ASSERT_TRUE(SetTimeout(ctx_, handle, absl::Milliseconds(1500)).ok());
  absl::StatusOr<v1::GetTimeoutResponse> timed =
      core_->GetTimeout(ctx_, request);
  ASSERT_TRUE(timed.ok());
  EXPECT_EQ(timed->timeout().seconds(), 1);
  EXPECT_EQ(timed->timeout().nanos(), 500000000);

  v1::SetTimeoutRequest negative;
  negative.set_handle(handle);
  negative.mutable_timeout()->set_seconds(-1);
  absl::Status status = core_->SetTimeout(ctx_, negative).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("timeout: "));
}

TEST_F(WaitingCallsTest, CallDeadlineEndsRecvWithDeadlineExceeded) {
  TcpPair pair = MustTcpPair(ctx_);
  CallContext ctx = ctx_;
  ctx.deadline = absl::Now() + absl::Milliseconds(50);

  absl::StatusOr<std::string> timed_out = Recv(ctx, pair.server, 10);

  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded)
      << timed_out.status();
}

TEST_F(WaitingCallsTest,
       CancelledRecvEndsWithCancelledAndTheSocketStaysUsable) {
  TcpPair pair = MustTcpPair(ctx_);
  CancelToken token;
  CallContext ctx = ctx_;
  ctx.cancel = &token;
  Waiter<v1::RecvResponse> waiting = StartRecv(ctx, pair.server, 10);
  ASSERT_FALSE(waiting.done());

  token.Cancel();

  absl::StatusOr<v1::RecvResponse> cancelled = waiting.Wait();
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled)
      << cancelled.status();
  ASSERT_TRUE(Send(ctx_, pair.client, "still here").ok());
  absl::StatusOr<std::string> later = Recv(ctx_, pair.server, 100);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(*later, "still here");
}

// --- Argument checks ---

// Python's recv(0) returns b'' at once, with no system call: nothing is
// waited for and no datagram consumed.
TEST_F(WaitingCallsTest, RecvZeroReturnsEmptyAtOnceAndConsumesNothing) {
  TcpPair pair = MustTcpPair(ctx_);
  Waiter<v1::RecvResponse> empty = StartRecv(ctx_, pair.server, 0);
  ASSERT_TRUE(empty.done()) << "recv(0) waited for data";
  absl::StatusOr<v1::RecvResponse> got = empty.Wait();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->data(), "");

  std::string receiver = MustSocket(ctx_, SOCK_DGRAM);
  absl::StatusOr<uint32_t> port = BindLoopback(ctx_, receiver);
  ASSERT_TRUE(port.ok()) << port.status();
  std::string sender = MustSocket(ctx_, SOCK_DGRAM);
  ASSERT_TRUE(SendTo(ctx_, sender, "one", *port).ok());
  const int receives = fake_.calls(Call::kRecv) + fake_.calls(Call::kRecvFrom);
  absl::StatusOr<std::string> zero = Recv(ctx_, receiver, 0);
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(*zero, "");
  EXPECT_EQ(fake_.calls(Call::kRecv) + fake_.calls(Call::kRecvFrom), receives);
  absl::StatusOr<std::string> one = Recv(ctx_, receiver, 100);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, "one");

  // Python's recv(0) on a closed socket is b'' too; recv(1) is EBADF.
  ASSERT_TRUE(Close(ctx_, receiver).ok());
  absl::StatusOr<std::string> closed = Recv(ctx_, receiver, 0);
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(*closed, "");
  EXPECT_EQ(ErrnoOf(Recv(ctx_, receiver, 1).status()), EBADF);
}

// Python's recvfrom(0) does call recvfrom(2) with length 0: it waits for a
// datagram, consumes it, and reports its source.
TEST_F(WaitingCallsTest, RecvFromZeroConsumesADatagramAndReportsItsSource) {
  std::string receiver = MustSocket(ctx_, SOCK_DGRAM);
  absl::StatusOr<uint32_t> port = BindLoopback(ctx_, receiver);
  ASSERT_TRUE(port.ok()) << port.status();
  std::string sender = MustSocket(ctx_, SOCK_DGRAM);
  absl::StatusOr<uint32_t> sender_port = BindLoopback(ctx_, sender);
  ASSERT_TRUE(sender_port.ok()) << sender_port.status();
  ASSERT_TRUE(SendTo(ctx_, sender, "one", *port).ok());
  ASSERT_TRUE(SendTo(ctx_, sender, "two", *port).ok());

  v1::RecvFromRequest recv;
  recv.set_handle(receiver);
  recv.set_max_bytes(0);
  Waiter<v1::RecvFromResponse> received;
  core_->RecvFrom(ctx_, recv, received.callback());
  absl::StatusOr<v1::RecvFromResponse> response = received.Wait();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->data(), "");
  EXPECT_EQ(response->address().inet().port(), *sender_port);
  absl::StatusOr<std::string> next = Recv(ctx_, receiver, 100);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, "two") << "recvfrom(0) left its datagram queued";
}

// Like a kernel receive into a smaller buffer: a max_bytes above the
// agent's limit returns at most the limit instead of failing.
TEST_F(WaitingCallsTest, RecvAboveTheLimitReturnsAtMostTheLimit) {
  TcpPair pair = MustTcpPair(ctx_);
  const std::string chunk(kMaxSendBytes, 'x');
  size_t sent = 0;
  for (int i = 0; i < 100 && sent < kMaxRecvBytes + 10; ++i) {
    absl::StatusOr<uint64_t> n =
        Send(ctx_, pair.client, chunk.substr(0, kMaxRecvBytes + 10 - sent));
    ASSERT_TRUE(n.ok()) << n.status();
    sent += *n;
  }
  ASSERT_EQ(sent, kMaxRecvBytes + 10);
  absl::StatusOr<std::string> data =
      Recv(ctx_, pair.server, UINT32_MAX, MSG_WAITALL);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), kMaxRecvBytes);
  absl::StatusOr<std::string> rest = Recv(ctx_, pair.server, 10, MSG_WAITALL);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->size(), 10u);
}

TEST_F(WaitingCallsTest, UnknownSendFlagsAreInvalidArgumentNamingFlags) {
  TcpPair pair = MustTcpPair(ctx_);
  absl::StatusOr<uint64_t> sent =
      Send(ctx_, pair.client, "x", MSG_CONFIRM | MSG_NOSIGNAL);
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(sent.status()), StartsWith("flags: "));

  absl::StatusOr<std::string> received =
      Recv(ctx_, pair.server, 10, 0x40000000);
  EXPECT_EQ(received.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(received.status()), StartsWith("flags: "));
  EXPECT_EQ(fake_.calls(Call::kSend), 0);
}

TEST_F(WaitingCallsTest, SendAboveTheLimitIsInvalidArgumentNamingData) {
  TcpPair pair = MustTcpPair(ctx_);
  absl::StatusOr<uint64_t> sent =
      Send(ctx_, pair.client, std::string(kMaxSendBytes + 1, 'x'));
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(sent.status()), StartsWith("data: "));
}

TEST_F(WaitingCallsTest, UnsupportedProtocolNumberIsInvalidArgumentNamingIt) {
  v1::SocketRequest request;
  request.set_family(v1::FAMILY_INET);
  request.set_type(v1::SOCKET_TYPE_STREAM);
  request.set_protocol(256);
  absl::Status status = core_->Socket(ctx_, request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("protocol: "));
}

// --- Receive flags ---

TEST_F(WaitingCallsTest, WaitAllCollectsBytesSentInTwoPieces) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(Send(ctx_, pair.client, "hello").ok());
  // Wait until the first piece is readable, without consuming it.
  absl::StatusOr<std::string> peeked =
      Recv(ctx_, pair.server, 5, MSG_PEEK | MSG_WAITALL);
  ASSERT_TRUE(peeked.ok()) << peeked.status();
  ASSERT_EQ(*peeked, "hello");

  Waiter<v1::RecvResponse> all = StartRecv(ctx_, pair.server, 10, MSG_WAITALL);
  // Only half of it is there: a plain recv would have returned "hello".
  EXPECT_FALSE(all.done());
  ASSERT_TRUE(Send(ctx_, pair.client, "world").ok());

  absl::StatusOr<v1::RecvResponse> received = all.Wait();
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(received->data(), "helloworld");
}

TEST_F(WaitingCallsTest, WaitAllEndsEarlyAtEndOfFile) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(Send(ctx_, pair.client, "abc").ok());
  ASSERT_TRUE(Close(ctx_, pair.client).ok());
  absl::StatusOr<std::string> received =
      Recv(ctx_, pair.server, 10, MSG_WAITALL);
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(*received, "abc");
}

TEST_F(WaitingCallsTest, PeekDoesNotConsume) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(Send(ctx_, pair.client, "abc").ok());

  absl::StatusOr<std::string> peeked = Recv(ctx_, pair.server, 10, MSG_PEEK);
  ASSERT_TRUE(peeked.ok()) << peeked.status();
  EXPECT_EQ(*peeked, "abc");
  absl::StatusOr<std::string> read = Recv(ctx_, pair.server, 10);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "abc");

  absl::StatusOr<v1::SocketInfo> info = InfoOf(ctx_, pair.server);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->bytes_received(), 3u) << "a peek was counted";
}

// Regression (fixed): server/io/engine.cc, Engine::EndWaiting, reached through
// AgentCore: a Recv with MSG_PEEK | MSG_WAITALL declines a readable socket
// until all its bytes are there. When its deadline removes it from the head of
// the queue, the Recv queued behind it is never attempted (edge-triggered: no
// new event comes), so it waits forever although data sits in the socket.
TEST_F(WaitingCallsTest,
       RecvBehindAnExpiredPeekWaitAllGetsTheDataAlreadyThere) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(Send(ctx_, pair.client, "hello").ok());
  // Make sure the bytes arrived before anyone waits.
  ASSERT_TRUE(Recv(ctx_, pair.server, 5, MSG_PEEK | MSG_WAITALL).ok());
  CallContext short_call = ctx_;
  short_call.deadline = absl::Now() + absl::Milliseconds(50);
  Waiter<v1::RecvResponse> head =
      StartRecv(short_call, pair.server, 10, MSG_PEEK | MSG_WAITALL);
  Waiter<v1::RecvResponse> next = StartRecv(ctx_, pair.server, 10);

  EXPECT_EQ(head.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<v1::RecvResponse> received = next.Wait();
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(received->data(), "hello");
}

// Regression (fixed): server/core/agent_core.cc, RecvOp (MSG_WAITALL emulation:
// bytes a MSG_WAITALL Recv already took from the kernel are thrown away when
// the wait then ends with DEADLINE_EXCEEDED (or CANCELLED, ABORTED,
// UNAVAILABLE): Complete() reports only the status, and bytes_received still
// counts them. Python on a socket with a timeout returns the partial data
// instead.
TEST_F(WaitingCallsTest, WaitAllThatTimesOutDoesNotLoseTheBytesItRead) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(Send(ctx_, pair.client, "hello").ok());
  ASSERT_TRUE(Recv(ctx_, pair.server, 5, MSG_PEEK | MSG_WAITALL).ok());
  CallContext short_call = ctx_;
  short_call.deadline = absl::Now() + absl::Milliseconds(50);

  absl::StatusOr<std::string> first =
      Recv(short_call, pair.server, 10, MSG_WAITALL);

  std::string delivered = first.ok() ? *first : "";
  ASSERT_TRUE(SetTimeout(ctx_, pair.server, absl::ZeroDuration()).ok());
  absl::StatusOr<std::string> rest = Recv(ctx_, pair.server, 10);
  if (rest.ok()) delivered += *rest;
  EXPECT_EQ(delivered, "hello")
      << "first: " << first.status() << ", then: " << rest.status();
}

}  // namespace
}  // namespace sockagent
