#ifndef SOCKAGENT_SERVER_CORE_WAITING_CALLS_H_
#define SOCKAGENT_SERVER_CORE_WAITING_CALLS_H_

// The socket calls that may wait (accept, connect, send, recv, sendto,
// recvfrom): each resolves its socket once (SessionRegistry::Resolve) into
// the value it carries to its end (resolved_socket.h), is
// authorized by the PolicyGate, and submits one I/O operation (accept_op.h,
// connect_op.h, send_op.h, recv_op.h) to the engine, which finishes it when
// the socket is ready. A waiting call holds no thread and keeps its session
// alive. Thread-safe. No gRPC.
//
// Every callback runs exactly once: with the result, DEADLINE_EXCEEDED
// (socket timeout or call deadline), CANCELLED (the CallContext's token),
// ABORTED (the socket was closed meanwhile) or UNAVAILABLE (shutdown). It
// may run before the call returns, on the caller's thread, or later on the
// engine thread, and must not block.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "server/core/address.h"
#include "server/core/call_context.h"
#include "server/core/policy_gate.h"
#include "server/core/resolved_socket.h"
#include "server/core/session_registry.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

class WaitingCalls {
 public:
  struct Limits {
    size_t max_send_bytes = 4 << 20;
    size_t max_recv_bytes = 4 << 20;
  };
  // Not owned; all must outlive the calls.
  WaitingCalls(Limits limits, SocketOps& ops, Engine& engine,
               SessionRegistry& sessions, PolicyGate& gate)
      : limits_(limits),
        ops_(ops),
        engine_(engine),
        sessions_(sessions),
        gate_(gate) {}

  // `request` must outlive the callback.
  void Accept(const CallContext& ctx, const v1::AcceptRequest& request,
              Callback<v1::AcceptResponse> done);
  void Connect(const CallContext& ctx, const v1::ConnectRequest& request,
               Callback<v1::ConnectResponse> done);
  void Send(const CallContext& ctx, const v1::SendRequest& request,
            Callback<v1::SendResponse> done);
  void Recv(const CallContext& ctx, const v1::RecvRequest& request,
            Callback<v1::RecvResponse> done);
  void SendTo(const CallContext& ctx, const v1::SendToRequest& request,
              Callback<v1::SendToResponse> done);
  void RecvFrom(const CallContext& ctx, const v1::RecvFromRequest& request,
                Callback<v1::RecvFromResponse> done);

 private:
  // The shared tail of Send and SendTo: submits the SendOp (to `to` when
  // set) and charges the bytes sent. `data` must outlive `done`.
  void StartSend(ResolvedSocket call, absl::string_view data, int flags,
                 bool send_all, std::optional<SockAddr> to,
                 Callback<uint64_t> done);
  // The shared body of Recv and RecvFrom.
  template <typename Response>
  void Receive(const CallContext& ctx, const char* method,
               const std::string& handle, uint32_t max_bytes, int32_t flags,
               Callback<Response> done);

  const Limits limits_;
  SocketOps& ops_;
  Engine& engine_;
  SessionRegistry& sessions_;
  PolicyGate& gate_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_WAITING_CALLS_H_
