// Tests for server/core/session_registry.h through AgentCore: sessions, leases,
// holds and binds, drain, the quota ledger and the agent-wide socket cap,
// and how a handle resolves (unknown, another session's, closed).
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
#include "tests/common/wait.h"
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

class SessionRegistryTest : public CoreFixture {};

// Waits (at most kWait) until `done()`.
template <typename Done>
bool Eventually(Done done) {
  return static_cast<bool>(test::WaitFor(done, kWait));
}

// --- Sessions ---

TEST_F(SessionRegistryTest, CreateSessionReturnsIdTtlAndIncarnation) {
  v1::CreateSessionRequest request;
  request.mutable_ttl()->set_seconds(30);
  absl::StatusOr<v1::CreateSessionResponse> response =
      core_->CreateSession(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_FALSE(response->session_id().empty());
  EXPECT_NE(response->session_id(), ctx_.session_id);
  EXPECT_EQ(response->ttl().seconds(), 30);
  EXPECT_EQ(response->incarnation(), core_->incarnation());
  EXPECT_EQ(core_->session_count(), 2u);

  CallContext ctx{response->session_id()};
  absl::StatusOr<v1::KeepAliveResponse> kept = core_->KeepAlive(ctx);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->ttl().seconds(), 30);
}

TEST_F(SessionRegistryTest, NonPositiveSessionTtlIsInvalidArgumentNamingTtl) {
  v1::CreateSessionRequest request;
  request.mutable_ttl()->set_seconds(-1);
  absl::StatusOr<v1::CreateSessionResponse> response =
      core_->CreateSession(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(response.status()), StartsWith("ttl: "));
}

TEST_F(SessionRegistryTest, MissingSessionIsFailedPrecondition) {
  CallContext no_session;
  v1::SocketRequest request;
  request.set_family(v1::FAMILY_INET);
  request.set_type(v1::SOCKET_TYPE_STREAM);

  absl::StatusOr<v1::SocketResponse> response =
      core_->Socket(no_session, request);

  EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition)
      << response.status();
  EXPECT_THAT(Message(response.status()), StartsWith("session: "));
  EXPECT_EQ(fake_.calls(Call::kSocket), 0);
}

TEST_F(SessionRegistryTest,
       SessionOfAnEarlierRunIsNotFoundSayingTheAgentRestarted) {
  AgentCore::Options options;
  options.ops = &fake_;
  absl::StatusOr<std::unique_ptr<AgentCore>> earlier =
      AgentCore::Create(options);
  ASSERT_TRUE(earlier.ok());
  absl::StatusOr<v1::CreateSessionResponse> old_session =
      (*earlier)->CreateSession({});
  ASSERT_TRUE(old_session.ok());
  ASSERT_NE(old_session->incarnation().substr(0, 8),
            core_->incarnation().substr(0, 8));

  absl::StatusOr<v1::KeepAliveResponse> kept =
      core_->KeepAlive(CallContext{old_session->session_id()});

  EXPECT_EQ(kept.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(kept.status()), HasSubstr("restarted"));
}

TEST_F(SessionRegistryTest, CloseSessionClosesItsSocketsAndForgetsIt) {
  CallContext ctx = NewSession(absl::Seconds(60));
  const int baseline = OpenFdCount();
  TcpPair pair = MustTcpPair(ctx);
  // A second Accept waits: nobody else connects.
  v1::AcceptRequest accept;
  accept.set_handle(pair.listener);
  Waiter<v1::AcceptResponse> waiting;
  core_->Accept(ctx, accept, waiting.callback());
  EXPECT_TRUE(FdCountReaches(baseline + 3))
      << OpenFdCount() << " fds open, baseline " << baseline;

  absl::StatusOr<v1::CloseSessionResponse> closed = core_->CloseSession(ctx);

  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->sockets_closed(), 3u);
  absl::StatusOr<v1::AcceptResponse> accepted = waiting.Wait();
  EXPECT_EQ(accepted.status().code(), absl::StatusCode::kAborted)
      << accepted.status();
  EXPECT_TRUE(FdCountReaches(baseline))
      << OpenFdCount() << " fds open, baseline " << baseline;
  EXPECT_EQ(core_->KeepAlive(ctx).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SessionRegistryTest, SessionExpiryClosesTheSessionsSockets) {
  const int baseline = OpenFdCount();
  ASSERT_GT(baseline, 0);
  // Long enough that the setup below cannot outlive the lease on a loaded
  // machine (300 ms did once, under a parallel ASan build).
  CallContext ctx = NewSession(absl::Seconds(2));
  TcpPair pair = MustTcpPair(ctx);
  std::string udp = MustSocket(ctx, SOCK_DGRAM);
  ASSERT_TRUE(BindLoopback(ctx, udp).ok());
  // The last call on the session; nothing renews it afterwards (no call
  // waits either: a waiting call would keep the session alive).
  EXPECT_TRUE(FdCountReaches(baseline + 4))
      << OpenFdCount() << " fds open, baseline " << baseline;

  EXPECT_TRUE(FdCountReaches(baseline))
      << OpenFdCount() << " fds open, baseline " << baseline;
  EXPECT_EQ(core_->KeepAlive(ctx).status().code(), absl::StatusCode::kNotFound);
  // The fixture's own session lives on.
  EXPECT_TRUE(core_->KeepAlive(ctx_).ok());
}

TEST_F(SessionRegistryTest, AWaitingRecvKeepsItsSessionPastTheLease) {
  // `sockctl recvfrom` without --timeout on a session with a 10 m lease
  // ended ABORTED after 10 minutes: the lease lapsed under the waiting call.
  CallContext held = NewSession(absl::Milliseconds(300));
  std::string udp = MustSocket(held, SOCK_DGRAM);
  absl::StatusOr<uint32_t> port = BindLoopback(held, udp);
  ASSERT_TRUE(port.ok()) << port.status();
  Waiter<v1::RecvResponse> waiting = StartRecv(held, udp, 10);
  // Created after `held`, with the same lease and no waiting call: once the
  // reaper took it, it ran past `held`'s lease too.
  CallContext control = NewSession(absl::Milliseconds(300));
  ASSERT_EQ(core_->session_count(), 3u);

  ASSERT_TRUE(Eventually([&] { return core_->session_count() == 2; }));

  EXPECT_FALSE(waiting.done());
  const int sender = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(*port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::sendto(sender, "late", 4, 0, reinterpret_cast<sockaddr*>(&to),
                     sizeof(to)),
            4);
  ::close(sender);
  absl::StatusOr<v1::RecvResponse> received = waiting.Wait();
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(received->data(), "late");
  // The lease restarted when the call ended; unrenewed, it lapses.
  EXPECT_TRUE(Eventually([&] { return core_->session_count() == 1; }));
  EXPECT_EQ(core_->KeepAlive(held).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SessionRegistryTest, AHeldSessionDoesNotLapseAndItsEndReachesTheHolder) {
  CallContext held = NewSession(absl::Milliseconds(300));
  absl::Notification ended;
  absl::Status why;
  absl::StatusOr<SessionHold> hold =
      core_->HoldSession(held, [&](absl::Status status) {
        why = std::move(status);
        ended.Notify();
      });
  ASSERT_TRUE(hold.ok()) << hold.status();
  CallContext control = NewSession(absl::Milliseconds(300));
  ASSERT_TRUE(Eventually([&] { return core_->session_count() == 2; }));
  EXPECT_FALSE(ended.HasBeenNotified());

  ASSERT_TRUE(core_->CloseSession(held).ok());
  ASSERT_TRUE(ended.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(why.code(), absl::StatusCode::kAborted) << why;
}

TEST_F(SessionRegistryTest,
       ABoundSessionEndsWhenItsCallIsLostAndStaysWhenReleased) {
  v1::CreateSessionRequest request;
  request.set_bind_to_connection(true);
  request.mutable_ttl()->set_seconds(120);
  absl::StatusOr<v1::CreateSessionResponse> created =
      core_->CreateSession(request);
  ASSERT_TRUE(created.ok());
  CallContext ctx{created->session_id()};
  const int baseline = OpenFdCount();
  MustSocket(ctx, SOCK_DGRAM);

  absl::StatusOr<SessionHold> released = core_->BindSession(ctx, nullptr);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(core_->BindSession(ctx, nullptr).status().code(),
            absl::StatusCode::kAlreadyExists);
  core_->UnbindSession(*std::move(released));
  EXPECT_TRUE(core_->KeepAlive(ctx).ok());

  absl::StatusOr<SessionHold> lost = core_->BindSession(ctx, nullptr);
  ASSERT_TRUE(lost.ok()) << lost.status();
  core_->EndBoundSession(*std::move(lost));
  EXPECT_EQ(core_->KeepAlive(ctx).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(FdCountReaches(baseline))
      << OpenFdCount() << " fds open, baseline " << baseline;

  // A lease-only session cannot be bound.
  EXPECT_EQ(core_->BindSession(ctx_, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SessionRegistryTest, AfterDrainEveryCallSaysTheAgentIsShuttingDown) {
  std::string handle = MustSocket(ctx_, SOCK_DGRAM);
  core_->Drain();
  // Before, a stream's next step found no session: "unknown session ...
  // call CreateSession".
  v1::RecvRequest recv;
  recv.set_handle(handle);
  recv.set_max_bytes(10);
  Waiter<v1::RecvResponse> waiting;
  core_->Recv(ctx_, recv, waiting.callback());
  absl::StatusOr<v1::RecvResponse> received = waiting.Wait();
  EXPECT_EQ(received.status().code(), absl::StatusCode::kUnavailable)
      << received.status();
  EXPECT_THAT(Message(received.status()), HasSubstr("shutting down"));
  EXPECT_EQ(core_->KeepAlive(ctx_).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(NewSocket(ctx_, AF_INET, SOCK_DGRAM).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(core_->Authorize(ctx_, "GetAgentInfo").code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(SessionRegistryTest,
       SocketsPastTheAgentWideCapAreResourceExhaustedNamingIt) {
  AgentCore::Options options;
  options.max_open_sockets = 3;
  absl::StatusOr<std::unique_ptr<AgentCore>> capped =
      AgentCore::Create(options);
  ASSERT_TRUE(capped.ok());
  absl::StatusOr<v1::CreateSessionResponse> a = (*capped)->CreateSession({});
  absl::StatusOr<v1::CreateSessionResponse> b = (*capped)->CreateSession({});
  ASSERT_TRUE(a.ok() && b.ok());
  CallContext first{a->session_id()};
  CallContext second{b->session_id()};
  v1::SocketRequest request;
  request.set_family(v1::FAMILY_INET);
  request.set_type(v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE((*capped)->Socket(first, request).ok());
  ASSERT_TRUE((*capped)->Socket(first, request).ok());
  absl::StatusOr<v1::SocketResponse> third = (*capped)->Socket(second, request);
  ASSERT_TRUE(third.ok());
  const int baseline = OpenFdCount();
  absl::StatusOr<v1::SocketResponse> refused =
      (*capped)->Socket(second, request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Message(refused.status()), HasSubstr("max_open_sockets"));
  EXPECT_TRUE(FdCountReaches(baseline))
      << OpenFdCount() << " fds open, baseline " << baseline;
  // Closing one makes room again.
  v1::CloseRequest close;
  close.set_handle(third->handle());
  ASSERT_TRUE((*capped)->Close(second, close).ok());
  EXPECT_TRUE((*capped)->Socket(second, request).ok());
}

TEST_F(SessionRegistryTest,
       DrainEndsAWaitingRecvWithUnavailableAndRefusesNewWork) {
  TcpPair pair = MustTcpPair(ctx_);
  Waiter<v1::RecvResponse> waiting = StartRecv(ctx_, pair.server, 10);
  ASSERT_FALSE(waiting.done());

  core_->Drain();

  absl::StatusOr<v1::RecvResponse> received = waiting.Wait();
  EXPECT_EQ(received.status().code(), absl::StatusCode::kUnavailable)
      << received.status();
  EXPECT_EQ(waiting.calls(), 1);
  EXPECT_EQ(core_->CreateSession({}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(core_->session_count(), 0u);
  EXPECT_EQ(core_->waiting_ops(), 0u);
  core_->Drain();  // idempotent
}

// --- Handles ---

TEST_F(SessionRegistryTest,
       HandleOfAnotherSessionIsNotFoundLikeAnUnknownHandle) {
  CallContext other = NewSession(absl::Seconds(60));
  std::string foreign = MustSocket(other);
  std::string mine = MustSocket(ctx_);
  // Well formed, this agent's and run's, never issued.
  IdIssuer twin(std::stoull(core_->incarnation(), nullptr, 16));
  std::string unknown = twin.Next();

  v1::GetSockNameRequest request;
  request.set_handle(foreign);
  absl::Status foreign_status = core_->GetSockName(ctx_, request).status();
  request.set_handle(unknown);
  absl::Status unknown_status = core_->GetSockName(ctx_, request).status();

  EXPECT_EQ(foreign_status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(unknown_status.code(), foreign_status.code());
  // Same words, so the answer does not reveal that the handle exists.
  EXPECT_EQ(absl::StrReplaceAll(Message(foreign_status), {{foreign, "H"}}),
            absl::StrReplaceAll(Message(unknown_status), {{unknown, "H"}}));
  EXPECT_EQ(Close(ctx_, foreign).code(), absl::StatusCode::kNotFound);
  // And the other session still owns it.
  request.set_handle(foreign);
  EXPECT_TRUE(core_->GetSockName(other, request).ok());
}

TEST_F(SessionRegistryTest, MalformedHandleIsInvalidArgumentNamingHandle) {
  v1::ListenRequest request;
  request.set_handle("../../etc/passwd");
  absl::Status status = core_->Listen(ctx_, request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("handle: "));
  request.set_handle("");
  status = core_->Listen(ctx_, request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("handle: "));
}

// Python: close() is idempotent; any other call on a closed socket is
// OSError(EBADF). A handle the session never had stays NOT_FOUND.
TEST_F(SessionRegistryTest,
       CloseTwiceIsOkAndOtherCallsOnTheClosedHandleAreEbadf) {
  std::string handle = MustSocket(ctx_);
  EXPECT_TRUE(Close(ctx_, handle).ok());
  EXPECT_TRUE(Close(ctx_, handle).ok());
  EXPECT_TRUE(Close(ctx_, handle).ok());

  absl::Status timeout = SetTimeout(ctx_, handle, std::nullopt);
  EXPECT_EQ(ErrnoOf(timeout), EBADF) << timeout;
  EXPECT_THAT(Message(timeout), StartsWith("handle: "));
  v1::GetSockNameRequest name;
  name.set_handle(handle);
  absl::Status sockname = core_->GetSockName(ctx_, name).status();
  EXPECT_EQ(ErrnoOf(sockname), EBADF) << sockname;
  absl::StatusOr<std::string> data = Recv(ctx_, handle, 10);
  EXPECT_EQ(ErrnoOf(data.status()), EBADF) << data.status();
  EXPECT_EQ(BindLoopback(ctx_, handle).status().code(), timeout.code());
  v1::AbortRequest abort;
  abort.set_handle(handle);
  absl::Status aborted = core_->Abort(ctx_, abort).status();
  EXPECT_EQ(ErrnoOf(aborted), EBADF) << aborted;

  // Well formed, this run's, never issued: unknown, for Close too.
  std::string never =
      IdIssuer(std::stoull(core_->incarnation(), nullptr, 16)).Next();
  EXPECT_EQ(Close(ctx_, never).code(), absl::StatusCode::kNotFound);
  name.set_handle(never);
  EXPECT_EQ(core_->GetSockName(ctx_, name).status().code(),
            absl::StatusCode::kNotFound);
}

// A handle closed in one session is unknown (not closed) in another.
TEST_F(SessionRegistryTest, AnotherSessionsClosedHandleIsNotFound) {
  CallContext other = NewSession(absl::Seconds(60));
  std::string foreign = MustSocket(other);
  ASSERT_TRUE(Close(other, foreign).ok());
  EXPECT_EQ(Close(ctx_, foreign).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SetTimeout(ctx_, foreign, std::nullopt).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SessionRegistryTest, CloseEndsAWaitingRecvWithAborted) {
  TcpPair pair = MustTcpPair(ctx_);
  Waiter<v1::RecvResponse> waiting = StartRecv(ctx_, pair.server, 10);
  ASSERT_FALSE(waiting.done());

  ASSERT_TRUE(Close(ctx_, pair.server).ok());

  absl::StatusOr<v1::RecvResponse> received = waiting.Wait();
  EXPECT_EQ(received.status().code(), absl::StatusCode::kAborted)
      << received.status();
  EXPECT_EQ(core_->waiting_ops(), 0u);
}

TEST_F(SessionRegistryTest, PerSessionSocketQuotaIsResourceExhausted) {
  fake_.ClearFailures();
  AgentCore::Options options;
  options.ops = &fake_;
  options.max_sockets_per_session = 2;
  absl::StatusOr<std::unique_ptr<AgentCore>> small = AgentCore::Create(options);
  ASSERT_TRUE(small.ok());
  absl::StatusOr<v1::CreateSessionResponse> session =
      (*small)->CreateSession({});
  ASSERT_TRUE(session.ok());
  CallContext ctx{session->session_id()};
  v1::SocketRequest request;
  request.set_family(v1::FAMILY_INET);
  request.set_type(v1::SOCKET_TYPE_DGRAM);
  const int baseline = OpenFdCount();
  ASSERT_TRUE((*small)->Socket(ctx, request).ok());
  ASSERT_TRUE((*small)->Socket(ctx, request).ok());

  absl::StatusOr<v1::SocketResponse> third = (*small)->Socket(ctx, request);

  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted)
      << third.status();
  EXPECT_TRUE(FdCountReaches(baseline + 2)) << "the refused socket leaked";
}

}  // namespace
}  // namespace sockagent
