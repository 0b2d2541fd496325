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
  for (auto& [handle, socket] : sockets_) sockets.push_back(std::move(socket));
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
    absl::Duration ttl, std::string label, absl::Time now) {
  if (ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl: must not be negative");
  }
  if (ttl == absl::ZeroDuration()) ttl = options_.default_ttl;
  if (ttl > options_.max_ttl) ttl = options_.max_ttl;
  if (label.size() > 256) {
    return absl::InvalidArgumentError("label: longer than 256 bytes");
  }
  auto session =
      std::make_shared<Session>(ids_->Next(), std::move(label), ttl, now);
  absl::MutexLock lock(&mu_);
  if (sessions_.size() >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "quota max_sessions (", options_.max_sessions, ") reached"));
  }
  sessions_.emplace(session->id(), session);
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionTable::Renew(
    absl::string_view id, absl::Time now) {
  if (absl::Status valid = ids_->Check(id, "session"); !valid.ok()) {
    return valid;
  }
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) session = it->second;
  }
  if (session == nullptr || session->expiry() <= now) {
    return absl::NotFoundError(absl::StrCat(
        "session: unknown session '", id,
        "' (closed, expired, or never created): call CreateSession"));
  }
  session->Renew(now);
  return session;
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
    if (it->second->expiry() <= now) {
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
