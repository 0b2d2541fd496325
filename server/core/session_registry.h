#ifndef SOCKAGENT_SERVER_CORE_SESSION_REGISTRY_H_
#define SOCKAGENT_SERVER_CORE_SESSION_REGISTRY_H_

// The sessions of every identity, the sockets they hold, and the quota
// ledger that counts them: sessions, sockets and streams per identity
// (PolicyQuotas) and sockets of the whole agent (max_open_sockets). Resolves
// a call's session and handle (SessionFor, SocketFor), adopts new
// descriptors, closes sockets (audited through the PolicyGate) and ends
// sessions (close, lapse, lost connection, drain). Thread-safe. No gRPC.

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/core/call_context.h"
#include "server/core/ids.h"
#include "server/core/policy_gate.h"
#include "server/core/resolved_socket.h"
#include "server/core/session_table.h"
#include "server/io/engine.h"
#include "server/io/scoped_fd.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

class SessionRegistry {
 public:
  struct Options {
    SessionTable::Options sessions;
    size_t max_sockets_per_session = 16384;
    // Sockets all sessions together may hold; 0 = no cap.
    size_t max_open_sockets = 0;
    // Fixed incarnation for tests; 0 means random.
    uint64_t incarnation = 0;
    // Names this agent across restarts in session ids and handles.
    std::string agent_key;
  };

  // `engine`, `ops` and `gate` must outlive the registry.
  SessionRegistry(Options options, Engine& engine, SocketOps& ops,
                  PolicyGate& gate);

  // Sessions. The session belongs to ctx.identity: other identities get
  // NOT_FOUND. RESOURCE_EXHAUSTED naming the quota past the identity's
  // max_sessions.
  absl::StatusOr<v1::CreateSessionResponse> CreateSession(
      const CallContext& ctx, const v1::CreateSessionRequest& request);
  absl::StatusOr<v1::KeepAliveResponse> KeepAlive(const CallContext& ctx);
  absl::StatusOr<v1::CloseSessionResponse> CloseSession(const CallContext& ctx);
  // See AgentCore::CloseSession.
  absl::StatusOr<v1::CloseSessionResponse> CloseSession(
      const CallContext& ctx, const v1::CloseSessionRequest& request);
  absl::StatusOr<v1::ListSessionsResponse> ListSessions(const CallContext& ctx);

  // See AgentCore::HoldSession, BindSession, UnbindSession, EndBoundSession.
  absl::StatusOr<SessionHold> HoldSession(const CallContext& ctx,
                                          SessionEndCallback on_end);
  absl::StatusOr<SessionHold> BindSession(const CallContext& ctx,
                                          SessionEndCallback on_end);
  void UnbindSession(SessionHold hold);
  void EndBoundSession(SessionHold hold);

  // ctx's session, its lease renewed when ctx.renew_lease. Errors:
  // FAILED_PRECONDITION without a session id, UNAVAILABLE after drain,
  // INVALID_ARGUMENT / NOT_FOUND for an id that is malformed, unknown or
  // another identity's.
  absl::StatusOr<std::shared_ptr<Session>> SessionFor(const CallContext& ctx);
  // SessionFor, then `handle` in it: INVALID_ARGUMENT for a malformed
  // handle, ClosedHandle() for a closed one, NOT_FOUND for an unknown one.
  absl::StatusOr<std::shared_ptr<ManagedSocket>> SocketFor(
      const CallContext& ctx, const std::string& handle);
  // SocketFor, resolved into the value the call carries (resolved_socket.h):
  // the session, the socket, its timeout and the identity's byte rates.
  absl::StatusOr<ResolvedSocket> Resolve(const CallContext& ctx,
                                         const std::string& handle);
  // A step of `call` failed with `status`. When the engine says the socket
  // is closed or the agent shuts down, returns what resolving the call
  // again says now (EBADF for a closed handle, NOT_FOUND for a session that
  // ended, UNAVAILABLE naming the drain), as a call resolved per step would
  // have answered; otherwise `status`.
  absl::Status Explain(const ResolvedSocket& call, absl::Status status);

  // Wraps `done` so that the call counts as waiting on ctx's session (see
  // Session::BeginCall) until it is done.
  template <typename T>
  Callback<T> WhileWaiting(const CallContext& ctx, Callback<T> done) {
    std::shared_ptr<Session> session = table_.Find(ctx.session_id);
    if (session == nullptr) return done;
    absl::StatusOr<uint64_t> call = session->BeginCall(absl::Now());
    if (!call.ok()) return done;
    return [hold = SessionHold(std::move(session), *call),
            done = std::move(done)](absl::StatusOr<T> result) mutable {
      hold.Reset();  // the lease restarts before the client hears back
      done(std::move(result));
    };
  }

  // The global socket cap (Options::max_open_sockets): RESOURCE_EXHAUSTED
  // naming it when reached.
  absl::Status CheckOpenSocketCap() const;
  // Registers a new descriptor with the engine and adds it to `session`,
  // counted against `owner`'s quotas and the global cap.
  absl::StatusOr<std::shared_ptr<ManagedSocket>> Adopt(Session& session,
                                                       const std::string& owner,
                                                       ScopedFd fd, int family,
                                                       int type, int protocol);
  // Removes `handle` from `session` and closes it (abortively when `reset`),
  // auditing `reason`. NOT_FOUND if the session no longer holds it.
  absl::Status CloseHandle(Session& session, const std::string& owner,
                           const std::string& handle, bool reset,
                           const char* reason);
  // Closes (audit `reason`) every socket for which `forbidden(owner,
  // socket)` holds. Returns how many.
  size_t CloseWhere(
      absl::FunctionRef<bool(const std::string& owner, ManagedSocket& socket)>
          forbidden,
      const char* reason);

  // A streaming call of ctx.identity starts / ends. RESOURCE_EXHAUSTED
  // naming the quota past the identity's max_concurrent_streams; every
  // successful Acquire needs one Release.
  absl::Status AcquireStream(const CallContext& ctx);
  void ReleaseStream(const CallContext& ctx);

  // Closes every session whose lease lapsed at `now`.
  void ReapExpired(absl::Time now);
  // Refuses every later session call (UNAVAILABLE). Returns false when it
  // was already drained.
  bool MarkDrained();
  // Ends every session, closing its sockets with audit `reason`.
  void CloseAll(const char* reason);
  bool drained() const { return drained_; }

  const IdIssuer& ids() const { return ids_; }
  const SessionTable& table() const { return table_; }
  size_t size() const { return table_.size(); }

 private:
  // Per-identity usage for the policy's quotas.
  struct Usage {
    size_t sessions = 0;
    size_t sockets = 0;
    size_t streams = 0;
  };
  // Who created a session, from where.
  struct Origin {
    std::string identity;
    std::string peer;
  };

  void CloseSockets(Session& session, const char* reason);
  // `handle` in `session`: INVALID_ARGUMENT for a malformed handle,
  // ClosedHandle() for a closed one, NOT_FOUND for an unknown one.
  absl::StatusOr<std::shared_ptr<ManagedSocket>> FindSocket(
      Session& session, const std::string& handle) const;
  std::string OwnerOf(const std::string& session_id);
  absl::Status ReserveSocket(const std::string& identity, size_t quota);
  void ReleaseSockets(const std::string& identity, size_t count);

  const Options options_;
  Engine& engine_;
  SocketOps& ops_;
  PolicyGate& gate_;
  IdIssuer ids_;
  SessionTable table_;
  std::atomic<bool> drained_{false};
  absl::Mutex usage_mu_;
  absl::flat_hash_map<std::string, Origin> session_owner_
      ABSL_GUARDED_BY(usage_mu_);
  absl::flat_hash_map<std::string, Usage> usage_ ABSL_GUARDED_BY(usage_mu_);
  // Sockets held by all sessions (for Options::max_open_sockets).
  std::atomic<size_t> open_sockets_{0};
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_SESSION_REGISTRY_H_
