#ifndef SOCKAGENT_SERVER_CORE_ACCEPT_OP_H_
#define SOCKAGENT_SERVER_CORE_ACCEPT_OP_H_

// accept() as an engine operation: waits for a connection a source filter
// admits. No gRPC, no session, no policy: the caller passes the filter and
// the admission check. Touches the kernel through SocketOps only.

#include <sys/socket.h>

#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/io/engine.h"
#include "server/io/scoped_fd.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

class AcceptOp final : public IoOp {
 public:
  struct Accepted {
    ScopedFd fd;
    v1::Address peer;
  };
  // A connection whose peer `filter` (may be empty) refuses is closed, and
  // the wait goes on for the next one. While `admit` refuses, the wait ends
  // with its status and the connection stays in the backlog.
  AcceptOp(SocketOps& ops,
           absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter,
           absl::AnyInvocable<absl::Status()> admit,
           absl::AnyInvocable<void(absl::StatusOr<Accepted>)> done);

  std::optional<absl::Status> Attempt(int fd) override;
  void Complete(absl::Status status) override;
  const char* name() const override { return "accept"; }

 private:
  SocketOps& ops_;
  absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter_;
  absl::AnyInvocable<absl::Status()> admit_;
  Accepted accepted_;
  absl::AnyInvocable<void(absl::StatusOr<Accepted>)> done_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_ACCEPT_OP_H_
