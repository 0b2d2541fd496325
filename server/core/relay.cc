#include "server/core/relay.h"

#include <sys/socket.h>

#include <utility>

#include "server/core/relay_run.h"

namespace sockagent {

absl::Status ValidateRelay(const v1::RelayTraffic& relay, int socket_type) {
  if (relay.has_idle_timeout()) {
    const google::protobuf::Duration& d = relay.idle_timeout();
    if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() >= 1000000000 ||
        (d.seconds() == 0 && d.nanos() == 0)) {
      return absl::InvalidArgumentError(
          "relay.idle_timeout: must be a positive duration");
    }
  }
  if (socket_type == SOCK_DGRAM) {
    if (!relay.has_upstream()) {
      return absl::InvalidArgumentError(
          "relay.upstream: required for a datagram relay (where clients' "
          "datagrams go)");
    }
    return absl::OkStatus();
  }
  if (socket_type != SOCK_STREAM) {
    return absl::InvalidArgumentError(
        "relay: only stream (TCP, Unix stream) and datagram sockets relay");
  }
  if (relay.peer().empty()) {
    return absl::InvalidArgumentError(
        "relay.peer: required for a stream relay (the other socket's "
        "handle)");
  }
  if (relay.has_upstream()) {
    return absl::InvalidArgumentError(
        "relay.upstream: only for datagram relays (connect the peer socket "
        "of a stream relay)");
  }
  if (relay.has_idle_timeout()) {
    return absl::InvalidArgumentError(
        "relay.idle_timeout: only for datagram relays");
  }
  return absl::OkStatus();
}

void StartRelay(
    SocketOps& ops, Engine& engine, std::shared_ptr<ManagedSocket> socket,
    RelayOptions options, RelayHooks hooks,
    absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done) {
  const bool datagram = socket->io()->type() == SOCK_DGRAM;
  internal::RelayStart start{ops,
                             engine,
                             std::move(socket),
                             std::move(options),
                             std::move(hooks),
                             std::move(done)};
  std::shared_ptr<internal::RelayRun> run =
      datagram ? internal::MakeDatagramRelay(std::move(start))
               : internal::MakeStreamRelay(std::move(start));
  run->Start();
}

}  // namespace sockagent
