#ifndef SOCKAGENT_SERVER_CORE_SOCKET_CALLS_H_
#define SOCKAGENT_SERVER_CORE_SOCKET_CALLS_H_

// The socket calls that finish at once (socket, bind, listen, shutdown,
// close, names, options, timeouts, name resolution): each resolves its
// socket through the SessionRegistry, is authorized by the PolicyGate where
// the policy has a say, and makes its system call through SocketOps. Socket
// creation is Socket() here. Thread-safe. No gRPC.

#include <string>

#include "absl/status/statusor.h"
#include "server/core/call_context.h"
#include "server/core/policy_gate.h"
#include "server/core/session_registry.h"
#include "server/io/socket_ops.h"
#include "server/netns/network_namespace.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

class SocketCalls {
 public:
  // Not owned; all must outlive the calls. `netns` null: requests naming
  // a network namespace are FAILED_PRECONDITION.
  SocketCalls(SocketOps& ops, SessionRegistry& sessions, PolicyGate& gate,
              const NetnsResolver* netns = nullptr)
      : ops_(ops), sessions_(sessions), gate_(gate), netns_(netns) {}

  // A new socket in ctx's session: INVALID_ARGUMENT with EAFNOSUPPORT /
  // ESOCKTNOSUPPORT for a family / type the agent does not offer,
  // PERMISSION_DENIED by policy, RESOURCE_EXHAUSTED past a quota or the
  // agent's socket cap, or socket(2)'s errno. With
  // request.network_namespace, socket(2) runs inside that namespace
  // (RunInNetns): FAILED_PRECONDITION when the agent does not allow it,
  // the resolver's errors, PERMISSION_DENIED by the policy's
  // network_namespaces, setns's errno; the decision is audited.
  absl::StatusOr<v1::SocketResponse> Socket(const CallContext& ctx,
                                            const v1::SocketRequest& request);
  absl::StatusOr<v1::BindResponse> Bind(const CallContext& ctx,
                                        const v1::BindRequest& request);
  absl::StatusOr<v1::ListenResponse> Listen(const CallContext& ctx,
                                            const v1::ListenRequest& request);
  absl::StatusOr<v1::ShutdownResponse> Shutdown(
      const CallContext& ctx, const v1::ShutdownRequest& request);
  // Closing a closed socket is OK, as Python's close().
  absl::StatusOr<v1::CloseResponse> Close(const CallContext& ctx,
                                          const v1::CloseRequest& request);
  // Abortive close: SO_LINGER {on, 0} then close, so a TCP peer gets RST.
  absl::StatusOr<v1::AbortResponse> Abort(const CallContext& ctx,
                                          const v1::AbortRequest& request);
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
  absl::StatusOr<v1::ListSocketsResponse> ListSockets(const CallContext& ctx);
  static absl::StatusOr<v1::GetHostnameResponse> GetHostname();
  static absl::StatusOr<v1::GetAddrInfoResponse> GetAddrInfo(
      const v1::GetAddrInfoRequest& request);

 private:
  // The shared body of GetSockName and GetPeerName.
  template <typename Response>
  absl::StatusOr<Response> Name(const CallContext& ctx,
                                const std::string& handle, bool peer);

  SocketOps& ops_;
  SessionRegistry& sessions_;
  PolicyGate& gate_;
  const NetnsResolver* const netns_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_SOCKET_CALLS_H_
