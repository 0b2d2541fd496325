// sockagentd as a real process: scale (10,000 waiting calls hold no
// threads) and drain on SIGTERM. Loopback only.

#include "agent_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/status.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sockagent/v1/sockagent.grpc.pb.h"
#include "tests/common/wait.h"

namespace sockagent::testing {
namespace {

class AgentProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(agent_.Start(
        SOCKAGENTD_PATH,
        {"--max-sockets-per-session", "20000", "--session-ttl", "60s"}))
        << agent_.Log();
    channel_ = grpc::CreateChannel(agent_.target(),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::SocketAgent::NewStub(channel_);
    grpc::ClientContext ctx;
    v1::CreateSessionRequest request;
    request.set_label("agent_process_test");
    v1::CreateSessionResponse response;
    ASSERT_TRUE(stub_->CreateSession(&ctx, request, &response).ok());
    session_ = response.session_id();
  }

  void WithSession(grpc::ClientContext* ctx) {
    ctx->AddMetadata("sockagent-session", session_);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(120));
  }

  // A UDP socket on the agent bound to 127.0.0.1:0; returns {handle, port}.
  std::pair<std::string, uint32_t> BoundUdp() {
    grpc::ClientContext ctx;
    WithSession(&ctx);
    v1::SocketRequest request;
    request.set_family(v1::FAMILY_INET);
    request.set_type(v1::SOCKET_TYPE_DGRAM);
    v1::SocketResponse socket;
    EXPECT_TRUE(stub_->Socket(&ctx, request, &socket).ok());
    grpc::ClientContext bind_ctx;
    WithSession(&bind_ctx);
    v1::BindRequest bind;
    bind.set_handle(socket.handle());
    bind.mutable_address()->mutable_inet()->set_host("127.0.0.1");
    v1::BindResponse bound;
    EXPECT_TRUE(stub_->Bind(&bind_ctx, bind, &bound).ok());
    return {socket.handle(), bound.address().inet().port()};
  }

  v1::AgentStats Stats() {
    grpc::ClientContext ctx;
    v1::GetAgentInfoResponse info;
    stub_->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &info);
    return info.stats();
  }

  // Polls (bounded) until the agent reports `count` waiting operations.
  ::testing::AssertionResult WaitForWaiting(uint64_t count) {
    return test::WaitFor(
        [&] { return Stats().waiting_operations() == count; },
        absl::Seconds(60),
        absl::StrCat(count, " waiting operations in the agent"));
  }

  // One asynchronous Recv in flight.
  struct PendingRecv {
    grpc::ClientContext ctx;
    v1::RecvRequest request;
    v1::RecvResponse response;
    grpc::Status status;
  };

  void StartRecv(PendingRecv* call, const std::string& handle,
                 std::atomic<int>* done) {
    WithSession(&call->ctx);
    call->request.set_handle(handle);
    call->request.set_max_bytes(64);
    stub_->async()->Recv(&call->ctx, &call->request, &call->response,
                         [call, done](grpc::Status status) {
                           call->status = std::move(status);
                           ++*done;
                         });
  }

  // Cancels the calls still waiting and waits (bounded) until every one of
  // `calls` has ended, so none completes into a freed PendingRecv.
  static void EndCalls(std::vector<std::unique_ptr<PendingRecv>>& calls,
                       const std::atomic<int>& done) {
    if (done == static_cast<int>(calls.size())) return;
    for (const std::unique_ptr<PendingRecv>& call : calls) {
      call->ctx.TryCancel();
    }
    EXPECT_TRUE(
        test::WaitFor([&] { return done == static_cast<int>(calls.size()); },
                      test::kDefaultWait, "the cancelled calls to end"));
  }

  AgentProcess agent_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SocketAgent::Stub> stub_;
  std::string session_;
};

TEST_F(AgentProcessTest, TenThousandWaitingRecvsHoldNoThreads) {
  constexpr int kFew = 10;
  constexpr int kMany = 10000;
  std::vector<std::pair<std::string, uint32_t>> sockets;
  sockets.reserve(kMany);
  for (int i = 0; i < kMany; ++i) sockets.push_back(BoundUdp());

  std::atomic<int> done{0};
  std::vector<std::unique_ptr<PendingRecv>> calls;
  // Runs before `calls` is destroyed, also when an ASSERT returns early:
  // no call may outlive its PendingRecv.
  absl::Cleanup end_calls = [&] { EndCalls(calls, done); };
  for (int i = 0; i < kFew; ++i) {
    calls.push_back(std::make_unique<PendingRecv>());
    StartRecv(calls.back().get(), sockets[i].first, &done);
  }
  ASSERT_TRUE(WaitForWaiting(kFew));
  const int threads_few = agent_.Threads();

  for (int i = kFew; i < kMany; ++i) {
    calls.push_back(std::make_unique<PendingRecv>());
    StartRecv(calls.back().get(), sockets[i].first, &done);
  }
  ASSERT_TRUE(WaitForWaiting(kMany));
  const int threads_many = agent_.Threads();
  const int rss_kib = agent_.RssKib();
  RecordProperty("threads_with_10_waiting", threads_few);
  RecordProperty("threads_with_10000_waiting", threads_many);
  RecordProperty("rss_kib_with_10000_waiting", rss_kib);
  // Nothing scales with calls (gRPC's timer manager may add its second
  // thread at any time).
  EXPECT_LE(threads_many, threads_few + 1)
      << threads_few << " threads with " << kFew << " waiting calls, "
      << threads_many << " with " << kMany;

  // Every waiting call is real: one datagram to each wakes exactly it.
  int sender = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sender, 0);
  for (int i = 0; i < kMany; ++i) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(sockets[i].second));
    const std::string data = std::to_string(i);
    ASSERT_EQ(::sendto(sender, data.data(), data.size(), 0,
                       reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(data.size()));
  }
  ::close(sender);
  ASSERT_TRUE(test::WaitFor([&] { return done == kMany; }, absl::Seconds(60),
                            "every call to complete"));
  ASSERT_EQ(done, kMany);
  for (int i = 0; i < kMany; ++i) {
    ASSERT_TRUE(calls[i]->status.ok()) << calls[i]->status.error_message();
    ASSERT_EQ(calls[i]->response.data(), std::to_string(i));
  }
  // Ending 10,000 calls at once adds no thread either: without inline
  // reactions gRPC's executor grew here from 1 to 2 threads per core. The
  // one allowed is gRPC's timer manager, which may start its second thread
  // at any time.
  const int threads_after = agent_.Threads();
  RecordProperty("threads_after_10000_completed", threads_after);
  EXPECT_LE(threads_after, threads_few + 1)
      << threads_few << " threads with " << kFew << " waiting calls, "
      << threads_after << " after " << kMany << " completed";
}

TEST_F(AgentProcessTest, SigtermEndsWaitingCallsWithUnavailableAndExitsZero) {
  auto [handle, port] = BoundUdp();
  std::atomic<int> done{0};
  std::vector<std::unique_ptr<PendingRecv>> calls;
  calls.push_back(std::make_unique<PendingRecv>());
  PendingRecv& call = *calls.back();
  absl::Cleanup end_calls = [&] { EndCalls(calls, done); };
  StartRecv(&call, handle, &done);
  ASSERT_TRUE(WaitForWaiting(1));
  EXPECT_EQ(agent_.StopWith(SIGTERM), 0) << agent_.Log();
  ASSERT_TRUE(test::WaitFor([&] { return done != 0; }, test::kDefaultWait,
                            "the waiting call to end"));
  ASSERT_EQ(done, 1);
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(agent_.Log(), ::testing::HasSubstr("SIGTERM"));
}

}  // namespace
}  // namespace sockagent::testing
