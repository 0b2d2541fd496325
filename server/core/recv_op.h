#ifndef SOCKAGENT_SERVER_CORE_RECV_OP_H_
#define SOCKAGENT_SERVER_CORE_RECV_OP_H_

// recv() or recvfrom() as an engine operation; MSG_WAITALL is emulated (the
// socket is non-blocking) by waiting until `max_bytes` arrived or EOF.
// Counts the bytes on the socket. No gRPC, no policy: the caller passes the
// source filter.

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/core/call_context.h"
#include "server/core/session_table.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

class RecvOp final : public IoOp {
 public:
  struct Received {
    std::string data;
    v1::Address from;
  };
  // A datagram whose source `filter` (may be empty) refuses is dropped, and
  // the wait goes on for the next one.
  RecvOp(SocketOps& ops, std::shared_ptr<ManagedSocket> socket,
         size_t max_bytes, int flags, bool want_source, Callback<Received> done,
         absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter = {});

  std::optional<absl::Status> Attempt(int fd) override;
  void Complete(absl::Status status) override;
  const char* name() const override {
    return want_source_ ? "recvfrom" : "recv";
  }

 private:
  SocketOps& ops_;
  std::shared_ptr<ManagedSocket> socket_;
  const size_t max_bytes_;
  const int flags_;
  const bool wait_all_;
  const bool peek_;
  const bool truncated_report_;
  const bool want_source_;
  absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter_;
  std::string buffer_;
  size_t got_ = 0;
  // Bytes of the datagram past max_bytes, reported as zeros (MSG_TRUNC).
  size_t truncated_ = 0;
  Received result_;
  Callback<Received> done_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_RECV_OP_H_
