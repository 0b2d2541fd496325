// Tests for the relay engine (server/core/relay.h) on real kernel sockets:
// the test's own sockets play the system under test (client) and its
// upstream (server); the relay joins two engine sockets between them. No
// timing is asserted as an upper bound beyond a wide one; waits are bounded.

#include "server/core/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/traffic_data.h"
#include "server/io/engine.h"
#include "server/io/scoped_fd.h"
#include "tests/server/core_test_util.h"

namespace sockagent {
namespace {

using core_test::Waiter;

constexpr absl::Duration kWait = absl::Seconds(20);

void SetMillis(int64_t millis, google::protobuf::Duration* out) {
  out->set_seconds(millis / 1000);
  out->set_nanos(static_cast<int32_t>((millis % 1000) * 1000000));
}

void SetRecvTimeout(int fd, absl::Duration timeout) {
  timeval tv = absl::ToTimeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

sockaddr_in LoopbackAddress(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

uint16_t PortOf(int fd) {
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  return ntohs(local.sin_port);
}

// Reads until EOF or an error: the bytes, and *error (0 at EOF).
std::string ReadAll(int fd, int* error) {
  SetRecvTimeout(fd, kWait);
  std::string out;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      out.append(buffer, static_cast<size_t>(n));
      continue;
    }
    *error = n == 0 ? 0 : errno;
    return out;
  }
}

std::string ReadExactly(int fd, size_t n) {
  SetRecvTimeout(fd, kWait);
  std::string out;
  char buffer[65536];
  while (out.size() < n) {
    const ssize_t got =
        ::recv(fd, buffer, std::min(sizeof(buffer), n - out.size()), 0);
    if (got <= 0) break;
    out.append(buffer, static_cast<size_t>(got));
  }
  return out;
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two shards: a relay's two sockets run on different engine threads.
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(2);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    managed_.clear();
  }

  int Track(int fd) {
    fds_.push_back(fd);
    return fd;
  }

  // An engine socket wrapping `fd` (made non-blocking).
  std::shared_ptr<ManagedSocket> Manage(int fd, int family, int type) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    absl::StatusOr<std::shared_ptr<IoSocket>> io =
        engine_->Register(ScopedFd(fd), family, type, 0);
    EXPECT_TRUE(io.ok()) << io.status();
    auto socket = std::make_shared<ManagedSocket>(
        absl::StrCat("h", managed_.size()), *io);
    managed_.push_back(socket);
    return socket;
  }

  // A connected TCP pair over loopback: {test's end, engine socket}.
  std::pair<int, std::shared_ptr<ManagedSocket>> TcpPair() {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in any = LoopbackAddress(0);
    ::bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof(any));
    ::listen(listener, 1);
    const int outer = Track(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in to = LoopbackAddress(PortOf(listener));
    EXPECT_EQ(::connect(outer, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              0);
    const int inner = ::accept(listener, nullptr, nullptr);
    ::close(listener);
    return {outer, Manage(inner, AF_INET, SOCK_STREAM)};
  }

  std::pair<int, std::shared_ptr<ManagedSocket>> UnixPair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    Track(sv[0]);
    return {sv[0], Manage(sv[1], AF_UNIX, SOCK_STREAM)};
  }

  // Relays between two engine sockets; closing one takes it off the engine.
  Waiter<v1::TrafficResponse> Relay(std::shared_ptr<ManagedSocket> a,
                                    std::shared_ptr<ManagedSocket> b,
                                    bool reset_as_fin = false) {
    Waiter<v1::TrafficResponse> waiter;
    RelayOptions options;
    options.peer = std::move(b);
    options.reset_as_fin = reset_as_fin;
    options.cancel = &cancel_;
    RelayHooks hooks;
    hooks.close = [this](const std::shared_ptr<ManagedSocket>& socket,
                         bool reset) {
      socket->io()->WithFd([&](int fd) {
        if (reset) {
          const linger abort{1, 0};
          ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
        }
      });
      engine_->Close(*socket->io());
    };
    StartRelay(PosixSocketOps::Get(), *engine_, std::move(a),
               std::move(options), std::move(hooks), waiter.callback());
    return waiter;
  }

  std::unique_ptr<Engine> engine_;
  std::vector<int> fds_;
  std::vector<std::shared_ptr<ManagedSocket>> managed_;
  CancelToken cancel_;
};

TEST_F(RelayTest, StreamRelayPassesDataAndHalfCloseInOrderBothWays) {
  auto [client, a] = TcpPair();
  auto [server, b] = TcpPair();
  Waiter<v1::TrafficResponse> relay = Relay(a, b);
  ASSERT_EQ(::send(client, "hello", 5, 0), 5);
  ASSERT_EQ(::shutdown(client, SHUT_WR), 0);
  int error = -1;
  EXPECT_EQ(ReadAll(server, &error), "hello");
  EXPECT_EQ(error, 0);         // the client's FIN arrived after its bytes
  EXPECT_FALSE(relay.done());  // the other direction is still open
  ASSERT_EQ(::send(server, "world!", 6, 0), 6);
  ASSERT_EQ(::shutdown(server, SHUT_WR), 0);
  EXPECT_EQ(ReadAll(client, &error), "world!");
  EXPECT_EQ(error, 0);
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_RELAYED);
  EXPECT_EQ(result->bytes_received(), 5u);
  EXPECT_EQ(result->bytes_sent(), 6u);
  EXPECT_EQ(result->relay().to_peer().bytes_sent(), 5u);
  EXPECT_EQ(result->relay().from_peer().bytes_received(), 6u);
  EXPECT_EQ(result->relay().to_peer().end(), v1::RELAY_DIRECTION_END_EOF);
  EXPECT_EQ(result->relay().from_peer().end(), v1::RELAY_DIRECTION_END_EOF);
  EXPECT_EQ(result->checksum(), StreamChecksumHex("hello"));
}

TEST_F(RelayTest, UnixStreamRelayMovesABulkTransferIntact) {
  auto [client, a] = UnixPair();
  auto [server, b] = UnixPair();
  Waiter<v1::TrafficResponse> relay = Relay(a, b);
  std::string data(3 << 20, '\0');
  FillPattern(v1::TRAFFIC_PATTERN_RANDOM, 9, 0, data.data(), data.size());
  std::thread writer([fd = client, &data] {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd, data.data() + off, data.size() - off, 0);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
  });
  int error = -1;
  const std::string got = ReadAll(server, &error);
  writer.join();
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(got == data) << got.size() << " of " << data.size();
  ::shutdown(server, SHUT_WR);
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->checksum(), StreamChecksumHex(data));
}

TEST_F(RelayTest, LatencyOnTheSendingSocketDelaysThatDirectionOnly) {
  auto [client, a] = TcpPair();
  auto [server, b] = TcpPair();
  v1::Faults faults;
  SetMillis(300, faults.mutable_send_delay());
  b->set_faults(faults);  // shapes client -> server only
  Waiter<v1::TrafficResponse> relay = Relay(a, b);
  absl::Time start = absl::Now();
  ASSERT_EQ(::send(client, "x", 1, 0), 1);
  EXPECT_EQ(ReadExactly(server, 1), "x");
  const absl::Duration there = absl::Now() - start;
  EXPECT_GE(there, absl::Milliseconds(300));
  EXPECT_LT(there, absl::Seconds(10));
  start = absl::Now();
  ASSERT_EQ(::send(server, "y", 1, 0), 1);
  EXPECT_EQ(ReadExactly(client, 1), "y");
  // No fault on a: the way back is not delayed (wide bound).
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(300));
  cancel_.Cancel();
  EXPECT_TRUE(absl::IsCancelled(relay.Wait().status()));
}

TEST_F(RelayTest, BandwidthBoundsTheRate) {
  auto [client, a] = TcpPair();
  auto [server, b] = TcpPair();
  v1::Faults faults;
  faults.set_send_rate_bytes_per_second(200 * 1000);
  b->set_faults(faults);
  Waiter<v1::TrafficResponse> relay = Relay(a, b);
  const std::string data(100 * 1000, 'b');
  const absl::Time start = absl::Now();
  ASSERT_EQ(::send(client, data.data(), data.size(), 0),
            static_cast<ssize_t>(data.size()));
  EXPECT_EQ(ReadExactly(server, data.size()).size(), data.size());
  // 100 kB at 200 kB/s: at least 0.5 s less one pacing step of 1/20 s.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450));
  cancel_.Cancel();
  relay.Wait().IgnoreError();
}

TEST_F(RelayTest, ResetIsPassedOnAsReset) {
  auto [client, a] = TcpPair();
  auto [server, b] = TcpPair();
  Waiter<v1::TrafficResponse> relay = Relay(a, b);
  const linger abort{1, 0};
  ::setsockopt(server, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  ::close(server);
  fds_.erase(std::find(fds_.begin(), fds_.end(), server));
  int error = 0;
  ReadAll(client, &error);
  EXPECT_EQ(error, ECONNRESET);
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->relay().from_peer().end(), v1::RELAY_DIRECTION_END_RESET);
}

TEST_F(RelayTest, ResetAsFinPassesAnOrderlyEof) {
  auto [client, a] = TcpPair();
  auto [server, b] = TcpPair();
  Waiter<v1::TrafficResponse> relay = Relay(a, b, /*reset_as_fin=*/true);
  ASSERT_EQ(::send(server, "bye", 3, 0), 3);
  EXPECT_EQ(ReadExactly(client, 3), "bye");
  const linger abort{1, 0};
  ::setsockopt(server, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  ::close(server);
  fds_.erase(std::find(fds_.begin(), fds_.end(), server));
  int error = -1;
  EXPECT_EQ(ReadAll(client, &error), "");
  EXPECT_EQ(error, 0);
  ::shutdown(client, SHUT_WR);
  EXPECT_TRUE(relay.Wait().ok());
}

TEST_F(RelayTest, CloseAfterBytesWithResetCutsTheStreamAndResetsTheClient) {
  auto [client, a] = TcpPair();
  auto [server, b] = TcpPair();
  v1::Faults faults;
  faults.set_close_after_bytes(3);
  faults.set_close_with_reset(true);
  a->set_faults(faults);  // what the relay sends to the client
  Waiter<v1::TrafficResponse> relay = Relay(a, b);
  ASSERT_EQ(::send(server, "yyyy", 4, 0), 4);
  int error = 0;
  EXPECT_EQ(ReadAll(client, &error), "yyy");
  EXPECT_EQ(error, ECONNRESET);
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_FAULT);
  EXPECT_EQ(result->relay().from_peer().bytes_sent(), 3u);
  // The upstream learns of it as a proxy would tell it: RST.
  ReadAll(server, &error);
  EXPECT_EQ(error, ECONNRESET);
}

TEST_F(RelayTest, SlicerCutsTheStreamIntoSlicesAndBlackholeSwallows) {
  auto [client, a] = TcpPair();
  auto [server, b] = TcpPair();
  v1::Faults faults;
  faults.set_slice_bytes(10);
  faults.set_slice_bytes_variation(5);
  SetMillis(20, faults.mutable_slice_delay());
  b->set_faults(faults);
  Waiter<v1::TrafficResponse> relay = Relay(a, b);
  const std::string data(200, 's');
  ASSERT_EQ(::send(client, data.data(), data.size(), 0), 200);
  // With a pause after every slice, the receiver sees many small reads. A
  // receiver descheduled for longer than a pause reads two slices at once,
  // so on a loaded machine only most reads, not all, are one slice.
  SetRecvTimeout(server, kWait);
  int reads = 0;
  int one_slice_reads = 0;
  size_t got = 0;
  char buffer[1000];
  while (got < data.size()) {
    const ssize_t n = ::recv(server, buffer, sizeof(buffer), 0);
    ASSERT_GT(n, 0);
    if (n <= 15) ++one_slice_reads;
    got += static_cast<size_t>(n);
    ++reads;
  }
  EXPECT_GE(one_slice_reads, 200 / 15 / 2) << reads << " reads";
  EXPECT_GE(one_slice_reads * 2, reads);
  v1::Faults hole;
  hole.set_blackhole(true);
  b->set_faults(hole);
  ASSERT_EQ(::send(client, "gone", 4, 0), 4);
  ::shutdown(client, SHUT_WR);
  int error = -1;
  EXPECT_EQ(ReadAll(server, &error), "");  // the FIN still passes
  ::shutdown(server, SHUT_WR);
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->relay().to_peer().bytes_blackholed(), 4u);
}

TEST_F(RelayTest, AResetSetWhileTheRelayIdlesIsObeyed) {
  auto [client, a] = TcpPair();
  auto [server, b] = TcpPair();
  Waiter<v1::TrafficResponse> relay = Relay(a, b);
  ASSERT_EQ(::send(client, "hi", 2, 0), 2);
  SetRecvTimeout(server, kWait);
  char buffer[8];
  ASSERT_EQ(::recv(server, buffer, sizeof(buffer), 0), 2);
  // Nothing flows from here on: Toxiproxy's reset_peer on an idle link.
  v1::Faults reset;
  SetMillis(1, reset.mutable_close_after_time());
  reset.set_close_with_reset(true);
  b->set_faults(reset);
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_FAULT);
  int error = 0;
  ReadAll(server, &error);
  EXPECT_EQ(error, ECONNRESET);
  ReadAll(client, &error);
  EXPECT_EQ(error, ECONNRESET);  // passed on to the client as a proxy would
}

TEST_F(RelayTest, ClosingEitherSocketEndsTheRelayAborted) {
  for (int which = 0; which < 2; ++which) {
    auto [client, a] = TcpPair();
    auto [server, b] = TcpPair();
    Waiter<v1::TrafficResponse> relay = Relay(a, b);
    engine_->Close(*(which == 0 ? a : b)->io());
    absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
    EXPECT_TRUE(absl::IsAborted(result.status())) << result.status();
  }
}

// --- Datagrams --------------------------------------------------------------

class DatagramRelayTest : public RelayTest {
 protected:
  int Udp() {
    const int fd = Track(::socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in any = LoopbackAddress(0);
    ::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any));
    return fd;
  }

  Waiter<v1::TrafficResponse> RelayTo(
      std::shared_ptr<ManagedSocket> bound, int upstream,
      std::shared_ptr<ManagedSocket> shaper = nullptr,
      std::function<bool(const sockaddr*)> admit = nullptr,
      CancelToken* cancel = nullptr, absl::Time end = absl::InfiniteFuture()) {
    Waiter<v1::TrafficResponse> waiter;
    RelayOptions options;
    options.end = end;
    options.peer = std::move(shaper);
    SockAddr to;
    sockaddr_in address = LoopbackAddress(PortOf(upstream));
    std::memcpy(&to.storage, &address, sizeof(address));
    to.length = sizeof(address);
    options.upstream = to;
    options.cancel = cancel != nullptr ? cancel : &cancel_;
    RelayHooks hooks;
    if (admit) {
      hooks.accept_source = [admit](const sockaddr* source, socklen_t) {
        return admit(source);
      };
    }
    StartRelay(PosixSocketOps::Get(), *engine_, std::move(bound),
               std::move(options), std::move(hooks), waiter.callback());
    return waiter;
  }

  static void SendTo(int fd, const std::string& data, uint16_t port) {
    sockaddr_in to = LoopbackAddress(port);
    ::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to),
             sizeof(to));
  }

  static std::string RecvFrom(int fd, sockaddr_in* from = nullptr) {
    SetRecvTimeout(fd, kWait);
    char buffer[2048];
    sockaddr_in source{};
    socklen_t len = sizeof(source);
    const ssize_t n = ::recvfrom(fd, buffer, sizeof(buffer), 0,
                                 reinterpret_cast<sockaddr*>(&source), &len);
    if (from != nullptr) *from = source;
    return n < 0 ? "<timeout>" : std::string(buffer, static_cast<size_t>(n));
  }
};

TEST_F(DatagramRelayTest, EachClientGetsItsOwnUpstreamSocketAndItsReplies) {
  const int upstream = Udp();
  const int bound_fd = Udp();
  const uint16_t relay_port = PortOf(bound_fd);
  fds_.pop_back();  // the engine owns it now
  std::shared_ptr<ManagedSocket> bound = Manage(bound_fd, AF_INET, SOCK_DGRAM);
  Waiter<v1::TrafficResponse> relay = RelayTo(bound, upstream);
  const int one = Udp();
  const int two = Udp();
  SendTo(one, "from-one", relay_port);
  sockaddr_in mapped_one{};
  EXPECT_EQ(RecvFrom(upstream, &mapped_one), "from-one");
  SendTo(two, "from-two", relay_port);
  sockaddr_in mapped_two{};
  EXPECT_EQ(RecvFrom(upstream, &mapped_two), "from-two");
  EXPECT_NE(mapped_one.sin_port, mapped_two.sin_port);
  // Replies go back through each client's own mapping.
  SendTo(upstream, "to-two", ntohs(mapped_two.sin_port));
  SendTo(upstream, "to-one", ntohs(mapped_one.sin_port));
  sockaddr_in from{};
  EXPECT_EQ(RecvFrom(two, &from), "to-two");
  EXPECT_EQ(ntohs(from.sin_port), relay_port);
  EXPECT_EQ(RecvFrom(one), "to-one");
  cancel_.Cancel();
  EXPECT_TRUE(absl::IsCancelled(relay.Wait().status()));
}

TEST_F(DatagramRelayTest, LossIsDrawnFromTheSeedAndReplays) {
  const int upstream = Udp();
  std::set<int> runs[2];
  for (std::set<int>& survivors : runs) {
    const int bound_fd = Udp();
    const uint16_t relay_port = PortOf(bound_fd);
    fds_.pop_back();
    std::shared_ptr<ManagedSocket> bound =
        Manage(bound_fd, AF_INET, SOCK_DGRAM);
    std::shared_ptr<ManagedSocket> shaper =
        Manage(::socket(AF_INET, SOCK_DGRAM, 0), AF_INET, SOCK_DGRAM);
    v1::Faults faults;
    faults.set_loss_percent(30);
    faults.set_seed(1234);
    shaper->set_faults(faults);
    CancelToken cancel;
    Waiter<v1::TrafficResponse> relay =
        RelayTo(bound, upstream, shaper, nullptr, &cancel);
    const int client = Udp();
    for (int i = 0; i < 200; ++i) SendTo(client, absl::StrCat(i), relay_port);
    // Markers until one survives: the relay reads and forwards in order,
    // so by then every numbered datagram was decided and forwarded.
    bool marker = false;
    for (int attempt = 0; attempt < 100 && !marker; ++attempt) {
      SendTo(client, "end", relay_port);
      for (;;) {
        SetRecvTimeout(upstream, absl::Milliseconds(200));
        char buffer[64];
        const ssize_t n = ::recv(upstream, buffer, sizeof(buffer), 0);
        if (n < 0) break;  // this marker was lost: send another
        const std::string got(buffer, static_cast<size_t>(n));
        if (got == "end") {
          marker = true;
          break;
        }
        survivors.insert(std::stoi(got));
      }
    }
    ASSERT_TRUE(marker);
    cancel.Cancel();
    EXPECT_TRUE(absl::IsCancelled(relay.Wait().status()));
  }
  // 30 % of 200: mean 60 lost, standard deviation 6.5; the bound is wide.
  const size_t lost = 200 - runs[0].size();
  EXPECT_GE(lost, 30u);
  EXPECT_LE(lost, 90u);
  EXPECT_EQ(runs[0], runs[1]);  // the same seed drops the same datagrams
}

TEST_F(DatagramRelayTest, RefusedSourcesAreDroppedAndCounted) {
  const int upstream = Udp();
  const int bound_fd = Udp();
  const uint16_t relay_port = PortOf(bound_fd);
  fds_.pop_back();
  std::shared_ptr<ManagedSocket> bound = Manage(bound_fd, AF_INET, SOCK_DGRAM);
  const int refused = Udp();
  const uint16_t refused_port = PortOf(refused);
  Waiter<v1::TrafficResponse> relay =
      RelayTo(bound, upstream, nullptr, [refused_port](const sockaddr* from) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(from)->sin_port) !=
               refused_port;
      });
  const int allowed = Udp();
  SendTo(refused, "no", relay_port);
  SendTo(allowed, "yes", relay_port);
  EXPECT_EQ(RecvFrom(upstream), "yes");  // "no" never came through
  bound->io()->WithFd([](int) {});
  engine_->Close(*bound->io());
  EXPECT_TRUE(absl::IsAborted(relay.Wait().status()));
}

TEST_F(DatagramRelayTest, DurationEndsAnIdleRelayWithFigures) {
  const int upstream = Udp();
  const int bound_fd = Udp();
  const uint16_t relay_port = PortOf(bound_fd);
  fds_.pop_back();
  std::shared_ptr<ManagedSocket> bound = Manage(bound_fd, AF_INET, SOCK_DGRAM);
  Waiter<v1::TrafficResponse> relay =
      RelayTo(bound, upstream, nullptr, nullptr, &cancel_,
              absl::Now() + absl::Milliseconds(300));
  const int client = Udp();
  SendTo(client, "once", relay_port);
  EXPECT_EQ(RecvFrom(upstream), "once");
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_DURATION);
  EXPECT_EQ(result->datagrams_received(), 1u);
  EXPECT_EQ(result->relay().to_peer().datagrams_sent(), 1u);
  EXPECT_EQ(result->relay().clients(), 1u);
  EXPECT_EQ(result->checksum(), StreamChecksumHex("once"));
}

TEST_F(DatagramRelayTest, AReorderedDatagramWithNoSuccessorStillGoes) {
  const int upstream = Udp();
  const int bound_fd = Udp();
  const uint16_t relay_port = PortOf(bound_fd);
  fds_.pop_back();
  std::shared_ptr<ManagedSocket> bound = Manage(bound_fd, AF_INET, SOCK_DGRAM);
  std::shared_ptr<ManagedSocket> shaper =
      Manage(::socket(AF_INET, SOCK_DGRAM, 0), AF_INET, SOCK_DGRAM);
  v1::Faults reorder;
  reorder.set_reorder_percent(100);
  shaper->set_faults(reorder);
  Waiter<v1::TrafficResponse> relay = RelayTo(bound, upstream, shaper);
  const int client = Udp();
  SendTo(client, "alone", relay_port);
  // Held for a next datagram that never comes: it goes after the limit.
  EXPECT_EQ(RecvFrom(upstream), "alone");
  cancel_.Cancel();
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  EXPECT_TRUE(absl::IsCancelled(result.status())) << result.status();
}

TEST_F(DatagramRelayTest, CloseAfterTimeSetWhileIdleEndsItWithFigures) {
  const int upstream = Udp();
  const int bound_fd = Udp();
  const uint16_t relay_port = PortOf(bound_fd);
  fds_.pop_back();
  std::shared_ptr<ManagedSocket> bound = Manage(bound_fd, AF_INET, SOCK_DGRAM);
  Waiter<v1::TrafficResponse> relay = RelayTo(bound, upstream);
  const int client = Udp();
  SendTo(client, "before", relay_port);
  EXPECT_EQ(RecvFrom(upstream), "before");
  // Set on the bound socket while the relay waits for clients: it is seen
  // without any further datagram.
  v1::Faults close;
  SetMillis(1, close.mutable_close_after_time());
  bound->set_faults(close);
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_FAULT);
  EXPECT_EQ(result->relay().to_peer().datagrams_sent(), 1u);
  EXPECT_EQ(result->relay().clients(), 1u);
  EXPECT_TRUE(bound->io()->closed());
}

TEST_F(DatagramRelayTest, CloseAfterBytesOnTheShaperEndsItAtTheLimit) {
  const int upstream = Udp();
  const int bound_fd = Udp();
  const uint16_t relay_port = PortOf(bound_fd);
  fds_.pop_back();
  std::shared_ptr<ManagedSocket> bound = Manage(bound_fd, AF_INET, SOCK_DGRAM);
  std::shared_ptr<ManagedSocket> shaper =
      Manage(::socket(AF_INET, SOCK_DGRAM, 0), AF_INET, SOCK_DGRAM);
  v1::Faults limit;
  limit.set_close_after_bytes(10);
  shaper->set_faults(limit);
  Waiter<v1::TrafficResponse> relay = RelayTo(bound, upstream, shaper);
  const int client = Udp();
  SendTo(client, "12345", relay_port);
  EXPECT_EQ(RecvFrom(upstream), "12345");
  SendTo(client, "67890", relay_port);  // the 10th byte: the limit
  EXPECT_EQ(RecvFrom(upstream), "67890");
  absl::StatusOr<v1::TrafficResponse> result = relay.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end(), v1::TRAFFIC_END_FAULT);
  EXPECT_EQ(result->relay().to_peer().bytes_sent(), 10u);
  EXPECT_TRUE(shaper->io()->closed());
}

}  // namespace
}  // namespace sockagent
