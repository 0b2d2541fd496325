#ifndef SOCKAGENT_SERVER_POLICY_POLICY_ENGINE_H_
#define SOCKAGENT_SERVER_POLICY_POLICY_ENGINE_H_

// Who may do what: the authorization policy (sockagent.v1.Policy) compiled
// for fast checks, plus the built-in hard-deny list (hard_deny.h), CIDR
// matching (cidr.h) and the quotas' rate buckets (rate_limiter.h). No gRPC.
// Thread-safe. The const checks only read an immutable snapshot of the
// policy; Load() swaps it atomically, so a reload never exposes a half-built
// policy and an invalid policy leaves the last valid one in force. Three
// methods also change state, and are not const: CheckRpc counts the call
// against max_ops_per_second, CheckBytes refills the identity's byte bucket,
// ChargeBytes takes from it.
//
// Without a loaded policy the engine is permissive (the embedded loopback
// default): every check passes except the hard-deny list. A loaded policy is
// deny-by-default.
//
// Destination checks canonicalize first (IPv4-mapped and IPv4-compatible
// IPv6 become IPv4), then apply, in order: the hard-deny list (hard_deny.h;
// never overridable, enforced also in report-only mode and without a policy)
// -> the rule's deny list -> its allow list -> default deny. Binds and raw
// socket options meet the hard-deny list first too.

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/policy/cidr.h"
#include "server/policy/hard_deny.h"
#include "server/policy/network_namespace_query.h"
#include "server/policy/rate_limiter.h"
#include "sockagent/v1/policy.pb.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// The outcome of one check.
struct PolicyDecision {
  // False only when the call must be refused.
  bool allowed = true;
  // True when the policy denies but report-only mode lets it through.
  bool would_deny = false;
  // The rule that decided: "hard-deny:cloud-metadata",
  // "harness.connect_deny[0]", "default-deny", "permissive-default", ...
  std::string rule;
  // Why, for the caller and the audit log.
  std::string reason;
  // PERMISSION_DENIED or RESOURCE_EXHAUSTED when refused.
  absl::StatusCode code = absl::StatusCode::kOk;

  // OK when allowed; otherwise `code` with a message naming the rule.
  absl::Status ToStatus() const;
};

class PolicyEngine {
 public:
  // Permissive until Load().
  PolicyEngine();

  // Parses a policy file: JSON when the file starts with '{', text format
  // otherwise. Errors: NOT_FOUND / INVALID_ARGUMENT naming the file and the
  // parse error.
  static absl::StatusOr<v1::Policy> ParseFile(const std::string& path);

  // Validates and installs `policy`. INVALID_ARGUMENT naming the rule and
  // field; on error the previous policy stays in force.
  absl::Status Load(const v1::Policy& policy);
  // ParseFile + Load.
  absl::Status LoadFile(const std::string& path);

  // Runs after every successful Load(), on the loading thread; nullptr
  // clears it. Clearing waits for a running hook to return.
  void SetLoadHook(std::function<void()> hook);

  // The agent's own ports (gRPC, health, metrics): destinations that the
  // kernel routes to this host with these ports are hard-denied (asked of
  // the kernel at each check, so addresses added later count).
  void SetProtectedPorts(std::vector<uint16_t> ports);
  // The operator's NAT64 prefixes (AgentConfig.nat64_prefixes): IPv4
  // addresses embedded in them are classified like the IPv4 itself.
  // INVALID_ARGUMENT naming the entry.
  absl::Status SetNat64Prefixes(const std::vector<std::string>& prefixes);

  // Policies refused by Load() / LoadFile() (parse or validation errors)
  // since the engine was made; the last valid policy stayed in force.
  uint64_t rejected_loads() const { return rejected_loads_.load(); }

  // Counts successful loads: a value taken from the policy (a quota) is
  // current while generation() is unchanged.
  uint64_t generation() const { return generation_.load(); }

  // True once a policy was loaded.
  bool configured() const;
  bool report_only() const;

  // May `identity` call `method`? Counts the call against the identity's
  // max_ops_per_second (RESOURCE_EXHAUSTED past it).
  PolicyDecision CheckRpc(absl::string_view identity, absl::string_view method);
  PolicyDecision CheckSocket(absl::string_view identity, int family,
                             int type) const;
  // Connect and each SendTo datagram. `operation` names it in the reason.
  PolicyDecision CheckDestination(absl::string_view identity,
                                  absl::string_view operation,
                                  const sockaddr* address,
                                  socklen_t length) const;
  PolicyDecision CheckBind(absl::string_view identity, const sockaddr* address,
                           socklen_t length) const;
  PolicyDecision CheckListen(absl::string_view identity, int backlog) const;
  // The peer of an accepted connection or the source of a datagram, against
  // the rule's accept_deny then accept_allow (empty = any source).
  // `operation` names it in the reason.
  PolicyDecision CheckSource(absl::string_view identity,
                             absl::string_view operation,
                             const sockaddr* address, socklen_t length) const;
  // True when the identity's rule has source filters (CheckSource can deny).
  bool HasSourceFilter(absl::string_view identity) const;
  // A socket created inside another network namespace, against the rule's
  // network_namespaces (see policy.proto). Without a policy every namespace
  // but a protected one is allowed; a protected one (`host`, or a pod of
  // kube-system, kube-public or kube-node-lease) only by an entry naming it
  // without a wildcard.
  PolicyDecision CheckNetworkNamespace(
      absl::string_view identity, const NetworkNamespaceQuery& query) const;
  PolicyDecision CheckSockOpt(absl::string_view identity,
                              const v1::SetSockOptRequest& request) const;
  // Byte-rate quotas (PolicyQuotas.max_send_bytes_per_second /
  // max_recv_bytes_per_second): CheckBytes admits a call unless the
  // identity's bucket for `direction` is in debt (RESOURCE_EXHAUSTED naming
  // the quota); ChargeBytes takes what the call moved.
  using Direction = RateLimiter::Direction;
  PolicyDecision CheckBytes(absl::string_view identity, Direction direction);
  void ChargeBytes(absl::string_view identity, Direction direction,
                   uint64_t bytes);
  // The identity's quotas (0 = unlimited); all zero when not configured or
  // the identity has no rule.
  v1::PolicyQuotas Quotas(absl::string_view identity) const;
  bool IsAdmin(absl::string_view identity) const;
  // May `identity` list and close sessions of other identities? Allowed for
  // an admin rule (PolicyRule.admin) and without a policy (the permissive
  // default); otherwise denied naming "<rule>.admin" or "default-deny".
  PolicyDecision CheckAdmin(absl::string_view identity) const;

  // The hard-deny list alone; empty rule when `endpoint` passes.
  PolicyDecision HardDeny(const Endpoint& endpoint) const;

 private:
  struct CompiledRange {
    Cidr cidr;
    uint16_t port_min = 0;
    uint16_t port_max = 65535;
  };
  struct CompiledRule {
    v1::PolicyRule rule;
    std::vector<CompiledRange> connect_allow;
    std::vector<CompiledRange> connect_deny;
    std::vector<CompiledRange> bind_allow;
    std::vector<CompiledRange> accept_allow;
    std::vector<CompiledRange> accept_deny;
  };
  struct Compiled {
    bool report_only = false;
    std::vector<CompiledRule> rules;
  };
  // Load() without the rejection count.
  absl::Status LoadValid(const v1::Policy& policy);
  std::shared_ptr<const Compiled> Snapshot() const;
  // The policy and the rule that govern `identity`; `decided` is set when
  // no rule is needed: allowed while no policy is loaded, default-deny when
  // no rule names the identity.
  struct Governing {
    std::shared_ptr<const Compiled> compiled;
    const CompiledRule* rule = nullptr;
    std::optional<PolicyDecision> decided;
  };
  Governing Govern(absl::string_view identity) const;
  static const CompiledRule* RuleFor(const Compiled& compiled,
                                     absl::string_view identity);
  // Applies report-only to a policy denial.
  static PolicyDecision Deny(const Compiled& compiled, std::string rule,
                             std::string reason);

  std::atomic<uint64_t> rejected_loads_{0};
  std::atomic<uint64_t> generation_{0};
  mutable absl::Mutex mu_;
  std::shared_ptr<const Compiled> compiled_ ABSL_GUARDED_BY(mu_);
  HardDenyList hard_deny_;
  absl::Mutex hook_mu_;
  std::function<void()> hook_ ABSL_GUARDED_BY(hook_mu_);
  RateLimiter rates_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_POLICY_POLICY_ENGINE_H_
