#include "server/core/session_registry.h"

#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/duration_codec.h"
#include "server/core/core_status.h"
#include "spdlog/spdlog.h"

namespace sockagent {

SessionRegistry::SessionRegistry(Options options, Engine& engine,
                                 SocketOps& ops, PolicyGate& gate)
    : options_(std::move(options)),
      engine_(engine),
      ops_(ops),
      gate_(gate),
      ids_(options_.incarnation, options_.agent_key),
      table_(options_.sessions, &ids_) {}

bool SessionRegistry::MarkDrained() { return !drained_.exchange(true); }

void SessionRegistry::CloseAll(const char* reason) {
  for (const std::shared_ptr<Session>& session : table_.TakeAll()) {
    CloseSockets(*session, reason);
  }
}

void SessionRegistry::ReapExpired(absl::Time now) {
  for (const std::shared_ptr<Session>& session : table_.TakeExpired(now)) {
    spdlog::info("session {} ({}) expired; closing {} socket(s)", session->id(),
                 session->label(), session->size());
    CloseSockets(*session, "session_expired");
  }
}

void SessionRegistry::CloseSockets(Session& session, const char* reason) {
  const std::string owner = OwnerOf(session.id());
  size_t closed = 0;
  for (const std::shared_ptr<ManagedSocket>& socket : session.Close()) {
    gate_.AuditClose(owner, session.id(), *socket, reason);
    engine_.Close(*socket->io());
    ++closed;
  }
  ReleaseSockets(owner, closed);
  {
    absl::MutexLock lock(&usage_mu_);
    if (session_owner_.erase(session.id()) > 0) {
      auto it = usage_.find(owner);
      if (it != usage_.end() && it->second.sessions > 0) --it->second.sessions;
    }
  }
  // Streams and HoldSession calls still waiting on the session end now.
  for (SessionEndCallback& on_end : session.TakeEndCallbacks()) {
    on_end(SessionEndStatus(reason));
  }
}

absl::Status SessionRegistry::CheckOpenSocketCap() const {
  const size_t cap = options_.max_open_sockets;
  if (cap == 0 || open_sockets_.load() < cap) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "max_open_sockets: the agent holds ", open_sockets_.load(),
      " sockets, its cap (RLIMIT_NOFILE less --fd-reserve descriptors kept "
      "for connections and health checks); close sockets or sessions"));
}

std::string SessionRegistry::OwnerOf(const std::string& session_id) {
  absl::MutexLock lock(&usage_mu_);
  auto it = session_owner_.find(session_id);
  return it == session_owner_.end() ? "anonymous" : it->second.identity;
}

absl::Status SessionRegistry::ReserveSocket(const std::string& identity,
                                            size_t quota) {
  absl::MutexLock lock(&usage_mu_);
  if (absl::Status capped = CheckOpenSocketCap(); !capped.ok()) return capped;
  Usage& usage = usage_[identity];
  if (quota != 0 && usage.sockets >= quota) {
    return absl::ResourceExhaustedError(
        absl::StrCat("quota max_sockets: identity '", identity, "' holds ",
                     usage.sockets, " sockets, the policy allows ", quota));
  }
  ++usage.sockets;
  ++open_sockets_;
  return absl::OkStatus();
}

void SessionRegistry::ReleaseSockets(const std::string& identity,
                                     size_t count) {
  if (count == 0) return;
  absl::MutexLock lock(&usage_mu_);
  open_sockets_ -= std::min(count, open_sockets_.load());
  auto it = usage_.find(identity);
  if (it == usage_.end()) return;
  it->second.sockets -= std::min(count, it->second.sockets);
}

absl::Status SessionRegistry::AcquireStream(const CallContext& ctx) {
  const uint32_t quota =
      gate_.policy().Quotas(ctx.identity).max_concurrent_streams();
  absl::MutexLock lock(&usage_mu_);
  Usage& usage = usage_[ctx.identity];
  if (quota != 0 && usage.streams >= quota) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "quota max_concurrent_streams: identity '", ctx.identity, "' has ",
        usage.streams, " streams open, the policy allows ", quota));
  }
  ++usage.streams;
  return absl::OkStatus();
}

void SessionRegistry::ReleaseStream(const CallContext& ctx) {
  absl::MutexLock lock(&usage_mu_);
  auto it = usage_.find(ctx.identity);
  if (it != usage_.end() && it->second.streams > 0) --it->second.streams;
}

size_t SessionRegistry::CloseWhere(
    absl::FunctionRef<bool(const std::string& owner, ManagedSocket& socket)>
        forbidden,
    const char* reason) {
  size_t closed = 0;
  for (const std::shared_ptr<Session>& session : table_.List()) {
    const std::string owner = OwnerOf(session->id());
    for (const std::shared_ptr<ManagedSocket>& socket : session->List()) {
      if (!forbidden(owner, *socket) ||
          session->Remove(socket->handle()) == nullptr) {
        continue;
      }
      gate_.AuditClose(owner, session->id(), *socket, reason);
      ReleaseSockets(owner, 1);
      engine_.Close(*socket->io());
      ++closed;
    }
  }
  return closed;
}

absl::StatusOr<std::shared_ptr<Session>> SessionRegistry::SessionFor(
    const CallContext& ctx) {
  if (ctx.session_id.empty()) {
    return absl::FailedPreconditionError(
        "session: missing; call CreateSession and send its id as the "
        "'sockagent-session' request metadata");
  }
  // After Drain the table is empty: say why instead of "unknown session".
  if (drained_) return DrainingError();
  absl::StatusOr<std::shared_ptr<Session>> session =
      table_.Renew(ctx.session_id, absl::Now(), ctx.renew_lease);
  if (session.ok() && OwnerOf(ctx.session_id) != ctx.identity) {
    // Another identity's session looks exactly like an unknown one.
    return absl::NotFoundError(absl::StrCat(
        "session: unknown session '", ctx.session_id, "' for this caller"));
  }
  return session;
}

absl::StatusOr<std::shared_ptr<ManagedSocket>> SessionRegistry::FindSocket(
    Session& session, const std::string& handle) const {
  if (absl::Status valid = ids_.Check(handle, "handle"); !valid.ok()) {
    return valid;
  }
  std::shared_ptr<ManagedSocket> socket = session.Find(handle);
  if (socket == nullptr) {
    // A closed socket is EBADF, as Python's OSError on a closed socket.
    if (session.WasClosed(handle)) return ClosedHandle();
    return absl::NotFoundError(
        absl::StrCat("handle: unknown handle '", handle, "' in this session"));
  }
  return socket;
}

absl::StatusOr<std::shared_ptr<ManagedSocket>> SessionRegistry::SocketFor(
    const CallContext& ctx, const std::string& handle) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  return FindSocket(**session, handle);
}

absl::StatusOr<ResolvedSocket> SessionRegistry::Resolve(
    const CallContext& ctx, const std::string& handle) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      FindSocket(**session, handle);
  if (!socket.ok()) return socket.status();
  ResolvedSocket call;
  call.ctx = ctx;
  call.session = *std::move(session);
  call.socket = *std::move(socket);
  call.timeout = call.socket->timeout();
  call.rates = gate_.RatesFor(ctx.identity);
  return call;
}

absl::Status SessionRegistry::Explain(const ResolvedSocket& call,
                                      absl::Status status) {
  if (!absl::IsUnavailable(status) && !absl::IsFailedPrecondition(status)) {
    return status;
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> now =
      SocketFor(call.ctx, call.socket->handle());
  return now.ok() ? status : now.status();
}

absl::StatusOr<SessionHold> SessionRegistry::HoldSession(
    const CallContext& ctx, SessionEndCallback on_end) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  absl::StatusOr<uint64_t> call =
      (*session)->BeginCall(absl::Now(), std::move(on_end));
  if (!call.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "session: unknown session '", ctx.session_id,
        "' (closed, expired, or never created): call CreateSession"));
  }
  return SessionHold(*std::move(session), *call);
}

absl::StatusOr<SessionHold> SessionRegistry::BindSession(
    const CallContext& ctx, SessionEndCallback on_end) {
  absl::StatusOr<SessionHold> hold = HoldSession(ctx, std::move(on_end));
  if (!hold.ok()) return hold.status();
  if (absl::Status bound = hold->session()->Bind(hold->id()); !bound.ok()) {
    return bound;  // the hold ends here; its on_end never runs
  }
  spdlog::debug("session {} bound to the connection of {}", ctx.session_id,
                ctx.peer);
  return hold;
}

void SessionRegistry::UnbindSession(SessionHold hold) {
  if (!hold) return;
  if (hold.session()->Unbind(hold.id())) {
    spdlog::debug("session {} released from its connection; lease-only now",
                  hold.session()->id());
  }
  hold.Reset();
}

void SessionRegistry::EndBoundSession(SessionHold hold) {
  if (!hold) return;
  std::shared_ptr<Session> session = hold.session();
  if (!session->BoundTo(hold.id()) || !table_.RemoveIf(session)) return;
  spdlog::info("session {} ({}) lost its connection; closing {} socket(s)",
               session->id(), session->label(), session->size());
  CloseSockets(*session, "connection_closed");
}

absl::StatusOr<std::shared_ptr<ManagedSocket>> SessionRegistry::Adopt(
    Session& session, const std::string& owner, ScopedFd fd, int family,
    int type, int protocol) {
  const v1::PolicyQuotas quotas = gate_.policy().Quotas(owner);
  size_t per_session = options_.max_sockets_per_session;
  if (quotas.max_sockets_per_session() != 0) {
    per_session =
        std::min<size_t>(per_session, quotas.max_sockets_per_session());
  }
  if (absl::Status reserved = ReserveSocket(owner, quotas.max_sockets());
      !reserved.ok()) {
    return reserved;
  }
  absl::StatusOr<std::shared_ptr<IoSocket>> io =
      engine_.Register(std::move(fd), family, type, protocol);
  if (!io.ok()) {
    ReleaseSockets(owner, 1);
    return io.status();
  }
  auto socket = std::make_shared<ManagedSocket>(ids_.Next(), *std::move(io));
  if (absl::Status added = session.Add(socket, per_session); !added.ok()) {
    ReleaseSockets(owner, 1);
    engine_.Close(*socket->io());
    return added;
  }
  return socket;
}

absl::Status SessionRegistry::CloseHandle(Session& session,
                                          const std::string& owner,
                                          const std::string& handle, bool reset,
                                          const char* reason) {
  std::shared_ptr<ManagedSocket> socket = session.Remove(handle);
  if (socket == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("handle: unknown handle '", handle, "' in this session"));
  }
  if (reset) {
    // SO_LINGER {on, 0}: close(2) then sends RST and drops unsent data.
    socket->io()->WithFd([&](int fd) {
      const linger abortive{1, 0};
      SysCallInt rc = ops_.SetSockOpt(fd, SOL_SOCKET, SO_LINGER, &abortive,
                                      sizeof(abortive));
      if (!rc.ok()) {
        spdlog::warn(
            "{}: setsockopt(SO_LINGER) failed with errno {}; closing "
            "without RST",
            handle, rc.error);
      }
    });
  }
  gate_.AuditClose(owner, session.id(), *socket, reason);
  ReleaseSockets(owner, 1);
  engine_.Close(*socket->io());
  return absl::OkStatus();
}

absl::StatusOr<v1::CreateSessionResponse> SessionRegistry::CreateSession(
    const CallContext& ctx, const v1::CreateSessionRequest& request) {
  if (drained_) return absl::UnavailableError("the agent is shutting down");
  absl::Duration ttl = absl::ZeroDuration();
  if (request.has_ttl()) {
    ttl = FromProtoDuration(request.ttl());
    if (ttl <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("ttl: must be positive when set");
    }
  }
  const uint32_t max_sessions =
      gate_.policy().Quotas(ctx.identity).max_sessions();
  {
    absl::MutexLock lock(&usage_mu_);
    Usage& usage = usage_[ctx.identity];
    if (max_sessions != 0 && usage.sessions >= max_sessions) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "quota max_sessions: identity '", ctx.identity, "' holds ",
          usage.sessions, " sessions, the policy allows ", max_sessions));
    }
    ++usage.sessions;  // reserved; released below if creation fails
  }
  absl::StatusOr<std::shared_ptr<Session>> session = table_.Create(
      ttl, request.label(), absl::Now(), request.bind_to_connection());
  {
    absl::MutexLock lock(&usage_mu_);
    if (session.ok()) {
      session_owner_[(*session)->id()] = Origin{ctx.identity, ctx.peer};
    } else {
      --usage_[ctx.identity].sessions;
    }
  }
  if (!session.ok()) return session.status();
  v1::CreateSessionResponse response;
  response.set_session_id((*session)->id());
  SetProtoDuration((*session)->ttl(), response.mutable_ttl());
  response.set_incarnation(ids_.incarnation());
  return response;
}

absl::StatusOr<v1::KeepAliveResponse> SessionRegistry::KeepAlive(
    const CallContext& ctx) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  v1::KeepAliveResponse response;
  SetProtoDuration((*session)->ttl(), response.mutable_ttl());
  return response;
}

absl::StatusOr<v1::CloseSessionResponse> SessionRegistry::CloseSession(
    const CallContext& ctx) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  table_.Remove((*session)->id());
  v1::CloseSessionResponse response;
  response.set_sockets_closed(static_cast<uint32_t>((*session)->size()));
  CloseSockets(**session, "session_closed");
  return response;
}

absl::StatusOr<v1::CloseSessionResponse> SessionRegistry::CloseSession(
    const CallContext& ctx, const v1::CloseSessionRequest& request) {
  if (request.session_id().empty()) return CloseSession(ctx);
  const std::string& id = request.session_id();
  if (absl::Status valid = ids_.Check(id, "session_id"); !valid.ok()) {
    return valid;
  }
  bool own = false;
  {
    absl::MutexLock lock(&usage_mu_);
    auto it = session_owner_.find(id);
    own = it != session_owner_.end() && it->second.identity == ctx.identity;
  }
  if (!own) {
    // Decided before the lookup: a non-admin learns nothing about which
    // sessions of others exist.
    if (absl::Status allowed =
            gate_.Decide(ctx, "CloseSession",
                         gate_.policy().CheckAdmin(ctx.identity), nullptr, "");
        !allowed.ok()) {
      return allowed;
    }
  }
  std::shared_ptr<Session> session = table_.Remove(id);
  if (session == nullptr) {
    return absl::NotFoundError(absl::StrCat("session_id: unknown session '", id,
                                            "' (closed, expired, or never "
                                            "created)"));
  }
  v1::CloseSessionResponse response;
  response.set_sockets_closed(static_cast<uint32_t>(session->size()));
  const std::string owner = OwnerOf(id);
  if (owner != ctx.identity) {
    spdlog::info("session {} of {} closed by admin {}", id, owner,
                 ctx.identity);
  }
  CloseSockets(*session,
               owner == ctx.identity ? "session_closed" : "admin_closed");
  return response;
}

absl::StatusOr<v1::ListSessionsResponse> SessionRegistry::ListSessions(
    const CallContext& ctx) {
  const bool admin = gate_.policy().CheckAdmin(ctx.identity).allowed;
  v1::ListSessionsResponse response;
  for (const std::shared_ptr<Session>& session : table_.List()) {
    Origin origin;
    {
      absl::MutexLock lock(&usage_mu_);
      auto it = session_owner_.find(session->id());
      if (it == session_owner_.end()) continue;  // closing meanwhile
      origin = it->second;
    }
    if (!admin && origin.identity != ctx.identity) continue;
    v1::SessionInfo* info = response.add_sessions();
    info->set_session_id(session->id());
    info->set_identity(origin.identity);
    info->set_peer(origin.peer);
    info->set_label(session->label());
    auto to_timestamp = [](absl::Time t, google::protobuf::Timestamp* out) {
      const timespec ts = absl::ToTimespec(t);
      out->set_seconds(ts.tv_sec);
      out->set_nanos(static_cast<int32_t>(ts.tv_nsec));
    };
    to_timestamp(session->created(), info->mutable_created());
    const absl::Time now = absl::Now();
    const size_t waiting = session->waiting_calls();
    to_timestamp(waiting > 0 ? std::max(session->expiry(), now + session->ttl())
                             : session->expiry(),
                 info->mutable_lease_expiry());
    info->set_waiting_calls(static_cast<uint32_t>(waiting));
    info->set_bind_to_connection(session->bind_to_connection());
    info->set_bound(session->bound());
    info->set_socket_count(static_cast<uint32_t>(session->size()));
    info->set_bytes_sent(session->BytesSent());
    info->set_bytes_received(session->BytesReceived());
  }
  std::sort(response.mutable_sessions()->begin(),
            response.mutable_sessions()->end(),
            [](const v1::SessionInfo& a, const v1::SessionInfo& b) {
              return a.session_id() < b.session_id();
            });
  return response;
}

}  // namespace sockagent
