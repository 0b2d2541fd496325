// Tests for AgentCore's agent-side traffic and faults (server/core/traffic.h)
// without gRPC, on real kernel sockets on 127.0.0.1 (ports chosen by the
// kernel); errno paths through FakeSocketOps. No timing is asserted as an
// upper bound; every wait is bounded.

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"
#include "proto/traffic_data.h"
#include "server/core/agent_core.h"
#include "server/io/cancel_token.h"
#include "tests/common/wait.h"
#include "tests/server/core_test_util.h"
#include "tests/server/fake_socket_ops.h"

namespace sockagent {
namespace {

using core_test::ErrnoOf;
using core_test::Loopback;
using core_test::Waiter;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(20);

std::string Expected(v1::TrafficPattern pattern, uint64_t seed, size_t n) {
  std::string bytes(n, '\0');
  FillPattern(pattern, seed, 0, bytes.data(), n);
  return bytes;
}

void SetMillis(int64_t millis, google::protobuf::Duration* out) {
  out->set_seconds(millis / 1000);
  out->set_nanos(static_cast<int32_t>((millis % 1000) * 1000000));
}

// A plain kernel socket of the test, connected to an agent listener.
class KernelPeer {
 public:
  explicit KernelPeer(int type) : fd_(::socket(AF_INET, type, 0)) {}
  ~KernelPeer() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  bool Connect(uint32_t port) {
    sockaddr_in to = To(port);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0;
  }
  uint32_t Bind() {
    sockaddr_in local = To(0);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      return 0;
    }
    socklen_t len = sizeof(local);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    return ntohs(local.sin_port);
  }
  void SetRecvTimeout(absl::Duration timeout) {
    timeval tv = absl::ToTimeval(timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  // Reads until EOF or an error; returns the bytes and sets *error (0 at EOF).
  std::string ReadAll(int* error) {
    SetRecvTimeout(kWait);
    std::string out;
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n > 0) {
        out.append(buffer, static_cast<size_t>(n));
        continue;
      }
      *error = n == 0 ? 0 : errno;
      return out;
    }
  }

 private:
  static sockaddr_in To(uint32_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    return address;
  }
  int fd_;
};

class TrafficTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AgentCore::Options options;
    options.ops = &fake_;
    options.reap_interval = absl::Milliseconds(20);
    absl::StatusOr<std::unique_ptr<AgentCore>> core =
        AgentCore::Create(options);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = *std::move(core);
    ctx_ = NewSession();
  }

  CallContext NewSession() {
    v1::CreateSessionRequest request;
    request.mutable_ttl()->set_seconds(120);
    absl::StatusOr<v1::CreateSessionResponse> response =
        core_->CreateSession(request);
    EXPECT_TRUE(response.ok()) << response.status();
    CallContext ctx;
    if (response.ok()) ctx.session_id = response->session_id();
    return ctx;
  }

  std::string MustSocket(int type = SOCK_STREAM) {
    v1::SocketRequest request;
    request.set_family(v1::FAMILY_INET);
    request.set_type(static_cast<v1::SocketType>(type));
    absl::StatusOr<v1::SocketResponse> response = core_->Socket(ctx_, request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->handle() : "";
  }

  uint32_t MustBind(const std::string& handle) {
    v1::BindRequest request;
    request.set_handle(handle);
    *request.mutable_address() = Loopback();
    absl::StatusOr<v1::BindResponse> response = core_->Bind(ctx_, request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->address().inet().port() : 0;
  }

  // An agent listener; returns its port.
  uint32_t MustListen(std::string* listener) {
    *listener = MustSocket();
    const uint32_t port = MustBind(*listener);
    v1::ListenRequest listen;
    listen.set_handle(*listener);
    EXPECT_TRUE(core_->Listen(ctx_, listen).ok());
    return port;
  }

  std::string MustAccept(const std::string& listener) {
    v1::AcceptRequest request;
    request.set_handle(listener);
    Waiter<v1::AcceptResponse> accepted;
    core_->Accept(ctx_, request, accepted.callback());
    absl::StatusOr<v1::AcceptResponse> response = accepted.Wait();
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->handle() : "";
  }

  // Two agent sockets connected to each other: {client, server}.
  std::pair<std::string, std::string> MustAgentPair() {
    std::string listener;
    const uint32_t port = MustListen(&listener);
    std::string client = MustSocket();
    v1::ConnectRequest connect;
    connect.set_handle(client);
    *connect.mutable_address() = Loopback(port);
    Waiter<v1::ConnectResponse> connected;
    core_->Connect(ctx_, connect, connected.callback());
    EXPECT_TRUE(connected.Wait().ok());
    return {client, MustAccept(listener)};
  }

  Waiter<v1::TrafficResponse> Start(v1::TrafficRequest request,
                                    const std::string& handle,
                                    const CallContext* ctx = nullptr) {
    request.set_handle(handle);
    Waiter<v1::TrafficResponse> waiter;
    core_->Traffic(ctx != nullptr ? *ctx : ctx_, request, waiter.callback());
    return waiter;
  }

  absl::Status SetFaults(const std::string& handle, const v1::Faults& faults) {
    v1::SetFaultsRequest request;
    request.set_handle(handle);
    *request.mutable_faults() = faults;
    return core_->SetFaults(ctx_, request).status();
  }

  static v1::TrafficRequest SourceOf(uint64_t bytes, v1::TrafficPattern pattern,
                                     uint64_t seed = 0, bool shutdown = true) {
    v1::TrafficRequest request;
    request.mutable_source()->set_bytes(bytes);
    request.mutable_source()->set_pattern(pattern);
    request.mutable_source()->set_seed(seed);
    request.mutable_source()->set_shutdown_write_at_end(shutdown);
    return request;
  }
  static v1::TrafficRequest SinkOf(uint64_t max_bytes = 0) {
    v1::TrafficRequest request;
    request.mutable_sink()->set_max_bytes(max_bytes);
    return request;
  }

  // Declared before core_ so that it outlives the core's engine thread.
  FakeSocketOps fake_;
  std::unique_ptr<AgentCore> core_;
  CallContext ctx_;
};

// --- Validation ---

TEST_F(TrafficTest, BadRequestsAreInvalidArgumentNamingTheField) {
  const std::string handle = MustSocket();
  struct Case {
    v1::TrafficRequest request;
    std::string field;
  };
  std::vector<Case> cases;
  cases.push_back({v1::TrafficRequest(), "kind"});
  {
    v1::TrafficRequest r;
    r.mutable_source()->set_pattern(v1::TRAFFIC_PATTERN_SEQUENCE);
    cases.push_back({r, "source.bytes"});
  }
  {
    v1::TrafficRequest r = SourceOf(10, static_cast<v1::TrafficPattern>(9));
    cases.push_back({r, "source.pattern"});
  }
  {
    v1::TrafficRequest r = SourceOf(10, v1::TRAFFIC_PATTERN_ZERO);
    r.mutable_source()->set_datagram_bytes(70000);
    cases.push_back({r, "source.datagram_bytes"});
  }
  {
    v1::TrafficRequest r = SinkOf();
    r.mutable_duration()->set_seconds(-1);
    cases.push_back({r, "duration"});
  }
  {
    v1::TrafficRequest r = SinkOf();
    r.mutable_duration()->set_nanos(-5);
    cases.push_back({r, "duration"});
  }
  {
    v1::TrafficRequest r = SourceOf(10, v1::TRAFFIC_PATTERN_ZERO);
    *r.mutable_source()->mutable_destination() = Loopback(9);
    cases.push_back({r, "source.destination"});  // a stream socket
  }
  for (const Case& c : cases) {
    absl::StatusOr<v1::TrafficResponse> result =
        Start(c.request, handle).Wait();
    ASSERT_FALSE(result.ok()) << c.field;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << c.field << ": " << result.status();
    EXPECT_THAT(std::string(result.status().message()), StartsWith(c.field))
        << result.status();
  }
  v1::Faults faults;
  faults.mutable_send_delay()->set_seconds(-1);
  absl::Status refused = SetFaults(handle, faults);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), StartsWith("faults.send_delay"));
  faults.Clear();
  faults.mutable_slice_delay()->set_nanos(2000000000);
  refused = SetFaults(handle, faults);
  EXPECT_THAT(std::string(refused.message()), StartsWith("faults.slice_delay"));
}

TEST_F(TrafficTest, UnknownHandleIsNotFound) {
  MustSocket();
  absl::StatusOr<v1::TrafficResponse> result =
      Start(SinkOf(), "h-0000000000000000-0000000000000000").Wait();
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.status().code(), absl::StatusCode::kOk);
}

// --- Data ---

TEST_F(TrafficTest, SourceToSinkAgreesOnBytesAndChecksumForEveryPattern) {
  for (v1::TrafficPattern pattern :
       {v1::TRAFFIC_PATTERN_SEQUENCE, v1::TRAFFIC_PATTERN_RANDOM,
        v1::TRAFFIC_PATTERN_ZERO}) {
    auto [client, server] = MustAgentPair();
    constexpr uint64_t kBytes = 1000003;  // not a multiple of any chunk
    Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server);
    absl::StatusOr<v1::TrafficResponse> sent =
        Start(SourceOf(kBytes, pattern, 77), client).Wait();
    absl::StatusOr<v1::TrafficResponse> received = sink.Wait();
    ASSERT_TRUE(sent.ok()) << sent.status();
    ASSERT_TRUE(received.ok()) << received.status();
    EXPECT_EQ(sent->bytes_sent(), kBytes);
    EXPECT_EQ(sent->end(), v1::TRAFFIC_END_BYTES);
    EXPECT_EQ(received->bytes_received(), kBytes);
    EXPECT_EQ(received->end(), v1::TRAFFIC_END_EOF);
    EXPECT_EQ(sent->checksum(), received->checksum());
    EXPECT_EQ(sent->checksum(),
              StreamChecksumHex(Expected(pattern, 77, kBytes)));
    EXPECT_EQ(sink.calls(), 1);
  }
}

TEST_F(TrafficTest, EchoSendsBackWhatArrivesAndEndsAtEof) {
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer peer(SOCK_STREAM);
  ASSERT_TRUE(peer.Connect(port));
  const std::string server = MustAccept(listener);
  Waiter<v1::TrafficResponse> echo = Start(
      [] {
        v1::TrafficRequest r;
        r.mutable_echo();
        return r;
      }(),
      server);
  const std::string data = Expected(v1::TRAFFIC_PATTERN_RANDOM, 5, 300000);
  std::string back;
  size_t written = 0;
  peer.SetRecvTimeout(kWait);
  // Bounded: every round moves at least one byte or fails.
  while (back.size() < data.size()) {
    if (written < data.size()) {
      const ssize_t n =
          ::send(peer.fd(), data.data() + written,
                 std::min<size_t>(16384, data.size() - written), MSG_NOSIGNAL);
      ASSERT_GT(n, 0);
      written += static_cast<size_t>(n);
    }
    char buffer[65536];
    const ssize_t n = ::recv(peer.fd(), buffer, sizeof(buffer),
                             written < data.size() ? MSG_DONTWAIT : 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    ASSERT_GT(n, 0) << "errno " << errno;
    back.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(back, data);
  ::shutdown(peer.fd(), SHUT_WR);
  absl::StatusOr<v1::TrafficResponse> result = echo.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_EOF);
  EXPECT_EQ(result->bytes_received(), data.size());
  EXPECT_EQ(result->bytes_sent(), data.size());
  EXPECT_EQ(result->checksum(), StreamChecksumHex(data));
}

TEST_F(TrafficTest, UdpSourceToADestinationAndDatagramEcho) {
  const std::string echo_socket = MustSocket(SOCK_DGRAM);
  const uint32_t echo_port = MustBind(echo_socket);
  v1::TrafficRequest echo_request;
  echo_request.mutable_echo()->set_max_bytes(5 * 100);
  Waiter<v1::TrafficResponse> echo = Start(echo_request, echo_socket);

  KernelPeer peer(SOCK_DGRAM);
  ASSERT_NE(peer.Bind(), 0u);
  ASSERT_TRUE(peer.Connect(echo_port));
  peer.SetRecvTimeout(kWait);
  for (int i = 0; i < 5; ++i) {
    const std::string datagram(100, static_cast<char>('a' + i));
    ASSERT_EQ(::send(peer.fd(), datagram.data(), datagram.size(), 0), 100);
    char buffer[200];
    ASSERT_EQ(::recv(peer.fd(), buffer, sizeof(buffer), 0), 100);
    EXPECT_EQ(std::string(buffer, 100), datagram);
  }
  absl::StatusOr<v1::TrafficResponse> echoed = echo.Wait();
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(echoed->end(), v1::TRAFFIC_END_BYTES);
  EXPECT_EQ(echoed->datagrams_received(), 5u);
  EXPECT_EQ(echoed->datagrams_sent(), 5u);

  // A source on an unconnected socket sends datagrams to its destination.
  KernelPeer receiver(SOCK_DGRAM);
  const uint32_t receiver_port = receiver.Bind();
  ASSERT_NE(receiver_port, 0u);
  const std::string source = MustSocket(SOCK_DGRAM);
  v1::TrafficRequest request = SourceOf(2500, v1::TRAFFIC_PATTERN_SEQUENCE);
  request.mutable_source()->set_datagram_bytes(1000);
  *request.mutable_source()->mutable_destination() = Loopback(receiver_port);
  absl::StatusOr<v1::TrafficResponse> sent = Start(request, source).Wait();
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->datagrams_sent(), 3u);
  EXPECT_EQ(sent->bytes_sent(), 2500u);
  receiver.SetRecvTimeout(kWait);
  std::string got;
  for (int i = 0; i < 3; ++i) {
    char buffer[2000];
    const ssize_t n = ::recv(receiver.fd(), buffer, sizeof(buffer), 0);
    ASSERT_GT(n, 0);
    got.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, Expected(v1::TRAFFIC_PATTERN_SEQUENCE, 0, 2500));
  EXPECT_EQ(sent->checksum(), StreamChecksumHex(got));
}

TEST_F(TrafficTest, SourceForADurationEndsWithDuration) {
  auto [client, server] = MustAgentPair();
  Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server);
  v1::TrafficRequest request;
  request.mutable_source()->set_pattern(v1::TRAFFIC_PATTERN_ZERO);
  request.mutable_source()->set_rate_bytes_per_second(100000);
  SetMillis(300, request.mutable_duration());
  absl::StatusOr<v1::TrafficResponse> sent = Start(request, client).Wait();
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->end(), v1::TRAFFIC_END_DURATION);
  EXPECT_GT(sent->bytes_sent(), 0u);
  EXPECT_GE(absl::Seconds(sent->elapsed().seconds()) +
                absl::Nanoseconds(sent->elapsed().nanos()),
            absl::Milliseconds(300));
  v1::CloseRequest close;
  close.set_handle(client);
  ASSERT_TRUE(core_->Close(ctx_, close).ok());
  absl::StatusOr<v1::TrafficResponse> received = sink.Wait();
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(received->bytes_received(), sent->bytes_sent());
  EXPECT_EQ(received->checksum(), sent->checksum());
}

TEST_F(TrafficTest, RateLimitedSourceTakesAtLeastBytesOverRate) {
  auto [client, server] = MustAgentPair();
  Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server);
  v1::TrafficRequest request = SourceOf(60000, v1::TRAFFIC_PATTERN_SEQUENCE);
  request.mutable_source()->set_rate_bytes_per_second(100000);
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::TrafficResponse> sent = Start(request, client).Wait();
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->bytes_sent(), 60000u);
  // 0.6 s at the rate, minus one 50 ms pacing slice of slack.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(500));
  ASSERT_TRUE(sink.Wait().ok());
}

// --- Faults ---

TEST_F(TrafficTest, SlicedDelayedRateLimitedSendsStillDeliverEveryByte) {
  auto [client, server] = MustAgentPair();
  v1::Faults faults;
  faults.set_slice_bytes(1000);
  SetMillis(1, faults.mutable_slice_delay());
  SetMillis(5, faults.mutable_send_delay());
  faults.set_send_rate_bytes_per_second(1000000);
  ASSERT_TRUE(SetFaults(client, faults).ok());
  Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server);
  absl::StatusOr<v1::TrafficResponse> sent =
      Start(SourceOf(30000, v1::TRAFFIC_PATTERN_RANDOM, 3), client).Wait();
  ASSERT_TRUE(sent.ok()) << sent.status();
  absl::StatusOr<v1::TrafficResponse> received = sink.Wait();
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(received->bytes_received(), 30000u);
  EXPECT_EQ(received->checksum(), sent->checksum());
}

TEST_F(TrafficTest, CloseAfterBytesSendsExactlyThatManyThenFin) {
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer peer(SOCK_STREAM);
  ASSERT_TRUE(peer.Connect(port));
  const std::string server = MustAccept(listener);
  v1::Faults faults;
  faults.set_close_after_bytes(12345);
  ASSERT_TRUE(SetFaults(server, faults).ok());
  absl::StatusOr<v1::TrafficResponse> sent =
      Start(SourceOf(1000000, v1::TRAFFIC_PATTERN_SEQUENCE), server).Wait();
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->end(), v1::TRAFFIC_END_FAULT);
  EXPECT_EQ(sent->bytes_sent(), 12345u);
  int error = -1;
  const std::string got = peer.ReadAll(&error);
  EXPECT_EQ(error, 0) << "EOF expected";
  EXPECT_EQ(got.size(), 12345u);
  // The fault closed the handle: calls on it are EBADF.
  EXPECT_EQ(SetFaults(server, v1::Faults()).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TrafficTest, CloseAfterBytesWithResetGivesThePeerEconnreset) {
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer peer(SOCK_STREAM);
  ASSERT_TRUE(peer.Connect(port));
  const std::string server = MustAccept(listener);
  v1::Faults faults;
  faults.set_close_after_bytes(100);
  faults.set_close_with_reset(true);
  ASSERT_TRUE(SetFaults(server, faults).ok());
  // A sink that closes after the peer's first 100 bytes.
  Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server);
  const std::string data(100, 'x');
  ASSERT_EQ(::send(peer.fd(), data.data(), data.size(), MSG_NOSIGNAL), 100);
  absl::StatusOr<v1::TrafficResponse> received = sink.Wait();
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(received->end(), v1::TRAFFIC_END_FAULT);
  EXPECT_EQ(received->bytes_received(), 100u);
  int error = 0;
  peer.ReadAll(&error);
  EXPECT_EQ(error, ECONNRESET);
}

TEST_F(TrafficTest, StopReadingClosesTheWindowUntilCleared) {
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer peer(SOCK_STREAM);
  ASSERT_TRUE(peer.Connect(port));
  const std::string server = MustAccept(listener);
  v1::Faults faults;
  faults.set_stop_reading(true);
  ASSERT_TRUE(SetFaults(server, faults).ok());
  Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server);
  // Non-blocking sends until the kernel refuses: the window closed. Bounded
  // by 10 s (and ~64 MiB), far above loopback buffers.
  const std::string chunk(65536, 'w');
  uint64_t written = 0;
  bool blocked = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up && written < (64u << 20)) {
    const ssize_t n = ::send(peer.fd(), chunk.data(), chunk.size(),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      blocked = true;
      break;
    }
    ASSERT_GT(n, 0) << "errno " << errno;
    written += static_cast<uint64_t>(n);
  }
  ASSERT_TRUE(blocked) << "wrote " << written << " bytes without EAGAIN";
  EXPECT_FALSE(sink.done());
  ASSERT_TRUE(SetFaults(server, v1::Faults()).ok());
  ::shutdown(peer.fd(), SHUT_WR);
  absl::StatusOr<v1::TrafficResponse> received = sink.Wait();
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ(received->end(), v1::TRAFFIC_END_EOF);
  EXPECT_EQ(received->bytes_received(), written);
}

TEST_F(TrafficTest, AbortGivesThePeerEconnresetAndForgetsTheHandle) {
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer peer(SOCK_STREAM);
  ASSERT_TRUE(peer.Connect(port));
  const std::string server = MustAccept(listener);
  v1::AbortRequest abort;
  abort.set_handle(server);
  ASSERT_TRUE(core_->Abort(ctx_, abort).ok());
  int error = 0;
  peer.ReadAll(&error);
  EXPECT_EQ(error, ECONNRESET);
  // The handle is closed: a second Abort is EBADF.
  EXPECT_EQ(core_->Abort(ctx_, abort).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// --- Every traffic ends with a status ---

TEST_F(TrafficTest, CancelEndsRunningTrafficWithCancelled) {
  auto [client, server] = MustAgentPair();
  CancelToken cancel;
  CallContext ctx = ctx_;
  ctx.cancel = &cancel;
  Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server, &ctx);
  // Running: the sink waits in the engine for data that never comes.
  ASSERT_TRUE(test::WaitFor([&] { return core_->waiting_ops() > 0; },
                            test::kDefaultWait,
                            "the sink to wait on its socket"));
  EXPECT_FALSE(sink.done());
  cancel.Cancel();
  absl::StatusOr<v1::TrafficResponse> result = sink.Wait();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled)
      << result.status();
  // The socket stays usable.
  absl::StatusOr<v1::TrafficResponse> again =
      Start(SourceOf(10, v1::TRAFFIC_PATTERN_ZERO), server).Wait();
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(TrafficTest, CancelDuringADelayEndsWithCancelled) {
  auto [client, server] = MustAgentPair();
  v1::Faults faults;
  faults.mutable_send_delay()->set_seconds(3600);
  ASSERT_TRUE(SetFaults(client, faults).ok());
  CancelToken cancel;
  CallContext ctx = ctx_;
  ctx.cancel = &cancel;
  Waiter<v1::TrafficResponse> source =
      Start(SourceOf(10, v1::TRAFFIC_PATTERN_ZERO), client, &ctx);
  cancel.Cancel();
  EXPECT_EQ(source.Wait().status().code(), absl::StatusCode::kCancelled);
}

TEST_F(TrafficTest, CloseSessionOrDrainEndsRunningTraffic) {
  {
    auto [client, server] = MustAgentPair();
    Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server);
    v1::CloseRequest close;
    close.set_handle(server);
    ASSERT_TRUE(core_->Close(ctx_, close).ok());
    EXPECT_EQ(sink.Wait().status().code(), absl::StatusCode::kAborted);
  }
  {
    // The peer lives outside the session, so closing it brings no EOF.
    std::string listener;
    const uint32_t port = MustListen(&listener);
    KernelPeer peer(SOCK_STREAM);
    ASSERT_TRUE(peer.Connect(port));
    Waiter<v1::TrafficResponse> sink = Start(SinkOf(), MustAccept(listener));
    ASSERT_TRUE(core_->CloseSession(ctx_).ok());
    EXPECT_EQ(sink.Wait().status().code(), absl::StatusCode::kAborted);
  }
  ctx_ = NewSession();
  {
    auto [client, server] = MustAgentPair();
    Waiter<v1::TrafficResponse> sink = Start(SinkOf(), server);
    core_->Drain();
    EXPECT_EQ(sink.Wait().status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(sink.calls(), 1);
  }
}

TEST_F(TrafficTest, CallDeadlineEndsTrafficWithDeadlineExceeded) {
  auto [client, server] = MustAgentPair();
  CallContext ctx = ctx_;
  ctx.deadline = absl::Now() + absl::Milliseconds(50);
  EXPECT_EQ(Start(SinkOf(), server, &ctx).Wait().status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(TrafficTest, InjectedEconnresetOnRecvEndsTheSinkWithItsErrno) {
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer peer(SOCK_STREAM);
  ASSERT_TRUE(peer.Connect(port));
  const std::string server = MustAccept(listener);
  fake_.FailNext(FakeSocketOps::Call::kRecv, ECONNRESET);
  ASSERT_EQ(::send(peer.fd(), "x", 1, MSG_NOSIGNAL), 1);
  absl::StatusOr<v1::TrafficResponse> result = Start(SinkOf(), server).Wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ErrnoOf(result.status()), ECONNRESET) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("recv"));
}

TEST_F(TrafficTest, EndingsLeaveNoDescriptorBehind) {
  auto count_fds = [] {
    int count = 0;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
      while (::readdir(dir) != nullptr) ++count;
      ::closedir(dir);
    }
    return count;
  };
  const int before = count_fds();
  {
    std::string listener;
    const uint32_t port = MustListen(&listener);
    KernelPeer first(SOCK_STREAM);
    ASSERT_TRUE(first.Connect(port));
    const std::string faulted = MustAccept(listener);
    KernelPeer second(SOCK_STREAM);
    ASSERT_TRUE(second.Connect(port));
    const std::string aborted = MustAccept(listener);
    v1::Faults faults;
    faults.set_close_after_bytes(10);
    faults.set_close_with_reset(true);
    ASSERT_TRUE(SetFaults(faulted, faults).ok());
    ASSERT_TRUE(
        Start(SourceOf(100, v1::TRAFFIC_PATTERN_ZERO), faulted).Wait().ok());
    Waiter<v1::TrafficResponse> sink = Start(SinkOf(), aborted);
    v1::AbortRequest abort;
    abort.set_handle(aborted);
    ASSERT_TRUE(core_->Abort(ctx_, abort).ok());
    EXPECT_EQ(sink.Wait().status().code(), absl::StatusCode::kAborted);
    v1::CloseRequest close;
    close.set_handle(listener);
    ASSERT_TRUE(core_->Close(ctx_, close).ok());
  }
  // The closes are synchronous; the wait only absorbs stragglers.
  EXPECT_TRUE(test::WaitFor(
      [&] { return count_fds() == before; }, test::kDefaultWait,
      "the descriptor count to return to " + std::to_string(before)));
  EXPECT_EQ(count_fds(), before);
}

TEST_F(TrafficTest, SeqpacketEchoAnswersOnTheConnectionAndEndsAtEof) {
  v1::SocketRequest socket;
  socket.set_family(v1::FAMILY_UNIX);
  socket.set_type(v1::SOCKET_TYPE_SEQPACKET);
  absl::StatusOr<v1::SocketResponse> listener = core_->Socket(ctx_, socket);
  ASSERT_TRUE(listener.ok()) << listener.status();
  const std::string name = absl::StrCat("sockagent-traffic-", ::getpid());
  v1::BindRequest bind;
  bind.set_handle(listener->handle());
  bind.mutable_address()->mutable_unix()->set_abstract(name);
  ASSERT_TRUE(core_->Bind(ctx_, bind).ok());
  v1::ListenRequest listen;
  listen.set_handle(listener->handle());
  ASSERT_TRUE(core_->Listen(ctx_, listen).ok());

  const int peer = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  ASSERT_GE(peer, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  const socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(::connect(peer, reinterpret_cast<sockaddr*>(&address), length), 0);
  const std::string accepted = MustAccept(listener->handle());
  v1::TrafficRequest request;
  request.mutable_echo();
  Waiter<v1::TrafficResponse> echo = Start(request, accepted);
  timeval tv = absl::ToTimeval(kWait);
  ::setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (const std::string message : {"one", "two!"}) {
    ASSERT_EQ(::send(peer, message.data(), message.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(message.size()));
    char buffer[64];
    const ssize_t n = ::recv(peer, buffer, sizeof(buffer), 0);
    ASSERT_EQ(n, static_cast<ssize_t>(message.size())) << "errno " << errno;
    EXPECT_EQ(std::string(buffer, static_cast<size_t>(n)), message);
  }
  ::close(peer);
  absl::StatusOr<v1::TrafficResponse> result = echo.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_EOF);
  EXPECT_EQ(result->datagrams_received(), 2u);
  EXPECT_EQ(result->datagrams_sent(), 2u);
  EXPECT_EQ(result->checksum(), StreamChecksumHex("onetwo!"));
}

// --- Faults on every send path (issue: Send ignored them) ---

TEST_F(TrafficTest, SendWaitsForTheSendDelay) {
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer peer(SOCK_STREAM);
  ASSERT_TRUE(peer.Connect(port));
  const std::string server = MustAccept(listener);
  v1::Faults faults;
  SetMillis(300, faults.mutable_send_delay());
  ASSERT_TRUE(SetFaults(server, faults).ok());
  const absl::Time start = absl::Now();
  v1::SendRequest send;
  send.set_handle(server);
  send.set_data("x");
  Waiter<v1::SendResponse> sent;
  core_->Send(ctx_, send, sent.callback());
  ASSERT_TRUE(sent.Wait().ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  char c = 0;
  peer.SetRecvTimeout(kWait);
  EXPECT_EQ(::recv(peer.fd(), &c, 1, 0), 1);
}

TEST_F(TrafficTest, SendStopsAtCloseAfterBytesAndResetsThePeer) {
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer peer(SOCK_STREAM);
  ASSERT_TRUE(peer.Connect(port));
  const std::string server = MustAccept(listener);
  v1::Faults faults;
  faults.set_close_after_bytes(3);
  faults.set_close_with_reset(true);
  ASSERT_TRUE(SetFaults(server, faults).ok());
  v1::SendRequest send;
  send.set_handle(server);
  send.set_data("yyyy");
  send.set_send_all(true);
  Waiter<v1::SendResponse> sent;
  core_->Send(ctx_, send, sent.callback());
  absl::StatusOr<v1::SendResponse> result = sent.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->bytes_sent(), 3u);
  int error = 0;
  EXPECT_EQ(peer.ReadAll(&error), "yyy");
  EXPECT_EQ(error, ECONNRESET);
  Waiter<v1::SendResponse> again;
  core_->Send(ctx_, send, again.callback());
  EXPECT_EQ(ErrnoOf(again.Wait().status()), EBADF);
}

TEST_F(TrafficTest, SetFaultsRefusesWhatTheSocketCannotObeyByName) {
  const std::string stream = MustSocket();
  v1::Faults loss;
  loss.set_loss_percent(5);
  absl::Status refused = SetFaults(stream, loss);
  EXPECT_TRUE(absl::IsInvalidArgument(refused));
  EXPECT_THAT(std::string(refused.message()),
              StartsWith("faults.loss_percent"));
  const std::string datagram = MustSocket(SOCK_DGRAM);
  EXPECT_TRUE(SetFaults(datagram, loss).ok());
  v1::Faults slice;
  slice.set_slice_bytes(4);
  EXPECT_THAT(std::string(SetFaults(datagram, slice).message()),
              StartsWith("faults.slice_bytes"));
  std::string listener;
  MustListen(&listener);
  v1::Faults delay;
  SetMillis(10, delay.mutable_send_delay());
  EXPECT_THAT(std::string(SetFaults(listener, delay).message()),
              HasSubstr("listening socket"));
}

TEST_F(TrafficTest, SendToDropsEveryDatagramAtFullLossUntilCleared) {
  const std::string socket = MustSocket(SOCK_DGRAM);
  KernelPeer peer(SOCK_DGRAM);
  const uint32_t port = peer.Bind();
  v1::Faults faults;
  faults.set_loss_percent(100);
  ASSERT_TRUE(SetFaults(socket, faults).ok());
  v1::SendToRequest send;
  send.set_handle(socket);
  *send.mutable_address() = Loopback(port);
  send.set_data("lost");
  for (int i = 0; i < 5; ++i) {
    Waiter<v1::SendToResponse> sent;
    core_->SendTo(ctx_, send, sent.callback());
    absl::StatusOr<v1::SendToResponse> result = sent.Wait();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->bytes_sent(), 4u);  // the sender cannot tell
  }
  ASSERT_TRUE(SetFaults(socket, v1::Faults()).ok());
  send.set_data("kept");
  Waiter<v1::SendToResponse> sent;
  core_->SendTo(ctx_, send, sent.callback());
  ASSERT_TRUE(sent.Wait().ok());
  char buffer[16];
  peer.SetRecvTimeout(kWait);
  const ssize_t n = ::recv(peer.fd(), buffer, sizeof(buffer), 0);
  EXPECT_EQ(std::string(buffer, static_cast<size_t>(std::max<ssize_t>(n, 0))),
            "kept");  // the first to arrive: every "lost" was dropped
}

TEST_F(TrafficTest, SendToStopsAtCloseAfterBytes) {
  const std::string socket = MustSocket(SOCK_DGRAM);
  KernelPeer peer(SOCK_DGRAM);
  const uint32_t port = peer.Bind();
  v1::Faults faults;
  faults.set_close_after_bytes(10);
  ASSERT_TRUE(SetFaults(socket, faults).ok());
  v1::SendToRequest send;
  send.set_handle(socket);
  *send.mutable_address() = Loopback(port);
  send.set_data("0123456789");  // reaches the limit: sent, then closed
  Waiter<v1::SendToResponse> sent;
  core_->SendTo(ctx_, send, sent.callback());
  absl::StatusOr<v1::SendToResponse> result = sent.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->bytes_sent(), 10u);
  char buffer[16];
  peer.SetRecvTimeout(kWait);
  EXPECT_EQ(::recv(peer.fd(), buffer, sizeof(buffer), 0), 10);
  Waiter<v1::SendToResponse> again;
  core_->SendTo(ctx_, send, again.callback());
  EXPECT_EQ(ErrnoOf(again.Wait().status()), EBADF);
}

TEST_F(TrafficTest, AReorderedDatagramWithNoSuccessorStillGoes) {
  const std::string socket = MustSocket(SOCK_DGRAM);
  KernelPeer peer(SOCK_DGRAM);
  const uint32_t port = peer.Bind();
  v1::Faults faults;
  faults.set_reorder_percent(100);
  ASSERT_TRUE(SetFaults(socket, faults).ok());
  v1::SendToRequest send;
  send.set_handle(socket);
  *send.mutable_address() = Loopback(port);
  send.set_data("alone");
  Waiter<v1::SendToResponse> sent;
  core_->SendTo(ctx_, send, sent.callback());
  ASSERT_TRUE(sent.Wait().ok());
  // Held for the next datagram; none comes, so it goes after the limit.
  char buffer[16];
  peer.SetRecvTimeout(kWait);
  const ssize_t n = ::recv(peer.fd(), buffer, sizeof(buffer), 0);
  EXPECT_EQ(std::string(buffer, static_cast<size_t>(std::max<ssize_t>(n, 0))),
            "alone");
}

TEST_F(TrafficTest, AReorderedDatagramGoesRightAfterTheNextOne) {
  const std::string socket = MustSocket(SOCK_DGRAM);
  KernelPeer peer(SOCK_DGRAM);
  const uint32_t port = peer.Bind();
  v1::Faults faults;
  faults.set_reorder_percent(100);
  // The delay keeps the held datagram's own release far away, so only the
  // next datagram can let it go.
  faults.mutable_send_delay()->set_seconds(60);
  ASSERT_TRUE(SetFaults(socket, faults).ok());
  v1::SendToRequest send;
  send.set_handle(socket);
  *send.mutable_address() = Loopback(port);
  send.set_data("first");
  Waiter<v1::SendToResponse> held;
  core_->SendTo(ctx_, send, held.callback());
  ASSERT_TRUE(held.Wait().ok());
  ASSERT_TRUE(SetFaults(socket, v1::Faults()).ok());
  send.set_data("second");
  Waiter<v1::SendToResponse> sent;
  core_->SendTo(ctx_, send, sent.callback());
  ASSERT_TRUE(sent.Wait().ok());
  peer.SetRecvTimeout(kWait);
  std::vector<std::string> order;
  for (int i = 0; i < 2; ++i) {
    char buffer[16];
    const ssize_t n = ::recv(peer.fd(), buffer, sizeof(buffer), 0);
    ASSERT_GT(n, 0);
    order.emplace_back(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"second", "first"}));
}

// --- Relay through the core ---

TEST_F(TrafficTest, RelayJoinsAnAcceptedAndAConnectedSocket) {
  // The "upstream": a kernel listener of the test.
  const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      ::bind(upstream, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
  ASSERT_EQ(::listen(upstream, 1), 0);
  socklen_t len = sizeof(local);
  ::getsockname(upstream, reinterpret_cast<sockaddr*>(&local), &len);
  std::string listener;
  const uint32_t port = MustListen(&listener);
  KernelPeer client(SOCK_STREAM);
  ASSERT_TRUE(client.Connect(port));
  const std::string downstream = MustAccept(listener);
  const std::string to_upstream = MustSocket();
  v1::ConnectRequest connect;
  connect.set_handle(to_upstream);
  *connect.mutable_address() = Loopback(ntohs(local.sin_port));
  Waiter<v1::ConnectResponse> connected;
  core_->Connect(ctx_, connect, connected.callback());
  ASSERT_TRUE(connected.Wait().ok());
  const int server = ::accept(upstream, nullptr, nullptr);
  ::close(upstream);
  v1::TrafficRequest relay;
  relay.mutable_relay()->set_peer(to_upstream);
  Waiter<v1::TrafficResponse> running = Start(relay, downstream);
  ASSERT_EQ(::send(client.fd(), "ping", 4, 0), 4);
  ::shutdown(client.fd(), SHUT_WR);
  char buffer[16];
  timeval tv = absl::ToTimeval(kWait);
  ::setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(::recv(server, buffer, sizeof(buffer), MSG_WAITALL), 4);
  EXPECT_EQ(::recv(server, buffer, sizeof(buffer), 0), 0);  // the FIN
  ASSERT_EQ(::send(server, "pong", 4, 0), 4);
  ::close(server);
  int error = -1;
  EXPECT_EQ(client.ReadAll(&error), "pong");
  EXPECT_EQ(error, 0);
  absl::StatusOr<v1::TrafficResponse> result = running.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_RELAYED);
  EXPECT_EQ(result->relay().to_peer().bytes_sent(), 4u);
  EXPECT_EQ(result->relay().from_peer().bytes_sent(), 4u);
}

TEST_F(TrafficTest, RelayRequestsAreCheckedByField) {
  const std::string stream = MustSocket();
  v1::TrafficRequest relay;
  relay.mutable_relay();
  EXPECT_THAT(std::string(Start(relay, stream).Wait().status().message()),
              StartsWith("relay.peer"));
  relay.mutable_relay()->set_peer(stream);
  EXPECT_THAT(std::string(Start(relay, stream).Wait().status().message()),
              StartsWith("relay.peer"));
  const std::string datagram = MustSocket(SOCK_DGRAM);
  relay.mutable_relay()->clear_peer();
  EXPECT_THAT(std::string(Start(relay, datagram).Wait().status().message()),
              StartsWith("relay.upstream"));
}

TEST_F(TrafficTest, ClosingTheSessionEndsARelayAborted) {
  auto [a, b] = MustAgentPair();
  auto [c, d] = MustAgentPair();
  v1::TrafficRequest relay;
  relay.mutable_relay()->set_peer(c);
  Waiter<v1::TrafficResponse> running = Start(relay, b);
  v1::CloseSessionRequest close;
  ASSERT_TRUE(core_->CloseSession(ctx_, close).ok());
  const absl::Status status = running.Wait().status();
  EXPECT_TRUE(absl::IsAborted(status)) << status;
}

}  // namespace
}  // namespace sockagent
