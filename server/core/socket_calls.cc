#include "server/core/socket_calls.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/duration_codec.h"
#include "proto/errno_status.h"
#include "server/core/address.h"
#include "server/core/core_status.h"
#include "server/core/socket_fd.h"
#include "server/core/socket_options.h"
#include "server/policy/cidr.h"

namespace sockagent {

absl::StatusOr<v1::SocketResponse> SocketCalls::Socket(
    const CallContext& ctx, const v1::SocketRequest& request) {
  absl::StatusOr<std::shared_ptr<Session>> session = sessions_.SessionFor(ctx);
  if (!session.ok()) return session.status();
  const int family = static_cast<int>(request.family());
  // Python accepts SOCK_NONBLOCK / SOCK_CLOEXEC OR-ed into the type and
  // reports the type without them. Every agent socket is close-on-exec and
  // non-blocking underneath; SOCK_NONBLOCK sets the socket's timeout to 0.
  const int type_flags =
      static_cast<int>(request.type()) & (SOCK_NONBLOCK | SOCK_CLOEXEC);
  const int type = static_cast<int>(request.type()) & ~type_flags;
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) {
    return OsErrorWithCode(
        absl::StatusCode::kInvalidArgument, EAFNOSUPPORT, "socket",
        absl::StrCat("family: address family ", family,
                     " is not supported (EAFNOSUPPORT); use FAMILY_INET, "
                     "FAMILY_INET6 or FAMILY_UNIX"));
  }
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return OsErrorWithCode(
        absl::StatusCode::kInvalidArgument, ESOCKTNOSUPPORT, "socket",
        absl::StrCat("type: socket type ", type,
                     " is not supported (ESOCKTNOSUPPORT); use "
                     "SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM or "
                     "SOCKET_TYPE_SEQPACKET, optionally with SOCK_NONBLOCK "
                     "or SOCK_CLOEXEC"));
  }
  if (request.protocol() < 0 || request.protocol() > 255) {
    return absl::InvalidArgumentError(absl::StrCat(
        "protocol: ", request.protocol(), " is not a protocol number"));
  }
  if (absl::Status allowed = gate_.Decide(
          ctx, "Socket", gate_.policy().CheckSocket(ctx.identity, family, type),
          nullptr, "", /*audit_allowed=*/true, family, type);
      !allowed.ok()) {
    return allowed;
  }
  // Refused before a descriptor exists (Adopt checks again, atomically).
  if (absl::Status capped = sessions_.CheckOpenSocketCap(); !capped.ok()) {
    return capped;
  }
  SysCallInt rc{-1, 0};
  std::optional<NetworkNamespaceQuery> netns;
  if (request.has_network_namespace()) {
    if (netns_ == nullptr) {
      return absl::FailedPreconditionError(
          "network_namespace: this agent does not create sockets in other "
          "network namespaces (start it with --allow-network-namespaces)");
    }
    absl::StatusOr<NetnsTarget> target =
        netns_->Resolve(request.network_namespace());
    if (!target.ok()) return target.status();
    NetworkNamespaceQuery query;
    query.kind = target->kind;
    query.value = target->value;
    query.kube_namespace = target->kube_namespace;
    query.host = target->host;
    query.description = target->description;
    if (absl::Status allowed = gate_.Decide(
            ctx, "Socket",
            gate_.policy().CheckNetworkNamespace(ctx.identity, query), nullptr,
            target->description, /*audit_allowed=*/true, family, type);
        !allowed.ok()) {
      return allowed;
    }
    netns = std::move(query);
    absl::Status entered = RunInNetns(target->fd.get(), [&] {
      rc = ops_.Socket(family, type, request.protocol());
    });
    if (!entered.ok()) {
      if (rc.ok() && rc.value >= 0) ScopedFd close_it(rc.value);
      return entered;
    }
  } else {
    rc = ops_.Socket(family, type, request.protocol());
  }
  if (!rc.ok()) return OsError(rc.error, "socket");
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.Adopt(**session, ctx.identity, ScopedFd(rc.value), family, type,
                      request.protocol());
  if (!socket.ok()) return socket.status();
  if ((type_flags & SOCK_NONBLOCK) != 0) {
    (*socket)->set_timeout(absl::ZeroDuration());
  }
  if (netns.has_value()) (*socket)->set_network_namespace(*std::move(netns));
  v1::SocketResponse response;
  response.set_handle((*socket)->handle());
  return response;
}

absl::StatusOr<v1::BindResponse> SocketCalls::Bind(
    const CallContext& ctx, const v1::BindRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  const IoSocket& io = *(*socket)->io();
  absl::StatusOr<SockAddr> address =
      ResolveAddress(request.address(), io.family(), io.type(), "address");
  if (!address.ok()) return address.status();
  if (absl::Status allowed = gate_.Decide(
          ctx, "Bind",
          gate_.policy().CheckBind(ctx.identity, address->get(),
                                   address->length),
          socket->get(),
          Endpoint::FromSockAddr(address->get(), address->length).ToString());
      !allowed.ok()) {
    return allowed;
  }
  absl::StatusOr<v1::BindResponse> response = OnFd<v1::BindResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::BindResponse> {
        SysCallInt rc = ops_.Bind(fd, address->get(), address->length);
        if (!rc.ok()) return OsError(rc.error, "bind");
        absl::StatusOr<v1::Address> bound = NameOf(ops_, fd, false);
        if (!bound.ok()) return bound.status();
        v1::BindResponse result;
        *result.mutable_address() = *std::move(bound);
        return result;
      });
  if (response.ok()) (*socket)->set_state(v1::SOCKET_STATE_BOUND);
  return response;
}

absl::StatusOr<v1::ListenResponse> SocketCalls::Listen(
    const CallContext& ctx, const v1::ListenRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  // Python: listen() uses min(SOMAXCONN, 128); a negative backlog is 0.
  const int backlog = request.has_backlog() ? std::max(0, request.backlog())
                                            : std::min(SOMAXCONN, 128);
  if (absl::Status allowed = gate_.Decide(
          ctx, "Listen", gate_.policy().CheckListen(ctx.identity, backlog),
          socket->get(), "");
      !allowed.ok()) {
    return allowed;
  }
  absl::StatusOr<v1::ListenResponse> response = OnFd<v1::ListenResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::ListenResponse> {
        SysCallInt rc = ops_.Listen(fd, backlog);
        if (!rc.ok()) return OsError(rc.error, "listen");
        return v1::ListenResponse();
      });
  if (response.ok()) (*socket)->set_state(v1::SOCKET_STATE_LISTENING);
  return response;
}

absl::StatusOr<v1::ShutdownResponse> SocketCalls::Shutdown(
    const CallContext& ctx, const v1::ShutdownRequest& request) {
  int how;
  switch (request.how()) {
    case v1::SHUTDOWN_HOW_READ:
      how = SHUT_RD;
      break;
    case v1::SHUTDOWN_HOW_WRITE:
      how = SHUT_WR;
      break;
    case v1::SHUTDOWN_HOW_BOTH:
      how = SHUT_RDWR;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("how: must be SHUTDOWN_HOW_READ, SHUTDOWN_HOW_WRITE or "
                       "SHUTDOWN_HOW_BOTH, not ",
                       static_cast<int>(request.how())));
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  absl::StatusOr<v1::ShutdownResponse> response = OnFd<v1::ShutdownResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::ShutdownResponse> {
        SysCallInt rc = ops_.Shutdown(fd, how);
        if (!rc.ok()) return OsError(rc.error, "shutdown");
        return v1::ShutdownResponse();
      });
  if (response.ok()) (*socket)->set_state(v1::SOCKET_STATE_SHUT_DOWN);
  return response;
}

absl::StatusOr<v1::CloseResponse> SocketCalls::Close(
    const CallContext& ctx, const v1::CloseRequest& request) {
  absl::StatusOr<std::shared_ptr<Session>> session = sessions_.SessionFor(ctx);
  if (!session.ok()) return session.status();
  if (absl::Status valid = sessions_.ids().Check(request.handle(), "handle");
      !valid.ok()) {
    return valid;
  }
  if (absl::Status closed = sessions_.CloseHandle(
          **session, ctx.identity, request.handle(), false, "close");
      !closed.ok()) {
    // Closing a closed socket is OK, as Python's close().
    if (absl::IsNotFound(closed) && (*session)->WasClosed(request.handle())) {
      return v1::CloseResponse();
    }
    return closed;
  }
  return v1::CloseResponse();
}

absl::StatusOr<v1::AbortResponse> SocketCalls::Abort(
    const CallContext& ctx, const v1::AbortRequest& request) {
  absl::StatusOr<std::shared_ptr<Session>> session = sessions_.SessionFor(ctx);
  if (!session.ok()) return session.status();
  if (absl::Status valid = sessions_.ids().Check(request.handle(), "handle");
      !valid.ok()) {
    return valid;
  }
  if (absl::Status closed = sessions_.CloseHandle(
          **session, ctx.identity, request.handle(), true, "abort");
      !closed.ok()) {
    if (absl::IsNotFound(closed) && (*session)->WasClosed(request.handle())) {
      return ClosedHandle();
    }
    return closed;
  }
  return v1::AbortResponse();
}

// GetSockName and GetPeerName differ only in the name asked for.
template <typename Response>
absl::StatusOr<Response> SocketCalls::Name(const CallContext& ctx,
                                           const std::string& handle,
                                           bool peer) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, handle);
  if (!socket.ok()) return socket.status();
  absl::StatusOr<v1::Address> address = OnFd<v1::Address>(
      **socket, [&](int fd) { return NameOf(ops_, fd, peer); });
  if (!address.ok()) return address.status();
  Response response;
  *response.mutable_address() = *std::move(address);
  return response;
}

absl::StatusOr<v1::GetSockNameResponse> SocketCalls::GetSockName(
    const CallContext& ctx, const v1::GetSockNameRequest& request) {
  return Name<v1::GetSockNameResponse>(ctx, request.handle(), /*peer=*/false);
}

absl::StatusOr<v1::GetPeerNameResponse> SocketCalls::GetPeerName(
    const CallContext& ctx, const v1::GetPeerNameRequest& request) {
  return Name<v1::GetPeerNameResponse>(ctx, request.handle(), /*peer=*/true);
}

absl::StatusOr<v1::SetSockOptResponse> SocketCalls::SetSockOpt(
    const CallContext& ctx, const v1::SetSockOptRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  if (absl::Status allowed = gate_.Decide(
          ctx, "SetSockOpt", gate_.policy().CheckSockOpt(ctx.identity, request),
          socket->get(), "");
      !allowed.ok()) {
    return allowed;
  }
  return OnFd<v1::SetSockOptResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::SetSockOptResponse> {
        absl::Status set = SetSocketOption(ops_, fd, request);
        if (!set.ok()) return set;
        return v1::SetSockOptResponse();
      });
}

absl::StatusOr<v1::GetSockOptResponse> SocketCalls::GetSockOpt(
    const CallContext& ctx, const v1::GetSockOptRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  return OnFd<v1::GetSockOptResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::GetSockOptResponse> {
        absl::StatusOr<v1::OptionValue> value =
            GetSocketOption(ops_, fd, request);
        if (!value.ok()) return value.status();
        v1::GetSockOptResponse response;
        *response.mutable_value() = *std::move(value);
        return response;
      });
}

absl::StatusOr<v1::SetTimeoutResponse> SocketCalls::SetTimeout(
    const CallContext& ctx, const v1::SetTimeoutRequest& request) {
  std::optional<absl::Duration> timeout;
  if (request.has_timeout()) {
    const auto& proto = request.timeout();
    if (proto.seconds() < 0 || proto.nanos() < 0 ||
        proto.nanos() >= 1000000000) {
      return absl::InvalidArgumentError(
          "timeout: must be a non-negative duration (unset for blocking)");
    }
    timeout = FromProtoDuration(proto);
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  (*socket)->set_timeout(timeout);
  return v1::SetTimeoutResponse();
}

absl::StatusOr<v1::GetTimeoutResponse> SocketCalls::GetTimeout(
    const CallContext& ctx, const v1::GetTimeoutRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      sessions_.SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  v1::GetTimeoutResponse response;
  if (std::optional<absl::Duration> timeout = (*socket)->timeout()) {
    SetProtoDuration(*timeout, response.mutable_timeout());
  }
  return response;
}

absl::StatusOr<v1::GetHostnameResponse> SocketCalls::GetHostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) {
    return OsError(errno, "gethostname");
  }
  v1::GetHostnameResponse response;
  response.set_hostname(name);
  return response;
}

absl::StatusOr<v1::GetAddrInfoResponse> SocketCalls::GetAddrInfo(
    const v1::GetAddrInfoRequest& request) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      sockagent::GetAddrInfo(request);
  if (!results.ok()) return results.status();
  v1::GetAddrInfoResponse response;
  for (v1::AddrInfo& info : *results) *response.add_results() = std::move(info);
  return response;
}

absl::StatusOr<v1::ListSocketsResponse> SocketCalls::ListSockets(
    const CallContext& ctx) {
  absl::StatusOr<std::shared_ptr<Session>> session = sessions_.SessionFor(ctx);
  if (!session.ok()) return session.status();
  v1::ListSocketsResponse response;
  for (const std::shared_ptr<ManagedSocket>& socket : (*session)->List()) {
    v1::SocketInfo* info = response.add_sockets();
    info->set_handle(socket->handle());
    info->set_family(static_cast<v1::Family>(socket->io()->family()));
    info->set_type(static_cast<v1::SocketType>(socket->io()->type()));
    info->set_protocol(socket->io()->protocol());
    info->set_state(socket->state());
    info->set_bytes_sent(socket->bytes_sent);
    info->set_bytes_received(socket->bytes_received);
    if (std::optional<NetworkNamespaceQuery> netns =
            socket->network_namespace()) {
      info->set_network_namespace(netns->description);
    }
    if (std::optional<absl::Duration> timeout = socket->timeout()) {
      SetProtoDuration(*timeout, info->mutable_timeout());
    }
    socket->io()->WithFd([&](int fd) {
      if (auto local = NameOf(ops_, fd, false); local.ok()) {
        *info->mutable_local() = *std::move(local);
      }
      if (auto peer = NameOf(ops_, fd, true); peer.ok()) {
        *info->mutable_peer() = *std::move(peer);
      }
    });
  }
  std::sort(response.mutable_sockets()->begin(),
            response.mutable_sockets()->end(),
            [](const v1::SocketInfo& a, const v1::SocketInfo& b) {
              return a.handle() < b.handle();
            });
  return response;
}

}  // namespace sockagent
