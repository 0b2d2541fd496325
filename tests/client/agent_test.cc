// The client library against a real sockagentd child process on 127.0.0.1.

#include "client/agent.h"

#include <cerrno>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "client/address.h"
#include "client/socket.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"
#include "tests/common/wait.h"
#include "tests/integration/agent_process.h"

namespace sockagent {
namespace {

class AgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    process_ = new testing::AgentProcess();
    ASSERT_TRUE(process_->Start(SOCKAGENTD_PATH)) << process_->Log();
  }
  static void TearDownTestSuite() {
    delete process_;
    process_ = nullptr;
  }

  static AgentOptions Options() {
    AgentOptions options;
    options.target = process_->target();
    options.session_label =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    options.connect_timeout = absl::Seconds(10);
    options.call_timeout = absl::Seconds(10);
    return options;
  }

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(Options());
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }

  // Polls (at most 10 s) until no call waits on a socket in the agent. A
  // call the client gave up on (deadline, Cancel) ends in the agent a little
  // later, and until then it may still take what reaches the socket.
  void AwaitNoWaitingOperation() {
    ASSERT_TRUE(test::WaitFor(
        [this] {
          absl::StatusOr<v1::GetAgentInfoResponse> info =
              agent_->GetAgentInfo();
          return info.ok() && info->stats().waiting_operations() == 0;
        },
        absl::Seconds(10), "no call the client gave up on to wait"));
  }

  Socket MustSocket(v1::SocketType type = v1::SOCKET_TYPE_STREAM) {
    absl::StatusOr<Socket> socket = agent_->CreateSocket(v1::FAMILY_INET, type);
    EXPECT_TRUE(socket.ok()) << socket.status();
    return socket.ok() ? *std::move(socket) : Socket();
  }

  // A listening socket on 127.0.0.1 and its address.
  std::pair<Socket, v1::Address> MustListen() {
    Socket listener = MustSocket();
    absl::StatusOr<v1::Address> bound =
        listener.Bind(InetAddress("127.0.0.1", 0));
    EXPECT_TRUE(bound.ok()) << bound.status();
    EXPECT_TRUE(listener.Listen().ok());
    return {std::move(listener), bound.ok() ? *bound : v1::Address()};
  }

  size_t SocketCount() {
    absl::StatusOr<std::vector<v1::SocketInfo>> sockets = agent_->ListSockets();
    EXPECT_TRUE(sockets.ok()) << sockets.status();
    return sockets.ok() ? sockets->size() : 0;
  }

  static testing::AgentProcess* process_;
  std::unique_ptr<Agent> agent_;
};

testing::AgentProcess* AgentTest::process_ = nullptr;

TEST_F(AgentTest, ConnectCreatesASessionAndKnowsTheIncarnation) {
  EXPECT_FALSE(agent_->session_id().empty());
  absl::StatusOr<v1::GetAgentInfoResponse> info = agent_->GetAgentInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(agent_->incarnation(), info->incarnation());
}

TEST_F(AgentTest, ConnectToAClosedPortIsUnavailable) {
  AgentOptions options = Options();
  options.target = "127.0.0.1:1";
  options.connect_timeout = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
  EXPECT_EQ(agent.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(AgentTest, EchoBothWaysOverLoopback) {
  auto [listener, address] = MustListen();
  absl::StatusOr<Socket> client = agent_->CreateConnection(address);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<AcceptResult> accepted = listener.Accept();
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  absl::StatusOr<v1::Address> client_local = client->GetSockName();
  ASSERT_TRUE(client_local.ok());
  EXPECT_EQ(FormatAddress(accepted->peer), FormatAddress(*client_local));

  ASSERT_TRUE(client->SendAll("hello").ok());
  EXPECT_EQ(*accepted->socket.Recv(100), "hello");
  ASSERT_TRUE(accepted->socket.SendAll("world").ok());
  EXPECT_EQ(*client->Recv(100), "world");
  ASSERT_TRUE(client->Shutdown(v1::SHUTDOWN_HOW_WRITE).ok());
  EXPECT_EQ(*accepted->socket.Recv(100), "");  // EOF
}

TEST_F(AgentTest, RefusedConnectCarriesTheErrno) {
  Socket probe = MustSocket();
  absl::StatusOr<v1::Address> closed = probe.Bind(InetAddress("127.0.0.1", 0));
  ASSERT_TRUE(closed.ok());
  ASSERT_TRUE(probe.Close().ok());
  Socket socket = MustSocket();
  absl::StatusOr<v1::Address> local = socket.Connect(*closed);
  ASSERT_FALSE(local.ok());
  std::optional<ErrnoInfo> info = GetErrno(local.status());
  ASSERT_TRUE(info.has_value()) << local.status();
  EXPECT_EQ(info->number, ECONNREFUSED);
  EXPECT_EQ(info->name, "ECONNREFUSED");
  EXPECT_EQ(info->syscall, "connect");
}

TEST_F(AgentTest, SocketDestructorClosesTheHandle) {
  const size_t before = SocketCount();
  {
    Socket socket = MustSocket();
    EXPECT_EQ(SocketCount(), before + 1);
  }
  EXPECT_EQ(SocketCount(), before);
}

TEST_F(AgentTest, MovedFromSocketDoesNotCloseTwice) {
  const size_t before = SocketCount();
  Socket a = MustSocket();
  Socket b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(b.valid());
  EXPECT_EQ(SocketCount(), before + 1);
  b = Socket();
  EXPECT_EQ(SocketCount(), before);
}

TEST_F(AgentTest, ReleasedAndAttachedSocketsStayOpen) {
  const size_t before = SocketCount();
  std::string handle;
  {
    Socket socket = MustSocket();
    handle = socket.Release();
  }
  EXPECT_EQ(SocketCount(), before + 1);
  { Socket attached = agent_->AttachSocket(handle); }
  EXPECT_EQ(SocketCount(), before + 1);
  Socket attached = agent_->AttachSocket(handle);
  EXPECT_TRUE(attached.Close().ok());
  EXPECT_EQ(SocketCount(), before);
}

TEST_F(AgentTest, ClosedSocketFailsWithoutACall) {
  Socket socket = MustSocket();
  ASSERT_TRUE(socket.Close().ok());
  EXPECT_TRUE(socket.Close().ok());
  EXPECT_EQ(socket.Listen().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(AgentTest, AgentDestructorClosesTheSessionItCreated) {
  const std::string id = agent_->session_id();
  agent_.reset();
  AgentOptions options = Options();
  options.session_id = id;
  absl::StatusOr<std::unique_ptr<Agent>> attached = Agent::Connect(options);
  EXPECT_EQ(attached.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AgentTest, ASessionItCreatesIsBoundToItsConnectionByDefault) {
  EXPECT_TRUE(agent_->bound());
  absl::StatusOr<std::vector<v1::SessionInfo>> sessions =
      agent_->ListSessions();
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  bool found = false;
  for (const v1::SessionInfo& info : *sessions) {
    if (info.session_id() != agent_->session_id()) continue;
    found = true;
    EXPECT_TRUE(info.bind_to_connection());
    EXPECT_TRUE(info.bound());
    EXPECT_GE(info.waiting_calls(), 1u);  // the HoldSession call
  }
  EXPECT_TRUE(found);

  AgentOptions options = Options();
  options.bind_to_connection = false;
  absl::StatusOr<std::unique_ptr<Agent>> lease_only = Agent::Connect(options);
  ASSERT_TRUE(lease_only.ok()) << lease_only.status();
  EXPECT_FALSE((*lease_only)->bound());
}

TEST_F(AgentTest, DetachedSessionOutlivesTheAgent) {
  Socket socket = MustSocket();
  const std::string handle = socket.Release();
  const std::string id = agent_->DetachSession();
  agent_.reset();
  AgentOptions options = Options();
  options.session_id = id;
  absl::StatusOr<std::unique_ptr<Agent>> attached = Agent::Connect(options);
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_EQ((*attached)->session_id(), id);
  Socket again = (*attached)->AttachSocket(handle);
  EXPECT_TRUE(again.GetSockName().ok());
  EXPECT_TRUE((*attached)->CloseSession().ok());
}

TEST_F(AgentTest, SocketOutlivesItsAgentObject) {
  Socket socket = MustSocket();
  const std::string id = agent_->DetachSession();
  agent_.reset();
  EXPECT_TRUE(socket.GetSockName().ok());
  AgentOptions options = Options();
  options.session_id = id;
  absl::StatusOr<std::unique_ptr<Agent>> attached = Agent::Connect(options);
  ASSERT_TRUE(attached.ok());
  EXPECT_TRUE((*attached)->CloseSession().ok());
}

TEST_F(AgentTest, NonBlockingRecvIsEagain) {
  auto [listener, address] = MustListen();
  absl::StatusOr<Socket> client = agent_->CreateConnection(address);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->SetTimeout(absl::ZeroDuration()).ok());
  absl::StatusOr<std::optional<absl::Duration>> timeout = client->GetTimeout();
  ASSERT_TRUE(timeout.ok());
  EXPECT_EQ(*timeout, absl::ZeroDuration());
  absl::StatusOr<std::string> data = client->Recv(10);
  ASSERT_FALSE(data.ok());
  ASSERT_TRUE(GetErrno(data.status()).has_value()) << data.status();
  EXPECT_EQ(GetErrno(data.status())->number, EAGAIN);
  ASSERT_TRUE(client->SetTimeout(std::nullopt).ok());
  EXPECT_EQ(*client->GetTimeout(), std::nullopt);
}

TEST_F(AgentTest, WaitDeadlineEndsAcceptAndLeavesTheSocketUsable) {
  auto [listener, address] = MustListen();
  absl::StatusOr<AcceptResult> accepted =
      listener.Accept(absl::Now() + absl::Milliseconds(100));
  EXPECT_EQ(accepted.status().code(), absl::StatusCode::kDeadlineExceeded);
  // Until the agent ends that accept, it could take the connection below.
  ASSERT_NO_FATAL_FAILURE(AwaitNoWaitingOperation());
  absl::StatusOr<Socket> client = agent_->CreateConnection(address);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE(listener.Accept(absl::Now() + absl::Seconds(10)).ok());
}

// Cancel() unblocks a Next() waiting in another thread, and the socket
// stays usable. Data that reaches the socket while the agent is still ending
// the cancelled stream may be consumed by it (the cancellation travels to the
// agent asynchronously), so the test sends more only once the agent has no
// operation waiting. Without that wait the test lost "second" about once in
// 15 runs: the stream's last receive took it.
TEST_F(AgentTest, RecvStreamReaderCancelUnblocksNext) {
  auto [listener, address] = MustListen();
  absl::StatusOr<Socket> client = agent_->CreateConnection(address);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<AcceptResult> accepted = listener.Accept();
  ASSERT_TRUE(accepted.ok());
  std::unique_ptr<RecvStreamReader> reader = accepted->socket.OpenRecvStream();
  ASSERT_TRUE(client->SendAll("first").ok());
  std::string chunk;
  ASSERT_TRUE(reader->Next(&chunk));
  EXPECT_EQ(chunk, "first");
  absl::Notification ended;
  std::thread blocked([&] {
    std::string more;
    while (reader->Next(&more)) {
    }
    ended.Notify();
  });
  reader->Cancel();
  EXPECT_TRUE(ended.WaitForNotificationWithTimeout(absl::Seconds(10)));
  blocked.join();
  EXPECT_EQ(reader->Finish().code(), absl::StatusCode::kCancelled);
  // The agent ends the stream's pending receive.
  ASSERT_NO_FATAL_FAILURE(AwaitNoWaitingOperation());
  // The socket stays usable after the cancelled stream.
  ASSERT_TRUE(client->SendAll("second").ok());
  absl::StatusOr<std::string> second =
      accepted->socket.Recv(100, 0, absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, "second");
}

TEST_F(AgentTest, RecvStreamCallbackSeesEveryByteUntilEof) {
  auto [listener, address] = MustListen();
  absl::StatusOr<Socket> client = agent_->CreateConnection(address);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<AcceptResult> accepted = listener.Accept();
  ASSERT_TRUE(accepted.ok());
  std::string sent(300000, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7);

  std::unique_ptr<SendStreamWriter> writer = client->OpenSendStream();
  ASSERT_TRUE(writer->Write(absl::string_view(sent).substr(0, 100000)).ok());
  ASSERT_TRUE(writer->Write(absl::string_view(sent).substr(100000)).ok());
  absl::StatusOr<uint64_t> total = writer->Finish();
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(*total, sent.size());
  ASSERT_TRUE(client->Shutdown(v1::SHUTDOWN_HOW_WRITE).ok());

  std::string received;
  absl::Status status = accepted->socket.RecvStream(
      [&](absl::string_view data) {
        received.append(data.data(), data.size());
        return true;
      },
      0, 16384);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(received, sent);
}

TEST_F(AgentTest, DatagramsCarryTheirSource) {
  Socket a = MustSocket(v1::SOCKET_TYPE_DGRAM);
  Socket b = MustSocket(v1::SOCKET_TYPE_DGRAM);
  absl::StatusOr<v1::Address> a_address = a.Bind(InetAddress("127.0.0.1", 0));
  absl::StatusOr<v1::Address> b_address = b.Bind(InetAddress("127.0.0.1", 0));
  ASSERT_TRUE(a_address.ok() && b_address.ok());
  ASSERT_TRUE(a.SendTo("ping", *b_address).ok());
  absl::StatusOr<Datagram> datagram = b.RecvFrom(100);
  ASSERT_TRUE(datagram.ok()) << datagram.status();
  EXPECT_EQ(datagram->data, "ping");
  EXPECT_EQ(FormatAddress(datagram->address), FormatAddress(*a_address));
}

TEST_F(AgentTest, TypedSocketOptions) {
  Socket socket = MustSocket();
  ASSERT_TRUE(socket.SetSockOpt(v1::OPT_SO_REUSEADDR, true).ok());
  EXPECT_TRUE(socket.GetSockOpt(v1::OPT_SO_REUSEADDR)->bool_value());
  ASSERT_TRUE(socket.SetSockOpt(v1::OPT_IP_TTL, 33).ok());
  EXPECT_EQ(socket.GetSockOpt(v1::OPT_IP_TTL)->int_value(), 33);
  v1::Linger linger;
  linger.set_enabled(true);
  linger.set_seconds(5);
  ASSERT_TRUE(socket.SetSockOpt(v1::OPT_SO_LINGER, linger).ok());
  EXPECT_EQ(socket.GetSockOpt(v1::OPT_SO_LINGER)->linger().seconds(), 5);
}

TEST_F(AgentTest, CloseSessionClosesItsSockets) {
  Socket socket = MustSocket();
  Socket other = MustSocket();
  absl::StatusOr<uint32_t> closed = agent_->CloseSession();
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(*closed, 2u);
  EXPECT_FALSE(socket.GetSockName().ok());
}

}  // namespace
}  // namespace sockagent
