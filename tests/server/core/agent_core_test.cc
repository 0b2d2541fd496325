// Tests for server/core/agent_core.h, the facade: introspection (ListSockets,
// GetAgentInfo) and the exactly-once promise of every waiting callback.
// Real kernel sockets (loopback 127.0.0.1 only, ports chosen by the
// kernel), errno paths forced through FakeSocketOps.

#include "server/core/agent_core.h"

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

class AgentCoreTest : public CoreFixture {};

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
