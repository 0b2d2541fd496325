// Agent-side traffic and faults end to end: the client library (Socket::
// Traffic, Echo, Sink, Source, Abort, SetFaults) against a real sockagentd
// child process on 127.0.0.1, with plain kernel sockets of this process as
// peers. Loopback only; no timing is asserted as an upper bound; every loop
// is bounded.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"
#include "proto/traffic_data.h"
#include "tests/common/wait.h"
#include "tests/integration/agent_process.h"

namespace sockagent {
namespace {

using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(30);

std::string Pattern(v1::TrafficPattern pattern, uint64_t seed, size_t n) {
  std::string bytes(n, '\0');
  FillPattern(pattern, seed, 0, bytes.data(), n);
  return bytes;
}

absl::Duration Elapsed(const v1::TrafficResponse& response) {
  return absl::Seconds(response.elapsed().seconds()) +
         absl::Nanoseconds(response.elapsed().nanos());
}

// A kernel socket of this process on loopback.
class Peer {
 public:
  explicit Peer(int type) : fd_(::socket(AF_INET, type | SOCK_CLOEXEC, 0)) {}
  ~Peer() {
    if (fd_ >= 0) ::close(fd_);
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  int fd() const { return fd_; }

  bool Connect(const v1::Address& to) {
    sockaddr_in address = Of(to.inet().port());
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&address),
                     sizeof(address)) == 0;
  }
  uint32_t Bind() {
    sockaddr_in address = Of(0);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
        0) {
      return 0;
    }
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    return ntohs(address.sin_port);
  }
  void SetRecvTimeout(absl::Duration timeout) {
    timeval tv = absl::ToTimeval(timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  bool SendAll(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n =
          ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until EOF (*error = 0), an error (*error = errno) or `limit`
  // bytes (*error = -1).
  std::string Read(size_t limit, int* error) {
    SetRecvTimeout(kWait);
    std::string out;
    char buffer[65536];
    while (out.size() < limit) {
      const ssize_t n =
          ::recv(fd_, buffer, std::min(sizeof(buffer), limit - out.size()), 0);
      if (n == 0) {
        *error = 0;
        return out;
      }
      if (n < 0) {
        *error = errno;
        return out;
      }
      out.append(buffer, static_cast<size_t>(n));
    }
    *error = -1;
    return out;
  }

 private:
  static sockaddr_in Of(uint32_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    return address;
  }
  int fd_;
};

// Runs a blocking client call on its own thread.
class Background {
 public:
  explicit Background(
      absl::AnyInvocable<absl::StatusOr<v1::TrafficResponse>()> call)
      : thread_([this, call = std::move(call)]() mutable {
          result_ = call();
          done_.Notify();
        }) {}
  ~Background() { thread_.join(); }
  bool done() const { return done_.HasBeenNotified(); }
  absl::StatusOr<v1::TrafficResponse> Wait() {
    if (!done_.WaitForNotificationWithTimeout(kWait)) {
      return absl::InternalError("test: the traffic did not end in time");
    }
    return result_;
  }

 private:
  absl::Notification done_;
  absl::StatusOr<v1::TrafficResponse> result_ =
      absl::UnknownError("test: no result");
  std::thread thread_;
};

class TrafficIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    process_ = new testing::AgentProcess();
    ASSERT_TRUE(process_->Start(SOCKAGENTD_PATH)) << process_->Log();
  }
  static void TearDownTestSuite() {
    delete process_;
    process_ = nullptr;
  }

  void SetUp() override { agent_ = MustAgent(); }

  static std::unique_ptr<Agent> MustAgent() {
    AgentOptions options;
    options.target = process_->target();
    options.session_label =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    options.connect_timeout = absl::Seconds(10);
    options.call_timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
    EXPECT_TRUE(agent.ok()) << agent.status();
    return agent.ok() ? *std::move(agent) : nullptr;
  }

  Socket MustSocket(v1::SocketType type = v1::SOCKET_TYPE_STREAM) {
    absl::StatusOr<Socket> socket = agent_->CreateSocket(v1::FAMILY_INET, type);
    EXPECT_TRUE(socket.ok()) << socket.status();
    return socket.ok() ? *std::move(socket) : Socket();
  }

  // An agent socket connected to a kernel peer of this process.
  std::pair<Socket, std::unique_ptr<Peer>> MustPeered() {
    Socket listener = MustSocket();
    absl::StatusOr<v1::Address> bound =
        listener.Bind(InetAddress("127.0.0.1", 0));
    EXPECT_TRUE(bound.ok()) << bound.status();
    EXPECT_TRUE(listener.Listen().ok());
    auto peer = std::make_unique<Peer>(SOCK_STREAM);
    EXPECT_TRUE(bound.ok() && peer->Connect(*bound));
    absl::StatusOr<AcceptResult> accepted =
        listener.Accept(absl::Now() + kWait);
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    if (!accepted.ok()) return {Socket(), std::move(peer)};
    return {std::move(accepted->socket), std::move(peer)};
  }

  // Two agent sockets connected to each other: {client, server}.
  std::pair<Socket, Socket> MustAgentPair() {
    Socket listener = MustSocket();
    absl::StatusOr<v1::Address> bound =
        listener.Bind(InetAddress("127.0.0.1", 0));
    EXPECT_TRUE(bound.ok()) << bound.status();
    EXPECT_TRUE(listener.Listen().ok());
    Socket client = MustSocket();
    EXPECT_TRUE(bound.ok() && client.Connect(*bound, absl::Now() + kWait).ok());
    absl::StatusOr<AcceptResult> accepted =
        listener.Accept(absl::Now() + kWait);
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    if (!accepted.ok()) return {std::move(client), Socket()};
    return {std::move(client), std::move(accepted->socket)};
  }

  // Waits (bounded) until the agent's count of waiting operations is `want`
  // (this test is the agent's only client).
  ::testing::AssertionResult WaitingOpsReach(uint64_t want) {
    return test::WaitFor(
        [&] {
          absl::StatusOr<v1::GetAgentInfoResponse> info =
              agent_->GetAgentInfo();
          return info.ok() && info->stats().waiting_operations() == want;
        },
        test::kDefaultWait,
        absl::StrCat(want, " waiting operations in the agent"));
  }

  static v1::SourceTraffic SourceOf(
      uint64_t bytes, v1::TrafficPattern pattern = v1::TRAFFIC_PATTERN_SEQUENCE,
      uint64_t seed = 0) {
    v1::SourceTraffic source;
    source.set_bytes(bytes);
    source.set_pattern(pattern);
    source.set_seed(seed);
    source.set_shutdown_write_at_end(true);
    return source;
  }

  static testing::AgentProcess* process_;
  std::unique_ptr<Agent> agent_;
};

testing::AgentProcess* TrafficIntegrationTest::process_ = nullptr;

TEST_F(TrafficIntegrationTest, TcpEchoRoundTripHasMatchingChecksums) {
  auto [socket, peer] = MustPeered();
  Background echo([&socket = socket] { return socket.Echo(); });
  const std::string data = Pattern(v1::TRAFFIC_PATTERN_RANDOM, 11, 200000);
  // Small enough for the loopback buffers: the echo never blocks on us.
  std::string back;
  for (size_t offset = 0; offset < data.size(); offset += 20000) {
    ASSERT_TRUE(peer->SendAll(data.substr(offset, 20000)));
    int error = 0;
    back += peer->Read(20000, &error);
    ASSERT_EQ(error, -1) << "errno " << error;
  }
  ::shutdown(peer->fd(), SHUT_WR);
  absl::StatusOr<v1::TrafficResponse> result = echo.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(back, data);
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_EOF);
  EXPECT_EQ(result->bytes_received(), data.size());
  EXPECT_EQ(result->bytes_sent(), data.size());
  EXPECT_EQ(result->checksum(), StreamChecksumHex(data));
  EXPECT_EQ(result->checksum(), StreamChecksumHex(back));
  EXPECT_GT(result->bytes_per_second(), 0.0);
}

TEST_F(TrafficIntegrationTest, SinkCountsWhatASourceSendsWithEqualChecksums) {
  for (auto [pattern, seed] :
       {std::pair{v1::TRAFFIC_PATTERN_SEQUENCE, uint64_t{0}},
        std::pair{v1::TRAFFIC_PATTERN_RANDOM, uint64_t{20261125}}}) {
    auto [client, server] = MustAgentPair();
    constexpr uint64_t kBytes = 3 * 1024 * 1024 + 17;
    Background sink([&server = server] { return server.Sink(); });
    absl::StatusOr<v1::TrafficResponse> sent =
        client.Source(SourceOf(kBytes, pattern, seed));
    ASSERT_TRUE(sent.ok()) << sent.status();
    absl::StatusOr<v1::TrafficResponse> received = sink.Wait();
    ASSERT_TRUE(received.ok()) << received.status();
    EXPECT_EQ(sent->bytes_sent(), kBytes);
    EXPECT_EQ(sent->end(), v1::TRAFFIC_END_BYTES);
    EXPECT_EQ(received->bytes_received(), kBytes);
    EXPECT_EQ(received->end(), v1::TRAFFIC_END_EOF);
    EXPECT_EQ(received->checksum(), sent->checksum());
    // Anyone can check it: the pattern is public.
    EXPECT_EQ(sent->checksum(),
              StreamChecksumHex(Pattern(pattern, seed, kBytes)));
  }
}

TEST_F(TrafficIntegrationTest, SinkWithMaxBytesStopsExactlyThere) {
  auto [socket, peer] = MustPeered();
  Background sink([&socket = socket] { return socket.Sink(1000); });
  ASSERT_TRUE(peer->SendAll(std::string(3000, 'z')));
  absl::StatusOr<v1::TrafficResponse> result = sink.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_BYTES);
  EXPECT_EQ(result->bytes_received(), 1000u);
  // The rest is still there for the next reader.
  absl::StatusOr<std::string> rest =
      socket.Recv(2000, MSG_WAITALL, absl::Now() + kWait);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->size(), 2000u);
}

TEST_F(TrafficIntegrationTest, SourceForADurationEndsWithDuration) {
  auto [socket, peer] = MustPeered();
  v1::SourceTraffic source;
  source.set_pattern(v1::TRAFFIC_PATTERN_ZERO);
  source.set_rate_bytes_per_second(200000);
  source.set_shutdown_write_at_end(true);  // only after `bytes`: not here
  absl::StatusOr<v1::TrafficResponse> result =
      socket.Source(source, absl::Milliseconds(400));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_DURATION);
  EXPECT_GE(Elapsed(*result), absl::Milliseconds(400));
  EXPECT_GT(result->bytes_sent(), 0u);
  int error = 0;
  const std::string got = peer->Read(result->bytes_sent(), &error);
  EXPECT_EQ(got, std::string(result->bytes_sent(), '\0'));
}

TEST_F(TrafficIntegrationTest, UdpEchoRepliesToEachDatagramsSource) {
  Socket socket = MustSocket(v1::SOCKET_TYPE_DGRAM);
  absl::StatusOr<v1::Address> bound = socket.Bind(InetAddress("127.0.0.1", 0));
  ASSERT_TRUE(bound.ok()) << bound.status();
  Background echo([&socket] { return socket.Echo(10 * 512); });
  Peer peer(SOCK_DGRAM);
  ASSERT_NE(peer.Bind(), 0u);
  ASSERT_TRUE(peer.Connect(*bound));
  peer.SetRecvTimeout(kWait);
  for (int i = 0; i < 10; ++i) {
    const std::string datagram = Pattern(v1::TRAFFIC_PATTERN_RANDOM, i, 512);
    ASSERT_EQ(::send(peer.fd(), datagram.data(), datagram.size(), 0), 512);
    char buffer[1024];
    ASSERT_EQ(::recv(peer.fd(), buffer, sizeof(buffer), 0), 512);
    EXPECT_EQ(std::string(buffer, 512), datagram);
  }
  absl::StatusOr<v1::TrafficResponse> result = echo.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_BYTES);
  EXPECT_EQ(result->datagrams_received(), 10u);
  EXPECT_EQ(result->datagrams_sent(), 10u);
  EXPECT_EQ(result->bytes_sent(), 5120u);
}

TEST_F(TrafficIntegrationTest, RateLimitIsALowerBoundOnElapsedTime) {
  auto [client, server] = MustAgentPair();
  Background sink([&server = server] { return server.Sink(); });
  constexpr uint64_t kBytes = 100000;
  constexpr uint64_t kRate = 200000;  // 0.5 s
  v1::SourceTraffic source = SourceOf(kBytes);
  source.set_rate_bytes_per_second(kRate);
  absl::StatusOr<v1::TrafficResponse> sent = client.Source(source);
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->bytes_sent(), kBytes);
  // bytes / rate, less one pacing slice (1/20 s) of slack.
  EXPECT_GE(Elapsed(*sent), absl::Milliseconds(450));
  ASSERT_TRUE(sink.Wait().ok());

  // The fault's bandwidth limit paces an echo's replies the same way.
  auto [socket, peer] = MustPeered();
  v1::Faults faults;
  faults.set_send_rate_bytes_per_second(100000);
  ASSERT_TRUE(socket.SetFaults(faults).ok());
  Background echo([&socket = socket] { return socket.Echo(50000); });
  const absl::Time start = absl::Now();
  ASSERT_TRUE(peer->SendAll(std::string(50000, 'e')));
  int error = 0;
  EXPECT_EQ(peer->Read(50000, &error).size(), 50000u);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450));
  absl::StatusOr<v1::TrafficResponse> echoed = echo.Wait();
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(echoed->end(), v1::TRAFFIC_END_BYTES);
}

TEST_F(TrafficIntegrationTest, SlicedAndDelayedSendsDeliverEveryByte) {
  auto [socket, peer] = MustPeered();
  v1::Faults faults;
  faults.set_slice_bytes(100);
  faults.mutable_slice_delay()->set_nanos(1000000);
  faults.mutable_send_delay()->set_nanos(20000000);
  ASSERT_TRUE(socket.SetFaults(faults).ok());
  constexpr size_t kBytes = 5000;
  absl::StatusOr<v1::TrafficResponse> sent =
      socket.Source(SourceOf(kBytes, v1::TRAFFIC_PATTERN_RANDOM, 9));
  ASSERT_TRUE(sent.ok()) << sent.status();
  // 50 slices with 1 ms between them, after a 20 ms delay: a lower bound.
  EXPECT_GE(Elapsed(*sent), absl::Milliseconds(20 + 49));
  int error = -2;
  const std::string got = peer->Read(kBytes + 1, &error);
  EXPECT_EQ(error, 0);  // EOF after the shutdown
  EXPECT_EQ(got, Pattern(v1::TRAFFIC_PATTERN_RANDOM, 9, kBytes));
  EXPECT_EQ(sent->checksum(), StreamChecksumHex(got));
}

TEST_F(TrafficIntegrationTest, CloseAfterBytesGivesEofAfterExactlyNBytes) {
  auto [socket, peer] = MustPeered();
  v1::Faults faults;
  faults.set_close_after_bytes(7777);
  ASSERT_TRUE(socket.SetFaults(faults).ok());
  absl::StatusOr<v1::TrafficResponse> sent = socket.Source(SourceOf(1 << 20));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->end(), v1::TRAFFIC_END_FAULT);
  EXPECT_EQ(sent->bytes_sent(), 7777u);
  int error = -2;
  const std::string got = peer->Read(1 << 20, &error);
  EXPECT_EQ(error, 0);
  EXPECT_EQ(got, Pattern(v1::TRAFFIC_PATTERN_SEQUENCE, 0, 7777));
  // The handle is closed: calls on it are EBADF.
  EXPECT_EQ(socket.SetFaults(v1::Faults()).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TrafficIntegrationTest, CloseAfterBytesWithResetGivesEconnreset) {
  auto [socket, peer] = MustPeered();
  v1::Faults faults;
  faults.set_close_after_bytes(4096);
  faults.set_close_with_reset(true);
  ASSERT_TRUE(socket.SetFaults(faults).ok());
  Background sink([&socket = socket] { return socket.Sink(); });
  ASSERT_TRUE(peer->SendAll(std::string(4096, 'r')));
  absl::StatusOr<v1::TrafficResponse> result = sink.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_FAULT);
  EXPECT_EQ(result->bytes_received(), 4096u);
  int error = 0;
  peer->Read(1, &error);
  EXPECT_EQ(error, ECONNRESET);
}

TEST_F(TrafficIntegrationTest, StopReadingFillsTheWindowAndClearingResumes) {
  auto [socket, peer] = MustPeered();
  v1::Faults faults;
  faults.set_stop_reading(true);
  ASSERT_TRUE(socket.SetFaults(faults).ok());
  Background sink([&socket = socket] { return socket.Sink(); });
  const std::string chunk(65536, 's');
  uint64_t written = 0;
  bool blocked = false;
  // Bounded by time and by 256 MiB, far above any loopback window.
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up && written < (256u << 20)) {
    const ssize_t n = ::send(peer->fd(), chunk.data(), chunk.size(),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      blocked = true;
      break;
    }
    ASSERT_GT(n, 0) << "errno " << errno;
    written += static_cast<uint64_t>(n);
  }
  ASSERT_TRUE(blocked) << written << " bytes sent without EAGAIN";
  EXPECT_FALSE(sink.done());
  ASSERT_TRUE(socket.SetFaults(v1::Faults()).ok());
  ::shutdown(peer->fd(), SHUT_WR);
  absl::StatusOr<v1::TrafficResponse> result = sink.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_EOF);
  EXPECT_EQ(result->bytes_received(), written);
  EXPECT_EQ(result->checksum(), [&] {
    StreamChecksum hash;
    for (uint64_t i = 0; i < written / chunk.size(); ++i) hash.Update(chunk);
    hash.Update(chunk.substr(0, written % chunk.size()));
    return hash.Hex();
  }());
}

TEST_F(TrafficIntegrationTest,
       AbortGivesThePeerEconnresetAndInvalidatesSocket) {
  auto [socket, peer] = MustPeered();
  ASSERT_TRUE(socket.Abort().ok());
  EXPECT_FALSE(socket.valid());
  int error = 0;
  peer->Read(1, &error);
  EXPECT_EQ(error, ECONNRESET);
  EXPECT_EQ(socket.Abort().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(TrafficIntegrationTest, RunningTrafficEndsWithAStatus) {
  {  // The caller's deadline cancels it; the socket stays usable.
    auto [socket, peer] = MustPeered();
    absl::StatusOr<v1::TrafficResponse> result =
        socket.Sink(0, std::nullopt, absl::Now() + absl::Milliseconds(200));
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded)
        << result.status();
    // The agent sees the end of the call asynchronously: until it has, its
    // receive could still take the bytes below.
    ASSERT_TRUE(WaitingOpsReach(0));
    Background sink([&socket = socket] { return socket.Sink(3); });
    ASSERT_TRUE(peer->SendAll("abc"));
    EXPECT_TRUE(sink.Wait().ok());
  }
  {  // Closing the handle.
    auto [socket, peer] = MustPeered();
    Socket same = agent_->AttachSocket(socket.handle());
    Background sink([&socket = socket] { return socket.Sink(); });
    ASSERT_TRUE(WaitingOpsReach(1));  // the sink runs in the agent
    ASSERT_TRUE(same.Close().ok());
    EXPECT_EQ(sink.Wait().status().code(), absl::StatusCode::kAborted);
  }
  {  // Ending the session.
    std::unique_ptr<Agent> other = MustAgent();
    ASSERT_NE(other, nullptr);
    absl::StatusOr<Socket> socket =
        other->CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
    ASSERT_TRUE(socket.ok()) << socket.status();
    ASSERT_TRUE(socket->Bind(InetAddress("127.0.0.1", 0)).ok());
    Background sink([&socket] { return socket->Sink(); });
    ASSERT_TRUE(WaitingOpsReach(1));
    ASSERT_TRUE(other->CloseSession().ok());
    EXPECT_EQ(sink.Wait().status().code(), absl::StatusCode::kAborted);
  }
}

TEST_F(TrafficIntegrationTest, BadInputIsInvalidArgumentNamingTheField) {
  Socket socket = MustSocket();
  absl::StatusOr<v1::TrafficResponse> result =
      socket.Traffic(v1::TrafficRequest());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), StartsWith("kind"));

  v1::SourceTraffic endless;
  result = socket.Source(endless);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()),
              StartsWith("source.bytes"));

  v1::SourceTraffic huge = SourceOf(10);
  huge.set_datagram_bytes(1 << 20);
  result = socket.Source(huge);
  EXPECT_THAT(std::string(result.status().message()),
              StartsWith("source.datagram_bytes"));

  v1::SourceTraffic odd = SourceOf(10);
  odd.set_pattern(static_cast<v1::TrafficPattern>(42));
  result = socket.Source(odd);
  EXPECT_THAT(std::string(result.status().message()),
              StartsWith("source.pattern"));

  result = socket.Sink(0, absl::Seconds(-1));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), StartsWith("duration"));

  v1::Faults faults;
  faults.mutable_slice_delay()->set_seconds(-3);
  absl::Status refused = socket.SetFaults(faults);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), StartsWith("faults.slice_delay"));
}

// Its own agent process: SIGTERM while a Traffic waits ends the call with a
// status and the agent still exits cleanly (every reactor finished).
TEST(TrafficShutdownTest, AgentShutdownEndsRunningTrafficAndExitsCleanly) {
  testing::AgentProcess process;
  ASSERT_TRUE(process.Start(SOCKAGENTD_PATH)) << process.Log();
  AgentOptions options;
  options.target = process.target();
  options.connect_timeout = absl::Seconds(10);
  options.call_timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
  ASSERT_TRUE(agent.ok()) << agent.status();
  absl::StatusOr<Socket> socket =
      (*agent)->CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(socket.ok()) << socket.status();
  ASSERT_TRUE(socket->Bind(InetAddress("127.0.0.1", 0)).ok());
  // Released: after the agent is gone there is nothing left to close.
  Socket detached = (*agent)->AttachSocket(socket->Release());
  Background sink([&detached] { return detached.Sink(); });
  // Bounded wait until the sink waits inside the agent.
  ASSERT_TRUE(test::WaitFor(
      [&] {
        absl::StatusOr<v1::GetAgentInfoResponse> info =
            (*agent)->GetAgentInfo();
        return info.ok() && info->stats().waiting_operations() > 0;
      },
      test::kDefaultWait, "the sink to wait inside the agent"));
  EXPECT_EQ(process.StopWith(SIGTERM), 0) << process.Log();
  absl::StatusOr<v1::TrafficResponse> result = sink.Wait();
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.status().code(), absl::StatusCode::kInternal)
      << result.status();
}

}  // namespace
}  // namespace sockagent
