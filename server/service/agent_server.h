#ifndef SOCKAGENT_SERVER_SERVICE_AGENT_SERVER_H_
#define SOCKAGENT_SERVER_SERVICE_AGENT_SERVER_H_

// The running agent: AgentCore + the gRPC server (SocketAgent, health,
// reflection) behind the agent's own listener (ConnectionLimiter: the
// connection cap), and optionally a health-only plaintext server. Owns the
// shutdown order, written once here:
//   health NOT_SERVING -> the listener stops accepting -> core drains
//   (waiting calls end UNAVAILABLE, sockets close) -> server shuts down
//   within the drain deadline -> engine stops.
// Start() and Drain() may be called from different threads.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server.h>
#include <grpcpp/support/server_interceptor.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/agent_core.h"
#include "server/service/connection_limiter.h"
#include "server/service/reflection_v1.h"
#include "server/service/socket_agent_service.h"

namespace sockagent {

struct ServerOptions {
  // host:port; port 0 picks a free port (see AgentServer::port()).
  std::string listen_address = "127.0.0.1:7700";
  AgentCore::Options core;
  // TLS on the gRPC port when cert_file is set. The files are re-read every
  // refresh interval (gRPC's file-watcher provider): rotated certificates
  // take effect without a restart.
  struct Tls {
    std::string cert_file;
    std::string key_file;
    // Verifies client certificates against this CA bundle when set.
    std::string client_ca_file;
    // Refuse the handshake without a client certificate (mTLS).
    bool require_client_cert = false;
    int refresh_interval_seconds = 10;
  } tls;
  // host:port of a plaintext port serving only grpc.health.v1.Health (empty:
  // none). It reveals nothing but the serving status, so it may listen on a
  // pod address while the API port uses TLS: kubelet's native gRPC probes
  // speak plaintext only.
  std::string health_listen;
  // Bearer tokens ("TOKEN IDENTITY" lines); see Authenticator.
  std::string token_file;
  // Destinations on this host with these ports are hard-denied, besides the
  // gRPC port itself (e.g. a metrics port).
  std::vector<uint16_t> protected_ports;
  // The operator's NAT64 prefixes (AgentConfig.nat64_prefixes), decoded by
  // the hard-deny list besides the well-known and local-use ones.
  std::vector<std::string> nat64_prefixes;
  // gRPC limits.
  // Per connection; high enough for 10,000 waiting calls on one channel.
  int max_concurrent_streams = 16384;
  // The agent pings every connection after `keepalive_time` without
  // traffic and closes it when the ping is not answered within
  // `keepalive_timeout`: a hung (stopped) client's connection closes, its
  // calls are cancelled and its sessions end (bound ones at once, others a
  // lease later) within keepalive_time + keepalive_timeout (+ the lease).
  absl::Duration keepalive_time = absl::Seconds(5);
  absl::Duration keepalive_timeout = absl::Seconds(5);
  // Descriptors kept free of callers' sockets, for connections (at most
  // max_connections + health_headroom), logs, metrics and the agent's own
  // files: callers may hold RLIMIT_NOFILE - fd_reserve sockets at once
  // (AgentCore::Options::max_open_sockets, unless set). -1 = automatic:
  // max_connections + health_headroom + 64, but at most half the limit.
  int64_t fd_reserve = -1;
  // A connection without calls for this long is closed. Zero = never.
  absl::Duration max_connection_idle = absl::Minutes(10);
  // A connection older than this is sent GOAWAY (clients reconnect, and a
  // rotated or revoked certificate is checked again); its calls get
  // max_connection_age_grace to finish. Zero = no limit.
  absl::Duration max_connection_age = absl::Hours(24);
  absl::Duration max_connection_age_grace = absl::Minutes(5);
  // Concurrent connections to the gRPC port (enforced by the agent: gRPC
  // 1.51 has no cap) and how many more may still ask for health; see
  // ConnectionLimiter. 0 = no cap.
  uint32_t max_connections = 1024;
  uint32_t health_headroom = 16;
  int max_metadata_bytes = 16 * 1024;
  // How long Drain() lets calls finish before cancelling them.
  absl::Duration drain_timeout = absl::Seconds(5);
  // Server interceptors (e.g. metrics), created once when the server starts.
  std::function<std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>()>
      interceptors;
};

class AgentServer {
 public:
  // Builds and starts the server. Errors: UNAVAILABLE when the address
  // cannot be bound (already in use, not local), the core's errors.
  static absl::StatusOr<std::unique_ptr<AgentServer>> Start(
      ServerOptions options);
  ~AgentServer();

  // The bound port.
  int port() const { return port_; }
  // The bound health port (0 without health_listen).
  int health_port() const { return health_port_; }
  AgentCore& core() { return *core_; }
  Authenticator& authenticator() { return *authenticator_; }
  const ConnectionLimiter& connection_limiter() const { return *limiter_; }

  // Health NOT_SERVING, end waiting calls, close every socket, stop the
  // server. Idempotent; blocks until the server stopped.
  void Drain();

  // Blocks until the server stops (after Drain()).
  void Wait();

 private:
  AgentServer() = default;
  // Both servers' health: overall and for sockagent.v1.SocketAgent.
  void SetServing(bool serving);

  ServerOptions options_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<AgentCore> core_;
  std::unique_ptr<SocketAgentService> service_;
  std::unique_ptr<ReflectionV1Service> reflection_v1_;
  std::unique_ptr<ConnectionLimiter> limiter_;
  std::unique_ptr<grpc::Server> server_;
  // Serves only health, plaintext (ServerOptions::health_listen).
  std::unique_ptr<grpc::Server> health_server_;
  int port_ = 0;
  int health_port_ = 0;
  absl::Mutex drain_mu_;
  bool drained_ ABSL_GUARDED_BY(drain_mu_) = false;
};

// True for 127.0.0.0/8, ::1 and "localhost" (with any port).
bool IsLoopbackListenAddress(const std::string& address);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_SERVICE_AGENT_SERVER_H_
