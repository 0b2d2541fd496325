#include "server/core/destination.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace sockagent {
namespace {

// The socket's bound IPv4 address, from an AF_INET name or an IPv4-mapped
// AF_INET6 one; unset when the socket is unbound, bound to a wildcard or to
// a plain IPv6 address. `mapped` tells whether the name was IPv4-mapped.
struct BoundIpv4 {
  in_addr address{};  // INADDR_ANY when none
  bool mapped = false;
};

BoundIpv4 BoundIpv4Of(SocketOps& ops, int fd) {
  BoundIpv4 out;
  SockAddr local;
  local.length = sizeof(local.storage);
  if (!ops.GetSockName(fd, local.mutable_get(), &local.length).ok()) {
    return out;
  }
  if (local.family() == AF_INET) {
    out.address = reinterpret_cast<const sockaddr_in*>(local.get())->sin_addr;
  } else if (local.family() == AF_INET6) {
    const in6_addr& v6 =
        reinterpret_cast<const sockaddr_in6*>(local.get())->sin6_addr;
    out.mapped = IN6_IS_ADDR_V4MAPPED(&v6);
    if (out.mapped) std::memcpy(&out.address, v6.s6_addr + 12, 4);
  }
  return out;
}

}  // namespace

SockAddr KernelDestination(SocketOps& ops, int fd, const SockAddr& requested) {
  SockAddr out = requested;
  if (requested.family() == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(out.mutable_get());
    if (in->sin_addr.s_addr != htonl(INADDR_ANY)) return out;
    in->sin_addr = BoundIpv4Of(ops, fd).address;
    if (in->sin_addr.s_addr == htonl(INADDR_ANY)) {
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    return out;
  }
  if (requested.family() != AF_INET6) return out;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out.mutable_get());
  static const uint8_t kMappedAny[16] = {0, 0, 0,    0,    0, 0, 0, 0,
                                         0, 0, 0xff, 0xff, 0, 0, 0, 0};
  const bool any = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
  const bool mapped_any =
      std::memcmp(in6->sin6_addr.s6_addr, kMappedAny, sizeof(kMappedAny)) == 0;
  if (!any && !mapped_any) return out;
  const BoundIpv4 bound = BoundIpv4Of(ops, fd);
  if (mapped_any || bound.mapped) {
    // The IPv4 path of an IPv6 socket: `::ffff:0.0.0.0` goes to the bound
    // IPv4 address, else 127.0.0.1; `::` on a socket bound to an
    // IPv4-mapped address goes to ::ffff:127.0.0.1.
    in_addr v4 = mapped_any ? bound.address : in_addr{};
    if (v4.s_addr == htonl(INADDR_ANY)) v4.s_addr = htonl(INADDR_LOOPBACK);
    std::memcpy(in6->sin6_addr.s6_addr, kMappedAny, 12);
    std::memcpy(in6->sin6_addr.s6_addr + 12, &v4, 4);
    return out;
  }
  in6->sin6_addr = in6addr_loopback;
  return out;
}

}  // namespace sockagent
