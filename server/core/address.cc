#include "server/core/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <net/if.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "proto/errno_status.h"

namespace sockagent {
namespace {

constexpr uint32_t kMaxPort = 65535;
// IPv6 flow labels are 20 bits, as Python checks.
constexpr uint32_t kMaxFlowInfo = 0xfffff;
// Longest host name accepted (NI_MAXHOST without its NUL); longer is
// INVALID_ARGUMENT before any lookup.
constexpr size_t kMaxHostLength = 1024;
// Longest service name accepted; /etc/services names are short.
constexpr size_t kMaxServiceLength = 256;
// Bytes of caller input echoed in an error message.
constexpr size_t kMaxEcho = 64;
constexpr size_t kSunPathSize = sizeof(sockaddr_un{}.sun_path);
constexpr socklen_t kSunPathOffset = offsetof(sockaddr_un, sun_path);

// Caller input for an error message: C-escaped (so NULs and control bytes
// stay visible) and cut to kMaxEcho bytes.
std::string Echo(absl::string_view value) {
  if (value.size() <= kMaxEcho) return absl::CHexEscape(value);
  return absl::StrCat(absl::CHexEscape(value.substr(0, kMaxEcho)), "...");
}

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool IsDigits(absl::string_view value) {
  return !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return absl::ascii_isdigit(c);
  });
}

bool IsDigitsAndDots(absl::string_view value) {
  return !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return absl::ascii_isdigit(c) || c == '.';
  });
}

// The symbolic name of an EAI_* value, e.g. "EAI_NONAME".
std::string EaiName(int eai) {
  switch (eai) {
    case EAI_BADFLAGS:
      return "EAI_BADFLAGS";
    case EAI_NONAME:
      return "EAI_NONAME";
    case EAI_AGAIN:
      return "EAI_AGAIN";
    case EAI_FAIL:
      return "EAI_FAIL";
    case EAI_FAMILY:
      return "EAI_FAMILY";
    case EAI_SOCKTYPE:
      return "EAI_SOCKTYPE";
    case EAI_SERVICE:
      return "EAI_SERVICE";
    case EAI_MEMORY:
      return "EAI_MEMORY";
    case EAI_SYSTEM:
      return "EAI_SYSTEM";
    case EAI_OVERFLOW:
      return "EAI_OVERFLOW";
#ifdef EAI_NODATA
    case EAI_NODATA:
      return "EAI_NODATA";
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
      return "EAI_ADDRFAMILY";
#endif
    default:
      return absl::StrCat("EAI_", eai);
  }
}

absl::StatusCode EaiToCode(int eai) {
  switch (eai) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
      return absl::StatusCode::kNotFound;
    case EAI_AGAIN:
    case EAI_FAIL:
      return absl::StatusCode::kUnavailable;
    case EAI_BADFLAGS:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_SERVICE:
    case EAI_OVERFLOW:
      return absl::StatusCode::kInvalidArgument;
    case EAI_MEMORY:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kUnknown;
  }
}

// The status for getaddrinfo() failing with `eai`; `saved_errno` is errno
// right after the call (meaningful for EAI_SYSTEM only). `context` starts the
// message.
absl::Status EaiError(int eai, int saved_errno, absl::string_view context) {
  if (eai == EAI_SYSTEM) {
    return OsErrorWithCode(
        ErrnoToCode(saved_errno), saved_errno, "getaddrinfo",
        absl::StrCat(context, ": ", std::strerror(saved_errno), " (",
                     ErrnoName(saved_errno), ")"));
  }
  const std::string name = EaiName(eai);
  return NamedOsError(
      EaiToCode(eai), eai, name, "getaddrinfo",
      absl::StrCat(context, ": ", gai_strerror(eai), " (", name, ")"));
}

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const {
    if (info != nullptr) freeaddrinfo(info);
  }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// `type` without the SOCK_NONBLOCK / SOCK_CLOEXEC flag bits.
int BaseType(int type) { return type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC); }

// Looks up a service name with the reentrant getservbyname_r. The protocol
// follows the socket type; other types search every protocol.
absl::StatusOr<uint16_t> LookUpService(const std::string& name, int type,
                                       absl::string_view field) {
  const char* protocol = nullptr;
  switch (BaseType(type)) {
    case SOCK_STREAM:
    case SOCK_SEQPACKET:
      protocol = "tcp";
      break;
    case SOCK_DGRAM:
      protocol = "udp";
      break;
    default:
      break;
  }
  std::vector<char> buffer(1024);
  constexpr size_t kMaxBuffer = 1 << 16;
  while (true) {
    servent entry{};
    servent* result = nullptr;
    const int rc = getservbyname_r(name.c_str(), protocol, &entry,
                                   buffer.data(), buffer.size(), &result);
    if (rc == ERANGE && buffer.size() < kMaxBuffer) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (rc == 0 && result != nullptr) {
      return static_cast<uint16_t>(
          ntohs(static_cast<uint16_t>(result->s_port)));
    }
    return Invalid(field, absl::StrCat("unknown service '", Echo(name), "'"));
  }
}

// The port of `inet` in host byte order.
absl::StatusOr<uint16_t> ResolvePort(const v1::InetAddress& inet, int type,
                                     absl::string_view field) {
  switch (inet.port_kind_case()) {
    case v1::InetAddress::kPort:
      if (inet.port() > kMaxPort) {
        return Invalid(absl::StrCat(field, ".inet.port"),
                       absl::StrCat(inet.port(), " is out of range 0..65535"));
      }
      return static_cast<uint16_t>(inet.port());
    case v1::InetAddress::kPortName: {
      const std::string port_field = absl::StrCat(field, ".inet.port_name");
      const std::string& name = inet.port_name();
      // "" is treated like an unset port, as GetAddrInfoRequest.port is.
      if (name.empty()) return 0;
      if (IsDigits(name)) {
        uint64_t value = 0;
        if (!absl::SimpleAtoi(name, &value) || value > kMaxPort) {
          return Invalid(port_field,
                         absl::StrCat(Echo(name), " is out of range 0..65535"));
        }
        return static_cast<uint16_t>(value);
      }
      if (name.find('\0') != std::string::npos) {
        return Invalid(port_field,
                       absl::StrCat("'", Echo(name), "' contains a NUL byte"));
      }
      if (name.size() > kMaxServiceLength) {
        return Invalid(port_field,
                       absl::StrCat("unknown service '", Echo(name), "'"));
      }
      return LookUpService(name, type, port_field);
    }
    case v1::InetAddress::PORT_KIND_NOT_SET:
      break;
  }
  return 0;
}

// Resolves a host name for `family` with getaddrinfo (no AI_ADDRCONFIG) and
// copies the first result of that family into `out`.
absl::Status ResolveHostName(const std::string& host, int family,
                             absl::string_view host_field, SockAddr& out) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_flags = 0;
  addrinfo* raw = nullptr;
  const int eai = getaddrinfo(host.c_str(), nullptr, &hints, &raw);
  const int saved_errno = errno;
  AddrInfoPtr results(raw);
  if (eai != 0) {
    return EaiError(
        eai, saved_errno,
        absl::StrCat(host_field, ": '", Echo(host), "' did not resolve"));
  }
  for (const addrinfo* ai = results.get(); ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != family || ai->ai_addr == nullptr ||
        ai->ai_addrlen > sizeof(out.storage)) {
      continue;
    }
    std::memcpy(&out.storage, ai->ai_addr, ai->ai_addrlen);
    out.length = ai->ai_addrlen;
    return absl::OkStatus();
  }
  return NamedOsError(absl::StatusCode::kNotFound, EAI_NONAME,
                      EaiName(EAI_NONAME), "getaddrinfo",
                      absl::StrCat(host_field, ": '", Echo(host),
                                   "' has no address of the socket's family"));
}

// Parses every numeric IPv4 form inet_aton(3) accepts ("127.0.0.1", "127.1",
// "2130706433", "0x7f.1", "0177.0.0.1") and nothing else: inet_aton ignores
// whatever follows a blank, so a host with a blank is refused first (as
// getaddrinfo's numeric parse refuses it).
bool ParseInet4Numeric(const std::string& host, in_addr& out) {
  if (host.empty() || std::any_of(host.begin(), host.end(), [](char c) {
        return absl::ascii_isspace(c) || c == '\0';
      })) {
    return false;
  }
  return inet_aton(host.c_str(), &out) != 0;
}

// Checks the host string common to both IP families: no NUL byte, bounded.
absl::Status CheckHostString(const std::string& host,
                             absl::string_view host_field) {
  if (host.find('\0') != std::string::npos) {
    return Invalid(host_field,
                   absl::StrCat("'", Echo(host), "' contains a NUL byte"));
  }
  if (host.size() > kMaxHostLength) {
    return Invalid(host_field, absl::StrFormat("%d bytes is longer than %d",
                                               host.size(), kMaxHostLength));
  }
  return absl::OkStatus();
}

absl::StatusOr<SockAddr> ResolveInet4(const v1::InetAddress& inet, int type,
                                      absl::string_view field) {
  const std::string host_field = absl::StrCat(field, ".inet.host");
  if (inet.flowinfo() != 0) {
    return Invalid(absl::StrCat(field, ".inet.flowinfo"),
                   "only an AF_INET6 address has a flowinfo");
  }
  if (inet.scope_id() != 0) {
    return Invalid(absl::StrCat(field, ".inet.scope_id"),
                   "only an AF_INET6 address has a scope_id");
  }
  absl::StatusOr<uint16_t> port = ResolvePort(inet, type, field);
  if (!port.ok()) return port.status();

  SockAddr out;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(*port);
  if (inet.host_kind_case() == v1::InetAddress::kHostInt) {
    sin.sin_addr.s_addr = htonl(inet.host_int());
  } else {
    const std::string& host = inet.host();
    if (absl::Status s = CheckHostString(host, host_field); !s.ok()) return s;
    if (host.empty()) {
      sin.sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (host == "<broadcast>") {
      sin.sin_addr.s_addr = htonl(INADDR_BROADCAST);
    } else if (ParseInet4Numeric(host, sin.sin_addr)) {
      // Every numeric form inet_aton takes: "127.1", "2130706433", "0x7f.1".
    } else if (IsDigitsAndDots(host)) {
      // Not a number inet_aton takes, and no host name either: the
      // getaddrinfo failure Python reports, without a DNS query.
      return NamedOsError(
          absl::StatusCode::kNotFound, EAI_NONAME, EaiName(EAI_NONAME),
          "getaddrinfo",
          absl::StrCat(host_field, ": '", Echo(host),
                       "' is not a valid IPv4 address (EAI_NONAME)"));
    } else if (host.find(':') != std::string::npos) {
      // getaddrinfo(AF_INET) of an IPv6 literal: EAI_ADDRFAMILY, as Python.
      return NamedOsError(
          absl::StatusCode::kNotFound, EAI_ADDRFAMILY, EaiName(EAI_ADDRFAMILY),
          "getaddrinfo",
          absl::StrCat(host_field, ": '", Echo(host),
                       "' is not an IPv4 address (AF_INET socket; "
                       "EAI_ADDRFAMILY)"));
    } else {
      absl::Status s = ResolveHostName(host, AF_INET, host_field, out);
      if (!s.ok()) return s;
      sockaddr_in resolved{};
      std::memcpy(&resolved, &out.storage, sizeof(resolved));
      sin.sin_addr = resolved.sin_addr;
    }
  }
  out = SockAddr();
  std::memcpy(&out.storage, &sin, sizeof(sin));
  out.length = sizeof(sin);
  return out;
}

// Parses an IPv6 literal with an optional "%scope" into `sin6` exactly as
// glibc's getaddrinfo does for Python (AI_NUMERICHOST, so never a DNS query):
// an interface name is a scope only for a link-local address ("fe80::1%lo"),
// a number for any ("::1%1"). A string that is no such literal is NOT_FOUND
// with EAI_NONAME naming `host_field`, Python's gaierror.
absl::Status ParseInet6Literal(const std::string& host,
                               absl::string_view host_field,
                               sockaddr_in6& sin6) {
  addrinfo hints{};
  hints.ai_family = AF_INET6;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* raw = nullptr;
  const int eai = getaddrinfo(host.c_str(), nullptr, &hints, &raw);
  const int saved_errno = errno;
  AddrInfoPtr results(raw);
  if (eai != 0) {
    return EaiError(eai, saved_errno,
                    absl::StrCat(host_field, ": '", Echo(host),
                                 "' is not a valid IPv6 address"));
  }
  const addrinfo* ai = results.get();
  if (ai == nullptr || ai->ai_family != AF_INET6 ||
      ai->ai_addrlen != sizeof(sockaddr_in6)) {
    return NamedOsError(absl::StatusCode::kNotFound, EAI_NONAME,
                        EaiName(EAI_NONAME), "getaddrinfo",
                        absl::StrCat(host_field, ": '", Echo(host),
                                     "' is not a valid IPv6 address"));
  }
  sockaddr_in6 parsed{};
  std::memcpy(&parsed, ai->ai_addr, sizeof(parsed));
  sin6.sin6_addr = parsed.sin6_addr;
  sin6.sin6_scope_id = parsed.sin6_scope_id;
  return absl::OkStatus();
}

absl::StatusOr<SockAddr> ResolveInet6(const v1::InetAddress& inet, int type,
                                      absl::string_view field) {
  const std::string host_field = absl::StrCat(field, ".inet.host");
  if (inet.host_kind_case() == v1::InetAddress::kHostInt) {
    return Invalid(absl::StrCat(field, ".inet.host_int"),
                   "an AF_INET6 socket needs a host string");
  }
  if (inet.flowinfo() > kMaxFlowInfo) {
    return Invalid(
        absl::StrCat(field, ".inet.flowinfo"),
        absl::StrCat(inet.flowinfo(), " is out of range 0..1048575"));
  }
  absl::StatusOr<uint16_t> port = ResolvePort(inet, type, field);
  if (!port.ok()) return port.status();

  const std::string& host = inet.host();
  if (absl::Status s = CheckHostString(host, host_field); !s.ok()) return s;
  SockAddr out;
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  if (host.empty()) {
    sin6.sin6_addr = in6addr_any;
  } else if (host == "<broadcast>") {
    return Invalid(host_field, "'<broadcast>' needs an AF_INET socket");
  } else if (host.find(':') != std::string::npos) {
    if (absl::Status s = ParseInet6Literal(host, host_field, sin6); !s.ok()) {
      return s;
    }
  } else if (IsDigitsAndDots(host)) {
    // Python rejects a dotted quad for AF_INET6; the agent maps it to
    // ::ffff:a.b.c.d instead, which a dual-stack socket accepts.
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) != 1) {
      return Invalid(host_field, absl::StrCat("'", Echo(host),
                                              "' is not a valid IPv4 address"));
    }
    sin6.sin6_addr.s6_addr[10] = 0xff;
    sin6.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&sin6.sin6_addr.s6_addr[12], &v4, sizeof(v4));
  } else {
    absl::Status s = ResolveHostName(host, AF_INET6, host_field, out);
    if (!s.ok()) return s;
    std::memcpy(&sin6, &out.storage, sizeof(sin6));
  }
  sin6.sin6_port = htons(*port);
  sin6.sin6_flowinfo = htonl(inet.flowinfo());
  if (inet.scope_id() != 0) {
    if (sin6.sin6_scope_id != 0 && sin6.sin6_scope_id != inet.scope_id()) {
      return Invalid(
          absl::StrCat(field, ".inet.scope_id"),
          absl::StrCat(inet.scope_id(), " conflicts with the scope of host '",
                       Echo(host), "'"));
    }
    sin6.sin6_scope_id = inet.scope_id();
  }
  out = SockAddr();
  std::memcpy(&out.storage, &sin6, sizeof(sin6));
  out.length = sizeof(sin6);
  return out;
}

absl::StatusOr<SockAddr> ResolveUnix(const v1::UnixAddress& unix_address,
                                     absl::string_view field) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  SockAddr out;
  switch (unix_address.name_case()) {
    case v1::UnixAddress::kPath: {
      const std::string& path = unix_address.path();
      const std::string path_field = absl::StrCat(field, ".unix.path");
      if (path.empty()) {
        // Python's bind(""): the unnamed address, so bind autobinds.
        out.length = kSunPathOffset;
        break;
      }
      if (path[0] == '\0') {
        // Python's "\0name": the abstract name after the NUL.
        if (path.size() > kSunPathSize) {
          return Invalid(path_field,
                         absl::StrFormat("%d bytes is longer than %d bytes",
                                         path.size(), kSunPathSize));
        }
        std::memcpy(sun.sun_path, path.data(), path.size());
        out.length = static_cast<socklen_t>(kSunPathOffset + path.size());
        break;
      }
      if (path.find('\0') != std::string::npos) {
        return Invalid(path_field,
                       absl::StrCat("'", Echo(path), "' contains a NUL byte"));
      }
      if (path.size() >= kSunPathSize) {
        return Invalid(path_field,
                       absl::StrFormat("%d bytes is longer than %d bytes",
                                       path.size(), kSunPathSize - 1));
      }
      std::memcpy(sun.sun_path, path.data(), path.size());
      out.length = static_cast<socklen_t>(kSunPathOffset + path.size() + 1);
      break;
    }
    case v1::UnixAddress::kAbstract: {
      const std::string& name = unix_address.abstract();
      if (name.size() >= kSunPathSize) {
        return Invalid(absl::StrCat(field, ".unix.abstract"),
                       absl::StrFormat("%d bytes is longer than %d bytes",
                                       name.size(), kSunPathSize - 1));
      }
      sun.sun_path[0] = '\0';
      std::memcpy(sun.sun_path + 1, name.data(), name.size());
      out.length = static_cast<socklen_t>(kSunPathOffset + 1 + name.size());
      break;
    }
    case v1::UnixAddress::NAME_NOT_SET:
      // The unnamed address (ToWireAddress's empty UnixAddress). Binding it
      // autobinds to a kernel-chosen abstract name, as Python's bind("").
      out.length = kSunPathOffset;
      break;
  }
  std::memcpy(&out.storage, &sun, sizeof(sun));
  return out;
}

absl::StatusOr<int> WireFamilyToNative(int family) {
  switch (family) {
    case v1::FAMILY_UNSPECIFIED:
      return AF_UNSPEC;
    case v1::FAMILY_INET:
      return AF_INET;
    case v1::FAMILY_INET6:
      return AF_INET6;
    default:
      return OsErrorWithCode(absl::StatusCode::kInvalidArgument, EAFNOSUPPORT,
                             "getaddrinfo",
                             absl::StrCat("family: ", family,
                                          " is not supported (AF_UNSPEC, "
                                          "AF_INET or AF_INET6)"));
  }
}

// The wire enums' values are Linux's (and proto3 enums are open), so any
// family or type the C library reports passes through unchanged: SOCK_RAW
// stays 3, as Python's getaddrinfo reports it.
v1::Family NativeFamilyToWire(int family) {
  return static_cast<v1::Family>(family);
}

v1::SocketType NativeTypeToWire(int type) {
  return static_cast<v1::SocketType>(type);
}

}  // namespace

absl::StatusOr<SockAddr> ResolveAddress(const v1::Address& address, int family,
                                        int type, absl::string_view field) {
  if (address.kind_case() == v1::Address::KIND_NOT_SET) {
    return Invalid(field, "required");
  }
  switch (family) {
    case AF_INET:
      if (!address.has_inet()) {
        return Invalid(field, "an AF_INET socket needs an inet address");
      }
      return ResolveInet4(address.inet(), type, field);
    case AF_INET6:
      if (!address.has_inet()) {
        return Invalid(field, "an AF_INET6 socket needs an inet address");
      }
      return ResolveInet6(address.inet(), type, field);
    case AF_UNIX:
      if (!address.has_unix()) {
        return Invalid(field, "an AF_UNIX socket needs a unix address");
      }
      return ResolveUnix(address.unix(), field);
    default:
      return OsErrorWithCode(absl::StatusCode::kInvalidArgument, EAFNOSUPPORT,
                             "socket",
                             absl::StrCat(field, ": address family ", family,
                                          " is not supported"));
  }
}

v1::Address ToWireAddress(const sockaddr* address, socklen_t length) {
  v1::Address wire;
  if (address == nullptr || length < sizeof(sa_family_t)) return wire;
  sa_family_t family = 0;
  std::memcpy(&family, address, sizeof(family));
  switch (family) {
    case AF_INET: {
      if (length < sizeof(sockaddr_in)) return wire;
      sockaddr_in sin{};
      std::memcpy(&sin, address, sizeof(sin));
      char text[INET_ADDRSTRLEN] = {};
      if (inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text)) == nullptr) {
        return wire;
      }
      v1::InetAddress* inet = wire.mutable_inet();
      inet->set_host(text);
      inet->set_port(ntohs(sin.sin_port));
      return wire;
    }
    case AF_INET6: {
      if (length < sizeof(sockaddr_in6)) return wire;
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, address, sizeof(sin6));
      char text[INET6_ADDRSTRLEN] = {};
      if (inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text)) == nullptr) {
        return wire;
      }
      // The bare address, the scope in scope_id only, as Python 3.7+.
      v1::InetAddress* inet = wire.mutable_inet();
      inet->set_host(text);
      inet->set_port(ntohs(sin6.sin6_port));
      inet->set_flowinfo(ntohl(sin6.sin6_flowinfo));
      inet->set_scope_id(sin6.sin6_scope_id);
      return wire;
    }
    case AF_UNIX: {
      v1::UnixAddress* unix_address = wire.mutable_unix();
      const size_t size = std::min<size_t>(length, sizeof(sockaddr_un));
      if (size <= kSunPathOffset) return wire;
      sockaddr_un sun{};
      std::memcpy(&sun, address, size);
      const size_t path_length = size - kSunPathOffset;
      if (sun.sun_path[0] == '\0') {
        unix_address->set_abstract(sun.sun_path + 1, path_length - 1);
      } else {
        unix_address->set_path(
            std::string(sun.sun_path, strnlen(sun.sun_path, path_length)));
      }
      return wire;
    }
    default:
      return wire;
  }
}

absl::StatusOr<std::vector<v1::AddrInfo>> GetAddrInfo(
    const v1::GetAddrInfoRequest& request) {
  absl::StatusOr<int> family = WireFamilyToNative(request.family());
  if (!family.ok()) return family.status();

  int type = 0;
  switch (request.type()) {
    case v1::SOCKET_TYPE_UNSPECIFIED:
      type = 0;
      break;
    case v1::SOCKET_TYPE_STREAM:
      type = SOCK_STREAM;
      break;
    case v1::SOCKET_TYPE_DGRAM:
      type = SOCK_DGRAM;
      break;
    case v1::SOCKET_TYPE_SEQPACKET:
      type = SOCK_SEQPACKET;
      break;
    case v1::SOCKET_TYPE_RAW:
      type = SOCK_RAW;
      break;
    default:
      return OsErrorWithCode(
          absl::StatusCode::kInvalidArgument, ESOCKTNOSUPPORT, "getaddrinfo",
          absl::StrCat("type: ", static_cast<int>(request.type()),
                       " is not supported (0, SOCK_STREAM, SOCK_DGRAM, "
                       "SOCK_RAW or SOCK_SEQPACKET)"));
  }

  constexpr int kAllowedFlags = AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST |
                                AI_V4MAPPED | AI_ALL | AI_ADDRCONFIG |
                                AI_NUMERICSERV;
  if ((request.flags() & ~kAllowedFlags) != 0) {
    return Invalid("flags", absl::StrFormat("0x%x has unsupported bits 0x%x",
                                            request.flags(),
                                            request.flags() & ~kAllowedFlags));
  }

  const std::string& host = request.host();
  const std::string& port = request.port();
  if (absl::Status s = CheckHostString(host, "host"); !s.ok()) return s;
  if (port.find('\0') != std::string::npos) {
    return Invalid("port",
                   absl::StrCat("'", Echo(port), "' contains a NUL byte"));
  }
  if (port.size() > kMaxServiceLength) {
    return Invalid("port", absl::StrFormat("%d bytes is longer than %d",
                                           port.size(), kMaxServiceLength));
  }

  addrinfo hints{};
  hints.ai_family = *family;
  hints.ai_socktype = type;
  hints.ai_protocol = request.protocol();
  hints.ai_flags = request.flags();
  addrinfo* raw = nullptr;
  const int eai =
      getaddrinfo(host.empty() ? nullptr : host.c_str(),
                  port.empty() ? nullptr : port.c_str(), &hints, &raw);
  const int saved_errno = errno;
  AddrInfoPtr results(raw);
  if (eai != 0) {
    return EaiError(
        eai, saved_errno,
        absl::StrCat("getaddrinfo('", Echo(host), "', '", Echo(port), "')"));
  }

  std::vector<v1::AddrInfo> out;
  for (const addrinfo* ai = results.get(); ai != nullptr; ai = ai->ai_next) {
    v1::AddrInfo& info = out.emplace_back();
    info.set_family(NativeFamilyToWire(ai->ai_family));
    info.set_type(NativeTypeToWire(ai->ai_socktype));
    info.set_protocol(ai->ai_protocol);
    if (ai == results.get() && ai->ai_canonname != nullptr) {
      info.set_canonical_name(ai->ai_canonname);
    }
    *info.mutable_address() = ToWireAddress(ai->ai_addr, ai->ai_addrlen);
  }
  return out;
}

}  // namespace sockagent
