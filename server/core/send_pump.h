#ifndef SOCKAGENT_SERVER_CORE_SEND_PUMP_H_
#define SOCKAGENT_SERVER_CORE_SEND_PUMP_H_

// The sending side of a stream (SendStream): a socket resolved once, sent
// to message after message. Each Send() takes an owned buffer and sends all
// of it through the engine (SendOp with send_all: waiting, the socket's
// timeout from when the stream started); no session, handle or owner lookup
// per message, and the byte-rate quota is consulted only when the identity
// has one. No gRPC.
//
// At most one Send() outstanding; `on_sent` runs exactly once per Send(),
// possibly before Send() returns, on the caller's thread or the engine's,
// and must not block. Owned by shared_ptr: an operation in flight keeps the
// pump (and the buffer it sends) alive.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/core/policy_gate.h"
#include "server/core/resolved_socket.h"
#include "server/core/session_registry.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"

namespace sockagent {

class SendPump : public std::enable_shared_from_this<SendPump> {
 public:
  // The bytes sent (all of the message), or why not: as WaitingCalls::Send.
  using OnSent = absl::AnyInvocable<void(absl::StatusOr<uint64_t>)>;

  // Use SessionRegistry::Resolve for `socket`. The references must outlive
  // the pump. `max_send_bytes`: the largest message (limits.max_send_bytes).
  SendPump(SocketOps& ops, Engine& engine, SessionRegistry& sessions,
           PolicyGate& gate, ResolvedSocket socket, size_t max_send_bytes,
           OnSent on_sent);

  // Sends all of `*data`, taking its bytes: `*data` gets the pump's spare
  // buffer (empty, with its capacity) so a stream reuses two buffers.
  // INVALID_ARGUMENT naming limits.max_send_bytes for a larger message.
  void Send(std::string* data);

  const ResolvedSocket& socket() const { return call_; }

 private:
  void Sent(absl::StatusOr<uint64_t> sent);

  SocketOps& ops_;
  Engine& engine_;
  SessionRegistry& sessions_;
  PolicyGate& gate_;
  ResolvedSocket call_;
  const size_t max_send_bytes_;
  // The message being sent (SendOp reads it in place).
  std::string data_;
  OnSent on_sent_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_SEND_PUMP_H_
