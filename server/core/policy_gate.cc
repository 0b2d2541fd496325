#include "server/core/policy_gate.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "server/core/address.h"
#include "server/core/socket_fd.h"
#include "server/policy/cidr.h"
#include "spdlog/spdlog.h"

namespace sockagent {

absl::Status PolicyGate::Authorize(const CallContext& ctx, const char* method) {
  return Decide(ctx, method, policy_.CheckRpc(ctx.identity, method), nullptr,
                "", /*audit_allowed=*/false);
}

absl::Status PolicyGate::Decide(const CallContext& ctx, const char* method,
                                const PolicyDecision& decision,
                                const ManagedSocket* socket,
                                const std::string& remote, bool audit_allowed,
                                int family, int type) {
  if (!decision.allowed || decision.would_deny) {
    absl::MutexLock lock(&denials_mu_);
    ++denials_[{decision.rule, decision.allowed ? "would_deny" : "deny"}];
  }
  if (audit_ != nullptr &&
      (audit_allowed || !decision.allowed || decision.would_deny)) {
    AuditEvent event;
    event.event = "decision";
    event.identity = ctx.identity;
    event.peer = ctx.peer;
    event.session = ctx.session_id;
    event.method = method;
    event.family = family;
    event.type = type;
    if (socket != nullptr) {
      event.handle = socket->handle();
      event.family = socket->io()->family();
      event.type = socket->io()->type();
    }
    event.remote = remote;
    event.decision = !decision.allowed     ? "deny"
                     : decision.would_deny ? "would_deny"
                                           : "allow";
    event.rule = decision.rule;
    event.status =
        decision.allowed ? "OK" : absl::StatusCodeToString(decision.code);
    audit_->Record(event);
  }
  if (decision.would_deny) {
    spdlog::warn("report-only: would deny {} by {}: {} (rule {})", method,
                 ctx.identity, decision.reason, decision.rule);
  }
  return decision.ToStatus();
}

absl::Status PolicyGate::CheckByteRate(const CallContext& ctx,
                                       const char* method,
                                       const ManagedSocket& socket,
                                       PolicyEngine::Direction direction) {
  return Decide(ctx, method, policy_.CheckBytes(ctx.identity, direction),
                &socket, "", /*audit_allowed=*/false);
}

ByteRates PolicyGate::RatesFor(const std::string& identity) const {
  ByteRates rates;
  // Read before the quotas: a load in between makes the next use refresh.
  rates.generation = policy_.generation();
  const v1::PolicyQuotas quotas = policy_.Quotas(identity);
  rates.send = quotas.max_send_bytes_per_second();
  rates.recv = quotas.max_recv_bytes_per_second();
  return rates;
}

namespace {

// The quota for `direction`, refreshing `call.rates` if the policy changed.
uint64_t RateOf(const PolicyGate& gate, ResolvedSocket& call,
                PolicyEngine::Direction direction) {
  if (call.rates.generation != gate.policy().generation()) {
    call.rates = gate.RatesFor(call.ctx.identity);
  }
  return direction == PolicyEngine::Direction::kSend ? call.rates.send
                                                     : call.rates.recv;
}

}  // namespace

absl::Status PolicyGate::CheckByteRate(ResolvedSocket& call, const char* method,
                                       PolicyEngine::Direction direction) {
  if (RateOf(*this, call, direction) == 0) return absl::OkStatus();
  return CheckByteRate(call.ctx, method, *call.socket, direction);
}

void PolicyGate::ChargeBytes(ResolvedSocket& call,
                             PolicyEngine::Direction direction,
                             uint64_t bytes) {
  if (bytes == 0 || RateOf(*this, call, direction) == 0) return;
  policy_.ChargeBytes(call.ctx.identity, direction, bytes);
}

PolicyGate::SourceFilter PolicyGate::SourceFilterFor(
    const CallContext& ctx, const char* method,
    const std::shared_ptr<ManagedSocket>& socket) {
  if (!policy_.HasSourceFilter(ctx.identity)) return {};
  CallContext audited;
  audited.identity = ctx.identity;
  audited.peer = ctx.peer;
  audited.session_id = ctx.session_id;
  return [this, audited = std::move(audited), method, socket](
             const sockaddr* address, socklen_t length) {
    const PolicyDecision decision =
        policy_.CheckSource(audited.identity, method, address, length);
    if (decision.allowed && !decision.would_deny) return true;
    // Audited only; the refusal shows as a dropped source, not a status.
    Decide(audited, method, decision, socket.get(),
           Endpoint::FromSockAddr(address, length).ToString())
        .IgnoreError();
    if (decision.allowed) return true;
    ++refused_sources_;
    return false;
  };
}

void PolicyGate::AuditClose(const std::string& identity,
                            const std::string& session,
                            const ManagedSocket& socket, const char* reason) {
  if (audit_ == nullptr) return;
  AuditEvent event;
  event.event = "close";
  event.identity = identity;
  event.session = session;
  event.handle = socket.handle();
  event.family = socket.io()->family();
  event.type = socket.io()->type();
  event.bytes_in = socket.bytes_received.load();
  event.bytes_out = socket.bytes_sent.load();
  event.close_reason = reason;
  audit_->Record(event);
}

bool PolicyGate::Forbids(const std::string& owner, ManagedSocket& socket,
                         SocketOps& ops) const {
  if (!policy_.configured() || policy_.report_only()) return false;
  const IoSocket& io = *socket.io();
  if (!policy_.CheckSocket(owner, io.family(), io.type()).allowed) return true;
  if (std::optional<NetworkNamespaceQuery> netns = socket.network_namespace();
      netns.has_value() &&
      !policy_.CheckNetworkNamespace(owner, *netns).allowed) {
    return true;
  }
  if (socket.state() != v1::SOCKET_STATE_CONNECTED) return false;
  SockAddr peer;
  peer.length = sizeof(peer.storage);
  absl::StatusOr<bool> got =
      OnFd<bool>(socket, [&](int fd) -> absl::StatusOr<bool> {
        return ops.GetPeerName(fd, peer.mutable_get(), &peer.length).ok();
      });
  if (!got.ok() || !*got) return false;
  // An accepted peer is judged by the accept filters, a connected one by
  // the connect rules.
  return !(socket.accepted()
               ? policy_.CheckSource(owner, "Accept", peer.get(), peer.length)
               : policy_.CheckDestination(owner, "connect", peer.get(),
                                          peer.length))
              .allowed;
}

absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t>
PolicyGate::DenialCounts() const {
  absl::MutexLock lock(&denials_mu_);
  return denials_;
}

}  // namespace sockagent
