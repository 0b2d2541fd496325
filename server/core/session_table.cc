#include "server/core/session_table.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace sockagent {

absl::Time Session::expiry() const {
  absl::MutexLock lock(&mu_);
  return expiry_;
}

void Session::Renew(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (now + ttl_ > expiry_) expiry_ = now + ttl_;
}

bool Session::Lapsed(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  return calls_.empty() && expiry_ <= now;
}

absl::StatusOr<uint64_t> Session::BeginCall(absl::Time now,
                                            SessionEndCallback on_end) {
  absl::MutexLock lock(&mu_);
  if (closed_ || (calls_.empty() && expiry_ <= now)) {
    return absl::AbortedError("the session was closed or its lease lapsed");
  }
  const uint64_t id = ++next_call_;
  calls_.emplace(id, std::move(on_end));
  return id;
}

void Session::EndCall(uint64_t id, absl::Time now) {
  SessionEndCallback dropped;  // destroyed outside the lock
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  dropped = std::move(it->second);
  calls_.erase(it);
  if (bound_call_ == id) bound_call_ = 0;
  if (calls_.empty() && now + ttl_ > expiry_) expiry_ = now + ttl_;
}

size_t Session::waiting_calls() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

absl::Status Session::Bind(uint64_t id) {
  absl::MutexLock lock(&mu_);
  if (!bind_to_connection_) {
    return absl::FailedPreconditionError(
        "session: created without bind_to_connection, so it lives by its "
        "lease only (e.g. a `sockctl session open` session shared by many "
        "processes); create it with bind_to_connection to bind it");
  }
  if (closed_ || calls_.find(id) == calls_.end()) {
    return absl::AbortedError("the session was closed");
  }
  if (bound_call_ != 0 && bound_call_ != id) {
    return absl::AlreadyExistsError(
        "session: already bound to another HoldSession call; release that "
        "one first");
  }
  bound_call_ = id;
  return absl::OkStatus();
}

bool Session::Unbind(uint64_t id) {
  absl::MutexLock lock(&mu_);
  if (id == 0 || bound_call_ != id) return false;
  bound_call_ = 0;
  return true;
}

bool Session::bound() const {
  absl::MutexLock lock(&mu_);
  return bound_call_ != 0;
}

bool Session::BoundTo(uint64_t id) const {
  absl::MutexLock lock(&mu_);
  return id != 0 && bound_call_ == id;
}

std::vector<SessionEndCallback> Session::TakeEndCallbacks() {
  std::vector<SessionEndCallback> callbacks;
  absl::MutexLock lock(&mu_);
  for (auto& [id, on_end] : calls_) {
    if (on_end) callbacks.push_back(std::move(on_end));
    on_end = nullptr;
  }
  return callbacks;
}

void SessionHold::Reset() {
  if (session_ == nullptr) return;
  std::shared_ptr<Session> session = std::move(session_);
  session_ = nullptr;
  session->EndCall(id_, absl::Now());
}

absl::Status Session::Add(std::shared_ptr<ManagedSocket> socket,
                          size_t max_sockets) {
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::AbortedError("the session was closed");
  if (sockets_.size() >= max_sockets) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "quota max_sockets_per_session (", max_sockets, ") reached"));
  }
  std::string handle = socket->handle();
  sockets_.emplace(std::move(handle), std::move(socket));
  return absl::OkStatus();
}

std::shared_ptr<ManagedSocket> Session::Find(const std::string& handle) const {
  absl::MutexLock lock(&mu_);
  auto it = sockets_.find(handle);
  return it == sockets_.end() ? nullptr : it->second;
}

std::shared_ptr<ManagedSocket> Session::Remove(const std::string& handle) {
  absl::MutexLock lock(&mu_);
  auto it = sockets_.find(handle);
  if (it == sockets_.end()) return nullptr;
  std::shared_ptr<ManagedSocket> socket = std::move(it->second);
  sockets_.erase(it);
  closed_handles_.Add(handle);
  removed_bytes_sent_ += socket->bytes_sent;
  removed_bytes_received_ += socket->bytes_received;
  return socket;
}

bool Session::WasClosed(const std::string& handle) const {
  absl::MutexLock lock(&mu_);
  return closed_handles_.Contains(handle);
}

uint64_t Session::BytesSent() const {
  absl::MutexLock lock(&mu_);
  uint64_t total = removed_bytes_sent_;
  for (const auto& [handle, socket] : sockets_) total += socket->bytes_sent;
  return total;
}

uint64_t Session::BytesReceived() const {
  absl::MutexLock lock(&mu_);
  uint64_t total = removed_bytes_received_;
  for (const auto& [handle, socket] : sockets_) total += socket->bytes_received;
  return total;
}

std::vector<std::shared_ptr<ManagedSocket>> Session::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  std::vector<std::shared_ptr<ManagedSocket>> sockets;
  sockets.reserve(sockets_.size());
  // Every socket is marked before the caller closes the first one.
  for (auto& [handle, socket] : sockets_) {
    socket->mark_session_ended();
    sockets.push_back(std::move(socket));
  }
  sockets_.clear();
  return sockets;
}

std::vector<std::shared_ptr<ManagedSocket>> Session::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<ManagedSocket>> sockets;
  sockets.reserve(sockets_.size());
  for (const auto& [handle, socket] : sockets_) sockets.push_back(socket);
  return sockets;
}

size_t Session::size() const {
  absl::MutexLock lock(&mu_);
  return sockets_.size();
}

absl::StatusOr<std::shared_ptr<Session>> SessionTable::Create(
    absl::Duration ttl, std::string label, absl::Time now,
    bool bind_to_connection) {
  if (ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl: must not be negative");
  }
  if (ttl == absl::ZeroDuration()) ttl = options_.default_ttl;
  if (ttl > options_.max_ttl) ttl = options_.max_ttl;
  if (label.size() > 256) {
    return absl::InvalidArgumentError("label: longer than 256 bytes");
  }
  auto session = std::make_shared<Session>(ids_->Next(), std::move(label), ttl,
                                           now, bind_to_connection);
  absl::MutexLock lock(&mu_);
  if (sessions_.size() >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "quota max_sessions (", options_.max_sessions, ") reached"));
  }
  sessions_.emplace(session->id(), session);
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionTable::Renew(
    absl::string_view id, absl::Time now, bool renew) {
  if (absl::Status valid = ids_->Check(id, "session"); !valid.ok()) {
    return valid;
  }
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) session = it->second;
  }
  if (session == nullptr || session->Lapsed(now)) {
    return absl::NotFoundError(absl::StrCat(
        "session: unknown session '", id,
        "' (closed, expired, or never created): call CreateSession"));
  }
  if (renew) session->Renew(now);
  return session;
}

std::shared_ptr<Session> SessionTable::Find(absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

bool SessionTable::RemoveIf(const std::shared_ptr<Session>& session) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session->id());
  if (it == sessions_.end() || it->second != session) return false;
  sessions_.erase(it);
  return true;
}

std::shared_ptr<Session> SessionTable::Remove(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  std::shared_ptr<Session> session = std::move(it->second);
  sessions_.erase(it);
  return session;
}

std::vector<std::shared_ptr<Session>> SessionTable::TakeExpired(
    absl::Time now) {
  std::vector<std::shared_ptr<Session>> expired;
  absl::MutexLock lock(&mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second->Lapsed(now)) {
      expired.push_back(std::move(it->second));
      sessions_.erase(it++);
    } else {
      ++it;
    }
  }
  return expired;
}

std::vector<std::shared_ptr<Session>> SessionTable::TakeAll() {
  std::vector<std::shared_ptr<Session>> all;
  absl::MutexLock lock(&mu_);
  for (auto& [id, session] : sessions_) all.push_back(std::move(session));
  sessions_.clear();
  return all;
}

std::vector<std::shared_ptr<Session>> SessionTable::List() const {
  std::vector<std::shared_ptr<Session>> all;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, session] : sessions_) all.push_back(session);
  return all;
}

size_t SessionTable::socket_count() const {
  absl::MutexLock lock(&mu_);
  size_t count = 0;
  for (const auto& [id, session] : sessions_) count += session->size();
  return count;
}

size_t SessionTable::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

}  // namespace sockagent
