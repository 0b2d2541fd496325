// The agent over a real gRPC channel, with real kernel sockets and real
// peers, all on loopback.

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "agent_fixture.h"
#include "gmock/gmock.h"
#include "tests/common/wait.h"

namespace sockagent::testing {
namespace {

using ::testing::HasSubstr;

// FNV-1a, for checking that bulk data arrived intact and in order.
uint64_t Fnv1a(uint64_t hash, const std::string& data) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}
constexpr uint64_t kFnvSeed = 14695981039346656037ULL;

// Deterministic, position-dependent bulk data.
std::string Pattern(size_t offset, size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    const uint64_t x = (offset + i) * 2654435761ULL;
    data[i] = static_cast<char>(x >> 13);
  }
  return data;
}

TEST_F(AgentTest, TcpEchoBothWaysBetweenTwoAgentSockets) {
  auto [listener, port] = ListeningTcp();
  absl::StatusOr<std::string> client =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(Connect(*client, Inet("127.0.0.1", port)).ok());
  absl::StatusOr<v1::AcceptResponse> accepted = Accept(listener);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->peer().inet().host(), "127.0.0.1");

  ASSERT_TRUE(Send(*client, "ping").ok());
  absl::StatusOr<std::string> got = Recv(accepted->handle(), 4, MSG_WAITALL);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ping");
  ASSERT_TRUE(Send(accepted->handle(), "pong").ok());
  got = Recv(*client, 4, MSG_WAITALL);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "pong");
}

TEST_F(AgentTest, TcpWithALocalPeerInBothDirections) {
  uint16_t port = 0;
  LocalSocket listener = LocalSocket::ListenTcp(&port);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(Connect(*handle, Inet("localhost", port)).ok());
  LocalSocket peer = listener.Accept();
  ASSERT_TRUE(Send(*handle, "from agent").ok());
  EXPECT_EQ(peer.RecvAll(10), "from agent");
  ASSERT_TRUE(peer.SendAll("from peer"));
  absl::StatusOr<std::string> got = Recv(*handle, 9, MSG_WAITALL);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "from peer");
}

TEST_F(AgentTest, UdpSendToAndRecvFromReportTheSource) {
  absl::StatusOr<std::string> a =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  absl::StatusOr<std::string> b =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<v1::Address> a_addr = Bind(*a, Inet("127.0.0.1", 0));
  absl::StatusOr<v1::Address> b_addr = Bind(*b, Inet("127.0.0.1", 0));
  ASSERT_TRUE(a_addr.ok() && b_addr.ok());

  v1::SendToRequest send;
  send.set_handle(*a);
  send.set_data("datagram");
  *send.mutable_address() = *b_addr;
  v1::SendToResponse sent;
  ASSERT_TRUE(stub_->SendTo(Ctx().get(), send, &sent).ok());
  EXPECT_EQ(sent.bytes_sent(), 8u);

  v1::RecvFromRequest recv;
  recv.set_handle(*b);
  recv.set_max_bytes(100);
  v1::RecvFromResponse got;
  ASSERT_TRUE(stub_->RecvFrom(Ctx().get(), recv, &got).ok());
  EXPECT_EQ(got.data(), "datagram");
  EXPECT_EQ(got.address().inet().host(), "127.0.0.1");
  EXPECT_EQ(got.address().inet().port(), a_addr->inet().port());
}

TEST_F(AgentTest, Ipv6LoopbackRoundTrip) {
  absl::StatusOr<std::string> listener =
      NewSocket(v1::FAMILY_INET6, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(listener.ok());
  absl::StatusOr<v1::Address> bound = Bind(*listener, Inet("::1", 0));
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_EQ(bound->inet().host(), "::1");
  ASSERT_TRUE(Listen(*listener).ok());
  absl::StatusOr<std::string> client =
      NewSocket(v1::FAMILY_INET6, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(Connect(*client, *bound).ok());
  absl::StatusOr<v1::AcceptResponse> accepted = Accept(*listener);
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(accepted->peer().inet().host(), "::1");
  ASSERT_TRUE(Send(*client, "six").ok());
  absl::StatusOr<std::string> got = Recv(accepted->handle(), 3, MSG_WAITALL);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "six");
}

TEST_F(AgentTest, UnixStreamOnAFilesystemPath) {
  char dir_template[] = "/tmp/sockagent-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/s";
  v1::Address address;
  address.mutable_unix()->set_path(path);

  absl::StatusOr<std::string> listener =
      NewSocket(v1::FAMILY_UNIX, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(listener.ok());
  absl::StatusOr<v1::Address> bound = Bind(*listener, address);
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_EQ(bound->unix().path(), path);
  ASSERT_TRUE(Listen(*listener).ok());
  absl::StatusOr<std::string> client =
      NewSocket(v1::FAMILY_UNIX, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*client, address).ok());
  absl::StatusOr<v1::AcceptResponse> accepted = Accept(*listener);
  ASSERT_TRUE(accepted.ok());
  ASSERT_TRUE(Send(accepted->handle(), "unix").ok());
  absl::StatusOr<std::string> got = Recv(*client, 4, MSG_WAITALL);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "unix");
  ::unlink(path.c_str());
  ::rmdir(dir_template);
}

// Linux paths are bytes: a path that is not UTF-8 crosses the wire (the
// field is `bytes`) and is bound, reported and connected to byte for byte.
TEST_F(AgentTest, UnixPathThatIsNotUtf8IsBoundAndConnected) {
  char dir_template[] = "/tmp/sockagent-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/\xff\xfe";
  v1::Address address;
  address.mutable_unix()->set_path(path);
  absl::StatusOr<std::string> listener =
      NewSocket(v1::FAMILY_UNIX, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(listener.ok());
  absl::StatusOr<v1::Address> bound = Bind(*listener, address);
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_EQ(bound->unix().path(), path);
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << "no socket file at the path";
  ASSERT_TRUE(Listen(*listener).ok());
  absl::StatusOr<std::string> client =
      NewSocket(v1::FAMILY_UNIX, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(Connect(*client, address).ok());
  absl::StatusOr<v1::AcceptResponse> accepted = Accept(*listener);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  ::unlink(path.c_str());
  ::rmdir(dir_template);
}

// Python's bind("") on AF_UNIX autobinds: the kernel picks an abstract name,
// which the bind response and GetSockName report.
TEST_F(AgentTest, UnixBindToAnEmptyPathAutobindsToAnAbstractName) {
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_UNIX, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(handle.ok());
  v1::Address empty;
  empty.mutable_unix()->set_path("");
  absl::StatusOr<v1::Address> bound = Bind(*handle, empty);
  ASSERT_TRUE(bound.ok()) << bound.status();
  ASSERT_EQ(bound->unix().name_case(), v1::UnixAddress::kAbstract);
  EXPECT_EQ(bound->unix().abstract().size(), 5u);  // five hex digits
  v1::GetSockNameRequest request;
  request.set_handle(*handle);
  v1::GetSockNameResponse name;
  ASSERT_TRUE(stub_->GetSockName(Ctx().get(), request, &name).ok());
  EXPECT_EQ(name.address().unix().abstract(), bound->unix().abstract());

  // A path starting with NUL names the same abstract socket.
  absl::StatusOr<std::string> sender =
      NewSocket(v1::FAMILY_UNIX, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(sender.ok());
  v1::SendToRequest send;
  send.set_handle(*sender);
  send.set_data("auto");
  send.mutable_address()->mutable_unix()->set_path(std::string(1, '\0') +
                                                   bound->unix().abstract());
  v1::SendToResponse sent;
  grpc::Status status = stub_->SendTo(Ctx().get(), send, &sent);
  ASSERT_TRUE(status.ok()) << status.error_message();
  absl::StatusOr<std::string> got = Recv(*handle, 64);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "auto");
}

TEST_F(AgentTest, UnixDatagramOnAnAbstractName) {
  const std::string name =
      absl::StrCat("sockagent-test-", ::getpid(), "-", server_->port());
  v1::Address address;
  address.mutable_unix()->set_abstract(name);
  absl::StatusOr<std::string> receiver =
      NewSocket(v1::FAMILY_UNIX, v1::SOCKET_TYPE_DGRAM);
  absl::StatusOr<std::string> sender =
      NewSocket(v1::FAMILY_UNIX, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(receiver.ok() && sender.ok());
  absl::StatusOr<v1::Address> bound = Bind(*receiver, address);
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_EQ(bound->unix().abstract(), name);

  v1::SendToRequest send;
  send.set_handle(*sender);
  send.set_data("abstract");
  *send.mutable_address() = address;
  v1::SendToResponse sent;
  ASSERT_TRUE(stub_->SendTo(Ctx().get(), send, &sent).ok());
  absl::StatusOr<std::string> got = Recv(*receiver, 64);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "abstract");
}

TEST_F(AgentTest, BindToPortZeroReturnsTheRealPort) {
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  absl::StatusOr<v1::Address> bound = Bind(*handle, Inet("", 0));
  ASSERT_TRUE(bound.ok());
  EXPECT_EQ(bound->inet().host(), "0.0.0.0");
  EXPECT_GT(bound->inet().port(), 0u);

  v1::GetSockNameRequest request;
  request.set_handle(*handle);
  v1::GetSockNameResponse response;
  ASSERT_TRUE(stub_->GetSockName(Ctx().get(), request, &response).ok());
  EXPECT_EQ(response.address().inet().port(), bound->inet().port());
}

TEST_F(AgentTest, AcceptWithASocketTimeoutIsDeadlineExceeded) {
  auto [listener, port] = ListeningTcp();
  ASSERT_TRUE(SetTimeoutMillis(listener, 100).ok());
  absl::StatusOr<v1::AcceptResponse> accepted = Accept(listener);
  EXPECT_EQ(accepted.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(accepted.status().message()), HasSubstr("timed out"));

  // The listener still works.
  LocalSocket client = LocalSocket::ConnectTcp(static_cast<uint16_t>(port));
  accepted = Accept(listener);
  EXPECT_TRUE(accepted.ok()) << accepted.status();
}

TEST_F(AgentTest, AWaitTimeoutInTheMetadataEndsTheWaitBeforeTheRpcDeadline) {
  auto [listener, port] = ListeningTcp();
  // The RPC may take 60 s; the wait itself ends after 100 ms, at the agent,
  // which answers: the caller learns the wait took nothing.
  v1::AcceptRequest request;
  request.set_handle(listener);
  v1::AcceptResponse response;
  std::unique_ptr<grpc::ClientContext> ctx = Ctx();
  ctx->AddMetadata(kWaitTimeoutMetadataKey, "100ms");
  const absl::Status status =
      FromGrpcStatus(stub_->Accept(ctx.get(), request, &response));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("timed out"));

  std::unique_ptr<grpc::ClientContext> bad = Ctx();
  bad->AddMetadata(kWaitTimeoutMetadataKey, "soon");
  const absl::Status refused =
      FromGrpcStatus(stub_->Accept(bad.get(), request, &response));
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("sockagent-wait-timeout"));
}

TEST_F(AgentTest, ConnectRefusedCarriesEconnrefused) {
  // A port that was just free: bind, read it back, close.
  uint16_t port = 0;
  { LocalSocket probe = LocalSocket::ListenTcp(&port); }
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  absl::Status status = Connect(*handle, Inet("127.0.0.1", port));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoNameOf(status), "ECONNREFUSED");
  std::optional<ErrnoInfo> info = GetErrno(status);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->number, ECONNREFUSED);
  EXPECT_EQ(info->syscall, "connect");
}

TEST_F(AgentTest, ConnectAgainAfterARefusalIsRefusedAgainLikePython) {
  uint16_t port = 0;
  { LocalSocket probe = LocalSocket::ListenTcp(&port); }
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  EXPECT_EQ(ErrnoNameOf(Connect(*handle, Inet("127.0.0.1", port))),
            "ECONNREFUSED");
  EXPECT_EQ(ErrnoNameOf(Connect(*handle, Inet("127.0.0.1", port))),
            "ECONNREFUSED");
  // And once something listens there, the same socket connects.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ASSERT_EQ(::listen(fd, 1), 0);
    EXPECT_TRUE(Connect(*handle, Inet("127.0.0.1", port)).ok());
  }  // else the port was taken meanwhile: the errno checks above stand.
  ::close(fd);
}

TEST_F(AgentTest, ResetByPeerCarriesEconnresetNotEconnrefused) {
  uint16_t port = 0;
  LocalSocket listener = LocalSocket::ListenTcp(&port);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*handle, Inet("127.0.0.1", port)).ok());
  {
    LocalSocket peer = listener.Accept();
    linger abort{1, 0};  // close with RST
    ::setsockopt(peer.fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  }
  absl::StatusOr<std::string> got = Recv(*handle, 10);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoNameOf(got.status()), "ECONNRESET");
}

TEST_F(AgentTest, RecvAfterPeerCloseIsEmptyForEof) {
  uint16_t port = 0;
  LocalSocket listener = LocalSocket::ListenTcp(&port);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*handle, Inet("127.0.0.1", port)).ok());
  {
    LocalSocket peer = listener.Accept();
    ASSERT_TRUE(peer.SendAll("last"));
  }
  absl::StatusOr<std::string> got = Recv(*handle, 100, MSG_WAITALL);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "last");
  got = Recv(*handle, 100);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "");
}

TEST_F(AgentTest, RecvStreamDelivers100MiBIntact) {
  constexpr size_t kTotal = 100 << 20;
  constexpr size_t kChunk = 1 << 20;
  uint16_t port = 0;
  LocalSocket listener = LocalSocket::ListenTcp(&port);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*handle, Inet("127.0.0.1", port)).ok());
  LocalSocket peer = listener.Accept();

  uint64_t sent_hash = kFnvSeed;
  std::thread sender([&] {
    for (size_t offset = 0; offset < kTotal; offset += kChunk) {
      std::string chunk = Pattern(offset, kChunk);
      sent_hash = Fnv1a(sent_hash, chunk);
      if (!peer.SendAll(chunk)) break;
    }
    ::shutdown(peer.fd(), SHUT_WR);
  });

  v1::RecvStreamRequest request;
  request.set_handle(*handle);
  auto ctx = Ctx();
  auto reader = stub_->RecvStream(ctx.get(), request);
  v1::RecvStreamResponse message;
  uint64_t got_hash = kFnvSeed;
  size_t received = 0;
  while (reader->Read(&message)) {
    received += message.data().size();
    got_hash = Fnv1a(got_hash, message.data());
  }
  grpc::Status status = reader->Finish();
  sender.join();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(received, kTotal);
  EXPECT_EQ(got_hash, sent_hash);
}

TEST_F(AgentTest, SendStreamDelivers100MiBIntact) {
  constexpr size_t kTotal = 100 << 20;
  constexpr size_t kChunk = 256 << 10;
  uint16_t port = 0;
  LocalSocket listener = LocalSocket::ListenTcp(&port);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*handle, Inet("127.0.0.1", port)).ok());
  LocalSocket peer = listener.Accept();

  uint64_t got_hash = kFnvSeed;
  size_t received = 0;
  std::thread receiver([&] {
    std::string buffer(kChunk, '\0');
    for (;;) {
      ssize_t n = ::recv(peer.fd(), buffer.data(), buffer.size(), 0);
      if (n <= 0) break;
      received += static_cast<size_t>(n);
      got_hash = Fnv1a(got_hash, buffer.substr(0, static_cast<size_t>(n)));
    }
  });

  auto ctx = Ctx();
  v1::SendStreamResponse response;
  auto writer = stub_->SendStream(ctx.get(), &response);
  uint64_t sent_hash = kFnvSeed;
  for (size_t offset = 0; offset < kTotal; offset += kChunk) {
    v1::SendStreamRequest message;
    if (offset == 0) message.set_handle(*handle);
    message.set_data(Pattern(offset, kChunk));
    sent_hash = Fnv1a(sent_hash, message.data());
    ASSERT_TRUE(writer->Write(message));
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.bytes_sent(), kTotal);

  v1::ShutdownRequest shut;
  shut.set_handle(*handle);
  shut.set_how(v1::SHUTDOWN_HOW_WRITE);
  v1::ShutdownResponse shut_response;
  ASSERT_TRUE(stub_->Shutdown(Ctx().get(), shut, &shut_response).ok());
  receiver.join();
  EXPECT_EQ(received, kTotal);
  EXPECT_EQ(got_hash, sent_hash);
}

// The stream reads one chunk ahead while the previous one is written; it
// must still stop exactly at limit_bytes and leave the rest in the socket.
TEST_F(AgentTest, RecvStreamStopsExactlyAtItsLimit) {
  uint16_t port = 0;
  LocalSocket listener = LocalSocket::ListenTcp(&port);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*handle, Inet("127.0.0.1", port)).ok());
  LocalSocket peer = listener.Accept();
  const std::string data = Pattern(0, 300000);
  ASSERT_TRUE(peer.SendAll(data));

  v1::RecvStreamRequest request;
  request.set_handle(*handle);
  request.set_limit_bytes(250001);
  request.set_chunk_bytes(4096);
  auto ctx = Ctx();
  auto reader = stub_->RecvStream(ctx.get(), request);
  v1::RecvStreamResponse message;
  std::string received;
  while (reader->Read(&message)) received += message.data();
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(received.size(), 250001u);
  EXPECT_TRUE(received == data.substr(0, 250001)) << "stream data differs";

  absl::StatusOr<std::string> rest = Recv(*handle, 49999, MSG_WAITALL);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(*rest == data.substr(250001)) << "the rest differs";
}

// Data read ahead before the peer's EOF is delivered before the stream ends.
TEST_F(AgentTest, RecvStreamDeliversEverythingBeforeEof) {
  uint16_t port = 0;
  LocalSocket listener = LocalSocket::ListenTcp(&port);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*handle, Inet("127.0.0.1", port)).ok());
  LocalSocket peer = listener.Accept();
  for (int round = 0; round < 20; ++round) {
    // Small chunks, so reads and writes interleave in every possible order.
    v1::RecvStreamRequest request;
    request.set_handle(*handle);
    request.set_chunk_bytes(1);
    request.set_limit_bytes(round == 19 ? 0 : 7);
    auto ctx = Ctx();
    auto reader = stub_->RecvStream(ctx.get(), request);
    const std::string data = Pattern(static_cast<size_t>(round) * 7, 7);
    ASSERT_TRUE(peer.SendAll(data));
    if (round == 19) ::shutdown(peer.fd(), SHUT_WR);
    v1::RecvStreamResponse message;
    std::string received;
    while (reader->Read(&message)) received += message.data();
    grpc::Status status = reader->Finish();
    ASSERT_TRUE(status.ok())
        << "round " << round << ": " << status.error_message();
    EXPECT_TRUE(received == data) << "round " << round;
  }
}

TEST_F(AgentTest, RecvStreamStopsReadingWhenTheCallerStops) {
  uint16_t port = 0;
  LocalSocket listener = LocalSocket::ListenTcp(&port);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*handle, Inet("127.0.0.1", port)).ok());
  LocalSocket peer = listener.Accept();

  v1::RecvStreamRequest request;
  request.set_handle(*handle);
  auto ctx = Ctx();
  auto reader = stub_->RecvStream(ctx.get(), request);
  ASSERT_TRUE(peer.SendAll("first"));
  v1::RecvStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));  // then the caller stops reading

  // The peer keeps sending without blocking: the agent must stop reading,
  // so the window closes and send() reports EAGAIN long before 256 MiB.
  const std::string chunk(64 << 10, 'x');
  size_t sent = 0;
  bool window_closed = false;
  while (sent < (256u << 20)) {
    ssize_t n = ::send(peer.fd(), chunk.data(), chunk.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      // Give the agent a bounded chance to drain; if it still does, keep on.
      pollfd p{peer.fd(), POLLOUT, 0};
      if (::poll(&p, 1, 500) == 0) {
        window_closed = true;
        break;
      }
      continue;
    }
    ASSERT_GT(n, 0);
    sent += static_cast<size_t>(n);
  }
  EXPECT_TRUE(window_closed) << "sent " << sent << " bytes without blocking";
  ctx->TryCancel();
  reader->Finish();
}

TEST_F(AgentTest, CancellingAWaitingAcceptLeavesTheListenerUsable) {
  auto [listener, port] = ListeningTcp();
  v1::AcceptRequest request;
  request.set_handle(listener);
  v1::AcceptResponse response;
  grpc::ClientContext ctx;
  ctx.AddMetadata(kSessionMetadataKey, session_);
  absl::Notification done;
  grpc::Status status;
  stub_->async()->Accept(&ctx, &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  // Wait until the agent really has the Accept waiting, then cancel.
  ASSERT_TRUE(test::WaitFor([&] { return server_->core().waiting_ops() != 0; },
                            test::kDefaultWait,
                            "the call to wait in the agent"));
  ASSERT_EQ(server_->core().waiting_ops(), 1u);
  ctx.TryCancel();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(test::WaitFor([&] { return server_->core().waiting_ops() == 0; },
                            test::kDefaultWait,
                            "the agent to forget the cancelled call"));
  EXPECT_EQ(server_->core().waiting_ops(), 0u);

  LocalSocket client = LocalSocket::ConnectTcp(static_cast<uint16_t>(port));
  absl::StatusOr<v1::AcceptResponse> accepted = Accept(listener);
  EXPECT_TRUE(accepted.ok()) << accepted.status();
}

TEST_F(AgentTest, CloseDuringAWaitingRecvEndsItWithAborted) {
  auto [listener, port] = ListeningTcp();
  absl::StatusOr<std::string> client =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*client, Inet("127.0.0.1", port)).ok());
  v1::RecvRequest request;
  request.set_handle(*client);
  request.set_max_bytes(10);
  v1::RecvResponse response;
  auto ctx = Ctx();
  absl::Notification done;
  grpc::Status status;
  stub_->async()->Recv(ctx.get(), &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  ASSERT_TRUE(test::WaitFor([&] { return server_->core().waiting_ops() != 0; },
                            test::kDefaultWait,
                            "the call to wait in the agent"));
  ASSERT_TRUE(Close(*client).ok());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  // A second Close is OK, as Python's close().
  EXPECT_TRUE(Close(*client).ok());
}

TEST_F(AgentTest, SessionExpiryClosesEverySocket) {
  const int baseline = CountOpenFds();
  const std::string session = NewSession(/*ttl_seconds=*/1);
  std::vector<std::string> handles;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::string> handle =
        NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM, session);
    ASSERT_TRUE(handle.ok());
    handles.push_back(*handle);
  }
  EXPECT_GE(CountOpenFds(), baseline + 20);
  // The lease lapses after 1 s; the reaper closes within its period.
  EXPECT_TRUE(test::WaitFor([&] { return CountOpenFds() == baseline; },
                            test::kDefaultWait,
                            "the reaper to close the session's sockets"))
      << CountOpenFds() << " fds open, baseline " << baseline;
  EXPECT_EQ(Close(handles[0], session).code(), absl::StatusCode::kNotFound);
}

TEST_F(AgentTest, CloseSessionClosesEverySocket) {
  const int baseline = CountOpenFds();
  const std::string session = NewSession();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM, session).ok());
  }
  v1::CloseSessionRequest request;
  v1::CloseSessionResponse response;
  ASSERT_TRUE(stub_->CloseSession(Ctx(session).get(), request, &response).ok());
  EXPECT_EQ(response.sockets_closed(), 5u);
  // The count is process-wide, and gRPC's own threads open and close
  // descriptors of their own: wait for it rather than sample it once.
  EXPECT_TRUE(test::WaitFor([&] { return CountOpenFds() == baseline; },
                            test::kDefaultWait, "the fd count"))
      << CountOpenFds() << " fds open, baseline " << baseline;
}

TEST_F(AgentTest, AHandleOfAnotherSessionIsNotFoundLikeAnUnknownOne) {
  absl::StatusOr<std::string> mine =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(mine.ok());
  const std::string other = NewSession();
  absl::Status foreign = Close(*mine, other);
  EXPECT_EQ(foreign.code(), absl::StatusCode::kNotFound);
  // An unknown handle of the right shape (its session closed) gets the
  // same answer.
  const std::string gone = NewSession();
  absl::StatusOr<std::string> unknown =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM, gone);
  ASSERT_TRUE(unknown.ok());
  v1::CloseSessionRequest close_session;
  v1::CloseSessionResponse closed;
  ASSERT_TRUE(
      stub_->CloseSession(Ctx(gone).get(), close_session, &closed).ok());
  absl::Status missing = Close(*unknown);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  // And the owner still has it.
  EXPECT_TRUE(Close(*mine).ok());
}

TEST_F(AgentTest, UnsupportedFamilyAndTypeCarryTheKernelsErrno) {
  v1::SocketRequest request;
  request.set_family(static_cast<v1::Family>(9));  // PF_X25
  request.set_type(v1::SOCKET_TYPE_STREAM);
  v1::SocketResponse response;
  absl::Status status =
      FromGrpcStatus(stub_->Socket(Ctx().get(), request, &response));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoNameOf(status), "EAFNOSUPPORT");
  EXPECT_THAT(std::string(status.message()), HasSubstr("family"));

  request.set_family(v1::FAMILY_INET);
  request.set_type(static_cast<v1::SocketType>(3));  // SOCK_RAW
  status = FromGrpcStatus(stub_->Socket(Ctx().get(), request, &response));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoNameOf(status), "ESOCKTNOSUPPORT");
}

TEST_F(AgentTest, BadInputNamesTheField) {
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  absl::Status status = Bind(*handle, Inet("127.0.0.1", 70000)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("address.inet.port"));

  // Python's gaierror: NOT_FOUND with EAI_NONAME, still naming the field.
  status = Bind(*handle, Inet("127.0.0.999", 1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoNameOf(status), "EAI_NONAME");
  EXPECT_THAT(std::string(status.message()), HasSubstr("address.inet.host"));

  v1::Address service;
  service.mutable_inet()->set_host("127.0.0.1");
  service.mutable_inet()->set_port_name("no-such-service");
  status = Bind(*handle, service).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("port_name"));

  status = Recv(*handle, 1, /*flags=*/0x40000000).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("flags"));

  status = Close("not-a-handle");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("handle"));

  v1::SendRequest big;
  big.set_handle(*handle);
  big.set_data(std::string(5 << 20, 'x'));
  v1::SendResponse sent;
  status = FromGrpcStatus(stub_->Send(Ctx().get(), big, &sent));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("data"));
}

TEST_F(AgentTest, ACallWithoutASessionIsRefusedWithAHint) {
  grpc::ClientContext ctx;
  v1::SocketRequest request;
  request.set_family(v1::FAMILY_INET);
  request.set_type(v1::SOCKET_TYPE_STREAM);
  v1::SocketResponse response;
  grpc::Status status = stub_->Socket(&ctx, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("CreateSession"));
}

TEST_F(AgentTest, NonBlockingRecvIsEagainAndTimeoutIsDeadlineExceeded) {
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(Bind(*handle, Inet("127.0.0.1", 0)).ok());
  ASSERT_TRUE(SetTimeoutMillis(*handle, 0).ok());
  absl::Status status = Recv(*handle, 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoNameOf(status), "EAGAIN");

  ASSERT_TRUE(SetTimeoutMillis(*handle, 50).ok());
  status = Recv(*handle, 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(AgentTest, SocketOptionsRoundTrip) {
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  v1::SetSockOptRequest set;
  set.set_handle(*handle);
  set.set_option(v1::OPT_TCP_NODELAY);
  set.mutable_value()->set_bool_value(true);
  v1::SetSockOptResponse set_response;
  ASSERT_TRUE(stub_->SetSockOpt(Ctx().get(), set, &set_response).ok());

  v1::GetSockOptRequest get;
  get.set_handle(*handle);
  get.set_option(v1::OPT_TCP_NODELAY);
  v1::GetSockOptResponse got;
  ASSERT_TRUE(stub_->GetSockOpt(Ctx().get(), get, &got).ok());
  EXPECT_TRUE(got.value().bool_value());

  set.set_option(v1::OPT_SO_LINGER);
  set.mutable_value()->set_int_value(5);  // wrong kind
  absl::Status status =
      FromGrpcStatus(stub_->SetSockOpt(Ctx().get(), set, &set_response));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("value"));
}

TEST_F(AgentTest, ListSocketsShowsStateAndByteCounts) {
  auto [listener, port] = ListeningTcp();
  absl::StatusOr<std::string> client =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(Connect(*client, Inet("127.0.0.1", port)).ok());
  ASSERT_TRUE(Send(*client, "12345").ok());
  v1::ListSocketsRequest request;
  v1::ListSocketsResponse response;
  ASSERT_TRUE(stub_->ListSockets(Ctx().get(), request, &response).ok());
  ASSERT_EQ(response.sockets_size(), 2);
  for (const v1::SocketInfo& info : response.sockets()) {
    if (info.handle() == listener) {
      EXPECT_EQ(info.state(), v1::SOCKET_STATE_LISTENING);
      EXPECT_EQ(info.local().inet().port(), port);
    } else {
      EXPECT_EQ(info.state(), v1::SOCKET_STATE_CONNECTED);
      EXPECT_EQ(info.bytes_sent(), 5u);
      EXPECT_EQ(info.peer().inet().port(), port);
    }
  }
}

TEST_F(AgentTest, GetHostnameAndAgentInfoDescribeTheHost) {
  char expected[256] = {};
  ::gethostname(expected, sizeof(expected) - 1);
  grpc::ClientContext ctx;
  v1::GetHostnameRequest request;
  v1::GetHostnameResponse response;
  ASSERT_TRUE(stub_->GetHostname(&ctx, request, &response).ok());
  EXPECT_EQ(response.hostname(), expected);

  grpc::ClientContext info_ctx;
  v1::GetAgentInfoRequest info_request;
  v1::GetAgentInfoResponse info;
  ASSERT_TRUE(stub_->GetAgentInfo(&info_ctx, info_request, &info).ok());
  EXPECT_EQ(info.api_version(), "sockagent.v1");
  EXPECT_EQ(info.incarnation(), server_->core().incarnation());
  EXPECT_EQ(info.limits().max_recv_bytes(), 4u << 20);
}

TEST_F(AgentTest, AHandleFromBeforeARestartSaysTheAgentRestarted) {
  const std::string old_session = session_;
  absl::StatusOr<std::string> old_handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(old_handle.ok());
  server_.reset();
  StartAgent(ServerOptions());  // a new incarnation
  absl::Status status = Close(*old_handle, old_session);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("restarted"));
}

TEST_F(AgentTest, DrainEndsWaitingCallsWithUnavailable) {
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(Bind(*handle, Inet("127.0.0.1", 0)).ok());
  v1::RecvRequest request;
  request.set_handle(*handle);
  request.set_max_bytes(10);
  v1::RecvResponse response;
  auto ctx = Ctx();
  absl::Notification done;
  grpc::Status status;
  stub_->async()->Recv(ctx.get(), &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  ASSERT_TRUE(test::WaitFor([&] { return server_->core().waiting_ops() != 0; },
                            test::kDefaultWait,
                            "the call to wait in the agent"));
  const int before = CountOpenFds();
  server_->Drain();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_LT(CountOpenFds(), before);  // the agent's socket is closed
}

TEST_F(AgentTest, DrainEndsASendStreamBetweenMessagesWithUnavailable) {
  // Before, the next message found no session: NOT_FOUND "session: unknown
  // session ... call CreateSession" (or CANCELLED at the drain deadline
  // when none came).
  const int receiver = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(receiver, reinterpret_cast<sockaddr*>(&address), length), 0);
  ::getsockname(receiver, reinterpret_cast<sockaddr*>(&address), &length);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(
      Connect(*handle, Inet("127.0.0.1", ntohs(address.sin_port))).ok());

  auto ctx = Ctx();
  v1::SendStreamResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::SendStreamRequest>> writer =
      stub_->SendStream(ctx.get(), &response);
  v1::SendStreamRequest first;
  first.set_handle(*handle);
  first.set_data("one");
  ASSERT_TRUE(writer->Write(first));
  char buffer[16];
  ASSERT_EQ(::recv(receiver, buffer, sizeof(buffer), 0), 3);  // sent
  ::close(receiver);

  std::thread drain([&] { server_->Drain(); });
  ASSERT_TRUE(test::WaitFor([&] { return server_->core().drained(); }));
  v1::SendStreamRequest second;
  second.set_data("two");
  writer->Write(second);  // may fail: the agent may have ended the call
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  drain.join();

  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
}

TEST_F(AgentTest, DrainEndsARecvStreamBetweenMessagesWithUnavailable) {
  // A TCP connection from the agent to the test, with far more data queued
  // than the stream's flow control admits while the client does not read:
  // the stream sits between two messages (a write pending, no Recv).
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  absl::StatusOr<std::string> handle =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(
      Connect(*handle, Inet("127.0.0.1", ntohs(address.sin_port))).ok());
  const int peer = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(peer, 0);
  ::close(listener);
  ::fcntl(peer, F_SETFL, O_NONBLOCK);
  const std::string chunk(256 * 1024, 'r');
  for (int i = 0; i < 64; ++i) {  // up to 16 MiB, until the buffers fill
    if (::send(peer, chunk.data(), chunk.size(), MSG_NOSIGNAL) <= 0) break;
  }

  // A fixed 64 KiB stream window (no BDP growth): the agent can push only
  // that much ahead of what the client reads, whatever the machine's load.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 * 1024);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  std::unique_ptr<v1::SocketAgent::Stub> stub = v1::SocketAgent::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                grpc::InsecureChannelCredentials(), args));
  auto ctx = Ctx();
  v1::RecvStreamRequest request;
  request.set_handle(*handle);
  request.set_chunk_bytes(16 * 1024);
  std::unique_ptr<grpc::ClientReader<v1::RecvStreamResponse>> reader =
      stub->RecvStream(ctx.get(), request);
  v1::RecvStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));
  // Unread, the stream stalls on a write: no Recv waits in the agent.
  ASSERT_TRUE(
      test::WaitFor([&] { return server_->core().waiting_ops() == 0; }));

  std::thread drain([&] { server_->Drain(); });
  ASSERT_TRUE(test::WaitFor([&] { return server_->core().drained(); }));
  while (reader->Read(&message)) {
  }
  grpc::Status status = reader->Finish();
  drain.join();
  ::close(peer);

  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
}

// HoldSession on the fixture's channel for `session`.
class HoldCall {
 public:
  HoldCall(v1::SocketAgent::Stub& stub, const std::string& session) {
    context_.AddMetadata(kSessionMetadataKey, session);
    stream_ = stub.HoldSession(&context_);
  }
  bool ReadEvent(v1::HoldSessionEvent* event) { return stream_->Read(event); }
  grpc::Status Release() {
    v1::HoldSessionRequest request;
    request.set_release(true);
    stream_->Write(request);
    stream_->WritesDone();
    return Finish();
  }
  grpc::Status Finish() {
    v1::HoldSessionEvent event;
    while (stream_->Read(&event)) {
    }
    return stream_->Finish();
  }
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::HoldSessionRequest, v1::HoldSessionEvent>>
      stream_;
};

TEST_F(AgentTest, ACancelledHoldSessionEndsItsSessionAtOnce) {
  grpc::ClientContext create;
  v1::CreateSessionRequest request;
  request.mutable_ttl()->set_seconds(300);
  request.set_bind_to_connection(true);
  v1::CreateSessionResponse created;
  ASSERT_TRUE(stub_->CreateSession(&create, request, &created).ok());
  const std::string session = created.session_id();
  const int baseline = CountOpenFds();
  ASSERT_TRUE(NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM, session).ok());

  HoldCall hold(*stub_, session);
  v1::HoldSessionEvent event;
  ASSERT_TRUE(hold.ReadEvent(&event));
  EXPECT_EQ(event.session_id(), session);
  EXPECT_EQ(event.ttl().seconds(), 300);
  // One binding at a time.
  HoldCall second(*stub_, session);
  EXPECT_EQ(second.Finish().error_code(), grpc::StatusCode::ALREADY_EXISTS);

  hold.Cancel();
  hold.Finish();
  EXPECT_TRUE(test::WaitFor([&] { return CountOpenFds() == baseline; }));
  EXPECT_EQ(Close("whatever", session).code(), absl::StatusCode::kNotFound);
}

TEST_F(AgentTest, AReleasedHoldSessionLeavesItsSessionLeaseOnly) {
  grpc::ClientContext create;
  v1::CreateSessionRequest request;
  request.set_bind_to_connection(true);
  v1::CreateSessionResponse created;
  ASSERT_TRUE(stub_->CreateSession(&create, request, &created).ok());
  const std::string session = created.session_id();
  {
    HoldCall hold(*stub_, session);
    v1::HoldSessionEvent event;
    ASSERT_TRUE(hold.ReadEvent(&event));
    grpc::Status released = hold.Release();
    EXPECT_TRUE(released.ok()) << released.error_message();
  }
  EXPECT_TRUE(NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM, session).ok());
  // CloseSession ends a held call with ABORTED.
  HoldCall hold(*stub_, session);
  v1::HoldSessionEvent event;
  ASSERT_TRUE(hold.ReadEvent(&event));
  v1::CloseSessionResponse closed;
  ASSERT_TRUE(
      stub_
          ->CloseSession(Ctx(session).get(), v1::CloseSessionRequest(), &closed)
          .ok());
  EXPECT_EQ(closed.sockets_closed(), 1u);
  EXPECT_EQ(hold.Finish().error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(AgentTest, ALeaseOnlySessionCannotBeHeld) {
  HoldCall hold(*stub_, session_);
  grpc::Status status = hold.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("bind_to_connection"));
  // And the session is unharmed.
  EXPECT_TRUE(NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM).ok());
}

}  // namespace
}  // namespace sockagent::testing
