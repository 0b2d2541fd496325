#include "server/policy/policy_engine.h"

#include <arpa/inet.h>
#include <fnmatch.h>
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

}  // namespace

absl::Status PolicyDecision::ToStatus() const {
  if (allowed) return absl::OkStatus();
  return absl::Status(code,
                      absl::StrCat("policy: ", reason, " (rule ", rule, ")"));
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
    for (int i = 0; i < rule.network_namespaces_size(); ++i) {
      const std::string& entry = rule.network_namespaces(i);
      const size_t colon = entry.find(':');
      const std::string kind = entry.substr(0, colon);
      const bool ok =
          entry == "*" || entry == "host" ||
          (colon != std::string::npos && colon + 1 < entry.size() &&
           (kind == "name" || kind == "pid" || kind == "pod" || kind == "k8s"));
      if (!ok) {
        return absl::InvalidArgumentError(absl::StrCat(
            "policy rule ", name, ": network_namespaces[", i, "]: '", entry,
            "' is not \"*\", \"host\", name:GLOB, pid:N, pod:UID or "
            "k8s:NAMESPACE"));
      }
    }
    compiled->rules.push_back(std::move(out));
  }
  {
    absl::MutexLock lock(&mu_);
    compiled_ = std::move(compiled);
  }
  generation_.fetch_add(1);
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
  hard_deny_.SetProtectedPorts(std::move(ports));
}

absl::Status PolicyEngine::SetNat64Prefixes(
    const std::vector<std::string>& prefixes) {
  return hard_deny_.SetNat64Prefixes(prefixes, "nat64_prefixes");
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
    if (!rates_.TakeOp(identity, limit, absl::Now())) {
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

namespace {

bool IsProtectedKubeNamespace(absl::string_view ns) {
  return ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease";
}

bool HasWildcard(absl::string_view glob) {
  return glob.find_first_of("*?[") != absl::string_view::npos;
}

bool Glob(const std::string& pattern, const std::string& text) {
  return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

// Whether `entry` grants the namespace `q` (protected: see the header).
bool GrantsNamespace(const std::string& entry, const NetworkNamespaceQuery& q,
                     bool is_protected) {
  if (entry == "*") return !is_protected;
  if (entry == "host") return q.host;
  const size_t colon = entry.find(':');
  if (colon == std::string::npos) return false;
  const std::string kind = entry.substr(0, colon);
  const std::string glob = entry.substr(colon + 1);
  if (q.host) return false;  // only "host" names the host's namespace
  if (is_protected && HasWildcard(glob)) return false;
  if (kind == "k8s") return q.kind == "pod" && Glob(glob, q.kube_namespace);
  if (kind != q.kind) return false;
  if (kind == "pod") {
    return Glob(absl::AsciiStrToLower(glob), absl::AsciiStrToLower(q.value));
  }
  return Glob(glob, q.value);
}

}  // namespace

PolicyDecision PolicyEngine::CheckNetworkNamespace(
    absl::string_view identity, const NetworkNamespaceQuery& query) const {
  const bool is_protected =
      query.host ||
      (query.kind == "pod" && IsProtectedKubeNamespace(query.kube_namespace));
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) {
    if (!decided->allowed || compiled != nullptr || !is_protected) {
      return *decided;
    }
    // No policy: everything but a protected namespace.
    PolicyDecision denied;
    denied.allowed = false;
    denied.code = absl::StatusCode::kPermissionDenied;
    denied.rule = "network_namespaces.protected";
    denied.reason = absl::StrCat(
        query.description,
        " is protected (the host's, or kube-system-like): only a policy "
        "entry naming it grants it");
    return denied;
  }
  const auto& entries = rule->rule.network_namespaces();
  for (int i = 0; i < entries.size(); ++i) {
    if (GrantsNamespace(entries[i], query, is_protected)) {
      return Allow(
          absl::StrCat(rule->rule.name(), ".network_namespaces[", i, "]"));
    }
  }
  return Deny(*compiled, absl::StrCat(rule->rule.name(), ".network_namespaces"),
              absl::StrCat(query.description, " is not granted",
                           is_protected ? " (a protected namespace: name it "
                                          "without a wildcard, e.g. host or "
                                          "k8s:kube-system)"
                                        : ""));
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

namespace {

PolicyDecision Refuse(std::optional<HardDenial> denial) {
  PolicyDecision decision;
  if (!denial.has_value()) return decision;
  decision.allowed = false;
  decision.code = absl::StatusCode::kPermissionDenied;
  decision.rule = std::move(denial->rule);
  decision.reason = std::move(denial->reason);
  return decision;
}

}  // namespace

PolicyDecision PolicyEngine::HardDeny(const Endpoint& endpoint) const {
  return Refuse(hard_deny_.CheckDestination(endpoint));
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
  const Endpoint endpoint = Endpoint::FromSockAddr(address, length);
  if (PolicyDecision hard = Refuse(hard_deny_.CheckBind(endpoint));
      !hard.allowed) {
    return hard;
  }
  const auto [compiled, rule, decided] = Govern(identity);
  if (decided.has_value()) return *decided;
  const std::string& name = rule->rule.name();
  if (endpoint.family == 0) return Allow(name);  // AF_UNIX
  if (endpoint.port != 0 && endpoint.port < 1024 &&
      !rule->rule.allow_privileged_bind_ports()) {
    return Deny(*compiled, absl::StrCat(name, ".allow_privileged_bind_ports"),
                absl::StrCat("binding privileged port ", endpoint.port,
                             " is not granted"));
  }
  if (endpoint.IsWildcard() && !rule->rule.allow_wildcard_bind()) {
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
  if (request.option_kind_case() == v1::SetSockOptRequest::kRawOption) {
    const v1::RawOption& raw = request.raw_option();
    if (PolicyDecision hard = Refuse(HardDenyList::CheckRawOption(
            raw.level(), raw.name(), request.value().raw()));
        !hard.allowed) {
      return hard;
    }
  }
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

PolicyDecision PolicyEngine::CheckBytes(absl::string_view identity,
                                        Direction direction) {
  const v1::PolicyQuotas quotas = Quotas(identity);
  const bool send = direction == Direction::kSend;
  const uint64_t rate = send ? quotas.max_send_bytes_per_second()
                             : quotas.max_recv_bytes_per_second();
  if (rate == 0) return Allow("");
  const char* quota =
      send ? "max_send_bytes_per_second" : "max_recv_bytes_per_second";
  if (rates_.AdmitBytes(identity, direction, rate, absl::Now())) {
    return Allow("");
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
  rates_.ChargeBytes(identity, direction, rate, bytes, absl::Now());
}

}  // namespace sockagent
