// Tests for server/core/agent_core.h: every socket operation without gRPC, on
// real kernel sockets (loopback 127.0.0.1 only, ports chosen by the kernel),
// with errno paths forced through FakeSocketOps.

#include "server/core/agent_core.h"

#include <dirent.h>
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
#include "server/io/cancel_token.h"
#include "sockagent/v1/sockagent.pb.h"
#include "tests/server/core_test_util.h"
#include "tests/server/fake_socket_ops.h"

namespace sockagent {
namespace {

using core_test::ErrnoOf;
using core_test::Loopback;
using core_test::Waiter;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Call = FakeSocketOps::Call;

constexpr absl::Duration kWait = absl::Seconds(10);
constexpr size_t kMaxRecvBytes = 64 * 1024;
constexpr size_t kMaxSendBytes = 64 * 1024;

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// Descriptors of this process, for leak checks.
int OpenFdCount() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (::readdir(dir) != nullptr) ++count;
  ::closedir(dir);
  return count;
}

// Polls every 20 ms, up to 10 s, until the fd count is `want`.
bool FdCountReaches(int want) {
  const absl::Time give_up = absl::Now() + kWait;
  for (;;) {
    if (OpenFdCount() == want) return true;
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

struct TcpPair {
  std::string listener;
  std::string client;
  std::string server;  // the accepted end
  uint32_t port = 0;
};

class AgentCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AgentCore::Options options;
    options.ops = &fake_;
    options.reap_interval = absl::Milliseconds(20);
    options.max_recv_bytes = kMaxRecvBytes;
    options.max_send_bytes = kMaxSendBytes;
    absl::StatusOr<std::unique_ptr<AgentCore>> core =
        AgentCore::Create(options);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = *std::move(core);
    ctx_ = NewSession(absl::Seconds(120));
  }

  CallContext NewSession(absl::Duration ttl) {
    v1::CreateSessionRequest request;
    request.mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    request.mutable_ttl()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(ttl % absl::Seconds(1))));
    request.set_label(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    absl::StatusOr<v1::CreateSessionResponse> response =
        core_->CreateSession(request);
    EXPECT_TRUE(response.ok()) << response.status();
    CallContext ctx;
    if (response.ok()) ctx.session_id = response->session_id();
    return ctx;
  }

  absl::StatusOr<std::string> NewSocket(const CallContext& ctx, int family,
                                        int type) {
    v1::SocketRequest request;
    request.set_family(static_cast<v1::Family>(family));
    request.set_type(static_cast<v1::SocketType>(type));
    absl::StatusOr<v1::SocketResponse> response = core_->Socket(ctx, request);
    if (!response.ok()) return response.status();
    return response->handle();
  }

  std::string MustSocket(const CallContext& ctx, int type = SOCK_STREAM) {
    absl::StatusOr<std::string> handle = NewSocket(ctx, AF_INET, type);
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.ok() ? *handle : "";
  }

  absl::StatusOr<uint32_t> BindLoopback(const CallContext& ctx,
                                        const std::string& handle) {
    v1::BindRequest request;
    request.set_handle(handle);
    *request.mutable_address() = Loopback();
    absl::StatusOr<v1::BindResponse> response = core_->Bind(ctx, request);
    if (!response.ok()) return response.status();
    return response->address().inet().port();
  }

  absl::Status Listen(const CallContext& ctx, const std::string& handle) {
    v1::ListenRequest request;
    request.set_handle(handle);
    return core_->Listen(ctx, request).status();
  }

  absl::StatusOr<v1::ConnectResponse> Connect(const CallContext& ctx,
                                              const std::string& handle,
                                              uint32_t port) {
    v1::ConnectRequest request;
    request.set_handle(handle);
    *request.mutable_address() = Loopback(port);
    Waiter<v1::ConnectResponse> waiter;
    core_->Connect(ctx, request, waiter.callback());
    return waiter.Wait();
  }

  // A listener on 127.0.0.1 and a connected, accepted pair.
  TcpPair MustTcpPair(const CallContext& ctx) {
    TcpPair pair;
    pair.listener = MustSocket(ctx);
    absl::StatusOr<uint32_t> port = BindLoopback(ctx, pair.listener);
    EXPECT_TRUE(port.ok()) << port.status();
    if (!port.ok()) return pair;
    pair.port = *port;
    EXPECT_TRUE(Listen(ctx, pair.listener).ok());
    v1::AcceptRequest accept;
    accept.set_handle(pair.listener);
    Waiter<v1::AcceptResponse> accepted;
    core_->Accept(ctx, accept, accepted.callback());
    pair.client = MustSocket(ctx);
    absl::StatusOr<v1::ConnectResponse> connected =
        Connect(ctx, pair.client, pair.port);
    EXPECT_TRUE(connected.ok()) << connected.status();
    absl::StatusOr<v1::AcceptResponse> server = accepted.Wait();
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) pair.server = server->handle();
    return pair;
  }

  absl::StatusOr<uint64_t> Send(const CallContext& ctx,
                                const std::string& handle,
                                const std::string& data, int flags = 0) {
    v1::SendRequest request;
    request.set_handle(handle);
    request.set_data(data);
    request.set_flags(flags);
    Waiter<v1::SendResponse> waiter;
    core_->Send(ctx, request, waiter.callback());
    absl::StatusOr<v1::SendResponse> response = waiter.Wait();
    if (!response.ok()) return response.status();
    return response->bytes_sent();
  }

  absl::StatusOr<uint64_t> SendTo(const CallContext& ctx,
                                  const std::string& handle,
                                  const std::string& data, uint32_t port) {
    v1::SendToRequest request;
    request.set_handle(handle);
    request.set_data(data);
    *request.mutable_address() = Loopback(port);
    Waiter<v1::SendToResponse> waiter;
    core_->SendTo(ctx, request, waiter.callback());
    absl::StatusOr<v1::SendToResponse> response = waiter.Wait();
    if (!response.ok()) return response.status();
    return response->bytes_sent();
  }

  // Starts a Recv; the request is copied into the call, so it may go away.
  Waiter<v1::RecvResponse> StartRecv(const CallContext& ctx,
                                     const std::string& handle,
                                     uint32_t max_bytes, int flags = 0) {
    v1::RecvRequest request;
    request.set_handle(handle);
    request.set_max_bytes(max_bytes);
    request.set_flags(flags);
    Waiter<v1::RecvResponse> waiter;
    core_->Recv(ctx, request, waiter.callback());
    return waiter;
  }

  absl::StatusOr<std::string> Recv(const CallContext& ctx,
                                   const std::string& handle,
                                   uint32_t max_bytes, int flags = 0) {
    absl::StatusOr<v1::RecvResponse> response =
        StartRecv(ctx, handle, max_bytes, flags).Wait();
    if (!response.ok()) return response.status();
    return response->data();
  }

  absl::Status SetTimeout(const CallContext& ctx, const std::string& handle,
                          std::optional<absl::Duration> timeout) {
    v1::SetTimeoutRequest request;
    request.set_handle(handle);
    if (timeout.has_value()) {
      request.mutable_timeout()->set_seconds(absl::ToInt64Seconds(*timeout));
      request.mutable_timeout()->set_nanos(static_cast<int32_t>(
          absl::ToInt64Nanoseconds(*timeout % absl::Seconds(1))));
    }
    return core_->SetTimeout(ctx, request).status();
  }

  absl::Status Close(const CallContext& ctx, const std::string& handle) {
    v1::CloseRequest request;
    request.set_handle(handle);
    return core_->Close(ctx, request).status();
  }

  absl::StatusOr<v1::SocketInfo> InfoOf(const CallContext& ctx,
                                        const std::string& handle) {
    absl::StatusOr<v1::ListSocketsResponse> list = core_->ListSockets(ctx);
    if (!list.ok()) return list.status();
    for (const v1::SocketInfo& info : list->sockets()) {
      if (info.handle() == handle) return info;
    }
    return absl::NotFoundError("test: not listed");
  }

  // Declared before core_ so that it outlives the core's engine thread.
  FakeSocketOps fake_;
  std::unique_ptr<AgentCore> core_;
  CallContext ctx_;
};

// --- Sessions ---

TEST_F(AgentCoreTest, CreateSessionReturnsIdTtlAndIncarnation) {
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

TEST_F(AgentCoreTest, NonPositiveSessionTtlIsInvalidArgumentNamingTtl) {
  v1::CreateSessionRequest request;
  request.mutable_ttl()->set_seconds(-1);
  absl::StatusOr<v1::CreateSessionResponse> response =
      core_->CreateSession(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(response.status()), StartsWith("ttl: "));
}

TEST_F(AgentCoreTest, MissingSessionIsFailedPrecondition) {
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

TEST_F(AgentCoreTest, SessionOfAnEarlierRunIsNotFoundSayingTheAgentRestarted) {
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

TEST_F(AgentCoreTest, CloseSessionClosesItsSocketsAndForgetsIt) {
  CallContext ctx = NewSession(absl::Seconds(60));
  const int baseline = OpenFdCount();
  TcpPair pair = MustTcpPair(ctx);
  // A second Accept waits: nobody else connects.
  v1::AcceptRequest accept;
  accept.set_handle(pair.listener);
  Waiter<v1::AcceptResponse> waiting;
  core_->Accept(ctx, accept, waiting.callback());
  EXPECT_EQ(OpenFdCount(), baseline + 3);

  absl::StatusOr<v1::CloseSessionResponse> closed = core_->CloseSession(ctx);

  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->sockets_closed(), 3u);
  absl::StatusOr<v1::AcceptResponse> accepted = waiting.Wait();
  EXPECT_EQ(accepted.status().code(), absl::StatusCode::kAborted)
      << accepted.status();
  EXPECT_EQ(OpenFdCount(), baseline);
  EXPECT_EQ(core_->KeepAlive(ctx).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AgentCoreTest, SessionExpiryClosesTheSessionsSockets) {
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
  EXPECT_EQ(OpenFdCount(), baseline + 4);

  EXPECT_TRUE(FdCountReaches(baseline))
      << OpenFdCount() << " fds open, baseline " << baseline;
  EXPECT_EQ(core_->KeepAlive(ctx).status().code(), absl::StatusCode::kNotFound);
  // The fixture's own session lives on.
  EXPECT_TRUE(core_->KeepAlive(ctx_).ok());
}

// Polls every 20 ms, up to 10 s, until `done()`.
template <typename Done>
bool Eventually(Done done) {
  const absl::Time give_up = absl::Now() + kWait;
  for (;;) {
    if (done()) return true;
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

TEST_F(AgentCoreTest, AWaitingRecvKeepsItsSessionPastTheLease) {
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

TEST_F(AgentCoreTest, AHeldSessionDoesNotLapseAndItsEndReachesTheHolder) {
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

TEST_F(AgentCoreTest, ABoundSessionEndsWhenItsCallIsLostAndStaysWhenReleased) {
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
  EXPECT_EQ(OpenFdCount(), baseline);

  // A lease-only session cannot be bound.
  EXPECT_EQ(core_->BindSession(ctx_, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(AgentCoreTest, AfterDrainEveryCallSaysTheAgentIsShuttingDown) {
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

TEST_F(AgentCoreTest, SocketsPastTheAgentWideCapAreResourceExhaustedNamingIt) {
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
  EXPECT_EQ(OpenFdCount(), baseline);
  // Closing one makes room again.
  v1::CloseRequest close;
  close.set_handle(third->handle());
  ASSERT_TRUE((*capped)->Close(second, close).ok());
  EXPECT_TRUE((*capped)->Socket(second, request).ok());
}

TEST_F(AgentCoreTest, DrainEndsAWaitingRecvWithUnavailableAndRefusesNewWork) {
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

// --- Socket creation and errno mapping ---

TEST_F(AgentCoreTest, UnsupportedFamilyIsInvalidArgumentWithEafnosupport) {
  absl::StatusOr<std::string> handle =
      NewSocket(ctx_, 9 /* PF_X25 */, SOCK_STREAM);
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoOf(handle.status()), EAFNOSUPPORT) << handle.status();
  EXPECT_THAT(Message(handle.status()), StartsWith("family: "));
  EXPECT_EQ(fake_.calls(Call::kSocket), 0);
}

TEST_F(AgentCoreTest, RawSocketTypeIsInvalidArgumentWithEsocktnosupport) {
  absl::StatusOr<std::string> handle = NewSocket(ctx_, AF_INET, SOCK_RAW);
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoOf(handle.status()), ESOCKTNOSUPPORT) << handle.status();
  EXPECT_THAT(Message(handle.status()), StartsWith("type: "));
  EXPECT_EQ(fake_.calls(Call::kSocket), 0);
}

// Python: socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC) is a
// stream socket with timeout 0 whose type reads SOCK_STREAM.
TEST_F(AgentCoreTest, NonblockAndCloexecTypeFlagsAreAcceptedAndStripped) {
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

TEST_F(AgentCoreTest, InjectedEmfileOnSocketIsResourceExhaustedWithEmfile) {
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

TEST_F(AgentCoreTest, InjectedEconnresetOnRecvIsUnavailableWithEconnreset) {
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

TEST_F(AgentCoreTest, EconnrefusedOnConnectIsDistinguishableFromEconnreset) {
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

TEST_F(AgentCoreTest, ConnectToAClosedLoopbackPortIsEconnrefused) {
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

// --- A real TCP conversation ---

TEST_F(AgentCoreTest, TcpRoundTripOnLoopback) {
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

TEST_F(AgentCoreTest, UdpSendToAndRecvFromOnLoopback) {
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
TEST_F(AgentCoreTest, EveryInetAtonSpellingOfTheMetadataAddressIsHardDenied) {
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

// --- Handles ---

TEST_F(AgentCoreTest, HandleOfAnotherSessionIsNotFoundLikeAnUnknownHandle) {
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

TEST_F(AgentCoreTest, MalformedHandleIsInvalidArgumentNamingHandle) {
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
TEST_F(AgentCoreTest, CloseTwiceIsOkAndOtherCallsOnTheClosedHandleAreEbadf) {
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
TEST_F(AgentCoreTest, AnotherSessionsClosedHandleIsNotFound) {
  CallContext other = NewSession(absl::Seconds(60));
  std::string foreign = MustSocket(other);
  ASSERT_TRUE(Close(other, foreign).ok());
  EXPECT_EQ(Close(ctx_, foreign).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SetTimeout(ctx_, foreign, std::nullopt).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(AgentCoreTest, CloseEndsAWaitingRecvWithAborted) {
  TcpPair pair = MustTcpPair(ctx_);
  Waiter<v1::RecvResponse> waiting = StartRecv(ctx_, pair.server, 10);
  ASSERT_FALSE(waiting.done());

  ASSERT_TRUE(Close(ctx_, pair.server).ok());

  absl::StatusOr<v1::RecvResponse> received = waiting.Wait();
  EXPECT_EQ(received.status().code(), absl::StatusCode::kAborted)
      << received.status();
  EXPECT_EQ(core_->waiting_ops(), 0u);
}

TEST_F(AgentCoreTest, PerSessionSocketQuotaIsResourceExhausted) {
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
  EXPECT_EQ(OpenFdCount(), baseline + 2) << "the refused socket leaked";
}

// --- Timeouts and cancellation ---

TEST_F(AgentCoreTest, NonblockingSocketRecvFailsAtOnceWithEagain) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(SetTimeout(ctx_, pair.server, absl::ZeroDuration()).ok());

  Waiter<v1::RecvResponse> waiter = StartRecv(ctx_, pair.server, 10);

  ASSERT_TRUE(waiter.done()) << "a non-blocking recv waited";
  absl::StatusOr<v1::RecvResponse> received = waiter.Wait();
  EXPECT_EQ(ErrnoOf(received.status()), EAGAIN) << received.status();
  EXPECT_EQ(core_->waiting_ops(), 0u);
}

TEST_F(AgentCoreTest, SocketTimeoutEndsRecvWithDeadlineExceededThenRecvWorks) {
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

TEST_F(AgentCoreTest, GetTimeoutReportsWhatSetTimeoutSet) {
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

TEST_F(AgentCoreTest, CallDeadlineEndsRecvWithDeadlineExceeded) {
  TcpPair pair = MustTcpPair(ctx_);
  CallContext ctx = ctx_;
  ctx.deadline = absl::Now() + absl::Milliseconds(50);

  absl::StatusOr<std::string> timed_out = Recv(ctx, pair.server, 10);

  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded)
      << timed_out.status();
}

TEST_F(AgentCoreTest, CancelledRecvEndsWithCancelledAndTheSocketStaysUsable) {
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
TEST_F(AgentCoreTest, RecvZeroReturnsEmptyAtOnceAndConsumesNothing) {
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
TEST_F(AgentCoreTest, RecvFromZeroConsumesADatagramAndReportsItsSource) {
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
TEST_F(AgentCoreTest, RecvAboveTheLimitReturnsAtMostTheLimit) {
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

TEST_F(AgentCoreTest, UnknownSendFlagsAreInvalidArgumentNamingFlags) {
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

TEST_F(AgentCoreTest, SendAboveTheLimitIsInvalidArgumentNamingData) {
  TcpPair pair = MustTcpPair(ctx_);
  absl::StatusOr<uint64_t> sent =
      Send(ctx_, pair.client, std::string(kMaxSendBytes + 1, 'x'));
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(sent.status()), StartsWith("data: "));
}

TEST_F(AgentCoreTest, UnsupportedProtocolNumberIsInvalidArgumentNamingIt) {
  v1::SocketRequest request;
  request.set_family(v1::FAMILY_INET);
  request.set_type(v1::SOCKET_TYPE_STREAM);
  request.set_protocol(256);
  absl::Status status = core_->Socket(ctx_, request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("protocol: "));
}

// --- Receive flags ---

TEST_F(AgentCoreTest, WaitAllCollectsBytesSentInTwoPieces) {
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

TEST_F(AgentCoreTest, WaitAllEndsEarlyAtEndOfFile) {
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(Send(ctx_, pair.client, "abc").ok());
  ASSERT_TRUE(Close(ctx_, pair.client).ok());
  absl::StatusOr<std::string> received =
      Recv(ctx_, pair.server, 10, MSG_WAITALL);
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(*received, "abc");
}

TEST_F(AgentCoreTest, PeekDoesNotConsume) {
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
TEST_F(AgentCoreTest, RecvBehindAnExpiredPeekWaitAllGetsTheDataAlreadyThere) {
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
TEST_F(AgentCoreTest, WaitAllThatTimesOutDoesNotLoseTheBytesItRead) {
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

// --- Socket options ---

TEST_F(AgentCoreTest, ReuseAddrRoundTripsAsABool) {
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

TEST_F(AgentCoreTest, RcvBufRoundTripsAsAnInt) {
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

TEST_F(AgentCoreTest, LingerRoundTripsAsALinger) {
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

TEST_F(AgentCoreTest, WrongValueKindIsInvalidArgumentNamingValue) {
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

TEST_F(AgentCoreTest, UnknownOrReadOnlyOptionIsInvalidArgumentNamingOption) {
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

TEST_F(AgentCoreTest, RawOptionsReachTheKernelAsBytes) {
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

TEST_F(AgentCoreTest, KernelRejectionOfARawOptionCarriesItsErrno) {
  std::string handle = MustSocket(ctx_);
  v1::GetSockOptRequest raw;
  raw.set_handle(handle);
  raw.mutable_raw_option()->set_level(SOL_SOCKET);
  raw.mutable_raw_option()->set_name(12345);
  absl::Status status = core_->GetSockOpt(ctx_, raw).status();
  EXPECT_EQ(ErrnoOf(status), ENOPROTOOPT) << status;
  EXPECT_EQ(GetErrno(status)->syscall, "getsockopt");
}

// --- Introspection ---

TEST_F(AgentCoreTest, ListSocketsReportsStatesAndByteCounts) {
  std::string fresh = MustSocket(ctx_);
  std::string bound = MustSocket(ctx_, SOCK_DGRAM);
  ASSERT_TRUE(BindLoopback(ctx_, bound).ok());
  ASSERT_TRUE(SetTimeout(ctx_, bound, absl::Seconds(3)).ok());
  TcpPair pair = MustTcpPair(ctx_);
  ASSERT_TRUE(Send(ctx_, pair.client, "12345").ok());
  absl::StatusOr<std::string> got = Recv(ctx_, pair.server, 3);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(*got, "123");

  absl::StatusOr<v1::ListSocketsResponse> list = core_->ListSockets(ctx_);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->sockets_size(), 5);
  for (int i = 1; i < list->sockets_size(); ++i) {
    EXPECT_LT(list->sockets(i - 1).handle(), list->sockets(i).handle());
  }

  absl::StatusOr<v1::SocketInfo> info = InfoOf(ctx_, fresh);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state(), v1::SOCKET_STATE_OPEN);
  EXPECT_EQ(info->family(), v1::FAMILY_INET);
  EXPECT_EQ(info->type(), v1::SOCKET_TYPE_STREAM);
  EXPECT_FALSE(info->has_timeout());

  info = InfoOf(ctx_, bound);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state(), v1::SOCKET_STATE_BOUND);
  EXPECT_EQ(info->type(), v1::SOCKET_TYPE_DGRAM);
  EXPECT_EQ(info->local().inet().host(), "127.0.0.1");
  EXPECT_EQ(info->timeout().seconds(), 3);

  info = InfoOf(ctx_, pair.listener);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state(), v1::SOCKET_STATE_LISTENING);
  EXPECT_EQ(info->local().inet().port(), pair.port);

  info = InfoOf(ctx_, pair.client);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state(), v1::SOCKET_STATE_CONNECTED);
  EXPECT_EQ(info->bytes_sent(), 5u);
  EXPECT_EQ(info->bytes_received(), 0u);
  EXPECT_EQ(info->peer().inet().port(), pair.port);

  info = InfoOf(ctx_, pair.server);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state(), v1::SOCKET_STATE_CONNECTED);
  EXPECT_EQ(info->bytes_sent(), 0u);
  EXPECT_EQ(info->bytes_received(), 3u);

  v1::ShutdownRequest shutdown;
  shutdown.set_handle(pair.client);
  shutdown.set_how(v1::SHUTDOWN_HOW_WRITE);
  ASSERT_TRUE(core_->Shutdown(ctx_, shutdown).ok());
  info = InfoOf(ctx_, pair.client);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state(), v1::SOCKET_STATE_SHUT_DOWN);
}

TEST_F(AgentCoreTest, EveryWaitingCallbackRunsExactlyOnceUnderCloseAndCancel) {
  TcpPair pair = MustTcpPair(ctx_);
  constexpr int kCalls = 200;
  std::vector<Waiter<v1::RecvResponse>> waiters;
  std::vector<std::unique_ptr<CancelToken>> tokens;
  for (int i = 0; i < kCalls; ++i) {
    tokens.push_back(std::make_unique<CancelToken>());
    CallContext ctx = ctx_;
    if (i % 3 == 0) ctx.cancel = tokens.back().get();
    if (i % 3 == 1) ctx.deadline = absl::Now() + absl::Milliseconds(i % 20);
    waiters.push_back(StartRecv(ctx, pair.server, 1));
  }
  std::thread sender([&] {
    for (int i = 0; i < 50; ++i) (void)Send(ctx_, pair.client, "x");
  });
  for (int i = 0; i < kCalls; i += 3) tokens[i]->Cancel();
  sender.join();
  ASSERT_TRUE(Close(ctx_, pair.server).ok());

  int ok = 0;
  for (Waiter<v1::RecvResponse>& waiter : waiters) {
    absl::StatusOr<v1::RecvResponse> result = waiter.Wait();
    EXPECT_NE(result.status().code(), absl::StatusCode::kInternal)
        << result.status();
    if (result.ok()) ++ok;
  }
  EXPECT_LE(ok, 50);
  EXPECT_EQ(core_->waiting_ops(), 0u);
  for (auto& token : tokens) token->Cancel();
  core_.reset();  // joins the engine: no late callback can follow
  for (Waiter<v1::RecvResponse>& waiter : waiters) {
    EXPECT_EQ(waiter.calls(), 1);
  }
}

TEST_F(AgentCoreTest, AgentInfoReportsLimitsAndIncarnation) {
  v1::GetAgentInfoResponse info = core_->GetAgentInfo();
  EXPECT_EQ(info.incarnation(), core_->incarnation());
  EXPECT_EQ(info.limits().max_recv_bytes(), kMaxRecvBytes);
  EXPECT_EQ(info.limits().max_send_bytes(), kMaxSendBytes);
  EXPECT_EQ(info.api_version(), "sockagent.v1");
}

}  // namespace
}  // namespace sockagent
