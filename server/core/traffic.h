#ifndef SOCKAGENT_SERVER_CORE_TRAFFIC_H_
#define SOCKAGENT_SERVER_CORE_TRAFFIC_H_

// Agent-side traffic (echo, sink, source) on one socket, driven by the epoll
// engine: one engine op at a time, no thread of its own. Delays, rates and
// the stop_reading poll are engine deadlines. Faults are read from the
// socket before every step, so SetFaults shapes traffic already running.
// Knows nothing of gRPC, sessions or policy: the caller passes hooks for the
// per-datagram destination check and for closing the socket on a fault.

#include <cstddef>
#include <memory>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/address.h"
#include "server/core/faults.h"
#include "server/core/session_table.h"
#include "server/io/cancel_token.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// The largest datagram a source sends (the largest UDP payload over IPv4).
inline constexpr uint32_t kMaxTrafficDatagramBytes = 65507;
inline constexpr uint32_t kDefaultTrafficDatagramBytes = 1024;

// The request's own checks (no socket needed). INVALID_ARGUMENT naming the
// field: no kind, a duration that is not positive, a source with neither
// bytes nor duration, an unknown pattern, datagram_bytes too large.
absl::Status ValidateTrafficRequest(const v1::TrafficRequest& request);

struct TrafficHooks {
  // Whether a datagram may go to `to` (the policy's sendto check). Called
  // before every datagram an unconnected source or a datagram echo sends;
  // a refusal ends the traffic with that status.
  absl::AnyInvocable<absl::Status(const SockAddr& to)> check_sendto;
  // Closes the socket for Faults.close_after_bytes: removes it from its
  // session and closes it, abortively (RST) when `reset`.
  absl::AnyInvocable<void(bool reset)> fault_close;
  // Whether a datagram from this source is admitted (the policy's accept
  // filters); a refused one is dropped as if it never came: not counted,
  // not checksummed, not echoed. Unset admits every source.
  absl::AnyInvocable<bool(const sockaddr* source, socklen_t length)>
      accept_source;
};

struct TrafficOptions {
  // The validated request; copied, need not outlive the call.
  v1::TrafficRequest request;
  // Where an unconnected datagram source sends (already resolved and
  // allowed once); nullopt sends on the connected socket.
  std::optional<SockAddr> destination;
  // The call's deadline: passing it ends the traffic with DEADLINE_EXCEEDED.
  absl::Time deadline = absl::InfiniteFuture();
  // The call's cancellation; firing ends the traffic with CANCELLED. Must
  // outlive the call (until `done` runs). May be null.
  CancelToken* cancel = nullptr;
};

// Starts the traffic. `done` runs exactly once, possibly before this
// returns, on this thread or the engine's: OK with the response when the
// traffic ends by EOF, its byte limit, its duration or a fault close;
// otherwise CANCELLED (the caller cancelled), ABORTED (the socket was closed,
// also by its session ending), UNAVAILABLE (the agent shuts down),
// DEADLINE_EXCEEDED (the call's deadline) or the failing system call's
// errno. The socket's SetTimeout does not apply to traffic.
void StartTraffic(
    SocketOps& ops, Engine& engine, std::shared_ptr<ManagedSocket> socket,
    TrafficOptions options, TrafficHooks hooks,
    absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_TRAFFIC_H_
