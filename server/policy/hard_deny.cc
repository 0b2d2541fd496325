#include "server/policy/hard_deny.h"

#include <netinet/in.h>
#include <netinet/ip.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/policy/local_route.h"

namespace sockagent {
namespace {

struct Range {
  const char* cidr;
  const char* rule;
  const char* what;
};

// Cloud metadata and platform endpoints, as documented by each provider
// (checked 2026-12):
//   169.254.169.254  AWS, GCP, Azure, Oracle, OpenStack, DigitalOcean,
//                    Hetzner, IBM; 169.254.170.2 AWS ECS task metadata;
//                    169.254.170.23 AWS EKS Pod Identity; 169.254.0.23
//                    Tencent Cloud. All inside 169.254.0.0/16.
//     docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
//     cloud.google.com/compute/docs/metadata/querying-metadata
//     learn.microsoft.com/azure/virtual-machines/instance-metadata-service
//     docs.oracle.com/iaas/Content/Compute/Tasks/gettingmetadata.htm
//   100.100.100.200  Alibaba Cloud ECS metadata
//     alibabacloud.com/help/ecs/user-guide/view-instance-metadata
//   168.63.129.16    Azure WireServer / platform DNS and health probes
//     learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16
//   192.0.0.192      Oracle Cloud (Classic) metadata
//   fd00:ec2::254    AWS IMDS over IPv6; fd00:ec2::23 EKS Pod Identity (IPv6)
//     docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
//     docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html
//   fd20:ce::254     GCP metadata server over IPv6
//     cloud.google.com/compute/docs/metadata/querying-metadata
constexpr Range kIpv4Ranges[] = {
    {"169.254.0.0/16", "hard-deny:link-local-ipv4",
     "link-local / cloud metadata (169.254.0.0/16)"},
    {"100.100.100.200/32", "hard-deny:cloud-metadata",
     "the Alibaba Cloud metadata service"},
    {"168.63.129.16/32", "hard-deny:cloud-metadata",
     "the Azure platform endpoint (WireServer)"},
    {"192.0.0.192/32", "hard-deny:cloud-metadata",
     "the Oracle Cloud metadata service"},
};
constexpr Range kIpv6Ranges[] = {
    {"fe80::/10", "hard-deny:link-local-ipv6", "IPv6 link-local (fe80::/10)"},
    {"fd00:ec2::254/128", "hard-deny:cloud-metadata-ipv6",
     "the EC2 metadata service over IPv6"},
    {"fd00:ec2::23/128", "hard-deny:cloud-metadata-ipv6",
     "the EKS Pod Identity agent over IPv6"},
    {"fd20:ce::254/128", "hard-deny:cloud-metadata-ipv6",
     "the Google Cloud metadata server over IPv6"},
};

struct CompiledRange {
  Cidr cidr;
  const Range* range;
};

std::vector<CompiledRange> Compile(const Range* begin, const Range* end) {
  std::vector<CompiledRange> out;
  for (const Range* r = begin; r != end; ++r) {
    out.push_back({*Cidr::Parse(r->cidr), r});  // constants: always parse
  }
  return out;
}

const Range* Find(int family, const uint8_t* bytes) {
  static const auto* const v4 = new std::vector<CompiledRange>(
      Compile(std::begin(kIpv4Ranges), std::end(kIpv4Ranges)));
  static const auto* const v6 = new std::vector<CompiledRange>(
      Compile(std::begin(kIpv6Ranges), std::end(kIpv6Ranges)));
  for (const CompiledRange& entry : family == AF_INET ? *v4 : *v6) {
    if (entry.cidr.Contains(family, bytes)) return entry.range;
  }
  return nullptr;
}

// RFC 6052 section 2.2: the IPv4 address follows a prefix of `prefix_bits`
// (32, 40, 48, 56, 64 or 96); bits 64..71 (the "u" octet) are skipped.
void Rfc6052Ipv4(const uint8_t* v6, int prefix_bits, uint8_t out[4]) {
  int at = prefix_bits / 8;
  for (int i = 0; i < 4; ++i) {
    if (at == 8) ++at;
    out[i] = v6[at++];
  }
}

constexpr int kRfc6052Lengths[] = {32, 40, 48, 56, 64, 96};

bool IsRfc6052Length(int prefix) {
  return std::find(std::begin(kRfc6052Lengths), std::end(kRfc6052Lengths),
                   prefix) != std::end(kRfc6052Lengths);
}

// An IPv4 address inside an IPv6 one, and the form that carries it.
struct Embedded {
  uint8_t v4[4];
  const char* form;
};

// Every IPv4 address `v6` can stand for through a translator or a tunnel.
std::vector<Embedded> EmbeddedIpv4(const uint8_t* v6,
                                   const std::vector<Cidr>& nat64) {
  std::vector<Embedded> out;
  auto add = [&](const uint8_t* v4, const char* form) {
    Embedded e;
    std::memcpy(e.v4, v4, 4);
    e.form = form;
    out.push_back(e);
  };
  auto prefix = [&](std::initializer_list<uint8_t> bytes) {
    return std::equal(bytes.begin(), bytes.end(), v6);
  };
  // NAT64: the well-known 64:ff9b::/96 and the local-use 64:ff9b:1::/48,
  // which an operator may subdivide: any layout may be in use, so all are
  // decoded. Both lie in 64:ff9b::/32.
  if (prefix({0x00, 0x64, 0xff, 0x9b})) {
    for (int length : kRfc6052Lengths) {
      uint8_t v4[4];
      Rfc6052Ipv4(v6, length, v4);
      add(v4, "nat64");
    }
  }
  for (const Cidr& cidr : nat64) {
    if (!cidr.Contains(AF_INET6, v6)) continue;
    uint8_t v4[4];
    Rfc6052Ipv4(v6, cidr.prefix, v4);
    add(v4, "nat64");
  }
  // SIIT IPv4-translated ::ffff:0:a.b.c.d (RFC 2765).
  if (prefix({0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0})) add(v6 + 12, "siit");
  // 6to4 2002::/16: bits 16..47.
  if (prefix({0x20, 0x02})) add(v6 + 2, "6to4");
  // Teredo 2001:0::/32: server at bits 32..63, client inverted at 96..127.
  if (prefix({0x20, 0x01, 0x00, 0x00})) {
    add(v6 + 4, "teredo");
    const uint8_t client[4] = {
        static_cast<uint8_t>(~v6[12]), static_cast<uint8_t>(~v6[13]),
        static_cast<uint8_t>(~v6[14]), static_cast<uint8_t>(~v6[15])};
    add(client, "teredo");
  }
  // ISATAP interface identifier ::0:5efe:a.b.c.d / ::200:5efe:a.b.c.d.
  if ((v6[8] & 0xfc) == 0 && v6[9] == 0 && v6[10] == 0x5e && v6[11] == 0xfe) {
    add(v6 + 12, "isatap");
  }
  return out;
}

HardDenial Deny(const Endpoint& endpoint, std::string rule,
                absl::string_view what) {
  return HardDenial{std::move(rule), absl::StrCat(endpoint.ToString(), " is ",
                                                  what, " and never allowed")};
}

}  // namespace

HardDenyList::HardDenyList() : HardDenyList(IsLocalDestination) {}

HardDenyList::HardDenyList(LocalOracle oracle) : is_local_(std::move(oracle)) {}

void HardDenyList::SetProtectedPorts(std::vector<uint16_t> ports) {
  absl::MutexLock lock(&mu_);
  protected_ports_ = std::move(ports);
}

absl::Status HardDenyList::SetNat64Prefixes(
    const std::vector<std::string>& prefixes, absl::string_view field) {
  std::vector<Cidr> parsed;
  for (size_t i = 0; i < prefixes.size(); ++i) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(prefixes[i]);
    if (!cidr.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "]: ", cidr.status().message()));
    }
    if (cidr->family != AF_INET6 || !IsRfc6052Length(cidr->prefix)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "[", i, "]: '", prefixes[i],
          "' is not an IPv6 prefix of length 32, 40, 48, 56, 64 or 96 "
          "(RFC 6052)"));
    }
    parsed.push_back(*cidr);
  }
  absl::MutexLock lock(&mu_);
  nat64_prefixes_ = std::move(parsed);
  return absl::OkStatus();
}

std::optional<HardDenial> HardDenyList::CheckAddress(
    const Endpoint& endpoint) const {
  if (endpoint.family == AF_INET) {
    if (const Range* range = Find(AF_INET, endpoint.bytes)) {
      return Deny(endpoint, range->rule, range->what);
    }
    return std::nullopt;
  }
  if (endpoint.family != AF_INET6) return std::nullopt;
  if (const Range* range = Find(AF_INET6, endpoint.bytes)) {
    return Deny(endpoint, range->rule, range->what);
  }
  std::vector<Cidr> nat64;
  {
    absl::MutexLock lock(&mu_);
    nat64 = nat64_prefixes_;
  }
  for (const Embedded& embedded : EmbeddedIpv4(endpoint.bytes, nat64)) {
    if (const Range* range = Find(AF_INET, embedded.v4)) {
      return Deny(
          endpoint, absl::StrCat("hard-deny:", embedded.form, "-embedded-ipv4"),
          absl::StrCat("a ", embedded.form, " form of ",
                       FormatIp(AF_INET, embedded.v4), " (", range->what, ")"));
    }
  }
  return std::nullopt;
}

std::optional<HardDenial> HardDenyList::CheckDestination(
    const Endpoint& endpoint) const {
  if (std::optional<HardDenial> denial = CheckAddress(endpoint)) {
    return denial;
  }
  if (endpoint.family == 0) return std::nullopt;
  {
    absl::MutexLock lock(&mu_);
    if (std::find(protected_ports_.begin(), protected_ports_.end(),
                  endpoint.port) == protected_ports_.end()) {
      return std::nullopt;
    }
  }
  bool local = endpoint.IsWildcard() || endpoint.IsLoopback();
  if (!local) {
    absl::StatusOr<bool> routed_here = is_local_(endpoint);
    local = !routed_here.ok() || *routed_here;  // unknown: fail closed
  }
  if (!local) return std::nullopt;
  return Deny(endpoint, "hard-deny:agent-port",
              "one of the agent's own ports on this host");
}

std::optional<HardDenial> HardDenyList::CheckBind(
    const Endpoint& endpoint) const {
  return CheckAddress(endpoint);
}

std::optional<HardDenial> HardDenyList::CheckRawOption(
    int level, int name, absl::string_view value) {
  auto deny = [&](absl::string_view what) {
    return HardDenial{"hard-deny:source-route",
                      absl::StrCat(what,
                                   " would send packets through hops "
                                   "the policy never checks and is "
                                   "never allowed")};
  };
  if (level == IPPROTO_IPV6 && (name == IPV6_RTHDR || name == IPV6_2292RTHDR ||
                                name == IPV6_2292PKTOPTIONS)) {
    return deny("an IPv6 routing header (IPV6_RTHDR)");
  }
  if (level != IPPROTO_IP || name != IP_OPTIONS) return std::nullopt;
  // Walk the IPv4 options (RFC 791): type, then length for all but
  // end-of-list (0) and no-operation (1).
  size_t at = 0;
  while (at < value.size()) {
    const uint8_t type = static_cast<uint8_t>(value[at]);
    if (type == IPOPT_END) break;
    if (type == IPOPT_NOOP) {
      ++at;
      continue;
    }
    if (type == IPOPT_LSRR || type == IPOPT_SSRR) {
      return deny("an IPv4 source route option (IP_OPTIONS LSRR/SSRR)");
    }
    if (at + 1 >= value.size()) return deny("a malformed IP_OPTIONS value");
    const uint8_t length = static_cast<uint8_t>(value[at + 1]);
    if (length < 2 || at + length > value.size()) {
      return deny("a malformed IP_OPTIONS value");
    }
    at += length;
  }
  return std::nullopt;
}

}  // namespace sockagent
