#ifndef SOCKAGENT_SERVER_CORE_AGENT_CORE_H_
#define SOCKAGENT_SERVER_CORE_AGENT_CORE_H_

// Every socket operation of the agent, on real kernel sockets, without gRPC:
// requests and responses are the wire messages, errors are absl::Status
// (errno attached via OsError). The gRPC adapter (server/service) is a thin
// layer over this class. Thread-safe.
//
// AgentCore is the facade that owns the engine and the rooms the work is
// split into, and forwards each call to its room:
//   policy_gate.h       where a call is authorized (and audited)
//   session_registry.h  sessions, their sockets and the quota ledger
//   socket_calls.h      the calls that finish at once (Socket creates)
//   waiting_calls.h     the calls that wait; they submit one I/O operation
//                       (accept_op.h, connect_op.h, send_op.h, recv_op.h),
//                       which is where a waiting call touches the kernel
//   traffic_calls.h     Traffic and SetFaults
//   recv_pump.h, send_pump.h  a stream's socket, resolved once, pumped
//                       chunk after chunk (resolved_socket.h)
//
// Operations that may wait (Accept, Connect, Send, Recv, SendTo, RecvFrom)
// take a callback that runs exactly once: with the result, DEADLINE_EXCEEDED
// (socket timeout or call deadline), CANCELLED (the CallContext's token),
// ABORTED (the socket was closed meanwhile) or UNAVAILABLE (shutdown). The
// callback may run before the call returns, on the caller's thread, or later
// on the socket's engine thread, and must not block.

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/core/call_context.h"
#include "server/core/policy_gate.h"
#include "server/core/recv_pump.h"
#include "server/core/send_pump.h"
#include "server/core/session_registry.h"
#include "server/core/session_table.h"
#include "server/core/socket_calls.h"
#include "server/core/traffic_calls.h"
#include "server/core/waiting_calls.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"
#include "server/netns/network_namespace.h"
#include "server/policy/audit_log.h"
#include "server/policy/policy_engine.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

inline constexpr char kAgentVersion[] = "0.1.0";
inline constexpr char kApiVersion[] = "sockagent.v1";

class AgentCore {
 public:
  struct Options {
    SessionTable::Options sessions;
    size_t max_sockets_per_session = 16384;
    size_t max_send_bytes = 4 << 20;
    size_t max_recv_bytes = 4 << 20;
    // How often expired sessions are reaped; a lapsed lease closes its
    // sockets within this period.
    absl::Duration reap_interval = absl::Milliseconds(200);
    // The system-call seam; nullptr means the real kernel.
    SocketOps* ops = nullptr;
    // Fixed incarnation for tests; 0 means random.
    uint64_t incarnation = 0;
    // Names this agent across restarts in session ids and handles (see
    // IdIssuer): AgentServer uses host name, machine id and listen address.
    std::string agent_key;
    // Sockets all sessions together may hold; 0 = no cap. Past it Socket
    // and Accept are RESOURCE_EXHAUSTED naming the cap (an Accept leaves
    // the connection in the backlog).
    size_t max_open_sockets = 0;
    // Authorization; nullptr means a private permissive engine (the
    // hard-deny list still applies). Not owned; must outlive the core.
    PolicyEngine* policy = nullptr;
    // Decisions and socket closes are recorded here when set. Not owned.
    AuditLog* audit = nullptr;
    // Reported by GetAgentInfo (sockagentd --label KEY=VALUE).
    std::map<std::string, std::string> labels;
    // SocketRequest.network_namespace is refused (FAILED_PRECONDITION)
    // unless set; where namespaces are looked up.
    bool allow_network_namespaces = false;
    NetnsResolver::Options netns;
    // Engine threads (sockagentd --io-threads): sockets are shared out
    // among them, each runs its sockets' readiness and deadlines. 1 ..
    // Engine::kMaxShards; otherwise Create is INVALID_ARGUMENT naming
    // io_threads.
    int io_threads = 1;
  };

  // Starts the engine and the session reaper.
  static absl::StatusOr<std::unique_ptr<AgentCore>> Create(Options options);
  // Closes every session and socket, then stops the engine.
  ~AgentCore();

  // Ends every waiting operation with UNAVAILABLE and refuses new ones, then
  // closes every session and socket. Every call after it (also the next
  // step of a stream) is UNAVAILABLE saying the agent is shutting down.
  // Idempotent.
  void Drain();
  bool drained() const { return sessions_.drained(); }

  // Sessions.
  absl::StatusOr<v1::CreateSessionResponse> CreateSession(
      const v1::CreateSessionRequest& request);
  // The session belongs to ctx.identity: other identities get NOT_FOUND.
  // RESOURCE_EXHAUSTED naming the quota past the identity's max_sessions.
  absl::StatusOr<v1::CreateSessionResponse> CreateSession(
      const CallContext& ctx, const v1::CreateSessionRequest& request);
  absl::StatusOr<v1::KeepAliveResponse> KeepAlive(const CallContext& ctx);
  absl::StatusOr<v1::CloseSessionResponse> CloseSession(const CallContext& ctx);
  // With request.session_id set, closes that session instead of ctx's: one
  // of ctx.identity's own, or (PolicyEngine::CheckAdmin) any session; the
  // sockets of another identity's session close with the audit reason
  // "admin_closed". Errors: INVALID_ARGUMENT for a malformed session_id;
  // PERMISSION_DENIED naming the rule for a non-admin and a session not its
  // own (existing or not); NOT_FOUND for an admin and an unknown session.
  absl::StatusOr<v1::CloseSessionResponse> CloseSession(
      const CallContext& ctx, const v1::CloseSessionRequest& request);
  // Every session for an admin identity, ctx.identity's own otherwise.
  // Needs no session.
  absl::StatusOr<v1::ListSessionsResponse> ListSessions(const CallContext& ctx);

  // A call that waits on ctx's session beyond one operation (a stream)
  // starts: while the returned hold lives, the session's lease does not
  // lapse, and when the last hold ends it restarts. `on_end`, when set, runs
  // once if the session ends while the hold lives (SessionEndCallback); it
  // may run on any thread, also before this returns, and must not block.
  // Errors: SessionFor's (UNAVAILABLE while draining).
  absl::StatusOr<SessionHold> HoldSession(const CallContext& ctx,
                                          SessionEndCallback on_end);
  // HoldSession, and binds the session to the call (the HoldSession RPC):
  // FAILED_PRECONDITION unless it was created with bind_to_connection,
  // ALREADY_EXISTS while another call binds it.
  absl::StatusOr<SessionHold> BindSession(const CallContext& ctx,
                                          SessionEndCallback on_end);
  // The binding call released the session: it stays, lease-only, and its
  // lease restarts now.
  void UnbindSession(SessionHold hold);
  // The binding call ended without a release (its connection closed, or it
  // was cancelled): ends the session now, closing its sockets (audit reason
  // "connection_closed"), unless it was released or closed meanwhile.
  void EndBoundSession(SessionHold hold);

  // Operations that finish at once.
  absl::StatusOr<v1::SocketResponse> Socket(const CallContext& ctx,
                                            const v1::SocketRequest& request);
  absl::StatusOr<v1::BindResponse> Bind(const CallContext& ctx,
                                        const v1::BindRequest& request);
  absl::StatusOr<v1::ListenResponse> Listen(const CallContext& ctx,
                                            const v1::ListenRequest& request);
  absl::StatusOr<v1::ShutdownResponse> Shutdown(
      const CallContext& ctx, const v1::ShutdownRequest& request);
  absl::StatusOr<v1::CloseResponse> Close(const CallContext& ctx,
                                          const v1::CloseRequest& request);
  absl::StatusOr<v1::GetSockNameResponse> GetSockName(
      const CallContext& ctx, const v1::GetSockNameRequest& request);
  absl::StatusOr<v1::GetPeerNameResponse> GetPeerName(
      const CallContext& ctx, const v1::GetPeerNameRequest& request);
  absl::StatusOr<v1::SetSockOptResponse> SetSockOpt(
      const CallContext& ctx, const v1::SetSockOptRequest& request);
  absl::StatusOr<v1::GetSockOptResponse> GetSockOpt(
      const CallContext& ctx, const v1::GetSockOptRequest& request);
  absl::StatusOr<v1::SetTimeoutResponse> SetTimeout(
      const CallContext& ctx, const v1::SetTimeoutRequest& request);
  absl::StatusOr<v1::GetTimeoutResponse> GetTimeout(
      const CallContext& ctx, const v1::GetTimeoutRequest& request);
  absl::StatusOr<v1::GetHostnameResponse> GetHostname();
  absl::StatusOr<v1::GetAddrInfoResponse> GetAddrInfo(
      const v1::GetAddrInfoRequest& request);
  absl::StatusOr<v1::ListSocketsResponse> ListSockets(const CallContext& ctx);
  v1::GetAgentInfoResponse GetAgentInfo();

  // Operations that may wait. `request` must outlive the callback.
  void Accept(const CallContext& ctx, const v1::AcceptRequest& request,
              Callback<v1::AcceptResponse> done);
  void Connect(const CallContext& ctx, const v1::ConnectRequest& request,
               Callback<v1::ConnectResponse> done);
  void Send(const CallContext& ctx, const v1::SendRequest& request,
            Callback<v1::SendResponse> done);
  void Recv(const CallContext& ctx, const v1::RecvRequest& request,
            Callback<v1::RecvResponse> done);
  void SendTo(const CallContext& ctx, const v1::SendToRequest& request,
              Callback<v1::SendToResponse> done);
  void RecvFrom(const CallContext& ctx, const v1::RecvFromRequest& request,
                Callback<v1::RecvFromResponse> done);

  // The two sides of a stream, on ctx's socket `handle` resolved once (see
  // recv_pump.h, send_pump.h). Errors: resolving the handle (as Recv/Send).
  absl::StatusOr<std::shared_ptr<RecvPump>> OpenRecvPump(
      const CallContext& ctx, const std::string& handle,
      RecvPump::Options options, RecvPump::OnChunk on_chunk);
  absl::StatusOr<std::shared_ptr<SendPump>> OpenSendPump(
      const CallContext& ctx, const std::string& handle,
      SendPump::OnSent on_sent);

  // Agent-side traffic (echo, sink, source) on the handle's socket until
  // EOF, its byte limit, its duration or a fault close (OK with the
  // response); the handle being closed or its session ending (ABORTED),
  // ctx.cancel (CANCELLED), ctx.deadline (DEADLINE_EXCEEDED), Drain
  // (UNAVAILABLE) or a failing system call end it with that status. Bad
  // input is INVALID_ARGUMENT naming the field; an unconnected datagram
  // source's destination passes the same policy check as SendTo, for every
  // datagram. The socket's timeout does not apply. See server/core/traffic.h.
  void Traffic(const CallContext& ctx, const v1::TrafficRequest& request,
               Callback<v1::TrafficResponse> done);
  // Abortive close: SO_LINGER {on, 0} then close, so a TCP peer gets RST.
  // The handle is gone afterwards (audit close reason "abort").
  absl::StatusOr<v1::AbortResponse> Abort(const CallContext& ctx,
                                          const v1::AbortRequest& request);
  // Replaces the socket's fault profile; running Traffic picks it up at its
  // next step.
  absl::StatusOr<v1::SetFaultsResponse> SetFaults(
      const CallContext& ctx, const v1::SetFaultsRequest& request);

  // Introspection for tests and metrics.
  size_t session_count() const { return sessions_.size(); }
  size_t waiting_ops() const { return engine_->waiting_ops(); }
  const std::string& incarnation() const {
    return sessions_.ids().incarnation();
  }
  const Options& options() const { return options_; }
  PolicyEngine& policy() { return policy_; }

  // Open sockets of every session counted by family, type and state.
  struct SocketKindCount {
    int family = 0;
    int type = 0;
    v1::SocketState state = v1::SOCKET_STATE_UNSPECIFIED;
    uint64_t count = 0;
  };
  std::vector<SocketKindCount> CountSocketsByKind() const;
  // Policy decisions that denied (or, in report-only mode, would have
  // denied) since start, by rule: {rule, decision} -> count, where decision
  // is "deny" or "would_deny".
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t>
  DenialCounts() const;

  // May ctx.identity call `method` ("Socket", "Connect", ...) at all?
  // PERMISSION_DENIED naming the rule, or RESOURCE_EXHAUSTED naming the
  // max_ops_per_second quota. Denials are audited.
  absl::Status Authorize(const CallContext& ctx, const char* method);

  // Closes (audit reason "policy_revoked") every socket the current policy
  // no longer allows its owner: a family/type no longer granted, a peer it
  // connected to no longer allowed (connect rules), or the peer of an
  // accepted connection no longer admitted (accept filters). Runs on every
  // policy load. Returns how many were closed.
  size_t RevokeForbidden();

  // A streaming call of ctx.identity starts / ends. RESOURCE_EXHAUSTED
  // naming the quota past the identity's max_concurrent_streams; every
  // successful Acquire needs one Release.
  absl::Status AcquireStream(const CallContext& ctx);
  void ReleaseStream(const CallContext& ctx);

 private:
  AgentCore(Options options, std::unique_ptr<Engine> engine);
  void ReapLoop();

  const Options options_;
  SocketOps& ops_;
  std::unique_ptr<PolicyEngine> own_policy_;
  PolicyEngine& policy_;
  std::unique_ptr<Engine> engine_;
  PolicyGate gate_;
  SessionRegistry sessions_;
  // Null unless options.allow_network_namespaces.
  const std::unique_ptr<NetnsResolver> netns_;
  SocketCalls socket_calls_;
  WaitingCalls waiting_calls_;
  TrafficCalls traffic_calls_;
  absl::Notification stop_reaper_;
  std::thread reaper_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_AGENT_CORE_H_
