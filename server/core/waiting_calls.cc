#include "server/core/waiting_calls.h"

#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/accept_op.h"
#include "server/core/address.h"
#include "server/core/connect_op.h"
#include "server/core/core_status.h"
#include "server/core/faulted_send.h"
#include "server/core/faults.h"
#include "server/core/recv_op.h"
#include "server/core/send_op.h"
#include "server/core/socket_fd.h"
#include "server/policy/cidr.h"

namespace sockagent {
namespace {

constexpr PolicyEngine::Direction kSendBytes = PolicyEngine::Direction::kSend;
constexpr PolicyEngine::Direction kRecvBytes = PolicyEngine::Direction::kRecv;

constexpr int kSendFlags =
    MSG_OOB | MSG_DONTROUTE | MSG_DONTWAIT | MSG_EOR | MSG_MORE | MSG_NOSIGNAL;
constexpr int kRecvFlags =
    MSG_PEEK | MSG_WAITALL | MSG_OOB | MSG_DONTWAIT | MSG_TRUNC;

absl::Status CheckFlags(int flags, int allowed) {
  if ((flags & ~allowed) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("flags: unsupported bits 0x",
                     absl::Hex(static_cast<unsigned>(flags & ~allowed))));
  }
  return absl::OkStatus();
}

absl::Status CheckSize(size_t size, size_t limit, const char* field,
                       const char* limit_name) {
  if (size > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", size, " bytes exceeds the limit of ", limit,
                     " (limits.", limit_name, ")"));
  }
  return absl::OkStatus();
}

// The checks every Send/SendTo shares: flags, then payload size.
absl::Status CheckSendArgs(int flags, size_t size, size_t limit) {
  if (absl::Status s = CheckFlags(flags, kSendFlags); !s.ok()) return s;
  return CheckSize(size, limit, "data", "max_send_bytes");
}

// MSG_DONTWAIT as Python applies it: a socket with a timeout first waits up
// to the timeout for readiness (then the call cannot block), so only a
// socket without one (blocking mode) returns EAGAIN at once.
bool DontWait(int flags, const ResolvedSocket& call) {
  return (flags & MSG_DONTWAIT) != 0 && !call.timeout.has_value();
}

}  // namespace

void WaitingCalls::Accept(const CallContext& ctx,
                          const v1::AcceptRequest& request,
                          Callback<v1::AcceptResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = sessions_.WhileWaiting(ctx, std::move(done));
  absl::StatusOr<ResolvedSocket> call =
      sessions_.Resolve(ctx, request.handle());
  if (!call.ok()) return done(call.status());
  std::shared_ptr<IoSocket> io = call->socket->io();
  const WaitOptions wait = call->WaitFromNow();
  auto op = std::make_unique<AcceptOp>(
      ops_, gate_.SourceFilterFor(ctx, "Accept", call->socket),
      [this] { return sessions_.CheckOpenSocketCap(); },
      [this, session = call->session, io, owner = ctx.identity,
       done = std::move(done)](
          absl::StatusOr<AcceptOp::Accepted> accepted) mutable {
        if (!accepted.ok()) return done(accepted.status());
        absl::StatusOr<std::shared_ptr<ManagedSocket>> peer =
            sessions_.Adopt(*session, owner, std::move(accepted->fd),
                            io->family(), io->type(), io->protocol());
        if (!peer.ok()) return done(peer.status());
        (*peer)->set_state(v1::SOCKET_STATE_CONNECTED);
        (*peer)->set_accepted();
        v1::AcceptResponse response;
        response.set_handle((*peer)->handle());
        *response.mutable_peer() = std::move(accepted->peer);
        done(std::move(response));
      });
  engine_.Submit(io, Interest::kRead, std::move(op), wait);
}

void WaitingCalls::Connect(const CallContext& ctx,
                           const v1::ConnectRequest& request,
                           Callback<v1::ConnectResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = sessions_.WhileWaiting(ctx, std::move(done));
  absl::StatusOr<ResolvedSocket> call =
      sessions_.Resolve(ctx, request.handle());
  if (!call.ok()) return done(call.status());
  const std::shared_ptr<ManagedSocket>& socket = call->socket;
  const IoSocket& io = *socket->io();
  absl::StatusOr<SockAddr> address =
      ResolveAddress(request.address(), io.family(), io.type(), "address");
  if (!address.ok()) return done(address.status());
  *address = EffectiveDestination(ops_, *socket, *address);
  // The resolved address is checked and connected to: no second lookup.
  if (absl::Status allowed = gate_.Decide(
          ctx, "Connect",
          gate_.policy().CheckDestination(ctx.identity, "connect",
                                          address->get(), address->length),
          socket.get(),
          Endpoint::FromSockAddr(address->get(), address->length).ToString());
      !allowed.ok()) {
    return done(allowed);
  }
  // Belt and braces: a peer other than the address allowed is judged by
  // the same rules, and a refused one closes the socket (reset).
  CallContext audited;
  audited.identity = ctx.identity;
  audited.peer = ctx.peer;
  audited.session_id = ctx.session_id;
  auto refused = std::make_shared<bool>(false);
  auto check_peer = [this, audited, socket,
                     refused](const SockAddr& peer) -> absl::Status {
    absl::Status allowed = gate_.Decide(
        audited, "Connect",
        gate_.policy().CheckDestination(audited.identity, "connect", peer.get(),
                                        peer.length),
        socket.get(),
        Endpoint::FromSockAddr(peer.get(), peer.length).ToString());
    if (!allowed.ok()) *refused = true;
    return allowed;
  };
  auto finish = [this, refused, audited, handle = request.handle(),
                 done = std::move(done)](
                    absl::StatusOr<v1::ConnectResponse> result) mutable {
    if (*refused) {
      if (absl::StatusOr<std::shared_ptr<Session>> session =
              sessions_.SessionFor(audited);
          session.ok()) {
        sessions_
            .CloseHandle(**session, audited.identity, handle, /*reset=*/true,
                         "policy_peer_mismatch")
            .IgnoreError();  // already closed: nothing left to do
      }
    }
    done(std::move(result));
  };
  engine_.Submit(
      socket->io(), Interest::kWrite,
      std::make_unique<ConnectOp>(ops_, socket, *address, std::move(check_peer),
                                  std::move(finish)),
      call->WaitFromNow());
}

void WaitingCalls::StartSend(ResolvedSocket call, absl::string_view data,
                             int flags, bool send_all,
                             std::optional<SockAddr> to,
                             Callback<uint64_t> done) {
  WaitOptions wait = call.WaitFromNow();
  if (DontWait(flags, call)) wait.nonblocking = true;
  std::shared_ptr<ManagedSocket> socket = call.socket;
  if (ShapesSends(socket->faults()) || socket->has_held_datagram()) {
    // Faults are never silently ignored: the data goes out as the
    // socket's fault profile says (faulted_send.h), and a datagram an
    // earlier profile held back goes right after it.
    FaultedSend send;
    send.data = std::string(data);
    send.flags = flags;
    send.send_all = send_all;
    send.to = std::move(to);
    send.wait = wait;
    auto close = [this, session = call.session, owner = call.ctx.identity,
                  handle = socket->handle()](bool reset) {
      sessions_.CloseHandle(*session, owner, handle, reset, "fault_close")
          .IgnoreError();  // already closed: nothing left to do
    };
    return StartFaultedSend(
        ops_, engine_, std::move(socket), std::move(send), std::move(close),
        [this, call = std::move(call),
         done = std::move(done)](absl::StatusOr<uint64_t> sent) mutable {
          if (sent.ok()) gate_.ChargeBytes(call, kSendBytes, *sent);
          done(std::move(sent));
        });
  }
  std::shared_ptr<IoSocket> io = socket->io();
  engine_.Submit(io, Interest::kWrite,
                 std::make_unique<SendOp>(
                     ops_, std::move(socket), data, flags, send_all, to,
                     [this, call = std::move(call), done = std::move(done)](
                         absl::StatusOr<uint64_t> sent) mutable {
                       if (sent.ok())
                         gate_.ChargeBytes(call, kSendBytes, *sent);
                       done(std::move(sent));
                     }),
                 wait);
}

void WaitingCalls::Send(const CallContext& ctx, const v1::SendRequest& request,
                        Callback<v1::SendResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = sessions_.WhileWaiting(ctx, std::move(done));
  if (absl::Status s = CheckSendArgs(request.flags(), request.data().size(),
                                     limits_.max_send_bytes);
      !s.ok()) {
    return done(s);
  }
  absl::StatusOr<ResolvedSocket> call =
      sessions_.Resolve(ctx, request.handle());
  if (!call.ok()) return done(call.status());
  if (absl::Status rate = gate_.CheckByteRate(*call, "Send", kSendBytes);
      !rate.ok()) {
    return done(rate);
  }
  StartSend(*std::move(call), request.data(), request.flags(),
            request.send_all(), std::nullopt,
            [done = std::move(done)](absl::StatusOr<uint64_t> sent) mutable {
              if (!sent.ok()) return done(sent.status());
              v1::SendResponse response;
              response.set_bytes_sent(*sent);
              done(std::move(response));
            });
}

// Recv and RecvFrom differ only in the response: RecvFrom's also names the
// source.
template <typename Response>
void WaitingCalls::Receive(const CallContext& ctx, const char* method,
                           const std::string& handle, uint32_t max_bytes,
                           int32_t flags, Callback<Response> done) {
  constexpr bool kWantSource = std::is_same_v<Response, v1::RecvFromResponse>;
  // A waiting call keeps its session alive, however long it waits.
  done = sessions_.WhileWaiting(ctx, std::move(done));
  if (absl::Status s = CheckFlags(flags, kRecvFlags); !s.ok()) return done(s);
  // Like a kernel receive into a smaller buffer: at most the agent's limit.
  const size_t want = std::min<size_t>(max_bytes, limits_.max_recv_bytes);
  absl::StatusOr<ResolvedSocket> call = sessions_.Resolve(ctx, handle);
  if constexpr (!kWantSource) {
    // Python's recv(0) returns b'' at once without receiving: it neither
    // waits nor consumes a datagram, and even a closed socket answers b''.
    // (recvfrom(0) does receive: below.)
    if (want == 0 && (call.ok() || IsClosedHandle(call.status()))) {
      return done(Response());
    }
  }
  if (!call.ok()) return done(call.status());
  WaitOptions wait = call->WaitFromNow();
  if (DontWait(flags, *call)) wait.nonblocking = true;
  if (absl::Status rate = gate_.CheckByteRate(*call, method, kRecvBytes);
      !rate.ok()) {
    return done(rate);
  }
  std::shared_ptr<ManagedSocket> socket = call->socket;
  PolicyGate::SourceFilter filter;
  if (socket->io()->type() == SOCK_DGRAM) {
    filter = gate_.SourceFilterFor(ctx, method, socket);
  }
  std::shared_ptr<IoSocket> io = socket->io();
  engine_.Submit(
      io, Interest::kRead,
      std::make_unique<RecvOp>(
          ops_, std::move(socket), want, flags, kWantSource,
          [this, call = *std::move(call), done = std::move(done)](
              absl::StatusOr<RecvOp::Received> received) mutable {
            if (!received.ok()) return done(received.status());
            gate_.ChargeBytes(call, kRecvBytes, received->data.size());
            Response response;
            response.set_data(std::move(received->data));
            if constexpr (kWantSource) {
              *response.mutable_address() = std::move(received->from);
            }
            done(std::move(response));
          },
          std::move(filter)),
      wait);
}

void WaitingCalls::Recv(const CallContext& ctx, const v1::RecvRequest& request,
                        Callback<v1::RecvResponse> done) {
  Receive(ctx, "Recv", request.handle(), request.max_bytes(), request.flags(),
          std::move(done));
}

void WaitingCalls::SendTo(const CallContext& ctx,
                          const v1::SendToRequest& request,
                          Callback<v1::SendToResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = sessions_.WhileWaiting(ctx, std::move(done));
  if (absl::Status s = CheckSendArgs(request.flags(), request.data().size(),
                                     limits_.max_send_bytes);
      !s.ok()) {
    return done(s);
  }
  absl::StatusOr<ResolvedSocket> call =
      sessions_.Resolve(ctx, request.handle());
  if (!call.ok()) return done(call.status());
  const IoSocket& io = *call->socket->io();
  absl::StatusOr<SockAddr> address =
      ResolveAddress(request.address(), io.family(), io.type(), "address");
  if (!address.ok()) return done(address.status());
  *address = EffectiveDestination(ops_, *call->socket, *address);
  // Checked per datagram, before anything reaches the wire. Allowed
  // datagrams are not audited one by one (denials are).
  if (absl::Status allowed = gate_.Decide(
          ctx, "SendTo",
          gate_.policy().CheckDestination(ctx.identity, "sendto",
                                          address->get(), address->length),
          call->socket.get(),
          Endpoint::FromSockAddr(address->get(), address->length).ToString(),
          /*audit_allowed=*/false);
      !allowed.ok()) {
    return done(allowed);
  }
  if (absl::Status rate = gate_.CheckByteRate(*call, "SendTo", kSendBytes);
      !rate.ok()) {
    return done(rate);
  }
  StartSend(*std::move(call), request.data(), request.flags(),
            /*send_all=*/false, *address,
            [done = std::move(done)](absl::StatusOr<uint64_t> sent) mutable {
              if (!sent.ok()) return done(sent.status());
              v1::SendToResponse response;
              response.set_bytes_sent(*sent);
              done(std::move(response));
            });
}

void WaitingCalls::RecvFrom(const CallContext& ctx,
                            const v1::RecvFromRequest& request,
                            Callback<v1::RecvFromResponse> done) {
  Receive(ctx, "RecvFrom", request.handle(), request.max_bytes(),
          request.flags(), std::move(done));
}

}  // namespace sockagent
