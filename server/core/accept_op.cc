#include "server/core/accept_op.h"

#include <utility>

#include "proto/errno_status.h"
#include "server/core/address.h"

namespace sockagent {

AcceptOp::AcceptOp(SocketOps& ops,
                   absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter,
                   absl::AnyInvocable<absl::Status()> admit,
                   absl::AnyInvocable<void(absl::StatusOr<Accepted>)> done)
    : ops_(ops),
      filter_(std::move(filter)),
      admit_(std::move(admit)),
      done_(std::move(done)) {}

std::optional<absl::Status> AcceptOp::Attempt(int fd) {
  for (;;) {
    if (absl::Status admitted = admit_(); !admitted.ok()) return admitted;
    SockAddr peer;
    peer.length = sizeof(peer.storage);
    SysCallInt rc = ops_.Accept(fd, peer.mutable_get(), &peer.length);
    if (rc.would_block()) return std::nullopt;
    if (!rc.ok()) return OsError(rc.error, "accept");
    ScopedFd accepted(rc.value);
    if (filter_ && !filter_(peer.get(), peer.length)) continue;
    accepted_.fd = std::move(accepted);
    accepted_.peer = ToWireAddress(peer.get(), peer.length);
    return absl::OkStatus();
  }
}

void AcceptOp::Complete(absl::Status status) {
  if (!status.ok()) return done_(std::move(status));
  done_(std::move(accepted_));
}

}  // namespace sockagent
