// The agent's cap on concurrent connections (gRPC 1.51 has none), over real
// loopback connections: at the cap a new client still gets a health answer
// within 1 s while its SocketAgent calls are RESOURCE_EXHAUSTED naming the
// quota; beyond the health headroom a connection is closed at once; once
// connections go away new clients work again.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpc/grpc.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/service/agent_server.h"
#include "server/service/connection_limiter.h"
#include "sockagent/v1/sockagent.grpc.pb.h"
#include "tests/common/wait.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kCap = 20;
constexpr uint32_t kHeadroom = 4;

class ConnectionLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.max_connections = kCap;
    options.health_headroom = kHeadroom;
    absl::StatusOr<std::unique_ptr<AgentServer>> server =
        AgentServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    for (int fd : raw_) ::close(fd);
    server_.reset();
  }

  // A TCP connection that never sends a byte.
  int RawConnection() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in agent{};
    agent.sin_family = AF_INET;
    agent.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    agent.sin_port = htons(static_cast<uint16_t>(server_->port()));
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&agent), sizeof(agent)),
              0);
    raw_.push_back(fd);
    return fd;
  }

  std::shared_ptr<grpc::Channel> NewChannel() {
    // A channel of its own: no subchannel sharing with earlier channels.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", server_->port()),
        grpc::InsecureChannelCredentials(), args);
  }

  static grpc::Status CreateSession(const std::shared_ptr<grpc::Channel>& ch) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    v1::CreateSessionResponse response;
    return v1::SocketAgent::NewStub(ch)->CreateSession(
        &context, v1::CreateSessionRequest(), &response);
  }

  std::unique_ptr<AgentServer> server_;
  std::vector<int> raw_;
};

TEST_F(ConnectionLimitTest, AtTheCapHealthStillAnswers) {
  for (uint32_t i = 0; i < kCap; ++i) RawConnection();
  ASSERT_TRUE(test::WaitFor([&] {
    return server_->connection_limiter().open_connections() == kCap;
  })) << server_->connection_limiter().open_connections();

  std::shared_ptr<grpc::Channel> channel = NewChannel();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  grpc::health::v1::HealthCheckResponse health;
  grpc::Status status = grpc::health::v1::Health::NewStub(channel)->Check(
      &context, grpc::health::v1::HealthCheckRequest(), &health);
  ASSERT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // The same connection may not use the agent itself.
  grpc::Status refused = CreateSession(channel);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("quota max_connections"));
  EXPECT_EQ(server_->core().session_count(), 0u);
  EXPECT_GE(server_->connection_limiter().restricted(), 1u);
}

TEST_F(ConnectionLimitTest, BeyondTheHeadroomAConnectionIsClosedAtOnce) {
  for (uint32_t i = 0; i < kCap + kHeadroom; ++i) RawConnection();
  ASSERT_TRUE(test::WaitFor([&] {
    return server_->connection_limiter().open_connections() == kCap + kHeadroom;
  }));
  const int extra = RawConnection();
  timeval timeout{10, 0};
  ::setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  char byte;
  const ssize_t got = ::recv(extra, &byte, 1, 0);
  EXPECT_TRUE(got == 0 || (got < 0 && errno == ECONNRESET))
      << "got " << got << " errno " << errno;
  EXPECT_EQ(server_->connection_limiter().refused(), 1u);
}

TEST_F(ConnectionLimitTest, ClientsWorkAgainOnceConnectionsGoAway) {
  for (uint32_t i = 0; i < kCap; ++i) RawConnection();
  ASSERT_TRUE(test::WaitFor([&] {
    return server_->connection_limiter().open_connections() == kCap;
  }));
  EXPECT_EQ(CreateSession(NewChannel()).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  for (int fd : raw_) ::close(fd);
  raw_.clear();
  ASSERT_TRUE(test::WaitFor([&] {
    return server_->connection_limiter().open_connections() <= 1;
  })) << server_->connection_limiter().open_connections();
  grpc::Status status = CreateSession(NewChannel());
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// --max-connection-age / --max-connection-idle reach gRPC: a connection past
// its age, or idle too long, is ended by the agent (the channel leaves READY)
// and the client reconnects on the next call.
TEST(ConnectionAgeTest, OldAndIdleConnectionsAreEndedByTheAgent) {
  for (const bool age : {true, false}) {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    if (age) {
      options.max_connection_age = absl::Milliseconds(500);
      options.max_connection_age_grace = absl::Milliseconds(200);
    } else {
      options.max_connection_idle = absl::Milliseconds(500);
    }
    absl::StatusOr<std::unique_ptr<AgentServer>> server =
        AgentServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                  grpc::InsecureChannelCredentials(), args);
    auto stub = v1::SocketAgent::NewStub(channel);
    auto info = [&] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(10));
      v1::GetAgentInfoResponse response;
      return stub->GetAgentInfo(&context, v1::GetAgentInfoRequest(), &response);
    };
    // Connected; the age (500 ms, jittered by gRPC) may already be up.
    ASSERT_TRUE(info().ok());
    EXPECT_TRUE(test::WaitFor([&] {
      return channel->GetState(false) != GRPC_CHANNEL_READY;
    })) << (age ? "age" : "idle");
    EXPECT_TRUE(info().ok()) << "the client reconnects";
  }
}

TEST(ConnectionLimiterTest, PeerKeysOfGrpcPeersMatchTheAcceptedAddress) {
  EXPECT_EQ(ConnectionLimiter::PeerKey("ipv4:127.0.0.1:5000"),
            "127.0.0.1:5000");
  EXPECT_EQ(ConnectionLimiter::PeerKey("ipv6:%5B::1%5D:5000"), "[::1]:5000");
  EXPECT_EQ(ConnectionLimiter::PeerKey("ipv6:[::ffff:127.0.0.1]:7"),
            "127.0.0.1:7");
  EXPECT_EQ(ConnectionLimiter::PeerKey("unix:/tmp/x"), "");
  EXPECT_EQ(ConnectionLimiter::PeerKey("ipv4:127.0.0.1:99999"), "");
}

// The agent's end of every accepted connection: sockets of this process
// whose local port is the agent's.
std::vector<int> AcceptedEnds(int port) {
  std::vector<int> fds;
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_in local{};
    socklen_t length = sizeof(local);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 ||
        local.sin_family != AF_INET || ntohs(local.sin_port) != port) {
      continue;
    }
    sockaddr_in peer{};
    length = sizeof(peer);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
      fds.push_back(fd);  // not the listener
    }
  }
  return fds;
}

TEST_F(ConnectionLimitTest, AcceptedConnectionsAreNoDelayWithAUserTimeout) {
  // Without TCP_NODELAY a response right after another waited 40 ms for
  // the client's delayed ACK; without TCP_USER_TIMEOUT a stopped client
  // whose buffers are full kept its connection (no ping can be written).
  std::shared_ptr<grpc::Channel> channel = NewChannel();
  ASSERT_TRUE(CreateSession(channel).ok());
  std::vector<int> ends;
  ASSERT_TRUE(test::WaitFor([&] {
    ends = AcceptedEnds(server_->port());
    return !ends.empty();
  }));
  for (int fd : ends) {
    int nodelay = 0;
    socklen_t length = sizeof(nodelay);
    ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &length), 0);
    EXPECT_EQ(nodelay, 1);
    unsigned int user_timeout = 0;
    length = sizeof(user_timeout);
    ASSERT_EQ(
        ::getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, &length),
        0);
    // keepalive time + timeout, 5 s + 5 s by default.
    EXPECT_EQ(user_timeout, 10000u);
  }
}

TEST(LogRateLimiterTest, AnEveryHundredMillisecondErrorLogsOncePerPeriod) {
  // The agent out of descriptors retried accept every 100 ms and logged
  // "accept: Too many open files" each time.
  LogRateLimiter log(absl::Seconds(10));
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  std::vector<uint64_t> lines;
  for (int i = 0; i < 250; ++i) {  // 25 s of retries
    if (uint64_t times = log.Allow(t0 + i * absl::Milliseconds(100));
        times > 0) {
      lines.push_back(times);
    }
  }
  // At 0 s, 10 s and 20 s; each line counts what it stands for.
  EXPECT_THAT(lines, ::testing::ElementsAre(1u, 100u, 100u));
}

}  // namespace
}  // namespace sockagent
