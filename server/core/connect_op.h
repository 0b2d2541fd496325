#ifndef SOCKAGENT_SERVER_CORE_CONNECT_OP_H_
#define SOCKAGENT_SERVER_CORE_CONNECT_OP_H_

// connect() as an engine operation: starts the connect and waits for its
// outcome, keeping the socket's state (CONNECTING, CONNECTED) current. No
// gRPC, no policy: the caller passes the check for an unexpected peer.

#include <memory>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/core/address.h"
#include "server/core/call_context.h"
#include "server/core/session_table.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

class ConnectOp final : public IoOp {
 public:
  // `check_peer` judges the connected peer when it differs from `address`
  // (what was allowed); a refusal ends the call with its status.
  ConnectOp(SocketOps& ops, std::shared_ptr<ManagedSocket> socket,
            SockAddr address,
            absl::AnyInvocable<absl::Status(const SockAddr&)> check_peer,
            Callback<v1::ConnectResponse> done);

  // The outcome of a non-blocking connect is read by calling connect()
  // again (0/EISCONN: connected, EALREADY: still going, else the error)
  // rather than through SO_ERROR: only this path resets the socket so that
  // a later Connect behaves as after a blocking connect (a retry after
  // ECONNREFUSED gets ECONNREFUSED again, not ECONNABORTED).
  std::optional<absl::Status> Attempt(int fd) override;
  void Complete(absl::Status status) override;
  const char* name() const override { return "connect"; }
  int would_block_errno() const override { return EINPROGRESS; }

 private:
  absl::Status Connected(int fd);

  SocketOps& ops_;
  std::shared_ptr<ManagedSocket> socket_;
  SockAddr address_;
  absl::AnyInvocable<absl::Status(const SockAddr&)> check_peer_;
  bool started_ = false;
  v1::ConnectResponse response_;
  Callback<v1::ConnectResponse> done_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_CONNECT_OP_H_
