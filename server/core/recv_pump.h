#ifndef SOCKAGENT_SERVER_CORE_RECV_PUMP_H_
#define SOCKAGENT_SERVER_CORE_RECV_PUMP_H_

// The receiving side of a stream (RecvStream, RecvFromStream): a socket
// resolved once, received from chunk after chunk. Each Next() is one
// recv()/recvfrom() through the engine (RecvOp: MSG_* semantics, waiting,
// the socket's timeout from when the stream started) and hands the bytes
// to the pump's callback as an owned buffer; no session, handle or owner
// lookup per chunk, and the byte-rate quota is consulted only when the
// identity has one. No gRPC.
//
// Thread-safe in the way a stream uses it: at most one Next() outstanding;
// `on_chunk` runs exactly once per Next(), possibly before Next() returns,
// on the caller's thread or the engine's, and must not block. Owned by
// shared_ptr: an operation in flight keeps the pump alive.

#include <cstddef>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/core/policy_gate.h"
#include "server/core/recv_op.h"
#include "server/core/resolved_socket.h"
#include "server/core/session_registry.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"

namespace sockagent {

class RecvPump : public std::enable_shared_from_this<RecvPump> {
 public:
  // One chunk: its bytes ("" at orderly EOF of a stream socket) and, for
  // RecvFromStream, its source. Errors: as WaitingCalls::Recv's.
  using OnChunk = absl::AnyInvocable<void(absl::StatusOr<RecvOp::Received>)>;

  struct Options {
    // The method audit records name: "Recv" or "RecvFrom", as for the
    // single calls a stream is made of.
    const char* method = "Recv";
    // recvfrom() with the source in each chunk; datagrams from sources the
    // policy's accept filters refuse are dropped (audited, counted).
    bool want_source = false;
  };

  // Use SessionRegistry::Resolve for `socket`. The references must outlive
  // the pump.
  RecvPump(SocketOps& ops, Engine& engine, SessionRegistry& sessions,
           PolicyGate& gate, ResolvedSocket socket, Options options,
           OnChunk on_chunk);

  // Receives up to `max_bytes` (> 0) and delivers them to `on_chunk`.
  void Next(size_t max_bytes);

  const ResolvedSocket& socket() const { return call_; }

 private:
  void Delivered(absl::StatusOr<RecvOp::Received> got);

  SocketOps& ops_;
  Engine& engine_;
  SessionRegistry& sessions_;
  PolicyGate& gate_;
  ResolvedSocket call_;
  const Options options_;
  PolicyGate::SourceFilter filter_;
  OnChunk on_chunk_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_RECV_PUMP_H_
