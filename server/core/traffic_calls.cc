#include "server/core/traffic_calls.h"

#include <sys/socket.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/address.h"
#include "server/core/faults.h"
#include "server/core/relay.h"
#include "server/core/socket_fd.h"
#include "server/core/traffic.h"
#include "server/policy/cidr.h"

namespace sockagent {
namespace {

constexpr PolicyEngine::Direction kSendBytes = PolicyEngine::Direction::kSend;
constexpr PolicyEngine::Direction kRecvBytes = PolicyEngine::Direction::kRecv;

}  // namespace

absl::StatusOr<v1::SetFaultsResponse> TrafficCalls::SetFaults(
    const CallContext& ctx, const v1::SetFaultsRequest& request) {
  if (absl::Status valid = ValidateFaults(request.faults()); !valid.ok()) {
    return valid;
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  // Faults are never accepted and then ignored: one this socket cannot obey
  // is refused by name.
  if (absl::Status applies =
          CheckFaultsApply(request.faults(), (*socket)->io()->type());
      !applies.ok()) {
    return applies;
  }
  if ((*socket)->state() == v1::SOCKET_STATE_LISTENING &&
      ShapesSends(request.faults())) {
    return absl::InvalidArgumentError(
        "faults: a listening socket sends nothing; set faults on the "
        "accepted sockets");
  }
  (*socket)->set_faults(request.faults());
  return v1::SetFaultsResponse();
}

void TrafficCalls::Traffic(const CallContext& ctx,
                           const v1::TrafficRequest& request,
                           Callback<v1::TrafficResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = sessions_.WhileWaiting(ctx, std::move(done));
  if (absl::Status valid = ValidateTrafficRequest(request); !valid.ok()) {
    return done(valid);
  }
  absl::StatusOr<ResolvedSocket> call =
      sessions_.Resolve(ctx, request.handle());
  if (!call.ok()) return done(call.status());
  const std::shared_ptr<Session> session = call->session;
  std::shared_ptr<ManagedSocket> socket = call->socket;
  // Byte-rate quotas: admitted unless a bucket is in debt; the bytes moved
  // are charged when the traffic ends, so a long traffic overdraws once
  // and the identity's next calls wait for the average to recover.
  for (const PolicyEngine::Direction direction : {kSendBytes, kRecvBytes}) {
    if (absl::Status rate = gate_.CheckByteRate(*call, "Traffic", direction);
        !rate.ok()) {
      return done(rate);
    }
  }
  if (request.has_relay()) {
    return Relay(ctx, request, *std::move(call), std::move(done));
  }
  const IoSocket& io = *socket->io();
  TrafficOptions options;
  if (request.has_source() && request.source().has_destination()) {
    if (io.type() == SOCK_STREAM) {
      return done(absl::InvalidArgumentError(
          "source.destination: only for datagram sockets (connect a stream "
          "socket first)"));
    }
    absl::StatusOr<SockAddr> address =
        ResolveAddress(request.source().destination(), io.family(), io.type(),
                       "source.destination");
    if (!address.ok()) return done(address.status());
    *address = EffectiveDestination(ops_, *socket, *address);
    // Audited once here; every datagram is checked again (hooks below).
    if (absl::Status allowed = gate_.Decide(
            ctx, "Traffic",
            gate_.policy().CheckDestination(ctx.identity, "sendto",
                                            address->get(), address->length),
            socket.get(),
            Endpoint::FromSockAddr(address->get(), address->length).ToString());
        !allowed.ok()) {
      return done(allowed);
    }
    options.destination = *address;
  }
  options.request = request;
  options.deadline = ctx.deadline;
  options.cancel = ctx.cancel;
  CallContext audit_ctx = ctx;
  audit_ctx.cancel = nullptr;
  TrafficHooks hooks;
  hooks.check_sendto = [this, audit_ctx,
                        socket](const SockAddr& to) -> absl::Status {
    PolicyDecision decision = gate_.policy().CheckDestination(
        audit_ctx.identity, "sendto", to.get(), to.length);
    if (decision.allowed && !decision.would_deny) return absl::OkStatus();
    return gate_.Decide(audit_ctx, "Traffic", decision, socket.get(),
                        Endpoint::FromSockAddr(to.get(), to.length).ToString(),
                        /*audit_allowed=*/false);
  };
  hooks.fault_close = [this, session, owner = ctx.identity,
                       handle = request.handle()](bool reset) {
    sessions_
        .CloseHandle(*session, owner, handle, reset, "fault_close_after_bytes")
        .IgnoreError();  // already closed: nothing left to do
  };
  // Datagrams from sources the policy's accept filters refuse are dropped
  // (audited, counted), as RecvFrom drops them.
  hooks.accept_source = gate_.SourceFilterFor(ctx, "Traffic", socket);
  StartTraffic(
      ops_, engine_, std::move(socket), std::move(options), std::move(hooks),
      [this, call = *std::move(call), done = std::move(done)](
          absl::StatusOr<v1::TrafficResponse> result) mutable {
        if (result.ok()) {
          gate_.ChargeBytes(call, kSendBytes, result->bytes_sent());
          gate_.ChargeBytes(call, kRecvBytes, result->bytes_received());
        }
        done(std::move(result));
      });
}

void TrafficCalls::Relay(const CallContext& ctx,
                         const v1::TrafficRequest& request, ResolvedSocket call,
                         Callback<v1::TrafficResponse> done) {
  const std::shared_ptr<Session> session = call.session;
  std::shared_ptr<ManagedSocket> socket = call.socket;
  const v1::RelayTraffic& relay = request.relay();
  const IoSocket& io = *socket->io();
  if (absl::Status valid = ValidateRelay(relay, io.type()); !valid.ok()) {
    return done(valid);
  }
  RelayOptions options;
  if (!relay.peer().empty()) {
    absl::StatusOr<std::shared_ptr<ManagedSocket>> peer =
        sessions_.SocketFor(ctx, relay.peer());
    if (!peer.ok()) {
      return done(
          absl::Status(peer.status().code(),
                       absl::StrCat("relay.peer: ", peer.status().message())));
    }
    if (peer->get() == socket.get()) {
      return done(absl::InvalidArgumentError(
          "relay.peer: must be another socket than handle"));
    }
    if ((*peer)->io()->type() != io.type()) {
      return done(absl::InvalidArgumentError(
          "relay.peer: must be of the same socket type as handle"));
    }
    options.peer = *std::move(peer);
  }
  if (relay.has_upstream()) {
    absl::StatusOr<SockAddr> address = ResolveAddress(
        relay.upstream(), io.family(), io.type(), "relay.upstream");
    if (!address.ok()) return done(address.status());
    // The upstream is a destination, checked as Connect checks one.
    if (absl::Status allowed = gate_.Decide(
            ctx, "Traffic",
            gate_.policy().CheckDestination(ctx.identity, "connect",
                                            address->get(), address->length),
            socket.get(),
            Endpoint::FromSockAddr(address->get(), address->length).ToString());
        !allowed.ok()) {
      return done(allowed);
    }
    options.upstream = *address;
  }
  if (relay.has_idle_timeout()) {
    options.idle_timeout = absl::Seconds(relay.idle_timeout().seconds()) +
                           absl::Nanoseconds(relay.idle_timeout().nanos());
  }
  options.reset_as_fin = relay.reset_as_fin();
  if (request.has_duration()) {
    options.end = absl::Now() + absl::Seconds(request.duration().seconds()) +
                  absl::Nanoseconds(request.duration().nanos());
  }
  options.deadline = ctx.deadline;
  options.cancel = ctx.cancel;
  RelayHooks hooks;
  hooks.close = [this, session, owner = ctx.identity](
                    const std::shared_ptr<ManagedSocket>& target, bool reset) {
    sessions_
        .CloseHandle(*session, owner, target->handle(), reset, "relay_close")
        .IgnoreError();  // already closed: nothing left to do
  };
  // Clients the policy's accept filters refuse are dropped (audited,
  // counted), as RecvFrom drops them.
  hooks.accept_source = gate_.SourceFilterFor(ctx, "Traffic", socket);
  hooks.admit_upstream_socket = [this] {
    return sessions_.CheckOpenSocketCap();
  };
  StartRelay(
      ops_, engine_, std::move(socket), std::move(options), std::move(hooks),
      [this, call = std::move(call), done = std::move(done)](
          absl::StatusOr<v1::TrafficResponse> result) mutable {
        if (result.ok()) {
          gate_.ChargeBytes(call, kSendBytes,
                            result->relay().to_peer().bytes_sent() +
                                result->relay().from_peer().bytes_sent());
          gate_.ChargeBytes(call, kRecvBytes,
                            result->relay().to_peer().bytes_received() +
                                result->relay().from_peer().bytes_received());
        }
        done(std::move(result));
      });
}

}  // namespace sockagent
