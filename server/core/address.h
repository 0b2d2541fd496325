#ifndef SOCKAGENT_SERVER_CORE_ADDRESS_H_
#define SOCKAGENT_SERVER_CORE_ADDRESS_H_

// Conversion between wire addresses (sockagent.v1.Address, in every form
// Python's socket module accepts) and kernel sockaddrs. Thread-safe (pure
// functions; name and service lookups use the reentrant C library calls).

#include <sys/socket.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// A kernel socket address and its length.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
  sockaddr* mutable_get() { return reinterpret_cast<sockaddr*>(&storage); }
};

// Resolves `address` for a socket of `family` (AF_INET, AF_INET6, AF_UNIX)
// and `type` (SOCK_*) as Python's socket module would. An AF_INET host may be
// any form inet_aton accepts ("127.1", "2130706433", "0x7f.1"); an IPv6 host
// a literal with an optional %scope as glibc's getaddrinfo takes it. Host
// names and service names are looked up on this host; the first result of
// the socket's family wins. A Unix path of "" is the unnamed address (bind
// autobinds) and one starting with NUL is an abstract name. `field` prefixes
// error messages ("address" gives "address.inet.port: 70000 is out of
// range"). Errors: INVALID_ARGUMENT naming the field for a port out of range,
// an unknown service, a missing or mismatched address kind, a NUL byte in a
// host or path, a too-long host or Unix path; NOT_FOUND with an EAI_* detail
// (Python's gaierror) for a host that is neither a literal nor a name that
// resolves ("256.1", "::zz", "::1%lo": EAI_NONAME; an IPv6 literal for
// AF_INET: EAI_ADDRFAMILY).
absl::StatusOr<SockAddr> ResolveAddress(const v1::Address& address, int family,
                                        int type, absl::string_view field);

// The canonical wire form of a kernel address: IP literal and numeric port
// (a scoped IPv6 address is the bare literal with the scope in scope_id, as
// Python 3.7+ gives it), or the Unix path / abstract name as bytes. An
// unnamed Unix socket gives an empty UnixAddress.
v1::Address ToWireAddress(const sockaddr* address, socklen_t length);

// getaddrinfo() on this host; each result's family and type are the C
// library's own values (SOCK_RAW entries are SOCKET_TYPE_RAW). An empty host
// and port is getaddrinfo(NULL, NULL): EAI_NONAME. Errors: INVALID_ARGUMENT
// naming the field for an unsupported family or type; for a failed lookup the
// code follows the EAI_* value (EAI_NONAME -> NOT_FOUND, EAI_AGAIN ->
// UNAVAILABLE, ...) with an ErrorDetail whose errno_number is the EAI_* value
// and errno_name its name.
absl::StatusOr<std::vector<v1::AddrInfo>> GetAddrInfo(
    const v1::GetAddrInfoRequest& request);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_ADDRESS_H_
