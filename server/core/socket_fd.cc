#include "server/core/socket_fd.h"

#include <cstring>

#include "proto/errno_status.h"
#include "server/core/destination.h"
#include "server/policy/cidr.h"

namespace sockagent {

absl::StatusOr<v1::Address> NameOf(SocketOps& ops, int fd, bool peer) {
  SockAddr address;
  address.length = sizeof(address.storage);
  SysCallInt rc =
      peer ? ops.GetPeerName(fd, address.mutable_get(), &address.length)
           : ops.GetSockName(fd, address.mutable_get(), &address.length);
  if (!rc.ok()) return OsError(rc.error, peer ? "getpeername" : "getsockname");
  return ToWireAddress(address.get(), address.length);
}

SockAddr EffectiveDestination(SocketOps& ops, ManagedSocket& socket,
                              const SockAddr& requested) {
  SockAddr out = requested;
  socket.io()->WithFd(
      [&](int fd) { out = KernelDestination(ops, fd, requested); });
  return out;
}

bool SameEndpoint(const SockAddr& a, const SockAddr& b) {
  const Endpoint x = Endpoint::FromSockAddr(a.get(), a.length);
  const Endpoint y = Endpoint::FromSockAddr(b.get(), b.length);
  return x.family == y.family && x.port == y.port &&
         std::memcmp(x.bytes, y.bytes, sizeof(x.bytes)) == 0;
}

}  // namespace sockagent
