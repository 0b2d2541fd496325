#ifndef SOCKAGENT_SERVER_CORE_RELAY_H_
#define SOCKAGENT_SERVER_CORE_RELAY_H_

// The relay: joins a socket of a session to another socket (stream) or to an
// upstream address (datagram, one upstream socket per client address) and
// moves data both ways inside the agent, driven by the epoll engine (no
// thread of its own). What the relay sends on a socket is shaped by that
// socket's Faults, read before every step, so each direction has its own
// faults and SetFaults changes a running relay. Knows nothing of gRPC or
// policy: the caller passes hooks for closing a session socket and for the
// accept filters, and checks the upstream before starting.

#include <memory>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/address.h"
#include "server/core/session_table.h"
#include "server/io/cancel_token.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

inline constexpr absl::Duration kDefaultRelayIdleTimeout = absl::Seconds(60);

struct RelayHooks {
  // Closes a session socket (removes it from its session), abortively (RST)
  // when `reset`: a Faults close, or an RST passed on.
  absl::AnyInvocable<void(const std::shared_ptr<ManagedSocket>& socket,
                          bool reset)>
      close;
  // Datagram relays: whether a datagram from this client is admitted (the
  // policy's accept filters); a refused one is dropped and counted. Unset
  // admits every client.
  absl::AnyInvocable<bool(const sockaddr* source, socklen_t length)>
      accept_source;
  // Datagram relays: whether one more upstream socket may be opened (the
  // agent's open-socket cap). A refusal drops the client's datagram.
  absl::AnyInvocable<absl::Status()> admit_upstream_socket;
};

struct RelayOptions {
  // Stream relays: the other connected stream socket (required). Datagram
  // relays: optional; its Faults shape what goes to the upstream.
  std::shared_ptr<ManagedSocket> peer;
  // Datagram relays: where every client's datagrams go (resolved and
  // allowed by the caller).
  std::optional<SockAddr> upstream;
  absl::Duration idle_timeout = kDefaultRelayIdleTimeout;
  bool reset_as_fin = false;
  // The request's duration: then the relay ends OK (TRAFFIC_END_DURATION).
  absl::Time end = absl::InfiniteFuture();
  // The call's deadline: DEADLINE_EXCEEDED.
  absl::Time deadline = absl::InfiniteFuture();
  // The call's cancellation (CANCELLED); must outlive the call. May be null.
  CancelToken* cancel = nullptr;
};

// The request's own checks for a relay on a socket of `socket_type`:
// INVALID_ARGUMENT naming the field (relay.peer missing on a stream relay,
// relay.upstream missing on a datagram relay or set on a stream relay, a
// negative idle_timeout).
absl::Status ValidateRelay(const v1::RelayTraffic& relay, int socket_type);

// Starts the relay. `done` runs exactly once, possibly before this returns:
// OK with the figures when both directions ended (TRAFFIC_END_RELAYED), a
// Faults close ended it (TRAFFIC_END_FAULT) or the duration passed;
// otherwise ABORTED (a socket was closed by someone else, or its session
// ended), CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE (agent shutdown), or a
// system call's errno (creating an upstream socket). Relayed sockets stay
// open; a datagram relay's upstream sockets are closed when it ends.
void StartRelay(
    SocketOps& ops, Engine& engine, std::shared_ptr<ManagedSocket> socket,
    RelayOptions options, RelayHooks hooks,
    absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_RELAY_H_
