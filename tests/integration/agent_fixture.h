#ifndef SOCKAGENT_TESTS_INTEGRATION_AGENT_FIXTURE_H_
#define SOCKAGENT_TESTS_INTEGRATION_AGENT_FIXTURE_H_

// A real agent (AgentServer on 127.0.0.1:0) in the test process, and a raw
// generated stub talking to it over a real channel, exactly like "any gRPC
// client generated from the proto". Also small helpers for the local peers
// the tests use (plain kernel sockets on loopback).

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"
#include "proto/status_codec.h"
#include "server/service/agent_server.h"
#include "sockagent/v1/sockagent.grpc.pb.h"

namespace sockagent::testing {

// Open descriptors of this process.
inline int CountOpenFds() {
  int count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir) != nullptr) ++count;
    ::closedir(dir);
  }
  return count - 3;  // ".", ".." and the directory itself
}

inline v1::Address Inet(const std::string& host, uint32_t port) {
  v1::Address address;
  address.mutable_inet()->set_host(host);
  address.mutable_inet()->set_port(port);
  return address;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override { StartAgent(ServerOptions()); }

  void StartAgent(ServerOptions options) {
    options.listen_address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<AgentServer>> server =
        AgentServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    channel_ =
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                  grpc::InsecureChannelCredentials(), args);
    stub_ = v1::SocketAgent::NewStub(channel_);
    session_ = NewSession();
  }

  std::string NewSession(int ttl_seconds = 60) {
    grpc::ClientContext ctx;
    v1::CreateSessionRequest request;
    request.mutable_ttl()->set_seconds(ttl_seconds);
    v1::CreateSessionResponse response;
    grpc::Status status = stub_->CreateSession(&ctx, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.session_id();
  }

  // A context carrying `session` (default: the fixture's session).
  std::unique_ptr<grpc::ClientContext> Ctx(std::string session = "") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata(kSessionMetadataKey, session.empty() ? session_ : session);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(60));
    return ctx;
  }

  absl::StatusOr<std::string> NewSocket(v1::Family family, v1::SocketType type,
                                        std::string session = "") {
    v1::SocketRequest request;
    request.set_family(family);
    request.set_type(type);
    v1::SocketResponse response;
    grpc::Status status = stub_->Socket(Ctx(session).get(), request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response.handle();
  }

  absl::StatusOr<v1::Address> Bind(const std::string& handle,
                                   const v1::Address& address) {
    v1::BindRequest request;
    request.set_handle(handle);
    *request.mutable_address() = address;
    v1::BindResponse response;
    grpc::Status status = stub_->Bind(Ctx().get(), request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response.address();
  }

  absl::Status Listen(const std::string& handle) {
    v1::ListenRequest request;
    request.set_handle(handle);
    v1::ListenResponse response;
    return FromGrpcStatus(stub_->Listen(Ctx().get(), request, &response));
  }

  absl::StatusOr<v1::AcceptResponse> Accept(const std::string& handle) {
    v1::AcceptRequest request;
    request.set_handle(handle);
    v1::AcceptResponse response;
    grpc::Status status = stub_->Accept(Ctx().get(), request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  absl::Status Connect(const std::string& handle, const v1::Address& to) {
    v1::ConnectRequest request;
    request.set_handle(handle);
    *request.mutable_address() = to;
    v1::ConnectResponse response;
    return FromGrpcStatus(stub_->Connect(Ctx().get(), request, &response));
  }

  absl::StatusOr<uint64_t> Send(const std::string& handle,
                                const std::string& data, bool send_all = true) {
    v1::SendRequest request;
    request.set_handle(handle);
    request.set_data(data);
    request.set_send_all(send_all);
    v1::SendResponse response;
    grpc::Status status = stub_->Send(Ctx().get(), request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response.bytes_sent();
  }

  absl::StatusOr<std::string> Recv(const std::string& handle,
                                   uint32_t max_bytes, int flags = 0) {
    v1::RecvRequest request;
    request.set_handle(handle);
    request.set_max_bytes(max_bytes);
    request.set_flags(flags);
    v1::RecvResponse response;
    grpc::Status status = stub_->Recv(Ctx().get(), request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response.data();
  }

  absl::Status Close(const std::string& handle, std::string session = "") {
    v1::CloseRequest request;
    request.set_handle(handle);
    v1::CloseResponse response;
    return FromGrpcStatus(stub_->Close(Ctx(session).get(), request, &response));
  }

  absl::Status SetTimeoutMillis(const std::string& handle, int64_t millis) {
    v1::SetTimeoutRequest request;
    request.set_handle(handle);
    request.mutable_timeout()->set_seconds(millis / 1000);
    request.mutable_timeout()->set_nanos(
        static_cast<int32_t>((millis % 1000) * 1000000));
    v1::SetTimeoutResponse response;
    return FromGrpcStatus(stub_->SetTimeout(Ctx().get(), request, &response));
  }

  // A listening agent socket on 127.0.0.1 and its bound port.
  std::pair<std::string, uint32_t> ListeningTcp() {
    absl::StatusOr<std::string> listener =
        NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
    EXPECT_TRUE(listener.ok()) << listener.status();
    absl::StatusOr<v1::Address> bound = Bind(*listener, Inet("127.0.0.1", 0));
    EXPECT_TRUE(bound.ok()) << bound.status();
    EXPECT_TRUE(Listen(*listener).ok());
    return {*listener, bound->inet().port()};
  }

  std::unique_ptr<AgentServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SocketAgent::Stub> stub_;
  std::string session_;
};

// The errno name carried by `status`, or "" if none.
inline std::string ErrnoNameOf(const absl::Status& status) {
  std::optional<ErrnoInfo> info = GetErrno(status);
  return info.has_value() ? info->name : "";
}

// A plain blocking kernel socket of the test process, as a local peer.
class LocalSocket {
 public:
  explicit LocalSocket(int fd) : fd_(fd) {}
  LocalSocket(LocalSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ~LocalSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

  // Listens on 127.0.0.1:0; returns the port through `port`.
  static LocalSocket ListenTcp(uint16_t* port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd, 16), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    *port = ntohs(addr.sin_port);
    return LocalSocket(fd);
  }

  static LocalSocket ConnectTcp(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
              0);
    return LocalSocket(fd);
  }

  LocalSocket Accept() {
    return LocalSocket(::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
  }

  bool SendAll(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n =
          ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until `size` bytes or EOF.
  std::string RecvAll(size_t size) {
    std::string data(size, '\0');
    size_t got = 0;
    while (got < size) {
      ssize_t n = ::recv(fd_, data.data() + got, size - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    data.resize(got);
    return data;
  }

 private:
  int fd_;
};

}  // namespace sockagent::testing

#endif  // SOCKAGENT_TESTS_INTEGRATION_AGENT_FIXTURE_H_
