#ifndef SOCKAGENT_SERVER_POLICY_CIDR_H_
#define SOCKAGENT_SERVER_POLICY_CIDR_H_

// IP prefixes and canonical IP endpoints, the vocabulary of every address
// check. Pure values; thread-compatible.

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sockagent {

// An IP prefix. Parsed from "10.0.0.0/8", "::1/128" or a bare address.
struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t bytes[16] = {};
  int prefix = 0;

  static absl::StatusOr<Cidr> Parse(absl::string_view text);
  // `address` is 4 (AF_INET) or 16 (AF_INET6) bytes in network order.
  bool Contains(int address_family, const uint8_t* address) const;
};

// A canonical IP endpoint: IPv4-mapped/compatible IPv6 folded to IPv4.
struct Endpoint {
  int family = 0;  // AF_INET, AF_INET6, or 0 for anything else (AF_UNIX)
  uint8_t bytes[16] = {};
  uint16_t port = 0;

  static Endpoint FromSockAddr(const sockaddr* address, socklen_t length);
  std::string ToString() const;
  // 0.0.0.0 or ::.
  bool IsWildcard() const;
  // 127.0.0.0/8 or ::1.
  bool IsLoopback() const;
};

// inet_ntop of 4 (AF_INET) or 16 (AF_INET6) bytes.
std::string FormatIp(int family, const uint8_t* bytes);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_POLICY_CIDR_H_
