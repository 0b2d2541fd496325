#ifndef SOCKAGENT_CLIENT_AGENT_H_
#define SOCKAGENT_CLIENT_AGENT_H_

// sockagent::Agent: a connection to one sockagentd and one session on it.
//
//   absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect({});
//   absl::StatusOr<Socket> s = (*agent)->CreateSocket(v1::FAMILY_INET,
//                                                     v1::SOCKET_TYPE_STREAM);
//
// Guarantees: an Agent that created its session closes it on destruction
// (best effort, bounded by a short deadline), which closes every socket of
// the session on the agent. By default (bind_to_connection) the session is
// also bound to this Agent's connection: if the process dies or hangs, the
// agent ends the session as soon as the connection closes (at once when the
// process is killed; after the agent's keepalive timeout when it hangs),
// not a lease later. With `keepalive`, a background thread renews the
// lease every ttl/3 until destruction; the destructor stops it promptly.
// Sockets share the Agent's connection and may outlive the Agent object.
// Thread-safe: every method may be called concurrently.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/security/credentials.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/socket.h"
#include "sockagent/v1/sockagent.pb.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace sockagent {

namespace internal {
class Connection;
}  // namespace internal

struct AgentOptions {
  // gRPC target of the agent.
  std::string target = "127.0.0.1:7700";
  // Requested lease; zero means the agent's default.
  absl::Duration session_ttl = absl::ZeroDuration();
  // Free text shown in the agent's logs and ListSockets.
  std::string session_label;
  // Attach to this existing session instead of creating one. An attached
  // session is never closed by the Agent.
  std::string session_id;
  // Without a session_id: whether to create a session at all. With false
  // only GetHostname, GetAgentInfo and GetAddrInfo work.
  bool open_session = true;
  // Renew the lease in a background thread every ttl/3.
  bool keepalive = true;
  // For a session this Agent creates: bind it to this Agent's connection
  // (CreateSessionRequest.bind_to_connection + the HoldSession call, which
  // a background thread keeps open), so the agent ends it as soon as the
  // connection closes. Connect() returns once the binding is in place; an
  // agent without HoldSession (UNIMPLEMENTED) leaves the session
  // lease-only. Set false for a session other processes will attach to.
  bool bind_to_connection = true;
  // How long Connect() waits for the channel to become ready.
  absl::Duration connect_timeout = absl::Seconds(10);
  // When true, Connect() fails as soon as the first connection attempt fails
  // (e.g. ECONNREFUSED: no agent on that port) instead of retrying until
  // connect_timeout; for command-line tools that should report at once.
  bool fail_fast = false;
  // Deadline of every call that does not wait for a socket.
  absl::Duration call_timeout = absl::InfiniteDuration();
  // Channel credentials; null means insecure (plaintext). See
  // TlsCredentialsFromFiles() in client/credentials.h.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Sent as "authorization: Bearer <token>" on every call when not empty.
  std::string token;
  // TLS only: the name the agent's certificate must carry, when it differs
  // from the target's host (e.g. target 127.0.0.1:7700, name "localhost").
  std::string tls_server_name;
};

class Agent {
 public:
  // Connects to `options.target`, waits (up to connect_timeout) for the
  // channel, then creates or attaches the session. Errors: UNAVAILABLE or
  // DEADLINE_EXCEEDED if the agent is unreachable; the agent's error for
  // CreateSession; for an attached session with keepalive, KeepAlive's error
  // (e.g. NOT_FOUND for an unknown or expired session).
  static absl::StatusOr<std::unique_ptr<Agent>> Connect(AgentOptions options);

  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;
  ~Agent();

  // Empty if no session was opened.
  const std::string& session_id() const;
  // The agent's incarnation when this Agent connected ("" if unknown).
  const std::string& incarnation() const { return incarnation_; }
  // The lease granted at creation or last renewal (zero if unknown).
  absl::Duration session_ttl() const;

  // Closes the session and every socket in it; returns how many sockets the
  // agent closed. Stops the keepalive thread. Later calls fail on the agent.
  absl::StatusOr<uint32_t> CloseSession();
  // Closes the session `session_id` (needs no session of this Agent): one of
  // this caller's identity, or any session for an admin identity
  // (PERMISSION_DENIED naming the policy rule otherwise). Returns how many
  // sockets the agent closed. Closing this Agent's own session this way
  // does not stop its keepalive thread (use CloseSession()).
  absl::StatusOr<uint32_t> CloseSession(const std::string& session_id);
  // The sessions this caller may see: every session for an admin identity,
  // the caller identity's own otherwise. Ordered by id.
  absl::StatusOr<std::vector<v1::SessionInfo>> ListSessions();
  // Stops the keepalive thread, releases the connection binding, and gives
  // up ownership of the session: the destructor will not close it, so it
  // lives on (until its lease lapses) for later processes to attach to.
  // Returns the session id.
  std::string DetachSession();
  // True while the session is bound to this Agent's connection.
  bool bound() const;
  // Renews the lease; returns the granted ttl.
  absl::StatusOr<absl::Duration> KeepAlive();

  // socket(2) on the agent; the Socket owns the handle.
  absl::StatusOr<Socket> CreateSocket(v1::Family family, v1::SocketType type,
                                      int protocol = 0);
  // socket(2) inside a network namespace of the agent's host (a
  // /var/run/netns name, a pid, a Kubernetes pod UID); every later call on
  // the Socket works as usual. The agent needs --allow-network-namespaces
  // (FAILED_PRECONDITION otherwise) and a policy granting the namespace
  // (PERMISSION_DENIED naming the rule).
  absl::StatusOr<Socket> CreateSocketIn(
      const v1::NetworkNamespace& network_namespace, v1::Family family,
      v1::SocketType type, int protocol = 0);
  // A Socket for an existing handle of this session that does NOT close it
  // on destruction (Close() still does). No call is made.
  Socket AttachSocket(std::string handle);
  // Python's socket.create_connection: resolves `address` on the agent
  // (GetAddrInfo, stream sockets), tries each result in order with the
  // socket timeout `timeout` (nullopt: blocking), and returns the first
  // connected socket, or the last error.
  absl::StatusOr<Socket> CreateConnection(
      const v1::Address& address,
      std::optional<absl::Duration> timeout = std::nullopt);

  absl::StatusOr<std::string> GetHostname();
  absl::StatusOr<v1::GetAgentInfoResponse> GetAgentInfo();
  // getaddrinfo(3) on the agent; `port` is a number, a service name or "".
  absl::StatusOr<std::vector<v1::AddrInfo>> GetAddrInfo(
      absl::string_view host, absl::string_view port = "",
      v1::Family family = v1::FAMILY_UNSPECIFIED,
      v1::SocketType type = v1::SOCKET_TYPE_UNSPECIFIED, int protocol = 0,
      int flags = 0);
  absl::StatusOr<std::vector<v1::SocketInfo>> ListSockets();

  // The shared connection (for tools that call the stub directly).
  std::shared_ptr<const internal::Connection> connection() const {
    return connection_;
  }

 private:
  Agent(std::shared_ptr<const internal::Connection> connection,
        std::string incarnation, absl::Duration ttl, bool owns_session);
  void StartKeepAlive();
  void StopKeepAlive();
  void KeepAliveLoop();
  // Opens HoldSession and waits (until `deadline`) for the binding.
  absl::Status StartHold(absl::Time deadline);
  // Ends the HoldSession call: with a release (the session stays) or by
  // cancelling it (the agent ends the session unless already closed).
  void StopHold(bool release);

  const std::shared_ptr<const internal::Connection> connection_;
  const std::string incarnation_;

  mutable absl::Mutex mu_;
  absl::Duration ttl_ ABSL_GUARDED_BY(mu_);
  // Whether the destructor closes the session.
  bool owns_session_ ABSL_GUARDED_BY(mu_);
  bool session_closed_ ABSL_GUARDED_BY(mu_) = false;
  // The keepalive call in flight, so StopKeepAlive can cancel it.
  grpc::ClientContext* keepalive_context_ ABSL_GUARDED_BY(mu_) = nullptr;

  absl::Notification stop_keepalive_;
  std::thread keepalive_thread_;

  // The HoldSession call (agent.cc), while the session is bound.
  struct HoldCall;
  std::unique_ptr<HoldCall> hold_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_AGENT_H_
