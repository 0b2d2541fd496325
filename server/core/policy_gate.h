#ifndef SOCKAGENT_SERVER_CORE_POLICY_GATE_H_
#define SOCKAGENT_SERVER_CORE_POLICY_GATE_H_

// Where a call is authorized: the bridge from the core's calls to the
// PolicyEngine and the audit log. Every decision the core acts on goes
// through Decide (counted, audited, logged in report-only mode, turned into
// the call's status); closes are audited here too. Also the byte-rate
// quotas, the source filters of Accept/RecvFrom/Traffic, and the check that
// revokes sockets a new policy forbids. Thread-safe. No gRPC.

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/core/call_context.h"
#include "server/core/resolved_socket.h"
#include "server/core/session_table.h"
#include "server/io/socket_ops.h"
#include "server/policy/audit_log.h"
#include "server/policy/policy_engine.h"

namespace sockagent {

class PolicyGate {
 public:
  // Neither is owned; `audit` may be null (nothing is recorded).
  PolicyGate(PolicyEngine& policy, AuditLog* audit)
      : policy_(policy), audit_(audit) {}

  PolicyEngine& policy() const { return policy_; }

  // May ctx.identity call `method` ("Socket", "Connect", ...) at all?
  // PERMISSION_DENIED naming the rule, or RESOURCE_EXHAUSTED naming the
  // max_ops_per_second quota. Denials are audited.
  absl::Status Authorize(const CallContext& ctx, const char* method);

  // Audits a decision about `socket` (may be null; else `family`/`type`
  // describe the socket to be) and turns it into the call's status. Allowed
  // decisions are audited only with `audit_allowed`.
  absl::Status Decide(const CallContext& ctx, const char* method,
                      const PolicyDecision& decision,
                      const ManagedSocket* socket, const std::string& remote,
                      bool audit_allowed = true, int family = 0, int type = 0);

  // The identity's byte-rate quota for `direction` (RESOURCE_EXHAUSTED
  // naming it while the identity's bucket is in debt; audited).
  absl::Status CheckByteRate(const CallContext& ctx, const char* method,
                             const ManagedSocket& socket,
                             PolicyEngine::Direction direction);
  // Takes what a call moved from the identity's byte-rate bucket.
  void ChargeBytes(const std::string& identity,
                   PolicyEngine::Direction direction, uint64_t bytes) {
    policy_.ChargeBytes(identity, direction, bytes);
  }
  // The identity's byte-rate quotas in the policy in force.
  ByteRates RatesFor(const std::string& identity) const;
  // CheckByteRate and ChargeBytes for a resolved call: without a quota for
  // `direction` they take no lock. `call.rates` is refreshed first when
  // the policy changed since.
  absl::Status CheckByteRate(ResolvedSocket& call, const char* method,
                             PolicyEngine::Direction direction);
  void ChargeBytes(ResolvedSocket& call, PolicyEngine::Direction direction,
                   uint64_t bytes);

  // Whether an accepted peer / a datagram source may reach the caller.
  using SourceFilter = absl::AnyInvocable<bool(const sockaddr*, socklen_t)>;
  // The policy's accept_allow / accept_deny for ctx.identity, checked at
  // each arrival (refusals audited and counted); empty when the identity
  // has no source filter. The filter must not outlive the gate.
  SourceFilter SourceFilterFor(const CallContext& ctx, const char* method,
                               const std::shared_ptr<ManagedSocket>& socket);

  // Records the close of `socket` of `identity`'s `session`, with `reason`.
  void AuditClose(const std::string& identity, const std::string& session,
                  const ManagedSocket& socket, const char* reason);

  // True when the policy in force no longer allows `owner` the socket: its
  // family/type, the network namespace it was made in (network_namespaces),
  // the peer it connected to (connect rules) or the peer it accepted
  // (accept filters). False without a policy or in report-only.
  bool Forbids(const std::string& owner, ManagedSocket& socket,
               SocketOps& ops) const;

  // Decisions that denied (or, in report-only mode, would have denied), by
  // {rule, "deny" | "would_deny"}.
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t>
  DenialCounts() const;
  // Sources the filters refused since start.
  uint64_t refused_sources() const { return refused_sources_.load(); }

 private:
  PolicyEngine& policy_;
  AuditLog* const audit_;
  mutable absl::Mutex denials_mu_;
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t> denials_
      ABSL_GUARDED_BY(denials_mu_);
  std::atomic<uint64_t> refused_sources_{0};
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_POLICY_GATE_H_
