#include "server/core/connect_op.h"

#include <cerrno>
#include <utility>

#include "proto/errno_status.h"
#include "server/core/socket_fd.h"

namespace sockagent {

ConnectOp::ConnectOp(
    SocketOps& ops, std::shared_ptr<ManagedSocket> socket, SockAddr address,
    absl::AnyInvocable<absl::Status(const SockAddr&)> check_peer,
    Callback<v1::ConnectResponse> done)
    : ops_(ops),
      socket_(std::move(socket)),
      address_(address),
      check_peer_(std::move(check_peer)),
      done_(std::move(done)) {}

std::optional<absl::Status> ConnectOp::Attempt(int fd) {
  const bool retry = started_;
  started_ = true;
  SysCallInt rc = ops_.Connect(fd, address_.get(), address_.length);
  if (rc.ok() || (retry && rc.error == EISCONN)) return Connected(fd);
  if (rc.error == EINPROGRESS || (retry && rc.error == EALREADY)) {
    socket_->set_state(v1::SOCKET_STATE_CONNECTING);
    return std::nullopt;
  }
  if (retry) socket_->set_state(v1::SOCKET_STATE_OPEN);
  return OsError(rc.error, "connect");
}

void ConnectOp::Complete(absl::Status status) {
  if (!status.ok()) return done_(std::move(status));
  done_(std::move(response_));
}

absl::Status ConnectOp::Connected(int fd) {
  SockAddr peer;
  peer.length = sizeof(peer.storage);
  if (ops_.GetPeerName(fd, peer.mutable_get(), &peer.length).ok() &&
      !SameEndpoint(peer, address_)) {
    if (absl::Status allowed = check_peer_(peer); !allowed.ok()) {
      return allowed;
    }
  }
  socket_->set_state(v1::SOCKET_STATE_CONNECTED);
  absl::StatusOr<v1::Address> local = NameOf(ops_, fd, /*peer=*/false);
  if (local.ok()) *response_.mutable_local() = *std::move(local);
  return absl::OkStatus();
}

}  // namespace sockagent
