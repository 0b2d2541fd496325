#include "server/policy/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sockagent {

std::string FormatIp(int family, const uint8_t* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, bytes, text, sizeof(text));
  return text;
}

absl::StatusOr<Cidr> Cidr::Parse(absl::string_view text) {
  Cidr cidr;
  std::string host(text);
  int prefix = -1;
  if (size_t slash = host.find('/'); slash != std::string::npos) {
    if (!absl::SimpleAtoi(host.substr(slash + 1), &prefix)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "' has a malformed prefix length"));
    }
    host.resize(slash);
  }
  if (::inet_pton(AF_INET, host.c_str(), cidr.bytes) == 1) {
    cidr.family = AF_INET;
  } else if (::inet_pton(AF_INET6, host.c_str(), cidr.bytes) == 1) {
    cidr.family = AF_INET6;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not an IP address or CIDR"));
  }
  const int max = cidr.family == AF_INET ? 32 : 128;
  if (prefix == -1) prefix = max;
  if (prefix < 0 || prefix > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': prefix length out of range 0..", max));
  }
  cidr.prefix = prefix;
  return cidr;
}

bool Cidr::Contains(int address_family, const uint8_t* address) const {
  if (address_family != family) return false;
  const int full = prefix / 8;
  if (std::memcmp(bytes, address, full) != 0) return false;
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (address[full] & mask);
}

Endpoint Endpoint::FromSockAddr(const sockaddr* address, socklen_t length) {
  Endpoint endpoint;
  if (address == nullptr) return endpoint;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    endpoint.family = AF_INET;
    std::memcpy(endpoint.bytes, &in->sin_addr, 4);
    endpoint.port = ntohs(in->sin_port);
  } else if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    const uint8_t* b = in6->sin6_addr.s6_addr;
    endpoint.port = ntohs(in6->sin6_port);
    static const uint8_t kZero[12] = {};
    const bool mapped =
        std::memcmp(b, kZero, 10) == 0 && b[10] == 0xff && b[11] == 0xff;
    // ::a.b.c.d (deprecated IPv4-compatible), but not :: and ::1.
    const bool compatible =
        std::memcmp(b, kZero, 12) == 0 &&
        !(b[12] == 0 && b[13] == 0 && b[14] == 0 && (b[15] == 0 || b[15] == 1));
    if (mapped || compatible) {
      endpoint.family = AF_INET;
      std::memcpy(endpoint.bytes, b + 12, 4);
    } else {
      endpoint.family = AF_INET6;
      std::memcpy(endpoint.bytes, b, 16);
    }
  }
  return endpoint;
}

std::string Endpoint::ToString() const {
  if (family == AF_INET) {
    return absl::StrCat(FormatIp(family, bytes), ":", port);
  }
  if (family == AF_INET6) {
    return absl::StrCat("[", FormatIp(family, bytes), "]:", port);
  }
  return "(non-IP)";
}

bool Endpoint::IsWildcard() const {
  if (family == 0) return false;
  const int n = family == AF_INET ? 4 : 16;
  for (int i = 0; i < n; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

bool Endpoint::IsLoopback() const {
  if (family == AF_INET) return bytes[0] == 127;
  static const uint8_t kV6Loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0, 0, 0, 1};
  return family == AF_INET6 && std::memcmp(bytes, kV6Loopback, 16) == 0;
}

}  // namespace sockagent
