#ifndef SOCKAGENT_SERVER_SERVICE_CONNECTION_LIMITER_H_
#define SOCKAGENT_SERVER_SERVICE_CONNECTION_LIMITER_H_

// The agent's cap on concurrent connections to its gRPC port (gRPC 1.51 has
// none). The limiter owns the listening socket, accepts every connection
// itself and hands it to gRPC through an external connection acceptor, so it
// knows how many connections are open (a handed-over descriptor counts until
// gRPC closes it: same descriptor number and socket inode).
//
// Up to `max_connections` connections are served normally. The next
// `health_headroom` connections are still handed to gRPC, but marked: every
// SocketAgent call on them is refused (RESOURCE_EXHAUSTED naming the quota
// max_connections) while grpc.health.v1 answers, so a liveness probe gets
// its answer at the cap. Beyond that a new connection is closed at once.
// Refused and restricted connections are counted.
//
// Thread-safe. Owns one accept thread between Start() and Stop().

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/server_builder.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sockagent {

// Lets a recurring log line through at most once per `period` and counts
// the occurrences in between. Not thread-safe (one per logging thread).
class LogRateLimiter {
 public:
  explicit LogRateLimiter(absl::Duration period) : period_(period) {}
  // Records one occurrence at `now`. Returns how many occurrences the line
  // to log now stands for (this one and those suppressed since the last
  // line), or 0 when the line must be suppressed.
  uint64_t Allow(absl::Time now) {
    ++pending_;
    if (now - last_ < period_) return 0;
    last_ = now;
    const uint64_t count = pending_;
    pending_ = 0;
    return count;
  }

 private:
  const absl::Duration period_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t pending_ = 0;
};

class ConnectionLimiter {
 public:
  struct Options {
    // Connections served normally; 0 = no cap (only counted).
    uint32_t max_connections = 1024;
    // Connections beyond the cap that may still ask for health.
    uint32_t health_headroom = 16;
    // TCP_USER_TIMEOUT of every accepted connection (zero: the kernel's
    // default): data the client leaves unacknowledged, or a zero window it
    // keeps closed, for this long ends the connection. A stopped client
    // whose buffers are full answers no keepalive ping either, because the
    // ping cannot be written; this ends its connection (and its calls).
    absl::Duration tcp_user_timeout = absl::ZeroDuration();
  };

  // Binds and listens on `address` ("host:port", "[v6]:port", "localhost:
  // port"; port 0 picks one). No SO_REUSEPORT: a busy port is UNAVAILABLE.
  static absl::StatusOr<std::unique_ptr<ConnectionLimiter>> Listen(
      const std::string& address, Options options);
  ~ConnectionLimiter();

  int port() const { return port_; }

  // Starts accepting into `acceptor` (call after the server started).
  void Start(
      std::shared_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor);
  // Stops accepting and closes the listening socket. Connections already
  // handed to gRPC stay with gRPC. Idempotent.
  void Stop();

  // True when the call's peer (grpc::ServerContext::peer(), e.g.
  // "ipv4:127.0.0.1:5000") is a connection accepted beyond the cap.
  bool OverCap(absl::string_view grpc_peer) const;

  const Options& options() const { return options_; }
  // Connections handed to gRPC and still open.
  size_t open_connections() const;
  // Connections beyond cap + headroom, closed at once.
  uint64_t refused() const { return refused_.load(); }
  // Connections accepted beyond the cap, limited to health.
  uint64_t restricted() const { return restricted_.load(); }

  // The normalized "ip:port" key of a peer ("ipv4:..." / "ipv6:%5B...%5D:p"
  // as gRPC prints it); empty when it is not an IP peer.
  static std::string PeerKey(absl::string_view grpc_peer);

 private:
  struct Connection {
    int fd = -1;
    ino_t inode = 0;
    std::string peer;
    bool over_cap = false;
  };

  ConnectionLimiter(int listen_fd, int wake_fd, int port, Options options)
      : listen_fd_(listen_fd),
        wake_fd_(wake_fd),
        port_(port),
        options_(options) {}
  void AcceptLoop();
  // Drops the connections gRPC has closed.
  void SweepLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int listen_fd_;
  const int wake_fd_;
  const int port_;
  const Options options_;
  std::shared_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> restricted_{0};
  // Over-cap entries in connections_: while zero, OverCap() answers without
  // parsing the peer or taking the lock (it runs on every call).
  mutable std::atomic<size_t> over_cap_open_{0};
  mutable absl::Mutex mu_;
  mutable std::vector<Connection> connections_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Peer key -> over_cap, for the connections in connections_.
  mutable absl::flat_hash_map<std::string, bool> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_SERVICE_CONNECTION_LIMITER_H_
