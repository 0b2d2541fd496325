// Tests for server/core/address.h. Only loopback and literal addresses; the
// only name looked up is "localhost" (answered from /etc/hosts) and names that
// the C library rejects before any DNS query ("a..b").

#include "server/core/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <net/if.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr socklen_t kSunPathOffset = offsetof(sockaddr_un, sun_path);

v1::Address InetHost(const std::string& host) {
  v1::Address address;
  address.mutable_inet()->set_host(host);
  return address;
}

v1::Address InetHostPort(const std::string& host, uint32_t port) {
  v1::Address address = InetHost(host);
  address.mutable_inet()->set_port(port);
  return address;
}

v1::Address InetHostPortName(const std::string& host,
                             const std::string& port_name) {
  v1::Address address = InetHost(host);
  address.mutable_inet()->set_port_name(port_name);
  return address;
}

v1::Address UnixPath(const std::string& path) {
  v1::Address address;
  address.mutable_unix()->set_path(path);
  return address;
}

v1::Address UnixAbstract(const std::string& name) {
  v1::Address address;
  address.mutable_unix()->set_abstract(name);
  return address;
}

sockaddr_in AsInet(const SockAddr& address) {
  sockaddr_in sin{};
  std::memcpy(&sin, &address.storage, sizeof(sin));
  return sin;
}

sockaddr_in6 AsInet6(const SockAddr& address) {
  sockaddr_in6 sin6{};
  std::memcpy(&sin6, &address.storage, sizeof(sin6));
  return sin6;
}

sockaddr_un AsUnix(const SockAddr& address) {
  sockaddr_un sun{};
  std::memcpy(&sun, &address.storage, sizeof(sun));
  return sun;
}

std::string Ipv4Text(const SockAddr& address) {
  const sockaddr_in sin = AsInet(address);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text));
  return text;
}

std::string Ipv6Text(const SockAddr& address) {
  const sockaddr_in6 sin6 = AsInet6(address);
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text));
  return text;
}

uint16_t PortOf(const SockAddr& address) {
  if (address.family() == AF_INET6) return ntohs(AsInet6(address).sin6_port);
  return ntohs(AsInet(address).sin_port);
}

absl::StatusOr<SockAddr> Resolve4(const v1::Address& address,
                                  int type = SOCK_STREAM) {
  return ResolveAddress(address, AF_INET, type, "address");
}

absl::StatusOr<SockAddr> Resolve6(const v1::Address& address,
                                  int type = SOCK_STREAM) {
  return ResolveAddress(address, AF_INET6, type, "address");
}

absl::StatusOr<SockAddr> ResolveUnix(const v1::Address& address) {
  return ResolveAddress(address, AF_UNIX, SOCK_STREAM, "address");
}

// Expects INVALID_ARGUMENT whose message starts with "<field>:".
void ExpectInvalidNaming(const absl::StatusOr<SockAddr>& result,
                         const std::string& field) {
  ASSERT_FALSE(result.ok()) << "unexpectedly resolved";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
      << result.status();
  EXPECT_THAT(std::string(result.status().message()), StartsWith(field + ":"));
}

// --- IPv4 hosts -------------------------------------------------------------

TEST(AddressTest, EmptyHostIsInaddrAnyForInet) {
  absl::StatusOr<SockAddr> result = Resolve4(InetHostPort("", 8080));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->family(), AF_INET);
  EXPECT_EQ(result->length, sizeof(sockaddr_in));
  EXPECT_EQ(AsInet(*result).sin_addr.s_addr, htonl(INADDR_ANY));
  EXPECT_EQ(PortOf(*result), 8080);
}

TEST(AddressTest, BroadcastIsInaddrBroadcast) {
  absl::StatusOr<SockAddr> result =
      Resolve4(InetHost("<broadcast>"), SOCK_DGRAM);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(AsInet(*result).sin_addr.s_addr, htonl(INADDR_BROADCAST));
  EXPECT_EQ(Ipv4Text(*result), "255.255.255.255");
}

TEST(AddressTest, HostIntIsInHostByteOrder) {
  v1::Address address;
  address.mutable_inet()->set_host_int(0x7f000001);
  address.mutable_inet()->set_port(9);
  absl::StatusOr<SockAddr> result = Resolve4(address);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Ipv4Text(*result), "127.0.0.1");
  EXPECT_EQ(PortOf(*result), 9);
}

TEST(AddressTest, DottedQuadIsParsed) {
  absl::StatusOr<SockAddr> result = Resolve4(InetHostPort("127.0.0.2", 1));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->family(), AF_INET);
  EXPECT_EQ(result->length, sizeof(sockaddr_in));
  EXPECT_EQ(Ipv4Text(*result), "127.0.0.2");
}

TEST(AddressTest, LocalhostResolvesThroughEtcHosts) {
  absl::StatusOr<SockAddr> result = Resolve4(InetHostPort("localhost", 80));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->family(), AF_INET);
  EXPECT_EQ(result->length, sizeof(sockaddr_in));
  EXPECT_EQ(Ipv4Text(*result), "127.0.0.1");
  EXPECT_EQ(PortOf(*result), 80);
}

// Python resolves an AF_INET host with getaddrinfo, whose numeric parse is
// inet_aton's: short, whole-number, hex and octal forms all name an address.
TEST(AddressTest, EveryFormInetAtonAcceptsIsAnIpv4Address) {
  const std::pair<const char*, const char*> cases[] = {
      {"127.1", "127.0.0.1"},
      {"127.0.1", "127.0.0.1"},
      {"2130706433", "127.0.0.1"},
      {"0x7f.1", "127.0.0.1"},
      {"0177.0.0.1", "127.0.0.1"},
      {"0x7f000001", "127.0.0.1"},
      {"017700000001", "127.0.0.1"},
      {"1.2.3", "1.2.0.3"},
      {"4294967295", "255.255.255.255"},
      {"0", "0.0.0.0"},
  };
  for (const auto& [host, want] : cases) {
    SCOPED_TRACE(host);
    absl::StatusOr<SockAddr> result = Resolve4(InetHostPort(host, 7));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->length, sizeof(sockaddr_in));
    EXPECT_EQ(Ipv4Text(*result), want);
    EXPECT_EQ(PortOf(*result), 7);
  }
}

// Digits and dots that inet_aton refuses are names that cannot resolve:
// Python's gaierror EAI_NONAME, answered without a DNS query.
TEST(AddressTest, MalformedDottedQuadsAreEaiNonameNotLookups) {
  for (const char* host : {"1.2.3.999", "256.1.1.1", "1..2.3", "1.2.3.4.",
                           "01.2.3.4444", "4294967296", "1.2.3.4.5"}) {
    SCOPED_TRACE(host);
    absl::StatusOr<SockAddr> result = Resolve4(InetHost(host));
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound)
        << result.status();
    EXPECT_THAT(std::string(result.status().message()),
                StartsWith("address.inet.host:"));
    std::optional<ErrnoInfo> detail = GetErrno(result.status());
    ASSERT_TRUE(detail.has_value());
    EXPECT_EQ(detail->name, "EAI_NONAME");
  }
}

// inet_aton stops at a blank and ignores the rest; getaddrinfo does not, so
// such a host is a name. (The name's empty label makes glibc refuse it
// before any DNS query.)
TEST(AddressTest, NumericHostFollowedByABlankIsAName) {
  absl::StatusOr<SockAddr> result = Resolve4(InetHost("127.0.0.1 a..b"));
  ASSERT_FALSE(result.ok()) << Ipv4Text(*result);
  std::optional<ErrnoInfo> detail = GetErrno(result.status());
  ASSERT_TRUE(detail.has_value()) << result.status();
  EXPECT_EQ(detail->syscall, "getaddrinfo");
  EXPECT_EQ(detail->name, "EAI_NONAME");
}

TEST(AddressTest, Ipv6LiteralForInetSocketIsEaiAddrfamily) {
  absl::StatusOr<SockAddr> result = Resolve4(InetHost("::1"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound)
      << result.status();
  EXPECT_THAT(std::string(result.status().message()),
              StartsWith("address.inet.host:"));
  std::optional<ErrnoInfo> detail = GetErrno(result.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->name, "EAI_ADDRFAMILY");
  EXPECT_EQ(detail->number, EAI_ADDRFAMILY);
}

TEST(AddressTest, UnresolvableNameIsNotFoundWithEaiDetail) {
  // glibc rejects "a..b" (an empty label) before sending any DNS query.
  absl::StatusOr<SockAddr> result = Resolve4(InetHost("a..b"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound)
      << result.status();
  EXPECT_THAT(std::string(result.status().message()),
              StartsWith("address.inet.host:"));
  std::optional<ErrnoInfo> detail = GetErrno(result.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->number, EAI_NONAME);
  EXPECT_EQ(detail->name, "EAI_NONAME");
  EXPECT_EQ(detail->syscall, "getaddrinfo");
}

TEST(AddressTest, HostWithEmbeddedNulIsInvalidArgument) {
  const std::string host("127.0.0.1\0evil", 14);
  ExpectInvalidNaming(Resolve4(InetHost(host)), "address.inet.host");
  ExpectInvalidNaming(Resolve6(InetHost(host)), "address.inet.host");
}

TEST(AddressTest, HugeHostIsInvalidArgumentWithABoundedMessage) {
  absl::StatusOr<SockAddr> result =
      Resolve4(InetHost(std::string(100000, 'a')));
  ExpectInvalidNaming(result, "address.inet.host");
  EXPECT_LT(result.status().message().size(), 200u);
}

TEST(AddressTest, FlowinfoOrScopeIdForInetSocketIsInvalidArgument) {
  v1::Address flow = InetHost("127.0.0.1");
  flow.mutable_inet()->set_flowinfo(1);
  ExpectInvalidNaming(Resolve4(flow), "address.inet.flowinfo");
  v1::Address scope = InetHost("127.0.0.1");
  scope.mutable_inet()->set_scope_id(1);
  ExpectInvalidNaming(Resolve4(scope), "address.inet.scope_id");
}

// --- IPv6 hosts -------------------------------------------------------------

TEST(AddressTest, EmptyHostIsIn6addrAnyForInet6) {
  absl::StatusOr<SockAddr> result = Resolve6(InetHostPort("", 443));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->family(), AF_INET6);
  EXPECT_EQ(result->length, sizeof(sockaddr_in6));
  const sockaddr_in6 sin6 = AsInet6(*result);
  EXPECT_EQ(std::memcmp(&sin6.sin6_addr, &in6addr_any, sizeof(in6_addr)), 0);
  EXPECT_EQ(PortOf(*result), 443);
}

TEST(AddressTest, Ipv6LoopbackLiteralIsParsed) {
  absl::StatusOr<SockAddr> result = Resolve6(InetHostPort("::1", 22));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->length, sizeof(sockaddr_in6));
  const sockaddr_in6 sin6 = AsInet6(*result);
  EXPECT_EQ(std::memcmp(&sin6.sin6_addr, &in6addr_loopback, sizeof(in6_addr)),
            0);
  EXPECT_EQ(sin6.sin6_scope_id, 0u);
  EXPECT_EQ(PortOf(*result), 22);
}

TEST(AddressTest, ScopedLiteralTakesTheInterfaceIndexByNameOrNumber) {
  const unsigned int lo = if_nametoindex("lo");
  ASSERT_NE(lo, 0u);
  for (const std::string& host :
       {std::string("fe80::1%lo"), "fe80::1%" + std::to_string(lo)}) {
    SCOPED_TRACE(host);
    absl::StatusOr<SockAddr> result = Resolve6(InetHost(host));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(Ipv6Text(*result), "fe80::1");
    EXPECT_EQ(AsInet6(*result).sin6_scope_id, lo);
  }
}

TEST(AddressTest, ScopeIdAndFlowinfoFieldsAreApplied) {
  v1::Address address = InetHostPort("fe80::2", 5);
  address.mutable_inet()->set_scope_id(7);
  address.mutable_inet()->set_flowinfo(0x12345);
  absl::StatusOr<SockAddr> result = Resolve6(address);
  ASSERT_TRUE(result.ok()) << result.status();
  const sockaddr_in6 sin6 = AsInet6(*result);
  EXPECT_EQ(sin6.sin6_scope_id, 7u);
  EXPECT_EQ(ntohl(sin6.sin6_flowinfo), 0x12345u);
}

TEST(AddressTest, LiteralScopeWinsOverZeroScopeIdField) {
  v1::Address address = InetHost("fe80::1%1");
  address.mutable_inet()->set_scope_id(0);
  absl::StatusOr<SockAddr> result = Resolve6(address);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(AsInet6(*result).sin6_scope_id, 1u);
}

TEST(AddressTest, ScopeIdConflictingWithLiteralScopeIsInvalidArgument) {
  v1::Address address = InetHost("fe80::1%1");
  address.mutable_inet()->set_scope_id(2);
  ExpectInvalidNaming(Resolve6(address), "address.inet.scope_id");
}

TEST(AddressTest, FlowinfoAboveTwentyBitsIsInvalidArgument) {
  v1::Address address = InetHost("::1");
  address.mutable_inet()->set_flowinfo(0x100000);
  ExpectInvalidNaming(Resolve6(address), "address.inet.flowinfo");
}

// Python (glibc's getaddrinfo) raises gaierror EAI_NONAME for each of these,
// "::1%lo" included: an interface name scopes only a link-local address.
TEST(AddressTest, MalformedIpv6LiteralsAreEaiNoname) {
  for (const char* host :
       {"::zz", "1:2:3", ":::", "fe80::1%", "fe80::1%nosuchif0",
        "fe80::1%99999999999", "fe80::1%lo%lo", "::1%lo", "ff05::1%lo"}) {
    SCOPED_TRACE(host);
    absl::StatusOr<SockAddr> result = Resolve6(InetHost(host));
    ASSERT_FALSE(result.ok()) << Ipv6Text(*result);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound)
        << result.status();
    EXPECT_THAT(std::string(result.status().message()),
                StartsWith("address.inet.host:"));
    std::optional<ErrnoInfo> detail = GetErrno(result.status());
    ASSERT_TRUE(detail.has_value());
    EXPECT_EQ(detail->name, "EAI_NONAME");
  }
}

// A numeric scope is taken for any address, a name for link-local unicast
// and multicast ones, as glibc does.
TEST(AddressTest, NumericScopeForAnyAddressNamedScopeForLinkLocal) {
  const unsigned int lo = if_nametoindex("lo");
  ASSERT_NE(lo, 0u);
  for (const std::string& host :
       {std::string("::1%") + std::to_string(lo), std::string("ff02::1%lo")}) {
    SCOPED_TRACE(host);
    absl::StatusOr<SockAddr> result = Resolve6(InetHost(host));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(AsInet6(*result).sin6_scope_id, lo);
  }
}

TEST(AddressTest, DottedQuadForInet6IsMappedToV4MappedAddress) {
  absl::StatusOr<SockAddr> result = Resolve6(InetHostPort("127.0.0.1", 7));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->family(), AF_INET6);
  EXPECT_EQ(Ipv6Text(*result), "::ffff:127.0.0.1");
  ExpectInvalidNaming(Resolve6(InetHost("1.2.3.999")), "address.inet.host");
}

TEST(AddressTest, BroadcastForInet6IsInvalidArgument) {
  ExpectInvalidNaming(Resolve6(InetHost("<broadcast>")), "address.inet.host");
}

TEST(AddressTest, HostIntForInet6IsInvalidArgument) {
  v1::Address address;
  address.mutable_inet()->set_host_int(1);
  ExpectInvalidNaming(Resolve6(address), "address.inet.host_int");
}

// --- Ports ------------------------------------------------------------------

TEST(AddressTest, NoPortMeansPortZero) {
  absl::StatusOr<SockAddr> result = Resolve4(InetHost("127.0.0.1"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(PortOf(*result), 0);
}

TEST(AddressTest, PortNumberIsStoredInNetworkByteOrder) {
  absl::StatusOr<SockAddr> result = Resolve4(InetHostPort("127.0.0.1", 65535));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(AsInet(*result).sin_port, htons(65535));
}

TEST(AddressTest, PortAboveRangeIsInvalidArgumentNamingTheField) {
  absl::StatusOr<SockAddr> result = Resolve4(InetHostPort("127.0.0.1", 70000));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(),
            "address.inet.port: 70000 is out of range 0..65535");
}

TEST(AddressTest, FieldPrefixIsTheCallersName) {
  absl::StatusOr<SockAddr> result = ResolveAddress(
      InetHostPort("127.0.0.1", 70000), AF_INET, SOCK_STREAM, "to");
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              StartsWith("to.inet.port:"));
}

TEST(AddressTest, DigitPortNameIsANumber) {
  absl::StatusOr<SockAddr> result =
      Resolve4(InetHostPortName("127.0.0.1", "8080"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(PortOf(*result), 8080);
}

TEST(AddressTest, DigitPortNameAboveRangeIsInvalidArgumentNamingTheField) {
  for (const char* name : {"70000", "99999999999999999999999999"}) {
    SCOPED_TRACE(name);
    ExpectInvalidNaming(Resolve4(InetHostPortName("127.0.0.1", name)),
                        "address.inet.port_name");
  }
}

TEST(AddressTest, ServiceNamesAreLookedUpForTheSocketType) {
  absl::StatusOr<SockAddr> http =
      Resolve4(InetHostPortName("127.0.0.1", "http"), SOCK_STREAM);
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_EQ(PortOf(*http), 80);
  absl::StatusOr<SockAddr> domain =
      Resolve4(InetHostPortName("127.0.0.1", "domain"), SOCK_DGRAM);
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_EQ(PortOf(*domain), 53);
  absl::StatusOr<SockAddr> domain6 =
      Resolve6(InetHostPortName("::1", "domain"), SOCK_STREAM);
  ASSERT_TRUE(domain6.ok()) << domain6.status();
  EXPECT_EQ(PortOf(*domain6), 53);
}

TEST(AddressTest, UnknownServiceIsInvalidArgument) {
  absl::StatusOr<SockAddr> result =
      Resolve4(InetHostPortName("127.0.0.1", "nosuchservice"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(),
            "address.inet.port_name: unknown service 'nosuchservice'");
}

TEST(AddressTest, PortNameWithEmbeddedNulIsInvalidArgument) {
  ExpectInvalidNaming(
      Resolve4(InetHostPortName("127.0.0.1", std::string("http\0x", 6))),
      "address.inet.port_name");
}

// --- Unix -------------------------------------------------------------------

TEST(AddressTest, UnixPathLengthIncludesTheNul) {
  absl::StatusOr<SockAddr> result = ResolveUnix(UnixPath("/tmp/agent.sock"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->family(), AF_UNIX);
  EXPECT_EQ(result->length,
            kSunPathOffset + std::strlen("/tmp/agent.sock") + 1);
  EXPECT_STREQ(AsUnix(*result).sun_path, "/tmp/agent.sock");
}

TEST(AddressTest, UnixPathOf107BytesFitsAnd108IsTooLong) {
  absl::StatusOr<SockAddr> fits = ResolveUnix(UnixPath(std::string(107, 'p')));
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_EQ(fits->length, sizeof(sockaddr_un));
  absl::StatusOr<SockAddr> too_long =
      ResolveUnix(UnixPath(std::string(108, 'p')));
  ExpectInvalidNaming(too_long, "address.unix.path");
  EXPECT_THAT(std::string(too_long.status().message()),
              HasSubstr("longer than 107 bytes"));
}

// Python's bind(""): the unnamed address, which bind(2) autobinds.
TEST(AddressTest, EmptyUnixPathIsTheUnnamedAddress) {
  absl::StatusOr<SockAddr> result = ResolveUnix(UnixPath(""));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->family(), AF_UNIX);
  EXPECT_EQ(result->length, kSunPathOffset);
}

TEST(AddressTest, NulInsideAUnixPathIsInvalidArgument) {
  ExpectInvalidNaming(ResolveUnix(UnixPath(std::string("/tmp/a\0b", 8))),
                      "address.unix.path");
}

// Python's "\0name" as a path is the abstract name "name".
TEST(AddressTest, UnixPathStartingWithNulIsAnAbstractName) {
  const std::string name("\0ab\xff", 4);
  absl::StatusOr<SockAddr> result = ResolveUnix(UnixPath(name));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->length, kSunPathOffset + 4);
  EXPECT_EQ(std::string(AsUnix(*result).sun_path, 4), name);
  absl::StatusOr<SockAddr> same = ResolveUnix(UnixAbstract("ab\xff"));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->length, result->length);
  EXPECT_EQ(std::memcmp(&same->storage, &result->storage, same->length), 0);

  EXPECT_TRUE(
      ResolveUnix(UnixPath(std::string(1, '\0') + std::string(107, 'n'))).ok());
  ExpectInvalidNaming(
      ResolveUnix(UnixPath(std::string(1, '\0') + std::string(108, 'n'))),
      "address.unix.path");
}

// Linux paths are bytes: one that is not UTF-8 is used as it is.
TEST(AddressTest, NonUtf8UnixPathIsKeptByteForByte) {
  const std::string path = "/tmp/\xff\xfe-sock";
  absl::StatusOr<SockAddr> result = ResolveUnix(UnixPath(path));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(std::string(AsUnix(*result).sun_path), path);
  const v1::Address wire = ToWireAddress(result->get(), result->length);
  EXPECT_EQ(wire.unix().path(), path);
}

TEST(AddressTest, AbstractNameStartsWithNulAndHasNoTerminator) {
  const std::string name("agent\0x", 7);
  absl::StatusOr<SockAddr> result = ResolveUnix(UnixAbstract(name));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->length, kSunPathOffset + 1 + name.size());
  const sockaddr_un sun = AsUnix(*result);
  EXPECT_EQ(sun.sun_path[0], '\0');
  EXPECT_EQ(std::string(sun.sun_path + 1, name.size()), name);
}

TEST(AddressTest, AbstractNameOf107BytesFitsAnd108IsTooLong) {
  EXPECT_TRUE(ResolveUnix(UnixAbstract(std::string(107, 'a'))).ok());
  absl::StatusOr<SockAddr> too_long =
      ResolveUnix(UnixAbstract(std::string(108, 'a')));
  ExpectInvalidNaming(too_long, "address.unix.abstract");
  EXPECT_THAT(std::string(too_long.status().message()),
              HasSubstr("longer than 107 bytes"));
}

TEST(AddressTest, EmptyUnixAddressIsTheUnnamedAddress) {
  v1::Address address;
  address.mutable_unix();
  absl::StatusOr<SockAddr> result = ResolveUnix(address);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->family(), AF_UNIX);
  EXPECT_EQ(result->length, kSunPathOffset);
}

// --- Kinds ------------------------------------------------------------------

TEST(AddressTest, MissingAddressIsInvalidArgumentRequired) {
  absl::StatusOr<SockAddr> result = Resolve4(v1::Address());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "address: required");
}

TEST(AddressTest, MismatchedKindIsInvalidArgument) {
  absl::StatusOr<SockAddr> unix_for_inet = Resolve4(UnixPath("/tmp/x"));
  ASSERT_FALSE(unix_for_inet.ok());
  EXPECT_EQ(unix_for_inet.status().message(),
            "address: an AF_INET socket needs an inet address");
  ExpectInvalidNaming(Resolve6(UnixPath("/tmp/x")), "address");
  ExpectInvalidNaming(ResolveUnix(InetHost("127.0.0.1")), "address");
}

TEST(AddressTest, UnsupportedFamilyIsInvalidArgumentWithEafnosupport) {
  absl::StatusOr<SockAddr> result =
      ResolveAddress(InetHost("127.0.0.1"), AF_PACKET, SOCK_RAW, "address");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  std::optional<ErrnoInfo> detail = GetErrno(result.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->number, EAFNOSUPPORT);
}

// --- ToWireAddress ----------------------------------------------------------

TEST(AddressTest, ToWireAddressRoundTripsInet) {
  absl::StatusOr<SockAddr> resolved = Resolve4(InetHostPort("127.0.0.1", 8080));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const v1::Address wire = ToWireAddress(resolved->get(), resolved->length);
  ASSERT_TRUE(wire.has_inet());
  EXPECT_EQ(wire.inet().host(), "127.0.0.1");
  EXPECT_EQ(wire.inet().port_kind_case(), v1::InetAddress::kPort);
  EXPECT_EQ(wire.inet().port(), 8080u);
  absl::StatusOr<SockAddr> again = Resolve4(wire);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->length, resolved->length);
  EXPECT_EQ(std::memcmp(&again->storage, &resolved->storage, again->length), 0);
}

TEST(AddressTest, ToWireAddressRoundTripsInet6WithFlowinfo) {
  v1::Address address = InetHostPort("::1", 4433);
  address.mutable_inet()->set_flowinfo(42);
  absl::StatusOr<SockAddr> resolved = Resolve6(address);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const v1::Address wire = ToWireAddress(resolved->get(), resolved->length);
  ASSERT_TRUE(wire.has_inet());
  EXPECT_EQ(wire.inet().host(), "::1");
  EXPECT_EQ(wire.inet().port(), 4433u);
  EXPECT_EQ(wire.inet().flowinfo(), 42u);
  EXPECT_EQ(wire.inet().scope_id(), 0u);
  absl::StatusOr<SockAddr> again = Resolve6(wire);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(std::memcmp(&again->storage, &resolved->storage, again->length), 0);
}

// Python 3.7+ gives ('fe80::1', port, flowinfo, scope_id): the bare address.
TEST(AddressTest, ToWireAddressGivesTheBareAddressAndTheScopeInScopeId) {
  const unsigned int lo = if_nametoindex("lo");
  ASSERT_NE(lo, 0u);
  absl::StatusOr<SockAddr> resolved = Resolve6(InetHostPort("fe80::1%lo", 1));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const v1::Address wire = ToWireAddress(resolved->get(), resolved->length);
  ASSERT_TRUE(wire.has_inet());
  EXPECT_EQ(wire.inet().host(), "fe80::1");
  EXPECT_EQ(wire.inet().scope_id(), lo);
  absl::StatusOr<SockAddr> again = Resolve6(wire);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(AsInet6(*again).sin6_scope_id, lo);

  // An index without an interface is the same: bare host, number in
  // scope_id.
  sockaddr_in6 sin6 = AsInet6(*resolved);
  sin6.sin6_scope_id = 4000000000u;
  const v1::Address numeric =
      ToWireAddress(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
  EXPECT_EQ(numeric.inet().host(), "fe80::1");
  EXPECT_EQ(numeric.inet().scope_id(), 4000000000u);
}

TEST(AddressTest, ToWireAddressRoundTripsUnixPath) {
  absl::StatusOr<SockAddr> resolved = ResolveUnix(UnixPath("/run/x.sock"));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const v1::Address wire = ToWireAddress(resolved->get(), resolved->length);
  ASSERT_TRUE(wire.has_unix());
  EXPECT_EQ(wire.unix().path(), "/run/x.sock");
  // getsockname may report the path without its NUL.
  const v1::Address no_nul =
      ToWireAddress(resolved->get(), resolved->length - 1);
  EXPECT_EQ(no_nul.unix().path(), "/run/x.sock");
}

TEST(AddressTest, ToWireAddressRoundTripsAbstractNameWithoutLeadingNul) {
  const std::string name("a\0b", 3);
  absl::StatusOr<SockAddr> resolved = ResolveUnix(UnixAbstract(name));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const v1::Address wire = ToWireAddress(resolved->get(), resolved->length);
  ASSERT_TRUE(wire.has_unix());
  EXPECT_EQ(wire.unix().name_case(), v1::UnixAddress::kAbstract);
  EXPECT_EQ(wire.unix().abstract(), name);
}

TEST(AddressTest, ToWireAddressOfUnnamedUnixIsEmptyUnixAddress) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  const v1::Address wire =
      ToWireAddress(reinterpret_cast<sockaddr*>(&sun), sizeof(sa_family_t));
  ASSERT_TRUE(wire.has_unix());
  EXPECT_EQ(wire.unix().name_case(), v1::UnixAddress::NAME_NOT_SET);
}

TEST(AddressTest, ToWireAddressOfUnknownOrShortAddressIsEmpty) {
  EXPECT_EQ(ToWireAddress(nullptr, 0).kind_case(), v1::Address::KIND_NOT_SET);
  sockaddr_storage storage{};
  storage.ss_family = AF_PACKET;
  EXPECT_EQ(
      ToWireAddress(reinterpret_cast<sockaddr*>(&storage), sizeof(storage))
          .kind_case(),
      v1::Address::KIND_NOT_SET);
  storage.ss_family = AF_INET;
  EXPECT_EQ(ToWireAddress(reinterpret_cast<sockaddr*>(&storage), 4).kind_case(),
            v1::Address::KIND_NOT_SET);
  storage.ss_family = AF_INET6;
  EXPECT_EQ(
      ToWireAddress(reinterpret_cast<sockaddr*>(&storage), sizeof(sockaddr_in))
          .kind_case(),
      v1::Address::KIND_NOT_SET);
}

// --- GetAddrInfo ------------------------------------------------------------

v1::GetAddrInfoRequest AddrInfoRequest(const std::string& host,
                                       const std::string& port,
                                       v1::Family family, v1::SocketType type,
                                       int flags = 0) {
  v1::GetAddrInfoRequest request;
  request.set_host(host);
  request.set_port(port);
  request.set_family(family);
  request.set_type(type);
  request.set_flags(flags);
  return request;
}

TEST(AddressTest, GetAddrInfoResolvesLocalhostHttpForInetStream) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      GetAddrInfo(AddrInfoRequest("localhost", "http", v1::FAMILY_INET,
                                  v1::SOCKET_TYPE_STREAM, AI_CANONNAME));
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_FALSE(results->empty());
  for (const v1::AddrInfo& info : *results) {
    EXPECT_EQ(info.family(), v1::FAMILY_INET);
    EXPECT_EQ(info.type(), v1::SOCKET_TYPE_STREAM);
    EXPECT_EQ(info.protocol(), IPPROTO_TCP);
    ASSERT_TRUE(info.address().has_inet());
    EXPECT_EQ(info.address().inet().host(), "127.0.0.1");
    EXPECT_EQ(info.address().inet().port(), 80u);
  }
  EXPECT_EQ((*results)[0].canonical_name(), "localhost");
}

TEST(AddressTest, GetAddrInfoNumericInet6ReturnsTheLiteral) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results = GetAddrInfo(
      AddrInfoRequest("::1", "53", v1::FAMILY_INET6, v1::SOCKET_TYPE_DGRAM,
                      AI_NUMERICHOST | AI_NUMERICSERV));
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ((*results)[0].family(), v1::FAMILY_INET6);
  EXPECT_EQ((*results)[0].type(), v1::SOCKET_TYPE_DGRAM);
  EXPECT_EQ((*results)[0].address().inet().host(), "::1");
  EXPECT_EQ((*results)[0].address().inet().port(), 53u);
  EXPECT_TRUE((*results)[0].canonical_name().empty());
}

TEST(AddressTest, GetAddrInfoWithOnlyAPortGivesLoopbackOrAny) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      GetAddrInfo(AddrInfoRequest("", "8080", v1::FAMILY_INET,
                                  v1::SOCKET_TYPE_STREAM, AI_PASSIVE));
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_FALSE(results->empty());
  EXPECT_EQ((*results)[0].address().inet().host(), "0.0.0.0");
  EXPECT_EQ((*results)[0].address().inet().port(), 8080u);
}

TEST(AddressTest, GetAddrInfoWithBadFamilyIsInvalidArgumentWithEafnosupport) {
  for (int family : {static_cast<int>(v1::FAMILY_UNIX), 99, -1}) {
    SCOPED_TRACE(family);
    absl::StatusOr<std::vector<v1::AddrInfo>> results = GetAddrInfo(
        AddrInfoRequest("localhost", "80", static_cast<v1::Family>(family),
                        v1::SOCKET_TYPE_STREAM));
    ASSERT_FALSE(results.ok());
    EXPECT_EQ(results.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(results.status().message()), StartsWith("family:"));
    std::optional<ErrnoInfo> detail = GetErrno(results.status());
    ASSERT_TRUE(detail.has_value());
    EXPECT_EQ(detail->name, "EAFNOSUPPORT");
  }
}

TEST(AddressTest, GetAddrInfoWithBadTypeIsInvalidArgument) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      GetAddrInfo(AddrInfoRequest("localhost", "80", v1::FAMILY_INET,
                                  static_cast<v1::SocketType>(4)));
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(results.status().message()), StartsWith("type:"));
}

TEST(AddressTest, GetAddrInfoWithUnknownFlagBitsIsInvalidArgument) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      GetAddrInfo(AddrInfoRequest("localhost", "80", v1::FAMILY_INET,
                                  v1::SOCKET_TYPE_STREAM, 0x10000));
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(results.status().message()), StartsWith("flags:"));
}

// Python's getaddrinfo(None, None) is gaierror EAI_NONAME.
TEST(AddressTest, GetAddrInfoWithEmptyHostAndPortIsNotFoundWithEaiNoname) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results = GetAddrInfo(
      AddrInfoRequest("", "", v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM));
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kNotFound)
      << results.status();
  std::optional<ErrnoInfo> detail = GetErrno(results.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->number, EAI_NONAME);
  EXPECT_EQ(detail->name, "EAI_NONAME");
}

// Without a type, glibc lists a SOCK_RAW entry per address; it is reported
// as SOCK_RAW (3), the Linux value, as Python's getaddrinfo reports it.
TEST(AddressTest, GetAddrInfoWithoutATypeReportsRawEntriesAsSockRaw) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      GetAddrInfo(AddrInfoRequest("127.0.0.1", "80", v1::FAMILY_INET,
                                  v1::SOCKET_TYPE_UNSPECIFIED));
  ASSERT_TRUE(results.ok()) << results.status();
  std::vector<int> types;
  for (const v1::AddrInfo& info : *results) {
    types.push_back(static_cast<int>(info.type()));
  }
  EXPECT_THAT(types, ::testing::ElementsAre(SOCK_STREAM, SOCK_DGRAM, SOCK_RAW));
  absl::StatusOr<std::vector<v1::AddrInfo>> raw = GetAddrInfo(
      AddrInfoRequest("127.0.0.1", "", v1::FAMILY_INET, v1::SOCKET_TYPE_RAW));
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_EQ(raw->size(), 1u);
  EXPECT_EQ((*raw)[0].type(), v1::SOCKET_TYPE_RAW);
}

TEST(AddressTest, GetAddrInfoNumericHostWithANameIsNotFoundWithEaiNoname) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      GetAddrInfo(AddrInfoRequest("localhost", "80", v1::FAMILY_INET,
                                  v1::SOCKET_TYPE_STREAM, AI_NUMERICHOST));
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kNotFound);
  std::optional<ErrnoInfo> detail = GetErrno(results.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->number, EAI_NONAME);
  EXPECT_EQ(detail->name, "EAI_NONAME");
  EXPECT_EQ(detail->syscall, "getaddrinfo");
}

TEST(AddressTest, GetAddrInfoUnknownServiceIsInvalidArgumentWithEaiService) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      GetAddrInfo(AddrInfoRequest("127.0.0.1", "nosuchservice", v1::FAMILY_INET,
                                  v1::SOCKET_TYPE_STREAM));
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInvalidArgument);
  std::optional<ErrnoInfo> detail = GetErrno(results.status());
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->name, "EAI_SERVICE");
}

TEST(AddressTest, GetAddrInfoWithEmbeddedNulIsInvalidArgument) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      GetAddrInfo(AddrInfoRequest(std::string("localhost\0x", 11), "80",
                                  v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM));
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(results.status().message()), StartsWith("host:"));
}

TEST(AddressTest, GetAddrInfoProtocolIsPassedThroughAndMismatchIsInvalid) {
  v1::GetAddrInfoRequest request =
      AddrInfoRequest("127.0.0.1", "80", v1::FAMILY_INET,
                      v1::SOCKET_TYPE_STREAM, AI_NUMERICHOST | AI_NUMERICSERV);
  request.set_protocol(IPPROTO_TCP);
  absl::StatusOr<std::vector<v1::AddrInfo>> tcp = GetAddrInfo(request);
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  ASSERT_EQ(tcp->size(), 1u);
  EXPECT_EQ((*tcp)[0].protocol(), IPPROTO_TCP);

  for (int protocol : {static_cast<int>(IPPROTO_UDP), 12345, -1}) {
    SCOPED_TRACE(protocol);
    request.set_protocol(protocol);
    absl::StatusOr<std::vector<v1::AddrInfo>> bad = GetAddrInfo(request);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    std::optional<ErrnoInfo> detail = GetErrno(bad.status());
    ASSERT_TRUE(detail.has_value());
    EXPECT_EQ(detail->name, "EAI_SOCKTYPE");
  }
}

// --- Threads ----------------------------------------------------------------

TEST(AddressTest, ConcurrentLookupsAgree) {
  constexpr int kThreads = 4;
  constexpr int kIterations = 200;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < kIterations; ++i) {
        absl::StatusOr<SockAddr> result =
            Resolve4(InetHostPortName("localhost", t % 2 ? "http" : "domain"));
        if (!result.ok() || Ipv4Text(*result) != "127.0.0.1" ||
            PortOf(*result) != (t % 2 ? 80 : 53)) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << t;
}

}  // namespace
}  // namespace sockagent
