// Sessions end when their client is gone, and not before; and statuses tell
// the truth. Real processes: sockagentd (AgentProcess) and session_client,
// killed (SIGKILL) and stopped (SIGSTOP/SIGCONT) for real. Every wait is a
// bounded poll of a condition; the bounds are generous for a loaded machine
// and well below what the behaviour before the fix took (a lease of
// minutes, 40 s of keepalive). Loopback only.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <grpc/grpc.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent_process.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "sockagent/v1/sockagent.grpc.pb.h"
#include "tests/common/wait.h"

namespace sockagent::testing {
namespace {

using ::testing::HasSubstr;

// Waits (bounded) until `done` holds.
bool WaitUntil(absl::Duration bound, const std::function<bool()>& done) {
  return static_cast<bool>(test::WaitFor(done, bound));
}

// session_client as a child process; stdout goes to a file the test reads.
class ClientProcess {
 public:
  bool Start(const std::vector<std::string>& args) {
    char dir_template[] = "/tmp/session-client-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) return false;
    dir_ = dir_template;
    std::vector<std::string> all = {SESSION_CLIENT_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : all) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, (dir_ + "/out").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ + "/err").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, all[0].c_str(), &actions, nullptr,
                               argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
    return rc == 0;
  }
  ~ClientProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::kill(pid_, SIGCONT);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) {
      ::unlink((dir_ + "/out").c_str());
      ::unlink((dir_ + "/err").c_str());
      ::rmdir(dir_.c_str());
    }
  }

  std::string Output() const {
    std::ifstream in(dir_ + "/out");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string Errors() const {
    std::ifstream in(dir_ + "/err");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The value after "<key> " on the first such line, waiting up to 30 s.
  std::string Field(const std::string& key) {
    std::string value;
    WaitUntil(absl::Seconds(30), [&] {
      std::istringstream lines(Output());
      std::string line;
      while (std::getline(lines, line)) {
        if (absl::StartsWith(line, key + " ")) {
          value = line.substr(key.size() + 1);
          return true;
        }
      }
      return false;
    });
    return value;
  }
  void Signal(int signal) { ::kill(pid_, signal); }
  // Waits (bounded) for the exit; returns the exit code or -1.
  int Wait(absl::Duration bound) {
    int status = 0;
    int code = -1;
    WaitUntil(bound, [&] {
      if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
      pid_ = -1;
      code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return true;
    });
    return code;
  }

 private:
  pid_t pid_ = -1;
  std::string dir_;
};

class SessionLifetimeTest : public ::testing::Test {
 protected:
  void StartAgent(const std::vector<std::string>& args,
                  const std::vector<std::string>& wrapper = {}) {
    ASSERT_TRUE(agent_.Start(SOCKAGENTD_PATH, args, wrapper)) << agent_.Log();
    channel_ = grpc::CreateChannel(agent_.target(),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::SocketAgent::NewStub(channel_);
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& session = "") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!session.empty()) ctx->AddMetadata("sockagent-session", session);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
    return ctx;
  }

  // The session `id` as ListSessions reports it, or nullopt when gone.
  std::optional<v1::SessionInfo> Session(const std::string& id) {
    v1::ListSessionsResponse response;
    grpc::Status status =
        stub_->ListSessions(Ctx().get(), v1::ListSessionsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::SessionInfo& info : response.sessions()) {
      if (info.session_id() == id) return info;
    }
    return std::nullopt;
  }

  uint64_t OpenSockets() {
    v1::GetAgentInfoResponse info;
    stub_->GetAgentInfo(Ctx().get(), v1::GetAgentInfoRequest(), &info);
    return info.stats().open_sockets();
  }

  std::string NewSession(int ttl_seconds) {
    v1::CreateSessionRequest request;
    request.mutable_ttl()->set_seconds(ttl_seconds);
    v1::CreateSessionResponse response;
    EXPECT_TRUE(stub_->CreateSession(Ctx().get(), request, &response).ok());
    return response.session_id();
  }

  AgentProcess agent_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SocketAgent::Stub> stub_;
};

// A TCP listener of the test on 127.0.0.1:0.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), length);
    ::listen(fd, 4);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
  }
  ~Listener() { ::close(fd); }
};

TEST_F(SessionLifetimeTest, AKilledClientsBoundSessionEndsAtOnce) {
  StartAgent({});
  ClientProcess client;
  // A lease of 5 minutes: only the binding can end it within the bound.
  ASSERT_TRUE(client.Start({agent_.target(), "300", "bound", "recvfrom"}));
  const std::string id = client.Field("session");
  ASSERT_FALSE(id.empty()) << client.Output() << client.Errors();
  ASSERT_FALSE(client.Field("port").empty());
  std::optional<v1::SessionInfo> info = Session(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->bind_to_connection());
  EXPECT_TRUE(info->bound());
  ASSERT_EQ(OpenSockets(), 1u);

  client.Signal(SIGKILL);

  // Promised within 1 s; 10 s leaves room for a loaded machine.
  EXPECT_TRUE(WaitUntil(absl::Seconds(10), [&] { return !Session(id); }))
      << "the session of a killed client outlived its connection";
  EXPECT_EQ(OpenSockets(), 0u);
  EXPECT_THAT(agent_.Log(), HasSubstr("lost its connection"));
}

TEST_F(SessionLifetimeTest, AStoppedClientsBoundSessionEndsByKeepalive) {
  StartAgent({});  // default keepalive: 5 s + 5 s
  ClientProcess client;
  ASSERT_TRUE(client.Start({agent_.target(), "300", "bound", "recvfrom"}));
  const std::string id = client.Field("session");
  ASSERT_FALSE(client.Field("port").empty()) << client.Errors();

  client.Signal(SIGSTOP);

  // Promised within 15 s (keepalive time + timeout); bounded at 40 s, the
  // old keepalive alone (30 s + 10 s) took that long.
  EXPECT_TRUE(WaitUntil(absl::Seconds(40), [&] { return !Session(id); }))
      << "the session of a stopped client outlived the keepalive";
  EXPECT_EQ(OpenSockets(), 0u);

  // Continued, the client learns its call ended.
  client.Signal(SIGCONT);
  EXPECT_EQ(client.Wait(absl::Seconds(30)), 1);
  EXPECT_THAT(client.Output(), HasSubstr("error recvfrom"));
}

TEST_F(SessionLifetimeTest, ARecvStreamTrickleIntoAStoppedClientEndsInTime) {
  // Lease-only, 2 s lease, data trickling in. Before: each message pushed
  // into the stopped client renewed the lease, and the socket went only
  // when keepalive (30 s + 10 s) cut the connection: 42 s.
  StartAgent({});
  Listener listener;
  ClientProcess client;
  ASSERT_TRUE(client.Start({agent_.target(), "2", "lease", "recvstream",
                            absl::StrCat(listener.port)}));
  const std::string id = client.Field("session");
  ASSERT_FALSE(id.empty()) << client.Output() << client.Errors();
  const int peer = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(peer, 0);
  ::fcntl(peer, F_SETFL, O_NONBLOCK);
  client.Signal(SIGSTOP);

  // 512 bytes every 50 ms: far from filling any buffer, so the agent keeps
  // pushing. Keepalive 5 s + 5 s, then the 2 s lease: 12 s; bounded at 30 s.
  const std::string trickle(512, 't');
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    ::send(peer, trickle.data(), trickle.size(), MSG_NOSIGNAL);
    return !Session(id);
  })) << "the session of a stopped client outlived keepalive and lease";
  ::close(peer);
}

TEST_F(SessionLifetimeTest, ARecvStreamIntoAStoppedClientWithFullBuffersEnds) {
  // The buffers to the stopped client fill up, so the agent cannot even
  // write a keepalive ping; the kernel ends the connection
  // (TCP_USER_TIMEOUT = keepalive time + timeout), then the lease lapses.
  StartAgent({});
  Listener listener;
  ClientProcess client;
  ASSERT_TRUE(client.Start({agent_.target(), "2", "lease", "recvstream",
                            absl::StrCat(listener.port)}));
  const std::string id = client.Field("session");
  ASSERT_FALSE(id.empty()) << client.Output() << client.Errors();
  const int peer = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(peer, 0);
  // Data flowing into the stream while the client stops.
  const std::string chunk(64 * 1024, 'x');
  ::fcntl(peer, F_SETFL, O_NONBLOCK);
  uint64_t written = 0;
  for (int i = 0; i < 64; ++i) {
    const ssize_t n = ::send(peer, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) written += static_cast<uint64_t>(n);
  }
  ASSERT_GT(written, 0u);
  client.Signal(SIGSTOP);
  for (int i = 0; i < 256; ++i) {  // fill every buffer on the way
    const ssize_t n = ::send(peer, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
  }

  // Keepalive 5 s + 5 s, then the 2 s lease: 12 s; bounded at 30 s.
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] { return !Session(id); }))
      << "the session of a stopped client outlived keepalive and lease";
  // The agent closed its socket: the peer sees the connection end.
  char buffer[65536];
  bool ended = false;
  WaitUntil(absl::Seconds(10), [&] {
    for (;;) {
      const ssize_t n = ::recv(peer, buffer, sizeof(buffer), 0);
      if (n > 0) continue;
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        ended = true;
      }
      return ended;
    }
  });
  EXPECT_TRUE(ended);
  ::close(peer);
}

TEST_F(SessionLifetimeTest, AWaitingRecvFromKeepsALeaseOnlySessionAlive) {
  StartAgent({});
  ClientProcess client;
  ASSERT_TRUE(client.Start({agent_.target(), "1", "lease", "recvfrom"}));
  const std::string id = client.Field("session");
  const std::string port_text = client.Field("port");
  uint32_t port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(port_text, &port)) << client.Errors();
  // Created later with the same lease and nothing waiting: once it is gone,
  // the reaper ran past the client's lease too.
  const std::string control = NewSession(1);
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] { return !Session(control); }));

  std::optional<v1::SessionInfo> held = Session(id);
  ASSERT_TRUE(held.has_value()) << "the waiting call's session lapsed";
  EXPECT_GE(held->waiting_calls(), 1u);
  const int sender = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::sendto(sender, "late", 4, 0, reinterpret_cast<sockaddr*>(&to),
                     sizeof(to)),
            4);
  ::close(sender);
  EXPECT_EQ(client.Wait(absl::Seconds(30)), 0) << client.Output();
  EXPECT_THAT(client.Output(), HasSubstr("data late"));
}

TEST_F(SessionLifetimeTest, OutOfSocketsAHealthCheckOnANewConnectionAnswers) {
  // Before: sockets took every descriptor, accept failed with EMFILE, a
  // health check waited in the backlog, and the agent logged "accept: Too
  // many open files" every 100 ms.
  StartAgent({}, {"/usr/bin/prlimit", "--nofile=256:256", "--"});
  const std::string session = NewSession(120);
  v1::SocketRequest request;
  request.set_family(v1::FAMILY_INET);
  request.set_type(v1::SOCKET_TYPE_DGRAM);
  grpc::Status refused;
  int opened = 0;
  for (int i = 0; i < 1000; ++i) {
    v1::SocketResponse response;
    grpc::Status status = stub_->Socket(Ctx(session).get(), request, &response);
    if (!status.ok()) {
      refused = status;
      break;
    }
    ++opened;
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("max_open_sockets"));
  EXPECT_GT(opened, 64);
  EXPECT_LT(opened, 256);

  // New connections, as kubelet probes make (a local subchannel pool: a
  // channel with the same arguments would share the test's connection);
  // each stays open while the next one asks.
  std::vector<std::shared_ptr<grpc::Channel>> probes;
  for (int i = 0; i < 8; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    probes.push_back(grpc::CreateCustomChannel(
        agent_.target(), grpc::InsecureChannelCredentials(), args));
    auto health = grpc::health::v1::Health::NewStub(probes.back());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status =
        health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &response);
    ASSERT_TRUE(status.ok())
        << "probe " << i << ": " << status.error_message() << "\n"
        << agent_.Log();
    EXPECT_EQ(response.status(),
              grpc::health::v1::HealthCheckResponse::SERVING);
  }
  EXPECT_THAT(agent_.Log(), ::testing::Not(HasSubstr("Too many open files")));
}

}  // namespace
}  // namespace sockagent::testing
