#ifndef SOCKAGENT_SERVER_CORE_DESTINATION_H_
#define SOCKAGENT_SERVER_CORE_DESTINATION_H_

// What the kernel makes of a destination. An IP wildcard (0.0.0.0, "",
// host_int 0, ::, ::ffff:0.0.0.0) given to connect() or sendto() does not
// fail on Linux: it reaches this host. IPv4: the socket's bound address when
// it has one, else 127.0.0.1; IPv6 `::`: ::1 (::ffff:127.0.0.1 on a socket
// bound to an IPv4-mapped address). The agent checks and uses the address
// this returns, so the policy judges exactly where the packets go.
// Thread-safe (pure, plus one getsockname through `ops`). No gRPC.

#include "server/core/address.h"
#include "server/io/socket_ops.h"

namespace sockagent {

// `requested` itself unless it is an IP wildcard.
SockAddr KernelDestination(SocketOps& ops, int fd, const SockAddr& requested);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_DESTINATION_H_
