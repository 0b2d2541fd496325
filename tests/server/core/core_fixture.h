#ifndef SOCKAGENT_TESTS_SERVER_CORE_CORE_FIXTURE_H_
#define SOCKAGENT_TESTS_SERVER_CORE_CORE_FIXTURE_H_

// The fixture every test of the core's rooms shares (tests/server/core/):
// an AgentCore over FakeSocketOps with one session, and helpers that make
// its calls and wait (bounded) for the ones that may wait.

#include <dirent.h>
#include <sys/socket.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/agent_core.h"
#include "sockagent/v1/sockagent.pb.h"
#include "tests/common/wait.h"
#include "tests/server/core_test_util.h"
#include "tests/server/fake_socket_ops.h"

namespace sockagent {
namespace core_test {

inline constexpr absl::Duration kWait = absl::Seconds(10);
inline constexpr size_t kMaxRecvBytes = 64 * 1024;
inline constexpr size_t kMaxSendBytes = 64 * 1024;

inline std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// Descriptors of this process, for leak checks.
inline int OpenFdCount() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (::readdir(dir) != nullptr) ++count;
  ::closedir(dir);
  return count;
}

// Waits (at most kWait) until the fd count is `want`.
inline bool FdCountReaches(int want) {
  return static_cast<bool>(test::WaitFor(
      [want] { return OpenFdCount() == want; }, kWait, "the fd count"));
}

struct TcpPair {
  std::string listener;
  std::string client;
  std::string server;  // the accepted end
  uint32_t port = 0;
};

// An AgentCore over a FakeSocketOps (real kernel calls unless a test
// injects an errno) with one session, and helpers for its calls.
class CoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    AgentCore::Options options;
    options.ops = &fake_;
    options.reap_interval = absl::Milliseconds(20);
    options.max_recv_bytes = kMaxRecvBytes;
    options.max_send_bytes = kMaxSendBytes;
    // Two engine threads, as sockagentd runs on two cores: a connection's
    // two ends are on different threads.
    options.io_threads = 2;
    absl::StatusOr<std::unique_ptr<AgentCore>> core =
        AgentCore::Create(options);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = *std::move(core);
    ctx_ = NewSession(absl::Seconds(120));
  }

  CallContext NewSession(absl::Duration ttl) {
    v1::CreateSessionRequest request;
    request.mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    request.mutable_ttl()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(ttl % absl::Seconds(1))));
    request.set_label(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    absl::StatusOr<v1::CreateSessionResponse> response =
        core_->CreateSession(request);
    EXPECT_TRUE(response.ok()) << response.status();
    CallContext ctx;
    if (response.ok()) ctx.session_id = response->session_id();
    return ctx;
  }

  absl::StatusOr<std::string> NewSocket(const CallContext& ctx, int family,
                                        int type) {
    v1::SocketRequest request;
    request.set_family(static_cast<v1::Family>(family));
    request.set_type(static_cast<v1::SocketType>(type));
    absl::StatusOr<v1::SocketResponse> response = core_->Socket(ctx, request);
    if (!response.ok()) return response.status();
    return response->handle();
  }

  std::string MustSocket(const CallContext& ctx, int type = SOCK_STREAM) {
    absl::StatusOr<std::string> handle = NewSocket(ctx, AF_INET, type);
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.ok() ? *handle : "";
  }

  absl::StatusOr<uint32_t> BindLoopback(const CallContext& ctx,
                                        const std::string& handle) {
    v1::BindRequest request;
    request.set_handle(handle);
    *request.mutable_address() = Loopback();
    absl::StatusOr<v1::BindResponse> response = core_->Bind(ctx, request);
    if (!response.ok()) return response.status();
    return response->address().inet().port();
  }

  absl::Status Listen(const CallContext& ctx, const std::string& handle) {
    v1::ListenRequest request;
    request.set_handle(handle);
    return core_->Listen(ctx, request).status();
  }

  absl::StatusOr<v1::ConnectResponse> Connect(const CallContext& ctx,
                                              const std::string& handle,
                                              uint32_t port) {
    v1::ConnectRequest request;
    request.set_handle(handle);
    *request.mutable_address() = Loopback(port);
    Waiter<v1::ConnectResponse> waiter;
    core_->Connect(ctx, request, waiter.callback());
    return waiter.Wait();
  }

  // A listener on 127.0.0.1 and a connected, accepted pair.
  TcpPair MustTcpPair(const CallContext& ctx) {
    TcpPair pair;
    pair.listener = MustSocket(ctx);
    absl::StatusOr<uint32_t> port = BindLoopback(ctx, pair.listener);
    EXPECT_TRUE(port.ok()) << port.status();
    if (!port.ok()) return pair;
    pair.port = *port;
    EXPECT_TRUE(Listen(ctx, pair.listener).ok());
    v1::AcceptRequest accept;
    accept.set_handle(pair.listener);
    Waiter<v1::AcceptResponse> accepted;
    core_->Accept(ctx, accept, accepted.callback());
    pair.client = MustSocket(ctx);
    absl::StatusOr<v1::ConnectResponse> connected =
        Connect(ctx, pair.client, pair.port);
    EXPECT_TRUE(connected.ok()) << connected.status();
    absl::StatusOr<v1::AcceptResponse> server = accepted.Wait();
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) pair.server = server->handle();
    return pair;
  }

  absl::StatusOr<uint64_t> Send(const CallContext& ctx,
                                const std::string& handle,
                                const std::string& data, int flags = 0) {
    v1::SendRequest request;
    request.set_handle(handle);
    request.set_data(data);
    request.set_flags(flags);
    Waiter<v1::SendResponse> waiter;
    core_->Send(ctx, request, waiter.callback());
    absl::StatusOr<v1::SendResponse> response = waiter.Wait();
    if (!response.ok()) return response.status();
    return response->bytes_sent();
  }

  absl::StatusOr<uint64_t> SendTo(const CallContext& ctx,
                                  const std::string& handle,
                                  const std::string& data, uint32_t port) {
    v1::SendToRequest request;
    request.set_handle(handle);
    request.set_data(data);
    *request.mutable_address() = Loopback(port);
    Waiter<v1::SendToResponse> waiter;
    core_->SendTo(ctx, request, waiter.callback());
    absl::StatusOr<v1::SendToResponse> response = waiter.Wait();
    if (!response.ok()) return response.status();
    return response->bytes_sent();
  }

  // Starts a Recv; the request is copied into the call, so it may go away.
  Waiter<v1::RecvResponse> StartRecv(const CallContext& ctx,
                                     const std::string& handle,
                                     uint32_t max_bytes, int flags = 0) {
    v1::RecvRequest request;
    request.set_handle(handle);
    request.set_max_bytes(max_bytes);
    request.set_flags(flags);
    Waiter<v1::RecvResponse> waiter;
    core_->Recv(ctx, request, waiter.callback());
    return waiter;
  }

  absl::StatusOr<std::string> Recv(const CallContext& ctx,
                                   const std::string& handle,
                                   uint32_t max_bytes, int flags = 0) {
    absl::StatusOr<v1::RecvResponse> response =
        StartRecv(ctx, handle, max_bytes, flags).Wait();
    if (!response.ok()) return response.status();
    return response->data();
  }

  absl::Status SetTimeout(const CallContext& ctx, const std::string& handle,
                          std::optional<absl::Duration> timeout) {
    v1::SetTimeoutRequest request;
    request.set_handle(handle);
    if (timeout.has_value()) {
      request.mutable_timeout()->set_seconds(absl::ToInt64Seconds(*timeout));
      request.mutable_timeout()->set_nanos(static_cast<int32_t>(
          absl::ToInt64Nanoseconds(*timeout % absl::Seconds(1))));
    }
    return core_->SetTimeout(ctx, request).status();
  }

  absl::Status Close(const CallContext& ctx, const std::string& handle) {
    v1::CloseRequest request;
    request.set_handle(handle);
    return core_->Close(ctx, request).status();
  }

  absl::StatusOr<v1::SocketInfo> InfoOf(const CallContext& ctx,
                                        const std::string& handle) {
    absl::StatusOr<v1::ListSocketsResponse> list = core_->ListSockets(ctx);
    if (!list.ok()) return list.status();
    for (const v1::SocketInfo& info : list->sockets()) {
      if (info.handle() == handle) return info;
    }
    return absl::NotFoundError("test: not listed");
  }

  // Declared before core_ so that it outlives the core's engine thread.
  FakeSocketOps fake_;
  std::unique_ptr<AgentCore> core_;
  CallContext ctx_;
};

}  // namespace core_test
}  // namespace sockagent

#endif  // SOCKAGENT_TESTS_SERVER_CORE_CORE_FIXTURE_H_
