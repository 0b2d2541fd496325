// libFuzzer target: the address parser (server/core/address.cc) and the
// destination classifier (PolicyEngine: Endpoint, hard-deny list, rules).
//
// Input: one selector byte, then up to four '\n'-separated fields: host (or
// Unix path / abstract name), port, flowinfo, scope_id.
//   selector bits 0-1: 0 inet host on AF_INET, 1 inet host on AF_INET6,
//                      2 Unix path, 3 Unix abstract name
//   bit 2: the port field is sent as port_name (else parsed as a number)
//   bit 3: host_int (the first four bytes of the host field) for inet
//   bit 4: SOCK_DGRAM (else SOCK_STREAM)
//   bit 5: the inet host is left unset (neither host nor host_int)
//
// Invariants, for every input:
// - no crash; every error is INVALID_ARGUMENT, or NOT_FOUND / UNAVAILABLE
//   with an EAI_* detail (Python's gaierror); inputs that look like host
//   names are skipped, and the target runs in a private network namespace;
// - parse -> canonical wire form (ToWireAddress) -> parse gives the same
//   kernel address, and the canonical form is a fixed point;
// - parse -> classify -> canonical text of the classified endpoint ->
//   parse -> classify gives the same endpoint and the same verdict, under a
//   permissive engine and under a policy that allows everything except
//   loopback; an IPv4 address and its IPv4-mapped IPv6 form get the same
//   verdict;
// - an IPv4 address on the hard-deny list stays denied in every IPv6 form a
//   translator or tunnel turns back into it: NAT64 in each RFC 6052 layout
//   (well-known, local-use and an operator prefix), SIIT, 6to4, Teredo
//   (server and inverted client) and ISATAP;
// - GetAddrInfo (numeric host and service only) returns addresses that
//   parse back to themselves;
// - a host that parses as a CIDR contains its own address.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/core/address.h"
#include "server/policy/hard_deny.h"
#include "server/policy/policy_engine.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_util.h"

namespace sockagent {
namespace {

using google::protobuf::util::MessageDifferencer;

// True when `host` is likely a name rather than a literal in one of
// inet_aton's forms ("127.1", "0x7f.1", "017.1") or an IPv6 literal: such
// inputs are skipped, so that the target spends its time on literals (a name
// could not reach a DNS server from the private namespace anyway).
bool WouldLookUp(const std::string& host) {
  if (host.empty() || host == "<broadcast>" ||
      host.find(':') != std::string::npos) {
    return false;
  }
  return !std::all_of(host.begin(), host.end(), [](char c) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == '.' ||
           c == 'x' || c == 'X';
  });
}

struct Verdict {
  bool allowed = true;
  std::string rule;
  bool operator==(const Verdict& other) const {
    return allowed == other.allowed && rule == other.rule;
  }
};

class Classifier {
 public:
  Classifier() : hard_deny_([](const Endpoint&) { return false; }) {
    FUZZ_CHECK(hard_deny_.SetNat64Prefixes({"2001:db8:64::/48"}, "nat64").ok());
    permissive_.SetProtectedPorts({7700});
    strict_.SetProtectedPorts({7700});
    v1::Policy policy;
    v1::PolicyRule* rule = policy.add_rules();
    rule->set_name("fuzz");
    rule->add_identities("fuzz");
    rule->add_connect_allow()->set_cidr("0.0.0.0/0");
    rule->add_connect_allow()->set_cidr("::/0");
    rule->add_connect_deny()->set_cidr("127.0.0.0/8");
    rule->add_connect_deny()->set_cidr("::1");
    v1::NetworkRange* ports = rule->add_connect_deny();
    ports->set_cidr("10.0.0.0/8");
    ports->set_port_min(20);
    ports->set_port_max(25);
    FUZZ_CHECK(strict_.Load(policy).ok());
  }

  // The verdicts of both engines, as one comparable value.
  std::vector<Verdict> Classify(const SockAddr& address) const {
    std::vector<Verdict> verdicts;
    for (const PolicyEngine* engine : {&permissive_, &strict_}) {
      PolicyDecision decision = engine->CheckDestination(
          "fuzz", "connect", address.get(), address.length);
      FUZZ_CHECK(decision.allowed == decision.ToStatus().ok());
      verdicts.push_back({decision.allowed, decision.rule});
    }
    return verdicts;
  }

  // The address classes alone (no kernel: nothing is "this host").
  const HardDenyList& hard_deny() const { return hard_deny_; }

 private:
  HardDenyList hard_deny_;
  PolicyEngine permissive_;
  PolicyEngine strict_;
};

bool SameSockAddr(const SockAddr& a, const SockAddr& b) {
  return a.length == b.length &&
         std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

bool SameEndpoint(const Endpoint& a, const Endpoint& b) {
  return a.family == b.family && a.port == b.port &&
         std::memcmp(a.bytes, b.bytes, sizeof(a.bytes)) == 0;
}

v1::Address InetAddress(const std::string& host, uint16_t port) {
  v1::Address address;
  address.mutable_inet()->set_host(host);
  address.mutable_inet()->set_port(port);
  return address;
}

std::string IpText(int family, const uint8_t* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  FUZZ_CHECK(inet_ntop(family, bytes, text, sizeof(text)) != nullptr);
  return text;
}

// Every IPv6 form that stands for the IPv4 address `v4`.
std::vector<std::array<uint8_t, 16>> Ipv6FormsOf(const uint8_t* v4) {
  std::vector<std::array<uint8_t, 16>> forms;
  // NAT64 (RFC 6052 section 2.2): the prefix, then the IPv4 address with the
  // "u" octet (byte 8) skipped.
  auto nat64 = [&](std::array<uint8_t, 16> v6, int prefix_bits) {
    int at = prefix_bits / 8;
    for (int i = 0; i < 4; ++i) {
      if (at == 8) ++at;
      v6[at++] = v4[i];
    }
    forms.push_back(v6);
  };
  const std::array<uint8_t, 16> well_known = {0x00, 0x64, 0xff, 0x9b};
  const std::array<uint8_t, 16> local_use = {0x00, 0x64, 0xff, 0x9b, 0, 1};
  const std::array<uint8_t, 16> operator_prefix = {0x20, 0x01, 0x0d,
                                                   0xb8, 0x00, 0x64};
  for (int bits : {32, 40, 48, 56, 64, 96}) nat64(well_known, bits);
  for (int bits : {48, 56, 64, 96}) nat64(local_use, bits);
  nat64(operator_prefix, 48);
  std::array<uint8_t, 16> v6{};
  v6[8] = v6[9] = 0xff;  // SIIT ::ffff:0:a.b.c.d
  std::memcpy(&v6[12], v4, 4);
  forms.push_back(v6);
  v6 = {0x20, 0x02, v4[0], v4[1], v4[2], v4[3]};  // 6to4
  forms.push_back(v6);
  v6 = {0x20, 0x01, 0x00, 0x00, v4[0], v4[1], v4[2], v4[3]};  // Teredo server
  forms.push_back(v6);
  v6 = {0x20, 0x01, 0x00, 0x00, 192, 0, 2, 1};  // Teredo client
  for (int i = 0; i < 4; ++i) v6[12 + i] = static_cast<uint8_t>(~v4[i]);
  forms.push_back(v6);
  v6 = {0x20, 0x01, 0x0d, 0xb8};  // ISATAP 2001:db8::5efe:a.b.c.d
  v6[10] = 0x5e;
  v6[11] = 0xfe;
  std::memcpy(&v6[12], v4, 4);
  forms.push_back(v6);
  return forms;
}

void CheckEmbeddings(const Classifier& classifier, const Endpoint& endpoint) {
  if (endpoint.family != AF_INET) return;
  if (!classifier.hard_deny().CheckDestination(endpoint).has_value()) return;
  for (const std::array<uint8_t, 16>& form : Ipv6FormsOf(endpoint.bytes)) {
    Endpoint v6;
    v6.family = AF_INET6;
    std::memcpy(v6.bytes, form.data(), 16);
    v6.port = endpoint.port;
    if (!classifier.hard_deny().CheckDestination(v6).has_value()) {
      std::fprintf(stderr, "%s is hard-denied but %s is not\n",
                   endpoint.ToString().c_str(), v6.ToString().c_str());
      FUZZ_CHECK(false);
    }
  }
}

// Parse -> canonical form -> parse, and classification of every form.
void CheckResolved(const Classifier& classifier, const SockAddr& first,
                   int family, int type) {
  FUZZ_CHECK(first.length > 0 && first.length <= sizeof(first.storage));
  FUZZ_CHECK(first.family() == family);

  const v1::Address wire = ToWireAddress(first.get(), first.length);
  FUZZ_CHECK(wire.kind_case() != v1::Address::KIND_NOT_SET);
  absl::StatusOr<SockAddr> second =
      ResolveAddress(wire, family, type, "canonical");
  FUZZ_CHECK(second.ok());
  FUZZ_CHECK(SameSockAddr(first, *second));
  FUZZ_CHECK(MessageDifferencer::Equals(
      wire, ToWireAddress(second->get(), second->length)));

  if (family == AF_UNIX) return;
  const std::vector<Verdict> verdict = classifier.Classify(first);
  FUZZ_CHECK(verdict == classifier.Classify(*second));

  // The classified endpoint written as text (IPv4 for the IPv4-mapped and
  // IPv4-compatible forms) parses to the same endpoint and verdict.
  const Endpoint endpoint = Endpoint::FromSockAddr(first.get(), first.length);
  FUZZ_CHECK(endpoint.family == AF_INET || endpoint.family == AF_INET6);
  const std::string text = IpText(endpoint.family, endpoint.bytes);
  absl::StatusOr<SockAddr> canonical = ResolveAddress(
      InetAddress(text, endpoint.port), endpoint.family, type, "endpoint");
  FUZZ_CHECK(canonical.ok());
  FUZZ_CHECK(SameEndpoint(
      endpoint, Endpoint::FromSockAddr(canonical->get(), canonical->length)));
  FUZZ_CHECK(verdict == classifier.Classify(*canonical));

  CheckEmbeddings(classifier, endpoint);
  if (endpoint.family == AF_INET) {
    absl::StatusOr<SockAddr> mapped = ResolveAddress(
        InetAddress("::ffff:" + text, endpoint.port), AF_INET6, type, "mapped");
    FUZZ_CHECK(mapped.ok());
    FUZZ_CHECK(verdict == classifier.Classify(*mapped));
  }
}

// getaddrinfo on numeric input only: every result parses back to itself.
void CheckGetAddrInfo(const std::string& host, const std::string& port,
                      int family, int type, uint8_t selector) {
  v1::GetAddrInfoRequest request;
  request.set_host(host);
  request.set_port(port);
  request.set_family(family == AF_INET6 ? v1::FAMILY_INET6 : v1::FAMILY_INET);
  if (selector & 0x40) request.set_family(v1::FAMILY_UNSPECIFIED);
  request.set_type(type == SOCK_DGRAM ? v1::SOCKET_TYPE_DGRAM
                                      : v1::SOCKET_TYPE_STREAM);
  int flags = AI_NUMERICHOST | AI_NUMERICSERV;
  if (selector & 0x80) flags |= AI_PASSIVE | AI_V4MAPPED | AI_ALL;
  request.set_flags(flags);
  absl::StatusOr<std::vector<v1::AddrInfo>> results = GetAddrInfo(request);
  if (!results.ok()) return;
  for (const v1::AddrInfo& info : *results) {
    const int result_family = info.family() == v1::FAMILY_INET6  ? AF_INET6
                              : info.family() == v1::FAMILY_INET ? AF_INET
                                                                 : -1;
    FUZZ_CHECK(result_family != -1);
    absl::StatusOr<SockAddr> parsed =
        ResolveAddress(info.address(), result_family, type, "getaddrinfo");
    FUZZ_CHECK(parsed.ok());
    FUZZ_CHECK(MessageDifferencer::Equals(
        info.address(), ToWireAddress(parsed->get(), parsed->length)));
  }
}

void CheckCidr(const std::string& text) {
  absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
  if (!cidr.ok()) return;
  FUZZ_CHECK(cidr->family == AF_INET || cidr->family == AF_INET6);
  FUZZ_CHECK(cidr->prefix >= 0 &&
             cidr->prefix <= (cidr->family == AF_INET ? 32 : 128));
  FUZZ_CHECK(cidr->Contains(cidr->family, cidr->bytes));
  const int other = cidr->family == AF_INET ? AF_INET6 : AF_INET;
  FUZZ_CHECK(!cidr->Contains(other, cidr->bytes));
}

uint32_t Number(absl::string_view text) {
  uint32_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) return 0;
  return value;
}

}  // namespace
}  // namespace sockagent

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  sockagent::fuzz::IsolateNetworkOrDie();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sockagent;  // NOLINT: a fuzz target's entry point
  static const Classifier* classifier = new Classifier();
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::vector<std::string> fields = absl::StrSplit(
      absl::string_view(reinterpret_cast<const char*>(data) + 1, size - 1),
      absl::MaxSplits('\n', 3));
  const std::string& host = fields[0];
  const std::string port = fields.size() > 1 ? fields[1] : "";
  const int kind = selector & 3;
  const int family = kind == 0 ? AF_INET : kind == 1 ? AF_INET6 : AF_UNIX;
  const int type = (selector & 0x10) ? SOCK_DGRAM : SOCK_STREAM;

  CheckCidr(host);

  v1::Address address;
  if (family == AF_UNIX) {
    if (kind == 2) {
      address.mutable_unix()->set_path(host);
    } else {
      address.mutable_unix()->set_abstract(host);
    }
  } else {
    v1::InetAddress* inet = address.mutable_inet();
    if (selector & 0x20) {
      // Neither host nor host_int.
    } else if (selector & 0x08) {
      uint32_t value = 0;
      std::memcpy(&value, host.data(), std::min<size_t>(host.size(), 4));
      inet->set_host_int(value);
    } else {
      if (WouldLookUp(host)) return 0;
      inet->set_host(host);
    }
    if (selector & 0x04) {
      inet->set_port_name(port);
    } else {
      inet->set_port(Number(port));
    }
    if (fields.size() > 2) inet->set_flowinfo(Number(fields[2]));
    if (fields.size() > 3) inet->set_scope_id(Number(fields[3]));
    if (!WouldLookUp(host) && (selector & 0x04) == 0) {
      CheckGetAddrInfo(host, port, family, type, selector);
    }
  }

  absl::StatusOr<SockAddr> first = ResolveAddress(address, family, type, "a");
  if (!first.ok()) {
    // INVALID_ARGUMENT naming the field, or Python's gaierror: NOT_FOUND
    // (EAI_NONAME, EAI_ADDRFAMILY) or, for a name no DNS server can be asked
    // about in the private namespace, UNAVAILABLE (EAI_AGAIN).
    const absl::StatusCode code = first.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument ||
               code == absl::StatusCode::kNotFound ||
               code == absl::StatusCode::kUnavailable);
    FUZZ_CHECK(!first.status().message().empty());
    return 0;
  }
  CheckResolved(*classifier, *first, family, type);
  return 0;
}
