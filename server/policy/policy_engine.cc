#include "server/policy/policy_engine.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace sockagent {
namespace {

constexpr char kPermissive[] = "permissive-default";

bool Ipv4In(const uint8_t* v4, uint8_t a, uint8_t b, int prefix_bits) {
  if (prefix_bits >= 8 && v4[0] != a) return false;
  if (prefix_bits >= 16 && v4[1] != b) return false;
  return true;
}

// The hard-denied IPv4 ranges: 169.254.0.0/16 (link-local, cloud metadata
// 169.254.169.254). Empty when `v4` passes.
std::string HardDeniedIpv4(const uint8_t* v4) {
  if (Ipv4In(v4, 169, 254, 16)) return "hard-deny:link-local-ipv4";
  return "";
}

bool Ipv6Prefix(const uint8_t* v6, std::initializer_list<uint8_t> prefix) {
  size_t i = 0;
  for (uint8_t byte : prefix) {
    if (v6[i++] != byte) return false;
  }
  return true;
}

std::string FormatIp(int family, const uint8_t* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, bytes, text, sizeof(text));
  return text;
}

bool RangeMatches(const Cidr& cidr, uint16_t port_min, uint16_t port_max,
                  const Endpoint& endpoint) {
  return cidr.Contains(endpoint.family, endpoint.bytes) &&
         endpoint.port >= port_min && endpoint.port <= port_max;
}

bool IdentityMatches(absl::string_view pattern, absl::string_view identity) {
  if (pattern == "*") return identity != "anonymous";
  if (absl::EndsWith(pattern, "*")) {
    return absl::StartsWith(identity, pattern.substr(0, pattern.size() - 1));
  }
  return pattern == identity;
}

bool IsWildcard(const Endpoint& endpoint) {
  const int n = endpoint.family == AF_INET ? 4 : 16;
  for (int i = 0; i < n; ++i) {
    if (endpoint.bytes[i] != 0) return false;
  }
  return true;
}

bool IsLoopback(const Endpoint& endpoint) {
  if (endpoint.family == AF_INET) return endpoint.bytes[0] == 127;
  static const uint8_t kV6Loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0, 0, 0, 1};
  return endpoint.family == AF_INET6 &&
         std::memcmp(endpoint.bytes, kV6Loopback, 16) == 0;
}

}  // namespace

absl::Status PolicyDecision::ToStatus() const {
  if (allowed) return absl::OkStatus();
  return absl::Status(code,
                      absl::StrCat("policy: ", reason, " (rule ", rule, ")"));
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

PolicyEngine::PolicyEngine() = default;

absl::StatusOr<v1::Policy> PolicyEngine::ParseFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("policy file ", path, ": cannot be opened"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  v1::Policy policy;
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(text), "{")) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status =
        google::protobuf::util::JsonStringToMessage(text, &policy, options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy file ", path, ": invalid JSON: ", status.ToString()));
    }
    return policy;
  }
  if (!google::protobuf::TextFormat::ParseFromString(text, &policy)) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy file ", path,
                     ": invalid text format (see the log above for the "
                     "line and column)"));
  }
  return policy;
}

absl::Status PolicyEngine::Load(const v1::Policy& policy) {
  absl::Status loaded = LoadValid(policy);
  if (!loaded.ok()) rejected_loads_.fetch_add(1);
  return loaded;
}

absl::Status PolicyEngine::LoadValid(const v1::Policy& policy) {
  auto compiled = std::make_shared<Compiled>();
  compiled->report_only = policy.report_only();
  for (int r = 0; r < policy.rules_size(); ++r) {
    const v1::PolicyRule& rule = policy.rules(r);
    const std::string name =
        rule.name().empty() ? absl::StrCat("rules[", r, "]") : rule.name();
    if (rule.identities().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy rule ", name, ": identities is empty"));
    }
    CompiledRule out;
    out.rule = rule;
    out.rule.set_name(name);
    auto compile =
        [&](const google::protobuf::RepeatedPtrField<v1::NetworkRange>& ranges,
            absl::string_view field,
            std::vector<CompiledRange>* into) -> absl::Status {
      for (int i = 0; i < ranges.size(); ++i) {
        const v1::NetworkRange& range = ranges[i];
        absl::StatusOr<Cidr> cidr = Cidr::Parse(range.cidr());
        if (!cidr.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("policy rule ", name, ": ", field, "[", i,
                           "].cidr: ", cidr.status().message()));
        }
        CompiledRange compiled_range;
        compiled_range.cidr = *cidr;
        if (range.port_min() != 0 || range.port_max() != 0) {
          const uint32_t max =
              range.port_max() == 0 ? range.port_min() : range.port_max();
          if (max > 65535 || range.port_min() > max) {
            return absl::InvalidArgumentError(absl::StrCat(
                "policy rule ", name, ": ", field, "[", i, "]: port range ",
                range.port_min(), "..", max, " is not within 0..65535"));
          }
          compiled_range.port_min = static_cast<uint16_t>(range.port_min());
          compiled_range.port_max = static_cast<uint16_t>(max);
        }
        into->push_back(compiled_range);
      }
      return absl::OkStatus();
    };
    const struct {
      const google::protobuf::RepeatedPtrField<v1::NetworkRange>& ranges;
      const char* field;
      std::vector<CompiledRange>* into;
    } lists[] = {
        {rule.connect_allow(), "connect_allow", &out.connect_allow},
        {rule.connect_deny(), "connect_deny", &out.connect_deny},
        {rule.bind_allow(), "bind_allow", &out.bind_allow},
        {rule.accept_allow(), "accept_allow", &out.accept_allow},
        {rule.accept_deny(), "accept_deny", &out.accept_deny},
    };
    for (const auto& list : lists) {
      if (absl::Status s = compile(list.ranges, list.field, list.into);
          !s.ok()) {
        return s;
      }
    }
    compiled->rules.push_back(std::move(out));
  }
  {
    absl::MutexLock lock(&mu_);
    compiled_ = std::move(compiled);
  }
  absl::MutexLock lock(&hook_mu_);
  if (hook_) hook_();
  return absl::OkStatus();
}

void PolicyEngine::SetLoadHook(std::function<void()> hook) {
  absl::MutexLock lock(&hook_mu_);
  hook_ = std::move(hook);
}

absl::Status PolicyEngine::LoadFile(const std::string& path) {
  absl::StatusOr<v1::Policy> policy = ParseFile(path);
  if (!policy.ok()) {
    rejected_loads_.fetch_add(1);
    return policy.status();
  }
  return Load(*policy);
}

void PolicyEngine::SetProtectedPorts(std::vector<uint16_t> ports) {
  std::vector<Endpoint> local;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
      if (it->ifa_addr == nullptr) continue;
      const socklen_t length = it->ifa_addr->sa_family == AF_INET6
                                   ? sizeof(sockaddr_in6)
                                   : sizeof(sockaddr_in);
      Endpoint endpoint = Endpoint::FromSockAddr(it->ifa_addr, length);
      if (endpoint.family != 0) local.push_back(endpoint);
    }
    ::freeifaddrs(list);
  }
  absl::MutexLock lock(&mu_);
  protected_ports_ = std::move(ports);
  local_addresses_ = std::move(local);
}

bool PolicyEngine::configured() const { return Snapshot() != nullptr; }

bool PolicyEngine::report_only() const {
  std::shared_ptr<const Compiled> compiled = Snapshot();
  return compiled != nullptr && compiled->report_only;
}

std::shared_ptr<const PolicyEngine::Compiled> PolicyEngine::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return compiled_;
}

const PolicyEngine::CompiledRule* PolicyEngine::RuleFor(
    const Compiled& compiled, absl::string_view identity) {
  for (const CompiledRule& rule : compiled.rules) {
    for (const std::string& pattern : rule.rule.identities()) {
      if (IdentityMatches(pattern, identity)) return &rule;
    }
  }
  return nullptr;
}

PolicyDecision PolicyEngine::Deny(const Compiled& compiled, std::string rule,
                                  std::string reason) {
  PolicyDecision decision;
  decision.rule = std::move(rule);
  decision.reason = std::move(reason);
  decision.code = absl::StatusCode::kPermissionDenied;
  if (compiled.report_only) {
    decision.would_deny = true;
  } else {
    decision.allowed = false;
  }
  return decision;
}

namespace {

PolicyDecision Allow(std::string rule) {
  PolicyDecision decision;
  decision.rule = std::move(rule);
  return decision;
}

std::string NoRule(absl::string_view identity) {
  return absl::StrCat("no policy rule names identity '", identity, "'");
}

}  // namespace

PolicyEngine::Governing PolicyEngine::Govern(absl::string_view identity) const {
  Governing out;
  out.compiled = Snapshot();
  if (out.compiled == nullptr) {
    out.decided = Allow(kPermissive);
    return out;
  }
  out.rule = RuleFor(*out.compiled, identity);
  if (out.rule == nullptr) {
    out.decided = Deny(*out.compiled, "default-deny", NoRule(identity));
  }
  return out;
}

PolicyDecision PolicyEngine::CheckRpc(absl::string_view identity,
                                      absl::string_view method) {
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  const auto& rpcs = rule->rule.allow_rpcs();
  if (std::find(rpcs.begin(), rpcs.end(), "*") == rpcs.end() &&
      std::find(rpcs.begin(), rpcs.end(), std::string(method)) == rpcs.end()) {
    return Deny(
        *compiled, absl::StrCat(rule->rule.name(), ".allow_rpcs"),
        absl::StrCat("identity '", identity, "' may not call ", method));
  }
  const uint32_t limit = rule->rule.quotas().max_ops_per_second();
  if (limit != 0) {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&ops_mu_);
    OpBucket& bucket = ops_[identity];
    if (now - bucket.window_start >= absl::Seconds(1)) {
      bucket.window_start = now;
      bucket.count = 0;
    }
    if (++bucket.count > limit) {
      PolicyDecision decision;
      decision.allowed = false;
      decision.rule =
          absl::StrCat(rule->rule.name(), ".quotas.max_ops_per_second");
      decision.reason = absl::StrCat("identity '", identity,
                                     "' exceeded max_ops_per_second ", limit);
      decision.code = absl::StatusCode::kResourceExhausted;
      return decision;
    }
  }
  return Allow(rule->rule.name());
}

PolicyDecision PolicyEngine::CheckSocket(absl::string_view identity, int family,
                                         int type) const {
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  const auto& families = rule->rule.families();
  if (std::find(families.begin(), families.end(), family) == families.end()) {
    return Deny(*compiled, absl::StrCat(rule->rule.name(), ".families"),
                absl::StrCat("family ", family, " is not granted"));
  }
  const auto& types = rule->rule.types();
  if (std::find(types.begin(), types.end(), type) == types.end()) {
    return Deny(*compiled, absl::StrCat(rule->rule.name(), ".types"),
                absl::StrCat("socket type ", type, " is not granted"));
  }
  return Allow(rule->rule.name());
}

PolicyDecision PolicyEngine::HardDeny(const Endpoint& endpoint) const {
  PolicyDecision decision;
  auto deny = [&](std::string rule, absl::string_view why) {
    decision.allowed = false;
    decision.code = absl::StatusCode::kPermissionDenied;
    decision.rule = std::move(rule);
    decision.reason =
        absl::StrCat(endpoint.ToString(), " is ", why, " and never allowed");
    return decision;
  };
  const uint8_t* b = endpoint.bytes;
  if (endpoint.family == AF_INET) {
    if (std::string rule = HardDeniedIpv4(b); !rule.empty()) {
      return deny(rule, "link-local / cloud metadata (169.254.0.0/16)");
    }
  } else if (endpoint.family == AF_INET6) {
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
      return deny("hard-deny:link-local-ipv6", "IPv6 link-local (fe80::/10)");
    }
    static const uint8_t kEc2Metadata[16] = {
        0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
    if (std::memcmp(b, kEc2Metadata, 16) == 0) {
      return deny("hard-deny:cloud-metadata-ipv6",
                  "the EC2 metadata service (fd00:ec2::254)");
    }
    // IPv6 forms that embed an IPv4 address.
    auto check = [&](const uint8_t* v4, const char* form) -> bool {
      if (!HardDeniedIpv4(v4).empty()) {
        deny(absl::StrCat("hard-deny:", form, "-embedded-ipv4"),
             absl::StrCat("a ", form, " form of ", FormatIp(AF_INET, v4),
                          " (169.254.0.0/16)"));
        return true;
      }
      return false;
    };
    // NAT64 well-known prefix 64:ff9b::/96.
    if (Ipv6Prefix(b, {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}) &&
        check(b + 12, "nat64")) {
      return decision;
    }
    // NAT64 local-use 64:ff9b:1::/48 (RFC 6052: bits 48..63, 72..87).
    if (Ipv6Prefix(b, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01})) {
      const uint8_t v4[4] = {b[6], b[7], b[9], b[10]};
      if (check(v4, "nat64") || check(b + 12, "nat64")) return decision;
    }
    // 6to4 2002::/16: bits 16..47.
    if (Ipv6Prefix(b, {0x20, 0x02}) && check(b + 2, "6to4")) return decision;
    // Teredo 2001:0::/32: server at bits 32..63, client inverted at 96..127.
    if (Ipv6Prefix(b, {0x20, 0x01, 0x00, 0x00})) {
      const uint8_t client[4] = {
          static_cast<uint8_t>(~b[12]), static_cast<uint8_t>(~b[13]),
          static_cast<uint8_t>(~b[14]), static_cast<uint8_t>(~b[15])};
      if (check(b + 4, "teredo") || check(client, "teredo")) return decision;
    }
  }
  if (endpoint.family != 0) {
    absl::MutexLock lock(&mu_);
    if (std::find(protected_ports_.begin(), protected_ports_.end(),
                  endpoint.port) != protected_ports_.end()) {
      bool local = IsLoopback(endpoint) || IsWildcard(endpoint);
      for (const Endpoint& address : local_addresses_) {
        if (address.family == endpoint.family &&
            std::memcmp(address.bytes, endpoint.bytes,
                        endpoint.family == AF_INET ? 4 : 16) == 0) {
          local = true;
        }
      }
      if (local) {
        return deny("hard-deny:agent-port", "one of the agent's own ports");
      }
    }
  }
  return decision;
}

PolicyDecision PolicyEngine::CheckDestination(absl::string_view identity,
                                              absl::string_view operation,
                                              const sockaddr* address,
                                              socklen_t length) const {
  const Endpoint endpoint = Endpoint::FromSockAddr(address, length);
  if (PolicyDecision hard = HardDeny(endpoint); !hard.allowed) return hard;
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  if (endpoint.family == 0) return Allow(rule->rule.name());  // AF_UNIX
  const std::string& name = rule->rule.name();
  for (size_t i = 0; i < rule->connect_deny.size(); ++i) {
    const CompiledRange& range = rule->connect_deny[i];
    if (RangeMatches(range.cidr, range.port_min, range.port_max, endpoint)) {
      return Deny(
          *compiled, absl::StrCat(name, ".connect_deny[", i, "]"),
          absl::StrCat(operation, " to ", endpoint.ToString(), " is denied"));
    }
  }
  for (size_t i = 0; i < rule->connect_allow.size(); ++i) {
    const CompiledRange& range = rule->connect_allow[i];
    if (RangeMatches(range.cidr, range.port_min, range.port_max, endpoint)) {
      return Allow(absl::StrCat(name, ".connect_allow[", i, "]"));
    }
  }
  return Deny(*compiled, absl::StrCat(name, ".default-deny"),
              absl::StrCat(operation, " to ", endpoint.ToString(),
                           " matches no connect_allow entry"));
}

PolicyDecision PolicyEngine::CheckBind(absl::string_view identity,
                                       const sockaddr* address,
                                       socklen_t length) const {
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  const Endpoint endpoint = Endpoint::FromSockAddr(address, length);
  const std::string& name = rule->rule.name();
  if (endpoint.family == 0) return Allow(name);  // AF_UNIX
  if (endpoint.port != 0 && endpoint.port < 1024 &&
      !rule->rule.allow_privileged_bind_ports()) {
    return Deny(*compiled, absl::StrCat(name, ".allow_privileged_bind_ports"),
                absl::StrCat("binding privileged port ", endpoint.port,
                             " is not granted"));
  }
  if (IsWildcard(endpoint) && !rule->rule.allow_wildcard_bind()) {
    return Deny(*compiled, absl::StrCat(name, ".allow_wildcard_bind"),
                absl::StrCat("binding the wildcard address ",
                             endpoint.ToString(), " is not granted"));
  }
  for (size_t i = 0; i < rule->bind_allow.size(); ++i) {
    const CompiledRange& range = rule->bind_allow[i];
    if (range.cidr.Contains(endpoint.family, endpoint.bytes) &&
        (endpoint.port == 0 || (endpoint.port >= range.port_min &&
                                endpoint.port <= range.port_max))) {
      return Allow(absl::StrCat(name, ".bind_allow[", i, "]"));
    }
  }
  return Deny(*compiled, absl::StrCat(name, ".default-deny"),
              absl::StrCat("bind to ", endpoint.ToString(),
                           " matches no bind_allow entry"));
}

PolicyDecision PolicyEngine::CheckListen(absl::string_view identity,
                                         int backlog) const {
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  const uint32_t max = rule->rule.max_listen_backlog();
  if (max != 0 && backlog > static_cast<int>(max)) {
    return Deny(*compiled,
                absl::StrCat(rule->rule.name(), ".max_listen_backlog"),
                absl::StrCat("backlog ", backlog, " exceeds ", max));
  }
  return Allow(rule->rule.name());
}

PolicyDecision PolicyEngine::CheckSockOpt(
    absl::string_view identity, const v1::SetSockOptRequest& request) const {
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  const std::string& name = rule->rule.name();
  if (request.option_kind_case() == v1::SetSockOptRequest::kRawOption) {
    if (rule->rule.allow_raw_options()) return Allow(name);
    return Deny(*compiled, absl::StrCat(name, ".allow_raw_options"),
                "raw socket options are not granted");
  }
  const auto& options = rule->rule.socket_options();
  if (std::find(options.begin(), options.end(), request.option()) ==
      options.end()) {
    return Deny(*compiled, absl::StrCat(name, ".socket_options"),
                absl::StrCat("option ", v1::SocketOption_Name(request.option()),
                             " is not granted"));
  }
  return Allow(name);
}

v1::PolicyQuotas PolicyEngine::Quotas(absl::string_view identity) const {
  std::shared_ptr<const Compiled> compiled = Snapshot();
  if (compiled == nullptr) return {};
  const CompiledRule* rule = RuleFor(*compiled, identity);
  if (rule == nullptr) return {};
  return rule->rule.quotas();
}

bool PolicyEngine::IsAdmin(absl::string_view identity) const {
  std::shared_ptr<const Compiled> compiled = Snapshot();
  if (compiled == nullptr) return false;
  const CompiledRule* rule = RuleFor(*compiled, identity);
  return rule != nullptr && rule->rule.admin();
}

PolicyDecision PolicyEngine::CheckAdmin(absl::string_view identity) const {
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  if (!rule->rule.admin()) {
    return Deny(*compiled, absl::StrCat(rule->rule.name(), ".admin"),
                absl::StrCat("identity '", identity,
                             "' is not an admin: it may see and close only "
                             "its own sessions"));
  }
  return Allow(absl::StrCat(rule->rule.name(), ".admin"));
}

PolicyDecision PolicyEngine::CheckSource(absl::string_view identity,
                                         absl::string_view operation,
                                         const sockaddr* address,
                                         socklen_t length) const {
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  const Endpoint endpoint = Endpoint::FromSockAddr(address, length);
  const std::string& name = rule->rule.name();
  if (endpoint.family == 0) return Allow(name);  // AF_UNIX
  for (size_t i = 0; i < rule->accept_deny.size(); ++i) {
    const CompiledRange& range = rule->accept_deny[i];
    if (RangeMatches(range.cidr, range.port_min, range.port_max, endpoint)) {
      return Deny(
          *compiled, absl::StrCat(name, ".accept_deny[", i, "]"),
          absl::StrCat(operation, " from ", endpoint.ToString(), " is denied"));
    }
  }
  if (rule->accept_allow.empty()) return Allow(name);
  for (size_t i = 0; i < rule->accept_allow.size(); ++i) {
    const CompiledRange& range = rule->accept_allow[i];
    if (RangeMatches(range.cidr, range.port_min, range.port_max, endpoint)) {
      return Allow(absl::StrCat(name, ".accept_allow[", i, "]"));
    }
  }
  return Deny(*compiled, absl::StrCat(name, ".accept_allow"),
              absl::StrCat(operation, " from ", endpoint.ToString(),
                           " matches no accept_allow entry"));
}

bool PolicyEngine::HasSourceFilter(absl::string_view identity) const {
  std::shared_ptr<const Compiled> compiled = Snapshot();
  if (compiled == nullptr) return false;
  const CompiledRule* rule = RuleFor(*compiled, identity);
  return rule != nullptr &&
         (!rule->accept_allow.empty() || !rule->accept_deny.empty());
}

void PolicyEngine::RefillLocked(ByteBucket& bucket, uint64_t rate,
                                absl::Time now) {
  const double capacity = static_cast<double>(rate);
  if (bucket.refilled == absl::InfinitePast()) {
    bucket.tokens = capacity;
  } else {
    bucket.tokens += absl::ToDoubleSeconds(now - bucket.refilled) * capacity;
    if (bucket.tokens > capacity) bucket.tokens = capacity;
  }
  bucket.refilled = now;
}

PolicyDecision PolicyEngine::CheckBytes(absl::string_view identity,
                                        Direction direction) {
  const v1::PolicyQuotas quotas = Quotas(identity);
  const bool send = direction == Direction::kSend;
  const uint64_t rate = send ? quotas.max_send_bytes_per_second()
                             : quotas.max_recv_bytes_per_second();
  if (rate == 0) return Allow("");
  const char* quota =
      send ? "max_send_bytes_per_second" : "max_recv_bytes_per_second";
  {
    absl::MutexLock lock(&ops_mu_);
    ByteBucket& bucket = (send ? send_bytes_ : recv_bytes_)[identity];
    RefillLocked(bucket, rate, absl::Now());
    if (bucket.tokens > 0) return Allow("");
  }
  std::shared_ptr<const Compiled> compiled = Snapshot();
  const CompiledRule* rule =
      compiled == nullptr ? nullptr : RuleFor(*compiled, identity);
  PolicyDecision decision;
  decision.allowed = false;
  decision.rule =
      absl::StrCat(rule == nullptr ? "" : rule->rule.name(), ".quotas.", quota);
  decision.reason = absl::StrCat("quota ", quota, ": identity '", identity,
                                 "' exceeded ", rate, " bytes per second");
  decision.code = absl::StatusCode::kResourceExhausted;
  return decision;
}

void PolicyEngine::ChargeBytes(absl::string_view identity, Direction direction,
                               uint64_t bytes) {
  if (bytes == 0) return;
  const v1::PolicyQuotas quotas = Quotas(identity);
  const bool send = direction == Direction::kSend;
  const uint64_t rate = send ? quotas.max_send_bytes_per_second()
                             : quotas.max_recv_bytes_per_second();
  if (rate == 0) return;
  absl::MutexLock lock(&ops_mu_);
  ByteBucket& bucket = (send ? send_bytes_ : recv_bytes_)[identity];
  RefillLocked(bucket, rate, absl::Now());
  bucket.tokens -= static_cast<double>(bytes);
}

}  // namespace sockagent
