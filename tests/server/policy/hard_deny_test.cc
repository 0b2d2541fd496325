// The hard-deny list by class: every RFC 6052 NAT64 layout and the
// operator's prefixes, the other IPv4-embedding forms, the cloud metadata
// endpoints, the agent's own ports on whatever the kernel calls local,
// routing-altering options and binds; plus a property test that every
// textual spelling of an address gets the verdict of its canonical form.

#include "server/policy/hard_deny.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "server/core/address.h"
#include "server/core/destination.h"
#include "server/io/socket_ops.h"
#include "server/policy/local_route.h"
#include "server/policy/policy_engine.h"

namespace sockagent {
namespace {

Endpoint Ip(const std::string& text, uint16_t port = 80) {
  SockAddr address;
  if (text.find(':') != std::string::npos) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(address.mutable_get());
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr), 1) << text;
    address.length = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(address.mutable_get());
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET, text.c_str(), &in->sin_addr), 1) << text;
    address.length = sizeof(sockaddr_in);
  }
  return Endpoint::FromSockAddr(address.get(), address.length);
}

absl::StatusOr<bool> NeverLocal(const Endpoint&) { return false; }

std::string RuleOf(const std::optional<HardDenial>& denial) {
  return denial.has_value() ? denial->rule : "";
}

struct Row {
  const char* address;
  const char* rule;  // "" = allowed
};

TEST(HardDenyTest, Nat64EmbeddingMetadataIsDeniedInEveryRfc6052Layout) {
  HardDenyList list(NeverLocal);
  // 169.254.169.254 (a9.fe.a9.fe) after 64:ff9b::/N and 64:ff9b:1::/N.
  const Row rows[] = {
      {"64:ff9b:a9fe:a9fe::", "hard-deny:nat64-embedded-ipv4"},         // /32
      {"64:ff9b:a9:fea9:fe::", "hard-deny:nat64-embedded-ipv4"},        // /40
      {"64:ff9b:1:a9fe:a9:fe00::", "hard-deny:nat64-embedded-ipv4"},    // /48
      {"64:ff9b:1:a9:fe:a9fe::", "hard-deny:nat64-embedded-ipv4"},      // /56
      {"64:ff9b:1:0:a9:fea9:fe00:0", "hard-deny:nat64-embedded-ipv4"},  // /64
      {"64:ff9b:1::169.254.169.254", "hard-deny:nat64-embedded-ipv4"},  // /96
      {"64:ff9b::169.254.169.254", "hard-deny:nat64-embedded-ipv4"},    // WKP
      {"64:ff9b::100.100.100.200", "hard-deny:nat64-embedded-ipv4"},
      // A public IPv4 through NAT64 stays reachable.
      {"64:ff9b::192.0.2.33", ""},
      {"64:ff9b:1::198.51.100.7", ""},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(RuleOf(list.CheckDestination(Ip(row.address))), row.rule)
        << row.address;
  }
}

TEST(HardDenyTest, OperatorNat64PrefixesAreDecodedWithTheirOwnLength) {
  HardDenyList list(NeverLocal);
  // 169.254.169.254 after 2001:db8:122:300::/56 (RFC 6052's example prefix).
  const Endpoint embedded = Ip("2001:db8:122:3a9:fe:a9fe::");
  EXPECT_FALSE(list.CheckDestination(embedded).has_value());
  ASSERT_TRUE(list.SetNat64Prefixes({"2001:db8:122:300::/56"}, "nat64").ok());
  EXPECT_EQ(RuleOf(list.CheckDestination(embedded)),
            "hard-deny:nat64-embedded-ipv4");
  // A /96 prefix of the operator's.
  ASSERT_TRUE(list.SetNat64Prefixes({"2001:db8:64::/96"}, "nat64").ok());
  EXPECT_EQ(RuleOf(list.CheckDestination(Ip("2001:db8:64::168.63.129.16"))),
            "hard-deny:nat64-embedded-ipv4");
}

TEST(HardDenyTest, Nat64PrefixesOfAnotherLengthOrFamilyAreRefusedByName) {
  HardDenyList list(NeverLocal);
  absl::Status bad = list.SetNat64Prefixes(
      {"2001:db8:64::/96", "2001:db8::/33"}, "nat64_prefixes");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("nat64_prefixes[1]"), absl::string_view::npos)
      << bad;
  EXPECT_EQ(list.SetNat64Prefixes({"10.0.0.0/8"}, "nat64_prefixes").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(list.SetNat64Prefixes({"nonsense"}, "nat64_prefixes").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HardDenyTest, CloudMetadataEndpointsAreDeniedInEveryForm) {
  HardDenyList list(NeverLocal);
  const Row rows[] = {
      {"169.254.169.254", "hard-deny:link-local-ipv4"},
      {"169.254.170.2", "hard-deny:link-local-ipv4"},
      {"100.100.100.200", "hard-deny:cloud-metadata"},
      {"168.63.129.16", "hard-deny:cloud-metadata"},
      {"192.0.0.192", "hard-deny:cloud-metadata"},
      {"fd00:ec2::254", "hard-deny:cloud-metadata-ipv6"},
      {"fd00:ec2::23", "hard-deny:cloud-metadata-ipv6"},
      {"fd20:ce::254", "hard-deny:cloud-metadata-ipv6"},
      {"fe80::1", "hard-deny:link-local-ipv6"},
      // Folded to IPv4 by Endpoint: mapped and compatible.
      {"::ffff:100.100.100.200", "hard-deny:cloud-metadata"},
      {"::168.63.129.16", "hard-deny:cloud-metadata"},
      // Forms a translator or tunnel turns into the IPv4.
      {"::ffff:0:192.0.0.192", "hard-deny:siit-embedded-ipv4"},
      {"2002:6464:64c8::1", "hard-deny:6to4-embedded-ipv4"},
      {"2001:0:a83f:8110::1", "hard-deny:teredo-embedded-ipv4"},
      {"2001:0:c000:201::5601:5e3f", "hard-deny:teredo-embedded-ipv4"},
      {"2001:db8::5efe:a9fe:a9fe", "hard-deny:isatap-embedded-ipv4"},
      {"2001:db8::200:5efe:6464:64c8", "hard-deny:isatap-embedded-ipv4"},
      // Neighbours stay reachable.
      {"100.100.100.201", ""},
      {"168.63.129.17", ""},
      {"192.0.0.193", ""},
      {"fd20:ce::253", ""},
      {"2002:c000:201::1", ""},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(RuleOf(list.CheckDestination(Ip(row.address))), row.rule)
        << row.address;
  }
}

TEST(HardDenyTest, AgentPortsAreDeniedOnWhateverTheKernelCallsLocal) {
  std::string asked;
  absl::StatusOr<bool> answer = false;
  HardDenyList list([&](const Endpoint& endpoint) {
    asked = endpoint.ToString();
    return answer;
  });
  list.SetProtectedPorts({7700});
  // Asked at check time: an address that became local later counts.
  EXPECT_FALSE(list.CheckDestination(Ip("10.77.0.1", 7700)).has_value());
  EXPECT_EQ(asked, "10.77.0.1:7700");
  answer = true;
  EXPECT_EQ(RuleOf(list.CheckDestination(Ip("10.77.0.1", 7700))),
            "hard-deny:agent-port");
  // A lookup that fails is treated as local.
  answer = absl::UnavailableError("netlink down");
  EXPECT_EQ(RuleOf(list.CheckDestination(Ip("10.77.0.1", 7700))),
            "hard-deny:agent-port");
  // Other ports are never looked up.
  asked.clear();
  EXPECT_FALSE(list.CheckDestination(Ip("10.77.0.1", 7701)).has_value());
  EXPECT_EQ(asked, "");
  // Loopback and wildcards are local without asking.
  answer = false;
  EXPECT_EQ(RuleOf(list.CheckDestination(Ip("127.3.4.5", 7700))),
            "hard-deny:agent-port");
  EXPECT_EQ(RuleOf(list.CheckDestination(Ip("::", 7700))),
            "hard-deny:agent-port");
}

TEST(HardDenyTest, TheKernelRouteLookupCallsLoopbackLocalAndTestNetsNot) {
  // Read-only questions to this namespace's routing table: nothing is sent.
  absl::StatusOr<bool> loopback = IsLocalDestination(Ip("127.0.0.1"));
  ASSERT_TRUE(loopback.ok()) << loopback.status();
  EXPECT_TRUE(*loopback);
  absl::StatusOr<bool> v6 = IsLocalDestination(Ip("::1"));
  if (v6.ok()) {  // IPv6 may be disabled on the machine
    EXPECT_TRUE(*v6);
  }
  absl::StatusOr<bool> test_net = IsLocalDestination(Ip("192.0.2.1"));
  ASSERT_TRUE(test_net.ok()) << test_net.status();
  EXPECT_FALSE(*test_net);
}

std::string RawOption(int level, int name, std::string value) {
  PolicyEngine engine;  // no policy: the permissive default
  v1::SetSockOptRequest request;
  request.mutable_raw_option()->set_level(level);
  request.mutable_raw_option()->set_name(name);
  request.mutable_value()->set_raw(std::move(value));
  return engine.CheckSockOpt("anonymous", request).rule;
}

TEST(HardDenyTest, SourceRoutesAndRoutingHeadersAreRefusedWithoutAnyPolicy) {
  const std::string lsrr("\x83\x07\x04\x7f\x00\x00\x01", 7);
  const std::string ssrr_after_nop("\x01\x89\x07\x04\xa9\xfe\xa9\xfe", 8);
  const std::string record_route("\x07\x07\x04\x00\x00\x00\x00\x00", 8);
  EXPECT_EQ(RawOption(IPPROTO_IP, IP_OPTIONS, lsrr), "hard-deny:source-route");
  EXPECT_EQ(RawOption(IPPROTO_IP, IP_OPTIONS, ssrr_after_nop),
            "hard-deny:source-route");
  EXPECT_EQ(RawOption(IPPROTO_IP, IP_OPTIONS, std::string("\x44", 1)),
            "hard-deny:source-route");  // malformed: refused
  EXPECT_EQ(RawOption(IPPROTO_IPV6, IPV6_RTHDR, std::string(8, '\0')),
            "hard-deny:source-route");
  EXPECT_EQ(RawOption(IPPROTO_IPV6, IPV6_2292RTHDR, std::string(8, '\0')),
            "hard-deny:source-route");
  // Options that do not route stay the policy's business.
  EXPECT_EQ(RawOption(IPPROTO_IP, IP_OPTIONS, record_route),
            "permissive-default");
  EXPECT_EQ(RawOption(IPPROTO_IP, IP_TTL, std::string(4, '\0')),
            "permissive-default");
}

TEST(HardDenyTest, RawOptionsGrantedByARuleStillCannotSourceRoute) {
  PolicyEngine engine;
  v1::Policy policy;
  v1::PolicyRule* rule = policy.add_rules();
  rule->set_name("wide");
  rule->add_identities("anonymous");
  rule->set_allow_raw_options(true);
  ASSERT_TRUE(engine.Load(policy).ok());
  v1::SetSockOptRequest request;
  request.mutable_raw_option()->set_level(IPPROTO_IP);
  request.mutable_raw_option()->set_name(IP_OPTIONS);
  request.mutable_value()->set_raw(std::string("\x83\x07\x04\x7f\0\0\x01", 7));
  PolicyDecision decision = engine.CheckSockOpt("anonymous", request);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.rule, "hard-deny:source-route");
}

TEST(HardDenyTest, BindsToHardDeniedAddressesAreRefusedWhateverTheRule) {
  PolicyEngine engine;
  v1::Policy policy;
  v1::PolicyRule* rule = policy.add_rules();
  rule->set_name("wide");
  rule->add_identities("anonymous");
  rule->set_allow_privileged_bind_ports(true);
  rule->add_bind_allow()->set_cidr("0.0.0.0/0");
  rule->add_bind_allow()->set_cidr("::/0");
  ASSERT_TRUE(engine.Load(policy).ok());
  for (const char* text : {"169.254.169.254", "100.100.100.200",
                           "fd00:ec2::254", "64:ff9b:1:a9:fe:a9fe::"}) {
    SCOPED_TRACE(text);
    Endpoint endpoint = Ip(text);
    SockAddr address;
    if (endpoint.family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(address.mutable_get());
      in->sin_family = AF_INET;
      in->sin_port = htons(80);
      std::memcpy(&in->sin_addr, endpoint.bytes, 4);
      address.length = sizeof(sockaddr_in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(address.mutable_get());
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(80);
      std::memcpy(&in6->sin6_addr, endpoint.bytes, 16);
      address.length = sizeof(sockaddr_in6);
    }
    PolicyDecision decision =
        engine.CheckBind("anonymous", address.get(), address.length);
    EXPECT_FALSE(decision.allowed);
    EXPECT_EQ(decision.rule.rfind("hard-deny:", 0), 0u) << decision.rule;
  }
  SockAddr ordinary;
  auto* in = reinterpret_cast<sockaddr_in*>(ordinary.mutable_get());
  in->sin_family = AF_INET;
  in->sin_port = htons(80);
  in->sin_addr.s_addr = htonl(0x0a000001);
  ordinary.length = sizeof(sockaddr_in);
  EXPECT_TRUE(
      engine.CheckBind("anonymous", ordinary.get(), ordinary.length).allowed);
}

// What the kernel makes of wildcard destinations, asked of real sockets.
class KernelDestinationTest : public ::testing::Test {
 protected:
  static SockAddr Parse(const std::string& host, int family, uint16_t port) {
    v1::Address wire;
    wire.mutable_inet()->set_host(host);
    wire.mutable_inet()->set_port(port);
    absl::StatusOr<SockAddr> address =
        ResolveAddress(wire, family, SOCK_DGRAM, "address");
    EXPECT_TRUE(address.ok()) << host << ": " << address.status();
    return address.ok() ? *address : SockAddr();
  }
  static std::string Text(const SockAddr& address) {
    const Endpoint e = Endpoint::FromSockAddr(address.get(), address.length);
    return e.ToString();
  }
  int Socket(int family) {
    int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    fds_.push_back(fd);
    return fd;
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
  }
  SocketOps& ops_ = PosixSocketOps::Get();
  std::vector<int> fds_;
};

TEST_F(KernelDestinationTest, AnIpv4WildcardIsLoopbackOrTheBoundAddress) {
  const int unbound = Socket(AF_INET);
  EXPECT_EQ(
      Text(KernelDestination(ops_, unbound, Parse("0.0.0.0", AF_INET, 9))),
      "127.0.0.1:9");
  EXPECT_EQ(Text(KernelDestination(ops_, unbound, Parse("", AF_INET, 9))),
            "127.0.0.1:9");
  v1::Address zero;
  zero.mutable_inet()->set_host_int(0);
  zero.mutable_inet()->set_port(9);
  absl::StatusOr<SockAddr> integer =
      ResolveAddress(zero, AF_INET, SOCK_DGRAM, "address");
  ASSERT_TRUE(integer.ok()) << integer.status();
  EXPECT_EQ(Text(KernelDestination(ops_, unbound, *integer)), "127.0.0.1:9");

  const int bound = Socket(AF_INET);
  SockAddr local = Parse("127.0.0.5", AF_INET, 0);
  ASSERT_EQ(::bind(bound, local.get(), local.length), 0);
  EXPECT_EQ(Text(KernelDestination(ops_, bound, Parse("0.0.0.0", AF_INET, 9))),
            "127.0.0.5:9");
  // Not a wildcard: unchanged.
  EXPECT_EQ(Text(KernelDestination(ops_, bound, Parse("10.1.2.3", AF_INET, 9))),
            "10.1.2.3:9");
}

TEST_F(KernelDestinationTest, AnIpv6WildcardIsLoopbackInItsOwnFamily) {
  const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) GTEST_SKIP() << "no IPv6 on this machine";
  fds_.push_back(fd);
  EXPECT_EQ(Text(KernelDestination(ops_, fd, Parse("::", AF_INET6, 9))),
            "[::1]:9");
  // ::ffff:0.0.0.0 takes the IPv4 path: folded to 127.0.0.1 by Endpoint.
  EXPECT_EQ(
      Text(KernelDestination(ops_, fd, Parse("::ffff:0.0.0.0", AF_INET6, 9))),
      "127.0.0.1:9");
  // Bound to an IPv4-mapped address, `::` also takes the IPv4 path, and
  // ::ffff:0.0.0.0 reaches the bound address itself.
  SockAddr local = Parse("::ffff:127.0.0.5", AF_INET6, 0);
  ASSERT_EQ(::bind(fd, local.get(), local.length), 0);
  EXPECT_EQ(Text(KernelDestination(ops_, fd, Parse("::", AF_INET6, 9))),
            "127.0.0.1:9");
  EXPECT_EQ(
      Text(KernelDestination(ops_, fd, Parse("::ffff:0.0.0.0", AF_INET6, 9))),
      "127.0.0.5:9");
}

// Property: every spelling of an address gets the verdict of its canonical
// wire form, parsed again.
std::vector<std::string> Spellings(int family, const uint8_t* bytes) {
  std::vector<std::string> out;
  char text[INET6_ADDRSTRLEN];
  if (family == AF_INET) {
    ::inet_ntop(AF_INET, bytes, text, sizeof(text));
    out.push_back(text);
    // Python accepts the mapped IPv6 form only on an AF_INET6 socket; the
    // AF_INET spellings are the dotted quad (and host_int, below).
    return out;
  }
  ::inet_ntop(AF_INET6, bytes, text, sizeof(text));
  out.push_back(text);
  out.push_back(absl::AsciiStrToUpper(text));
  std::string full, padded;
  for (int i = 0; i < 16; i += 2) {
    absl::StrAppend(&full, i ? ":" : "",
                    absl::StrFormat("%x", bytes[i] << 8 | bytes[i + 1]));
    absl::StrAppend(&padded, i ? ":" : "",
                    absl::StrFormat("%04X", bytes[i] << 8 | bytes[i + 1]));
  }
  out.push_back(full);
  out.push_back(padded);
  // Mixed notation: the last 32 bits as a dotted quad.
  std::string mixed;
  for (int i = 0; i < 12; i += 2) {
    absl::StrAppend(&mixed,
                    absl::StrFormat("%x:", bytes[i] << 8 | bytes[i + 1]));
  }
  absl::StrAppend(&mixed, bytes[12], ".", bytes[13], ".", bytes[14], ".",
                  bytes[15]);
  out.push_back(mixed);
  return out;
}

std::string Verdict(const HardDenyList& list, const SockAddr& address) {
  return RuleOf(list.CheckDestination(
      Endpoint::FromSockAddr(address.get(), address.length)));
}

TEST(HardDenyPropertyTest, EverySpellingGetsTheVerdictOfItsCanonicalForm) {
  HardDenyList list(NeverLocal);
  ASSERT_TRUE(list.SetNat64Prefixes({"2001:db8:122:300::/56"}, "n").ok());
  const uint32_t seed = 20261202;
  std::mt19937 random(seed);
  // Prefixes where the verdict changes, so random tails hit both sides.
  const std::vector<std::vector<uint8_t>> v6_prefixes = {
      {},
      {0x00, 0x64, 0xff, 0x9b},
      {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01},
      {0x20, 0x02},
      {0x20, 0x01, 0x00, 0x00},
      {0xfe, 0x80},
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
      {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0},
      {0x20, 0x01, 0x0d, 0xb8, 0x01, 0x22, 0x03},
      {0xfd, 0x00, 0x0e, 0xc2}};
  const std::vector<std::vector<uint8_t>> v4_prefixes = {
      {}, {169, 254}, {100, 100, 100}, {168, 63, 129}, {192, 0, 0}, {127}};
  int denied = 0, checked = 0;
  for (int i = 0; i < 20000; ++i) {
    const bool v6 = i % 2 == 1;
    uint8_t bytes[16];
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(random());
    // Tails that are often the metadata address itself.
    if (random() % 3 == 0) {
      const uint8_t metadata[4] = {169, 254, 169, 254};
      std::memcpy(bytes + (v6 ? 12 : 0), metadata, 4);
    }
    const auto& prefixes = v6 ? v6_prefixes : v4_prefixes;
    const std::vector<uint8_t>& prefix = prefixes[random() % prefixes.size()];
    if (!prefix.empty()) std::memcpy(bytes, prefix.data(), prefix.size());
    const int family = v6 ? AF_INET6 : AF_INET;
    std::vector<v1::Address> forms;
    for (const std::string& text : Spellings(family, bytes)) {
      v1::Address wire;
      wire.mutable_inet()->set_host(text);
      wire.mutable_inet()->set_port(80);
      forms.push_back(wire);
    }
    if (!v6) {
      v1::Address wire;
      wire.mutable_inet()->set_host_int(static_cast<uint32_t>(bytes[0]) << 24 |
                                        bytes[1] << 16 | bytes[2] << 8 |
                                        bytes[3]);
      wire.mutable_inet()->set_port(80);
      forms.push_back(wire);
    }
    std::string expected;
    bool first = true;
    for (const v1::Address& wire : forms) {
      absl::StatusOr<SockAddr> parsed =
          ResolveAddress(wire, family, SOCK_STREAM, "address");
      ASSERT_TRUE(parsed.ok()) << wire.ShortDebugString() << " (seed " << seed
                               << "): " << parsed.status();
      const std::string verdict = Verdict(list, *parsed);
      absl::StatusOr<SockAddr> canonical =
          ResolveAddress(ToWireAddress(parsed->get(), parsed->length), family,
                         SOCK_STREAM, "address");
      ASSERT_TRUE(canonical.ok()) << canonical.status();
      EXPECT_EQ(Verdict(list, *canonical), verdict)
          << wire.ShortDebugString() << " (seed " << seed << ")";
      if (first) {
        expected = verdict;
        first = false;
      }
      EXPECT_EQ(verdict, expected)
          << wire.ShortDebugString() << " (seed " << seed << ")";
      ++checked;
    }
    if (!expected.empty()) ++denied;
  }
  // Both verdicts were exercised, heavily.
  EXPECT_GT(denied, 2000);
  EXPECT_LT(denied, 18000);
  EXPECT_GT(checked, 50000);
}

}  // namespace
}  // namespace sockagent
