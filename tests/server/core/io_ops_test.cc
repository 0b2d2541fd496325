// Tests for the core's engine operations, each alone: accept_op.h,
// connect_op.h, send_op.h and recv_op.h on an Engine with a FakeSocketOps
// (real kernel calls unless a test injects an errno), no session, no policy,
// no AgentCore. Real sockets: AF_UNIX socket pairs and TCP on 127.0.0.1
// with kernel-chosen ports.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/accept_op.h"
#include "server/core/connect_op.h"
#include "server/core/recv_op.h"
#include "server/core/send_op.h"
#include "server/core/session_table.h"
#include "server/io/engine.h"
#include "server/io/scoped_fd.h"
#include "tests/server/core_test_util.h"
#include "tests/server/fake_socket_ops.h"

namespace sockagent {
namespace {

using core_test::ErrnoOf;
using core_test::Waiter;
using Call = FakeSocketOps::Call;

class IoOpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create();
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }
  void TearDown() override {
    for (const std::shared_ptr<ManagedSocket>& socket : sockets_) {
      engine_->Close(*socket->io());
    }
    sockets_.clear();
    for (int fd : plain_) ::close(fd);
  }

  // Registers `fd` (non-blocking) with the engine as a managed socket.
  std::shared_ptr<ManagedSocket> Manage(int fd, int family, int type) {
    absl::StatusOr<std::shared_ptr<IoSocket>> io =
        engine_->Register(ScopedFd(fd), family, type, 0);
    EXPECT_TRUE(io.ok()) << io.status();
    if (!io.ok()) return nullptr;
    auto socket = std::make_shared<ManagedSocket>("h", *std::move(io));
    sockets_.push_back(socket);
    return socket;
  }
  // A managed end and a plain (blocking) end of an AF_UNIX stream pair.
  std::shared_ptr<ManagedSocket> Pair(int* peer) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    EXPECT_EQ(::fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    plain_.push_back(fds[1]);
    *peer = fds[1];
    return Manage(fds[0], AF_UNIX, SOCK_STREAM);
  }
  // A plain TCP listener on 127.0.0.1; its port in *port.
  int Listener(uint16_t* port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(
        ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(fd, 8), 0);
    socklen_t length = sizeof(address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    *port = ntohs(address.sin_port);
    return fd;
  }
  static WaitOptions Wait() {
    WaitOptions wait;
    wait.deadline = absl::Now() + absl::Seconds(10);
    return wait;
  }

  FakeSocketOps fake_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::shared_ptr<ManagedSocket>> sockets_;
  std::vector<int> plain_;
};

TEST_F(IoOpTest, RecvWaitAllCollectsBytesThatArriveInTwoPieces) {
  int peer = -1;
  std::shared_ptr<ManagedSocket> socket = Pair(&peer);
  ASSERT_NE(socket, nullptr);
  Waiter<RecvOp::Received> got;
  engine_->Submit(
      socket->io(), Interest::kRead,
      std::make_unique<RecvOp>(fake_, socket, 10, MSG_WAITALL,
                               /*want_source=*/false, got.callback()),
      Wait());
  ASSERT_EQ(::write(peer, "abcd", 4), 4);
  EXPECT_FALSE(got.done());  // 4 of 10: MSG_WAITALL keeps waiting
  ASSERT_EQ(::write(peer, "efghij", 6), 6);
  absl::StatusOr<RecvOp::Received> result = got.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->data, "abcdefghij");
  EXPECT_EQ(socket->bytes_received.load(), 10u);
}

TEST_F(IoOpTest, RecvEndsWithAnInjectedErrnoNamingTheCall) {
  int peer = -1;
  std::shared_ptr<ManagedSocket> socket = Pair(&peer);
  ASSERT_NE(socket, nullptr);
  ASSERT_EQ(::write(peer, "x", 1), 1);
  fake_.FailNext(Call::kRecv, ECONNRESET);
  Waiter<RecvOp::Received> got;
  engine_->Submit(
      socket->io(), Interest::kRead,
      std::make_unique<RecvOp>(fake_, socket, 10, 0, false, got.callback()),
      Wait());
  absl::StatusOr<RecvOp::Received> result = got.Wait();
  EXPECT_EQ(ErrnoOf(result.status()), ECONNRESET);
  EXPECT_EQ(fake_.calls(Call::kRecv), 1);
}

TEST_F(IoOpTest, SendAllSendsEveryByteAndCountsThem) {
  int peer = -1;
  std::shared_ptr<ManagedSocket> socket = Pair(&peer);
  ASSERT_NE(socket, nullptr);
  const std::string data(1000, 's');
  Waiter<uint64_t> sent;
  engine_->Submit(socket->io(), Interest::kWrite,
                  std::make_unique<SendOp>(fake_, socket, data, 0,
                                           /*send_all=*/true, std::nullopt,
                                           sent.callback()),
                  Wait());
  EXPECT_EQ(sent.Wait().value_or(0), 1000u);
  EXPECT_EQ(socket->bytes_sent.load(), 1000u);
  std::string read(1000, '\0');
  EXPECT_EQ(::recv(peer, read.data(), read.size(), MSG_WAITALL), 1000);
  EXPECT_EQ(read, data);
}

TEST_F(IoOpTest, SendEndsWithAnInjectedErrnoNamingTheCall) {
  int peer = -1;
  std::shared_ptr<ManagedSocket> socket = Pair(&peer);
  ASSERT_NE(socket, nullptr);
  fake_.FailNext(Call::kSend, EPIPE);
  Waiter<uint64_t> sent;
  engine_->Submit(socket->io(), Interest::kWrite,
                  std::make_unique<SendOp>(fake_, socket, "data", 0, true,
                                           std::nullopt, sent.callback()),
                  Wait());
  absl::StatusOr<uint64_t> result = sent.Wait();
  EXPECT_EQ(ErrnoOf(result.status()), EPIPE);
  EXPECT_EQ(socket->bytes_sent.load(), 0u);
}

TEST_F(IoOpTest, ConnectMarksTheSocketConnectedAndReportsItsLocalAddress) {
  uint16_t port = 0;
  const int listener = Listener(&port);
  plain_.push_back(listener);
  std::shared_ptr<ManagedSocket> socket =
      Manage(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
             AF_INET, SOCK_STREAM);
  ASSERT_NE(socket, nullptr);
  SockAddr to;
  auto* in = reinterpret_cast<sockaddr_in*>(to.mutable_get());
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.length = sizeof(sockaddr_in);
  Waiter<v1::ConnectResponse> connected;
  engine_->Submit(
      socket->io(), Interest::kWrite,
      std::make_unique<ConnectOp>(
          fake_, socket, to, [](const SockAddr&) { return absl::OkStatus(); },
          connected.callback()),
      Wait());
  absl::StatusOr<v1::ConnectResponse> result = connected.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(socket->state(), v1::SOCKET_STATE_CONNECTED);
  EXPECT_NE(result->local().inet().port(), 0u);
}

TEST_F(IoOpTest, AcceptClosesAPeerTheFilterRefusesAndWaitsForTheNext) {
  uint16_t port = 0;
  const int listen_fd = Listener(&port);
  ASSERT_EQ(::fcntl(listen_fd, F_SETFL, O_NONBLOCK), 0);
  std::shared_ptr<ManagedSocket> listener =
      Manage(listen_fd, AF_INET, SOCK_STREAM);
  ASSERT_NE(listener, nullptr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto connect = [&] {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    plain_.push_back(fd);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    return fd;
  };
  const int refused = connect();
  int seen = 0;
  // The accepted descriptor closes with the result; the test keeps the peer.
  Waiter<v1::Address> accepted;
  engine_->Submit(
      listener->io(), Interest::kRead,
      std::make_unique<AcceptOp>(
          fake_, [&seen](const sockaddr*, socklen_t) { return seen++ > 0; },
          [] { return absl::OkStatus(); },
          [done = accepted.callback()](
              absl::StatusOr<AcceptOp::Accepted> got) mutable {
            if (!got.ok()) return done(got.status());
            done(std::move(got->peer));
          }),
      Wait());
  // The refused peer sees its connection closed (EOF).
  char byte;
  EXPECT_EQ(::recv(refused, &byte, 1, 0), 0);
  const int admitted = connect();
  absl::StatusOr<v1::Address> result = accepted.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  sockaddr_in local{};
  socklen_t length = sizeof(local);
  ::getsockname(admitted, reinterpret_cast<sockaddr*>(&local), &length);
  EXPECT_EQ(result->inet().port(), ntohs(local.sin_port));
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace sockagent
