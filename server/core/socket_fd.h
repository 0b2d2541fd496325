#ifndef SOCKAGENT_SERVER_CORE_SOCKET_FD_H_
#define SOCKAGENT_SERVER_CORE_SOCKET_FD_H_

// Small system calls on a managed socket's descriptor, shared by the
// immediate calls, the waiting calls and the I/O operations. No gRPC.

#include <sys/socket.h>

#include "absl/status/statusor.h"
#include "server/core/address.h"
#include "server/core/core_status.h"
#include "server/core/session_table.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// The canonical address from getsockname (or getpeername when `peer`).
// Errors: the call's errno.
absl::StatusOr<v1::Address> NameOf(SocketOps& ops, int fd, bool peer);

// Runs `fn(fd)` on an open socket, or returns ClosedHandle().
template <typename T, typename Fn>
absl::StatusOr<T> OnFd(ManagedSocket& socket, Fn fn) {
  absl::StatusOr<T> result = ClosedHandle();
  socket.io()->WithFd([&](int fd) { result = fn(fd); });
  return result;
}

// Where the kernel sends `requested` from `socket` (destination.h): the
// address that is checked is the address that is used.
SockAddr EffectiveDestination(SocketOps& ops, ManagedSocket& socket,
                              const SockAddr& requested);

// Same family, address and port.
bool SameEndpoint(const SockAddr& a, const SockAddr& b);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_SOCKET_FD_H_
