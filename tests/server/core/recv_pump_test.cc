// Tests for server/core/recv_pump.h and send_pump.h: a stream's socket is
// resolved once and then pumped chunk after chunk, and each later step
// still answers what a freshly resolved call would (closed socket, drain, a
// byte-rate quota loaded after the stream started). Real loopback sockets.

#include "server/core/recv_pump.h"

#include <sys/socket.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "server/core/agent_core.h"
#include "server/core/send_pump.h"
#include "sockagent/v1/policy.pb.h"
#include "tests/server/core/core_fixture.h"
#include "tests/server/core_test_util.h"

namespace sockagent {
namespace {

using core_test::CoreFixture;
using core_test::ErrnoOf;
using core_test::kMaxSendBytes;
using core_test::TcpPair;
using core_test::Waiter;
using ::testing::HasSubstr;

class RecvPumpTest : public CoreFixture {
 protected:
  // A pump on `handle` whose chunks land in `waiter_` (re-armed per step).
  std::shared_ptr<RecvPump> Open(const std::string& handle) {
    absl::StatusOr<std::shared_ptr<RecvPump>> pump =
        core_->OpenRecvPump(ctx_, handle, RecvPump::Options{},
                            [this](absl::StatusOr<RecvOp::Received> got) {
                              Waiter<RecvOp::Received> waiter = waiter_;
                              waiter.callback()(std::move(got));
                            });
    EXPECT_TRUE(pump.ok()) << pump.status();
    return pump.ok() ? *pump : nullptr;
  }
  absl::StatusOr<std::string> Step(RecvPump& pump, size_t max_bytes) {
    waiter_ = Waiter<RecvOp::Received>();
    pump.Next(max_bytes);
    absl::StatusOr<RecvOp::Received> got = waiter_.Wait();
    if (!got.ok()) return got.status();
    return got->data;
  }

  Waiter<RecvOp::Received> waiter_;
};

TEST_F(RecvPumpTest, DeliversChunksOfOneResolvedSocketUntilEndOfFile) {
  TcpPair pair = MustTcpPair(ctx_);
  std::shared_ptr<RecvPump> pump = Open(pair.server);
  ASSERT_NE(pump, nullptr);
  ASSERT_TRUE(Send(ctx_, pair.client, "hello world").ok());
  EXPECT_EQ(Step(*pump, 5).value_or("error"), "hello");
  EXPECT_EQ(Step(*pump, 100).value_or("error"), " world");
  v1::ShutdownRequest shutdown;
  shutdown.set_handle(pair.client);
  shutdown.set_how(v1::SHUTDOWN_HOW_WRITE);
  ASSERT_TRUE(core_->Shutdown(ctx_, shutdown).ok());
  EXPECT_EQ(Step(*pump, 100).value_or("error"), "");  // orderly EOF
}

TEST_F(RecvPumpTest, OpeningAnUnknownHandleFailsAsRecvWould) {
  absl::StatusOr<std::shared_ptr<RecvPump>> pump =
      core_->OpenRecvPump(ctx_, "not-a-handle", RecvPump::Options{},
                          [](absl::StatusOr<RecvOp::Received>) {});
  EXPECT_EQ(pump.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pump.status().message(), HasSubstr("handle"));
}

TEST_F(RecvPumpTest, AStepAfterCloseIsEbadfNamingTheClosedHandle) {
  TcpPair pair = MustTcpPair(ctx_);
  std::shared_ptr<RecvPump> pump = Open(pair.server);
  ASSERT_NE(pump, nullptr);
  ASSERT_TRUE(Close(ctx_, pair.server).ok());
  absl::StatusOr<std::string> got = Step(*pump, 100);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrnoOf(got.status()), EBADF);
  // What a Recv resolved now says, not the engine's own wording.
  EXPECT_THAT(got.status().message(),
              HasSubstr("handle: the socket is closed"));
}

TEST_F(RecvPumpTest, AStepAfterDrainIsUnavailableNamingTheDrain) {
  TcpPair pair = MustTcpPair(ctx_);
  std::shared_ptr<RecvPump> pump = Open(pair.server);
  ASSERT_NE(pump, nullptr);
  core_->Drain();
  absl::StatusOr<std::string> got = Step(*pump, 100);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(got.status().message(), HasSubstr("draining"));
}

TEST_F(RecvPumpTest, AByteRateQuotaLoadedAfterTheStreamStartedApplies) {
  TcpPair pair = MustTcpPair(ctx_);
  std::shared_ptr<RecvPump> pump = Open(pair.server);
  ASSERT_NE(pump, nullptr);
  v1::Policy policy;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        rules {
          name: "all"
          identities: "anonymous"
          allow_rpcs: "*"
          families: FAMILY_INET
          types: SOCKET_TYPE_STREAM
          connect_allow { cidr: "127.0.0.1" }
          bind_allow { cidr: "127.0.0.1" }
          quotas { max_recv_bytes_per_second: 1 }
        }
      )pb",
      &policy));
  ASSERT_TRUE(core_->policy().Load(policy).ok());
  ASSERT_TRUE(Send(ctx_, pair.client, "0123456789").ok());
  // The full bucket admits one chunk, which overdraws it...
  EXPECT_EQ(Step(*pump, 100).value_or("error"), "0123456789");
  // ...so the next step is refused, as a Recv resolved now would be.
  absl::StatusOr<std::string> refused = Step(*pump, 100);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("max_recv_bytes_per_second"));
}

class SendPumpTest : public CoreFixture {
 protected:
  std::shared_ptr<SendPump> Open(const std::string& handle) {
    absl::StatusOr<std::shared_ptr<SendPump>> pump = core_->OpenSendPump(
        ctx_, handle, [this](absl::StatusOr<uint64_t> sent) {
          Waiter<uint64_t> waiter = waiter_;
          waiter.callback()(std::move(sent));
        });
    EXPECT_TRUE(pump.ok()) << pump.status();
    return pump.ok() ? *pump : nullptr;
  }
  absl::StatusOr<uint64_t> Step(SendPump& pump, std::string* data) {
    waiter_ = Waiter<uint64_t>();
    pump.Send(data);
    return waiter_.Wait();
  }

  Waiter<uint64_t> waiter_;
};

TEST_F(SendPumpTest, SendsEveryByteOfEachMessageAndHandsBackASpareBuffer) {
  TcpPair pair = MustTcpPair(ctx_);
  std::shared_ptr<SendPump> pump = Open(pair.client);
  ASSERT_NE(pump, nullptr);
  std::string data = "first ";
  EXPECT_EQ(Step(*pump, &data).value_or(0), 6u);
  EXPECT_TRUE(data.empty());  // the bytes were taken
  data = "second";
  EXPECT_EQ(Step(*pump, &data).value_or(0), 6u);
  EXPECT_EQ(Recv(ctx_, pair.server, 12, MSG_WAITALL).value_or("error"),
            "first second");
}

TEST_F(SendPumpTest, AMessageAboveTheLimitIsInvalidArgumentNamingIt) {
  TcpPair pair = MustTcpPair(ctx_);
  std::shared_ptr<SendPump> pump = Open(pair.client);
  ASSERT_NE(pump, nullptr);
  std::string data(kMaxSendBytes + 1, 'x');
  absl::StatusOr<uint64_t> sent = Step(*pump, &data);
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sent.status().message(), HasSubstr("limits.max_send_bytes"));
}

}  // namespace
}  // namespace sockagent
