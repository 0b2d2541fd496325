// sockagent::Proxy against a real sockagentd child process: the client and
// the upstream are sockets of the same agent on 127.0.0.1.

#include "client/proxy.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/socket.h"
#include "gtest/gtest.h"
#include "tests/common/wait.h"
#include "tests/integration/agent_process.h"

namespace sockagent {
namespace {

class ProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    process_ = new testing::AgentProcess();
    ASSERT_TRUE(process_->Start(SOCKAGENTD_PATH)) << process_->Log();
  }
  static void TearDownTestSuite() {
    delete process_;
    process_ = nullptr;
  }

  void SetUp() override {
    AgentOptions options;
    options.target = process_->target();
    options.connect_timeout = absl::Seconds(10);
    options.call_timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }

  Socket MustSocket(v1::SocketType type = v1::SOCKET_TYPE_STREAM) {
    absl::StatusOr<Socket> socket = agent_->CreateSocket(v1::FAMILY_INET, type);
    EXPECT_TRUE(socket.ok()) << socket.status();
    return socket.ok() ? *std::move(socket) : Socket();
  }

  size_t SocketCount() {
    absl::StatusOr<std::vector<v1::SocketInfo>> sockets = agent_->ListSockets();
    EXPECT_TRUE(sockets.ok()) << sockets.status();
    return sockets.ok() ? sockets->size() : 0;
  }

  // What on_end received.
  struct Ended {
    absl::Mutex mu;
    std::vector<ProxyConnection> connections ABSL_GUARDED_BY(mu);
    size_t size() {
      absl::MutexLock lock(&mu);
      return connections.size();
    }
    ProxyConnection at(size_t i) {
      absl::MutexLock lock(&mu);
      return connections.at(i);
    }
  };
  Proxy::OnEnd Record(Ended* ended) {
    return [ended](const ProxyConnection& c) {
      absl::MutexLock lock(&ended->mu);
      ended->connections.push_back(c);
    };
  }

  static testing::AgentProcess* process_;
  std::unique_ptr<Agent> agent_;
};

testing::AgentProcess* ProxyTest::process_ = nullptr;

TEST_F(ProxyTest, StopReportsTheFiguresOfALiveConnection) {
  Socket upstream_listener = MustSocket();
  absl::StatusOr<v1::Address> upstream =
      upstream_listener.Bind(InetAddress("127.0.0.1", 0));
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  ASSERT_TRUE(upstream_listener.Listen().ok());

  Ended ended;
  ProxyOptions options;
  options.listen = InetAddress("127.0.0.1", 0);
  options.upstream = *upstream;
  absl::StatusOr<std::unique_ptr<Proxy>> proxy =
      Proxy::Start(*agent_, options, Record(&ended));
  ASSERT_TRUE(proxy.ok()) << proxy.status();

  Socket client = MustSocket();
  ASSERT_TRUE(client.Connect((*proxy)->bound()).ok());
  absl::StatusOr<AcceptResult> server = upstream_listener.Accept();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(client.SendAll("hello").ok());
  absl::StatusOr<std::string> got = server->socket.Recv(5);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hello");
  ASSERT_TRUE(server->socket.SendAll("hi").ok());
  got = client.Recv(2);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hi");

  // Stopped while the connection is live: its figures still arrive.
  (*proxy)->Stop();
  ASSERT_EQ(ended.size(), 1u);
  const ProxyConnection c = ended.at(0);
  ASSERT_TRUE(c.result.ok()) << c.result.status();
  EXPECT_EQ(c.result->relay().to_peer().bytes_sent(), 5u);
  EXPECT_EQ(c.result->relay().from_peer().bytes_sent(), 2u);
  // Both ends see the proxy's EOF.
  got = client.Recv(10);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
}

TEST_F(ProxyTest, StopReportsTheFiguresOfTheDatagramRelay) {
  Socket upstream = MustSocket(v1::SOCKET_TYPE_DGRAM);
  absl::StatusOr<v1::Address> bound =
      upstream.Bind(InetAddress("127.0.0.1", 0));
  ASSERT_TRUE(bound.ok()) << bound.status();

  Ended ended;
  ProxyOptions options;
  options.listen = InetAddress("127.0.0.1", 0);
  options.upstream = *bound;
  options.udp = true;
  absl::StatusOr<std::unique_ptr<Proxy>> proxy =
      Proxy::Start(*agent_, options, Record(&ended));
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  Socket client = MustSocket(v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(client.Connect((*proxy)->bound()).ok());
  ASSERT_TRUE(client.Send("ping").ok());
  absl::StatusOr<Datagram> got = upstream.RecvFrom(16);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(upstream.SendTo("pong!", got->address).ok());
  absl::StatusOr<std::string> reply = client.Recv(16);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "pong!");

  (*proxy)->Stop();
  ASSERT_EQ(ended.size(), 1u);
  const ProxyConnection c = ended.at(0);
  ASSERT_TRUE(c.result.ok()) << c.result.status();
  EXPECT_EQ(c.result->end(), v1::TRAFFIC_END_FAULT);
  EXPECT_EQ(c.result->relay().clients(), 1u);
  EXPECT_EQ(c.result->relay().to_peer().datagrams_sent(), 1u);
  EXPECT_EQ(c.result->relay().to_peer().bytes_sent(), 4u);
  EXPECT_EQ(c.result->relay().from_peer().bytes_sent(), 5u);
}

TEST_F(ProxyTest, AFaultTheSocketsCannotObeyIsRefusedAndChangesNothing) {
  Socket upstream_listener = MustSocket();
  absl::StatusOr<v1::Address> upstream =
      upstream_listener.Bind(InetAddress("127.0.0.1", 0));
  ASSERT_TRUE(upstream.ok());
  ASSERT_TRUE(upstream_listener.Listen().ok());

  ProxyOptions options;
  options.listen = InetAddress("127.0.0.1", 0);
  options.upstream = *upstream;
  options.to_upstream.set_loss_percent(5);
  absl::StatusOr<std::unique_ptr<Proxy>> refused =
      Proxy::Start(*agent_, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("loss_percent"), std::string::npos)
      << refused.status();

  options.to_upstream.Clear();
  Ended ended;
  absl::StatusOr<std::unique_ptr<Proxy>> proxy =
      Proxy::Start(*agent_, options, Record(&ended));
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  // No connection is live: the check does not depend on one.
  v1::Faults loss;
  loss.set_loss_percent(5);
  absl::Status set = (*proxy)->SetFaults(v1::Faults(), loss);
  EXPECT_EQ(set.code(), absl::StatusCode::kInvalidArgument) << set;
  EXPECT_NE(set.message().find("loss_percent"), std::string::npos) << set;

  // The refused change left no fault behind: a connection relays at once.
  Socket client = MustSocket();
  ASSERT_TRUE(client.Connect((*proxy)->bound()).ok());
  absl::StatusOr<AcceptResult> server = upstream_listener.Accept();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(client.SendAll("x").ok());
  absl::StatusOr<std::string> got = server->socket.Recv(1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "x");
  (*proxy)->Stop();
  EXPECT_EQ(ended.size(), 1u);
}

TEST_F(ProxyTest, AUdpProxyRefusesAStreamFaultAndLeavesNoSocket) {
  const size_t before = SocketCount();
  ProxyOptions options;
  options.listen = InetAddress("127.0.0.1", 0);
  options.upstream = InetAddress("127.0.0.1", 9);
  options.udp = true;
  options.to_client.set_slice_bytes(10);
  absl::StatusOr<std::unique_ptr<Proxy>> refused =
      Proxy::Start(*agent_, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("slice_bytes"), std::string::npos)
      << refused.status();
  EXPECT_EQ(SocketCount(), before);
}

TEST_F(ProxyTest, StopLeavesNoSocketOfTheProxy) {
  Socket upstream_listener = MustSocket();
  absl::StatusOr<v1::Address> upstream =
      upstream_listener.Bind(InetAddress("127.0.0.1", 0));
  ASSERT_TRUE(upstream.ok());
  ASSERT_TRUE(upstream_listener.Listen().ok());
  const size_t before = SocketCount();

  for (bool udp : {false, true}) {
    SCOPED_TRACE(udp ? "udp" : "tcp");
    Socket udp_upstream;
    ProxyOptions options;
    options.listen = InetAddress("127.0.0.1", 0);
    options.upstream = *upstream;
    options.udp = udp;
    if (udp) {
      udp_upstream = MustSocket(v1::SOCKET_TYPE_DGRAM);
      absl::StatusOr<v1::Address> bound =
          udp_upstream.Bind(InetAddress("127.0.0.1", 0));
      ASSERT_TRUE(bound.ok());
      options.upstream = *bound;
    }
    Ended ended;
    absl::StatusOr<std::unique_ptr<Proxy>> proxy =
        Proxy::Start(*agent_, options, Record(&ended));
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    Socket client =
        MustSocket(udp ? v1::SOCKET_TYPE_DGRAM : v1::SOCKET_TYPE_STREAM);
    ASSERT_TRUE(client.Connect((*proxy)->bound()).ok());
    if (udp) {
      ASSERT_TRUE(client.Send("ping").ok());
      absl::StatusOr<Datagram> got = udp_upstream.RecvFrom(16);
      ASSERT_TRUE(got.ok()) << got.status();
    } else {
      absl::StatusOr<AcceptResult> server = upstream_listener.Accept();
      ASSERT_TRUE(server.ok()) << server.status();
    }
    (*proxy)->Stop();
    // The relay (udp: the one datagram relay) is reported exactly once.
    EXPECT_EQ(ended.size(), 1u);
    client.Close().IgnoreError();
    udp_upstream.Close().IgnoreError();
    ASSERT_TRUE(test::WaitFor([&] { return SocketCount() == before; },
                              test::kDefaultWait,
                              "the proxy's sockets to be closed"));
  }
}

}  // namespace
}  // namespace sockagent
