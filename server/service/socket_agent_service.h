#ifndef SOCKAGENT_SERVER_SERVICE_SOCKET_AGENT_SERVICE_H_
#define SOCKAGENT_SERVER_SERVICE_SOCKET_AGENT_SERVICE_H_

// The gRPC callback adapter over AgentCore. Every method is a callback
// reactor; a call that waits holds no thread (the core finishes it from the
// engine). Every reactor is finished exactly once, also when cancelled.
// Statuses cross through status_codec.h only. Thread-safe.

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include "server/auth/authenticator.h"
#include "server/core/agent_core.h"
#include "server/service/connection_limiter.h"
#include "sockagent/v1/sockagent.grpc.pb.h"

namespace sockagent {

// Request metadata carrying the session id.
inline constexpr char kSessionMetadataKey[] = "sockagent-session";
// A waiting call's own deadline, as a duration from its arrival ("250ms",
// "2s"): the call ends then even if the RPC's deadline is later, so a
// client that allows time for the answer learns what the wait took.
inline constexpr char kWaitTimeoutMetadataKey[] = "sockagent-wait-timeout";

class SocketAgentService final : public v1::SocketAgent::CallbackService {
 public:
  // `core` and `authenticator` must outlive the service. Without an
  // authenticator every caller is "anonymous".
  explicit SocketAgentService(AgentCore* core,
                              const Authenticator* authenticator = nullptr)
      : core_(core), authenticator_(authenticator) {}

  AgentCore* core() const { return core_; }
  const Authenticator* authenticator() const { return authenticator_; }
  // Calls on a connection accepted beyond the connection cap are refused
  // (RESOURCE_EXHAUSTED naming max_connections). Not owned; set before the
  // server starts; nullptr = no cap.
  void set_connection_limiter(const ConnectionLimiter* limiter) {
    limiter_ = limiter;
  }
  const ConnectionLimiter* connection_limiter() const { return limiter_; }

  grpc::ServerUnaryReactor* CreateSession(
      grpc::CallbackServerContext* ctx, const v1::CreateSessionRequest* request,
      v1::CreateSessionResponse* response) override;
  grpc::ServerUnaryReactor* KeepAlive(grpc::CallbackServerContext* ctx,
                                      const v1::KeepAliveRequest* request,
                                      v1::KeepAliveResponse* response) override;
  grpc::ServerBidiReactor<v1::HoldSessionRequest, v1::HoldSessionEvent>*
  HoldSession(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* CloseSession(
      grpc::CallbackServerContext* ctx, const v1::CloseSessionRequest* request,
      v1::CloseSessionResponse* response) override;
  grpc::ServerUnaryReactor* ListSessions(
      grpc::CallbackServerContext* ctx, const v1::ListSessionsRequest* request,
      v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* Socket(grpc::CallbackServerContext* ctx,
                                   const v1::SocketRequest* request,
                                   v1::SocketResponse* response) override;
  grpc::ServerUnaryReactor* Bind(grpc::CallbackServerContext* ctx,
                                 const v1::BindRequest* request,
                                 v1::BindResponse* response) override;
  grpc::ServerUnaryReactor* Listen(grpc::CallbackServerContext* ctx,
                                   const v1::ListenRequest* request,
                                   v1::ListenResponse* response) override;
  grpc::ServerUnaryReactor* Accept(grpc::CallbackServerContext* ctx,
                                   const v1::AcceptRequest* request,
                                   v1::AcceptResponse* response) override;
  grpc::ServerUnaryReactor* Connect(grpc::CallbackServerContext* ctx,
                                    const v1::ConnectRequest* request,
                                    v1::ConnectResponse* response) override;
  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* ctx,
                                 const v1::SendRequest* request,
                                 v1::SendResponse* response) override;
  grpc::ServerReadReactor<v1::SendStreamRequest>* SendStream(
      grpc::CallbackServerContext* ctx,
      v1::SendStreamResponse* response) override;
  grpc::ServerUnaryReactor* Recv(grpc::CallbackServerContext* ctx,
                                 const v1::RecvRequest* request,
                                 v1::RecvResponse* response) override;
  grpc::ServerWriteReactor<v1::RecvStreamResponse>* RecvStream(
      grpc::CallbackServerContext* ctx,
      const v1::RecvStreamRequest* request) override;
  grpc::ServerUnaryReactor* SendTo(grpc::CallbackServerContext* ctx,
                                   const v1::SendToRequest* request,
                                   v1::SendToResponse* response) override;
  grpc::ServerUnaryReactor* RecvFrom(grpc::CallbackServerContext* ctx,
                                     const v1::RecvFromRequest* request,
                                     v1::RecvFromResponse* response) override;
  grpc::ServerWriteReactor<v1::RecvFromStreamResponse>* RecvFromStream(
      grpc::CallbackServerContext* ctx,
      const v1::RecvFromStreamRequest* request) override;
  grpc::ServerUnaryReactor* Shutdown(grpc::CallbackServerContext* ctx,
                                     const v1::ShutdownRequest* request,
                                     v1::ShutdownResponse* response) override;
  grpc::ServerUnaryReactor* Close(grpc::CallbackServerContext* ctx,
                                  const v1::CloseRequest* request,
                                  v1::CloseResponse* response) override;
  grpc::ServerUnaryReactor* GetSockName(
      grpc::CallbackServerContext* ctx, const v1::GetSockNameRequest* request,
      v1::GetSockNameResponse* response) override;
  grpc::ServerUnaryReactor* GetPeerName(
      grpc::CallbackServerContext* ctx, const v1::GetPeerNameRequest* request,
      v1::GetPeerNameResponse* response) override;
  grpc::ServerUnaryReactor* SetSockOpt(
      grpc::CallbackServerContext* ctx, const v1::SetSockOptRequest* request,
      v1::SetSockOptResponse* response) override;
  grpc::ServerUnaryReactor* GetSockOpt(
      grpc::CallbackServerContext* ctx, const v1::GetSockOptRequest* request,
      v1::GetSockOptResponse* response) override;
  grpc::ServerUnaryReactor* SetTimeout(
      grpc::CallbackServerContext* ctx, const v1::SetTimeoutRequest* request,
      v1::SetTimeoutResponse* response) override;
  grpc::ServerUnaryReactor* GetTimeout(
      grpc::CallbackServerContext* ctx, const v1::GetTimeoutRequest* request,
      v1::GetTimeoutResponse* response) override;
  grpc::ServerUnaryReactor* Traffic(grpc::CallbackServerContext* ctx,
                                    const v1::TrafficRequest* request,
                                    v1::TrafficResponse* response) override;
  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* ctx,
                                  const v1::AbortRequest* request,
                                  v1::AbortResponse* response) override;
  grpc::ServerUnaryReactor* SetFaults(grpc::CallbackServerContext* ctx,
                                      const v1::SetFaultsRequest* request,
                                      v1::SetFaultsResponse* response) override;
  grpc::ServerUnaryReactor* GetHostname(
      grpc::CallbackServerContext* ctx, const v1::GetHostnameRequest* request,
      v1::GetHostnameResponse* response) override;
  grpc::ServerUnaryReactor* GetAddrInfo(
      grpc::CallbackServerContext* ctx, const v1::GetAddrInfoRequest* request,
      v1::GetAddrInfoResponse* response) override;
  grpc::ServerUnaryReactor* ListSockets(
      grpc::CallbackServerContext* ctx, const v1::ListSocketsRequest* request,
      v1::ListSocketsResponse* response) override;
  grpc::ServerUnaryReactor* GetAgentInfo(
      grpc::CallbackServerContext* ctx, const v1::GetAgentInfoRequest* request,
      v1::GetAgentInfoResponse* response) override;

 private:
  AgentCore* const core_;
  const Authenticator* const authenticator_;
  const ConnectionLimiter* limiter_ = nullptr;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_SERVICE_SOCKET_AGENT_SERVICE_H_
