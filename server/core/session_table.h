#ifndef SOCKAGENT_SERVER_CORE_SESSION_TABLE_H_
#define SOCKAGENT_SERVER_CORE_SESSION_TABLE_H_

// Sessions (leases renewed by their client) and the sockets each one owns.
// Handles are looked up only inside their own session, so a handle of
// another session is NOT_FOUND exactly like an unknown one. A call waiting
// on a session's behalf (SessionHold) keeps its lease from lapsing. Knows
// nothing of gRPC; time is passed in so expiry is testable without waiting.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/core/closed_handles.h"
#include "server/core/ids.h"
#include "server/io/engine.h"
#include "server/policy/network_namespace_query.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// One socket of a session: the engine's socket plus what the caller set on
// it. Thread-safe.
class ManagedSocket {
 public:
  ManagedSocket(std::string handle, std::shared_ptr<IoSocket> io)
      : handle_(std::move(handle)), io_(std::move(io)) {}

  const std::string& handle() const { return handle_; }
  const std::shared_ptr<IoSocket>& io() const { return io_; }

  // Set when the socket's session ends, before any of its sockets closes: a
  // call that sees a peer's EOF can then tell the session's end from the
  // peer's own close.
  bool session_ended() const {
    return session_ended_.load(std::memory_order_acquire);
  }
  void mark_session_ended() {
    session_ended_.store(true, std::memory_order_release);
  }

  // The network namespace the socket was made in (nullopt: the agent's
  // own), as the policy judged it; a reload judges it again. Set once,
  // right after creation.
  std::optional<NetworkNamespaceQuery> network_namespace() const {
    absl::MutexLock lock(&mu_);
    return network_namespace_;
  }
  void set_network_namespace(NetworkNamespaceQuery netns) {
    absl::MutexLock lock(&mu_);
    network_namespace_ = std::move(netns);
  }

  // Python's settimeout: nullopt = blocking, zero = non-blocking.
  std::optional<absl::Duration> timeout() const {
    absl::MutexLock lock(&mu_);
    return timeout_;
  }
  void set_timeout(std::optional<absl::Duration> timeout) {
    absl::MutexLock lock(&mu_);
    timeout_ = timeout;
  }
  v1::SocketState state() const {
    absl::MutexLock lock(&mu_);
    return state_;
  }
  void set_state(v1::SocketState state) {
    absl::MutexLock lock(&mu_);
    state_ = state;
  }
  // The fault profile (SetFaults) that every send path reads before each
  // step; the default is no fault.
  v1::Faults faults() const {
    absl::MutexLock lock(&mu_);
    return faults_;
  }
  // Replaces the profile; restarts its random draws, its close_after_time
  // clock and its close_after_bytes count.
  void set_faults(v1::Faults faults) {
    const uint64_t total = bytes_sent + bytes_received;
    absl::MutexLock lock(&mu_);
    faults_ = std::move(faults);
    faults_set_at_ = absl::Now();
    fault_bytes_base_ = total;
    fault_draws_ = 0;
    send_slot_ = absl::InfinitePast();
  }
  // When the profile was set (InfinitePast: never).
  absl::Time faults_set_at() const {
    absl::MutexLock lock(&mu_);
    return faults_set_at_;
  }
  // Bytes sent plus received since the profile was set.
  uint64_t bytes_since_faults() const {
    const uint64_t total = bytes_sent + bytes_received;
    absl::MutexLock lock(&mu_);
    return total - std::min(total, fault_bytes_base_);
  }
  // Bandwidth across calls: `n` bytes to be sent at `rate` (bytes per
  // second) may start at the returned time; later bytes queue behind them.
  absl::Time TakeSendSlot(size_t n, uint64_t rate, absl::Time now) {
    absl::MutexLock lock(&mu_);
    const absl::Time start = std::max(send_slot_, now);
    send_slot_ = start + absl::Seconds(static_cast<double>(n) /
                                       static_cast<double>(rate));
    return start;
  }
  // A datagram held back by Faults.reorder_percent: it goes out after the
  // next datagram sent on the socket. Swap in a new one, take the old one.
  using HeldDatagram = std::pair<std::string, std::optional<std::string>>;
  std::optional<HeldDatagram> SwapHeldDatagram(
      std::optional<HeldDatagram> held) {
    absl::MutexLock lock(&mu_);
    if (held.has_value()) ++held_ticket_;
    std::swap(held, held_datagram_);
    return held;
  }
  // Holds `held` and returns its ticket, unless a datagram is held already
  // (then nullopt: `held` goes now, and the held one right after it).
  std::optional<uint64_t> TryHoldDatagram(HeldDatagram held) {
    absl::MutexLock lock(&mu_);
    if (held_datagram_.has_value()) return std::nullopt;
    held_datagram_ = std::move(held);
    return ++held_ticket_;
  }
  bool has_held_datagram() const {
    absl::MutexLock lock(&mu_);
    return held_datagram_.has_value();
  }
  // Takes the held datagram if it is still the one given `ticket`.
  std::optional<HeldDatagram> TakeHeldDatagram(uint64_t ticket) {
    absl::MutexLock lock(&mu_);
    if (ticket != held_ticket_ || !held_datagram_.has_value()) {
      return std::nullopt;
    }
    std::optional<HeldDatagram> held = std::move(held_datagram_);
    held_datagram_.reset();
    return held;
  }
  // Reserves `n` random draws of the profile; returns the first index.
  uint64_t TakeFaultDraws(uint64_t n) {
    absl::MutexLock lock(&mu_);
    const uint64_t first = fault_draws_;
    fault_draws_ += n;
    return first;
  }
  // True for a socket returned by Accept: its peer is a source (the
  // policy's accept filters), not a destination it connected to.
  bool accepted() const {
    absl::MutexLock lock(&mu_);
    return accepted_;
  }
  void set_accepted() {
    absl::MutexLock lock(&mu_);
    accepted_ = true;
  }

  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};

 private:
  const std::string handle_;
  const std::shared_ptr<IoSocket> io_;
  mutable absl::Mutex mu_;
  std::optional<absl::Duration> timeout_ ABSL_GUARDED_BY(mu_);
  v1::SocketState state_ ABSL_GUARDED_BY(mu_) = v1::SOCKET_STATE_OPEN;
  v1::Faults faults_ ABSL_GUARDED_BY(mu_);
  absl::Time faults_set_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t fault_bytes_base_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t fault_draws_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time send_slot_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Data, and the destination's raw sockaddr bytes (unset: connected).
  std::optional<std::pair<std::string, std::optional<std::string>>>
      held_datagram_ ABSL_GUARDED_BY(mu_);
  uint64_t held_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<NetworkNamespaceQuery> network_namespace_ ABSL_GUARDED_BY(mu_);
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> session_ended_{false};
};

// Runs once when a session ends while a call waits on its behalf, with why:
// ABORTED (closed by CloseSession or an admin), UNAVAILABLE (the agent
// drains) or CANCELLED (its connection closed).
using SessionEndCallback = absl::AnyInvocable<void(absl::Status)>;

// A lease and the sockets it owns. Thread-safe. Once closed it accepts no
// new socket and no new waiting call, so nothing can be added to a session
// that is being torn down.
//
// The lease lapses `ttl` after the last renewal, but never while a call
// waits on the session's behalf (BeginCall .. EndCall): when the last such
// call ends, the lease restarts from that moment.
class Session {
 public:
  Session(std::string id, std::string label, absl::Duration ttl, absl::Time now,
          bool bind_to_connection = false)
      : id_(std::move(id)),
        label_(std::move(label)),
        ttl_(ttl),
        created_(now),
        bind_to_connection_(bind_to_connection),
        expiry_(now + ttl) {}

  const std::string& id() const { return id_; }
  const std::string& label() const { return label_; }
  absl::Duration ttl() const { return ttl_; }
  absl::Time created() const { return created_; }
  // Created with CreateSessionRequest.bind_to_connection: it may be bound
  // to a connection (Bind).
  bool bind_to_connection() const { return bind_to_connection_; }

  // When the lease lapses unless renewed (provided no call waits then).
  absl::Time expiry() const;
  void Renew(absl::Time now);
  // True when the lease ended at or before `now` and no call waits.
  bool Lapsed(absl::Time now) const;

  // A call starts waiting on the session's behalf at `now`. `on_end`, when
  // set, runs once if the session closes while the call still waits (see
  // SessionEndCallback). Returns the call's id for EndCall; ABORTED when the
  // session is already closed or lapsed at `now`.
  absl::StatusOr<uint64_t> BeginCall(absl::Time now,
                                     SessionEndCallback on_end = nullptr);
  // The call `id` stopped waiting (its on_end will not run); the lease
  // restarts at `now` when it was the last one. Unknown ids are ignored.
  void EndCall(uint64_t id, absl::Time now);
  size_t waiting_calls() const;

  // Binds the session to the waiting call `id` (HoldSession): FAILED_
  // PRECONDITION unless created with bind_to_connection, ALREADY_EXISTS
  // while another call holds the binding.
  absl::Status Bind(uint64_t id);
  // Undoes Bind(id); false if `id` does not hold the binding.
  bool Unbind(uint64_t id);
  // True while a call holds the binding.
  bool bound() const;
  // True when the call `id` holds the binding.
  bool BoundTo(uint64_t id) const;

  // The on_end callbacks of the calls still waiting (once; for Close).
  std::vector<SessionEndCallback> TakeEndCallbacks();

  // Adds a socket under its handle. Errors: RESOURCE_EXHAUSTED when the
  // session already holds `max_sockets`; ABORTED when the session closed.
  absl::Status Add(std::shared_ptr<ManagedSocket> socket, size_t max_sockets);

  // The socket for `handle`, or nullptr.
  std::shared_ptr<ManagedSocket> Find(const std::string& handle) const;

  // Removes and returns the socket for `handle`, or nullptr. Its byte
  // counts so far stay in the session's totals (BytesSent/BytesReceived),
  // and the handle is remembered as closed (WasClosed).
  std::shared_ptr<ManagedSocket> Remove(const std::string& handle);

  // True if `handle` was this session's and has been removed, among the
  // last ClosedHandles::kDefaultCapacity removed (see closed_handles.h).
  bool WasClosed(const std::string& handle) const;

  // Marks the session closed and returns every socket it held.
  std::vector<std::shared_ptr<ManagedSocket>> Close();

  std::vector<std::shared_ptr<ManagedSocket>> List() const;
  size_t size() const;

  // Bytes sent / received by the session's sockets, removed ones included.
  uint64_t BytesSent() const;
  uint64_t BytesReceived() const;

 private:
  const std::string id_;
  const std::string label_;
  const absl::Duration ttl_;
  const absl::Time created_;
  const bool bind_to_connection_;
  mutable absl::Mutex mu_;
  uint64_t removed_bytes_sent_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t removed_bytes_received_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time expiry_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Calls waiting on the session's behalf, by id, with their on_end.
  uint64_t next_call_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, SessionEndCallback> calls_ ABSL_GUARDED_BY(mu_);
  // The call holding the binding (0 = none).
  uint64_t bound_call_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<ManagedSocket>> sockets_
      ABSL_GUARDED_BY(mu_);
  ClosedHandles closed_handles_ ABSL_GUARDED_BY(mu_);
};

// A call waiting on a session's behalf, from BeginCall until destruction or
// Reset() (then EndCall). Move-only; not thread-safe itself.
class SessionHold {
 public:
  SessionHold() = default;
  SessionHold(std::shared_ptr<Session> session, uint64_t id)
      : session_(std::move(session)), id_(id) {}
  SessionHold(SessionHold&& other) noexcept
      : session_(std::move(other.session_)), id_(other.id_) {
    other.session_ = nullptr;
  }
  SessionHold& operator=(SessionHold&& other) noexcept {
    if (this != &other) {
      Reset();
      session_ = std::move(other.session_);
      id_ = other.id_;
      other.session_ = nullptr;
    }
    return *this;
  }
  SessionHold(const SessionHold&) = delete;
  SessionHold& operator=(const SessionHold&) = delete;
  ~SessionHold() { Reset(); }

  // Ends the call's wait now (the lease restarts if it was the last one).
  void Reset();
  // Null for an empty hold.
  const std::shared_ptr<Session>& session() const { return session_; }
  uint64_t id() const { return id_; }
  explicit operator bool() const { return session_ != nullptr; }

 private:
  std::shared_ptr<Session> session_;
  uint64_t id_ = 0;
};

// All live sessions. Thread-safe.
class SessionTable {
 public:
  struct Options {
    absl::Duration default_ttl = absl::Seconds(5);
    absl::Duration max_ttl = absl::Hours(24);
    size_t max_sessions = 1024;
  };

  SessionTable(Options options, IdIssuer* ids) : options_(options), ids_(ids) {}

  // A new session. `ttl` zero means the default; longer than max_ttl is
  // clamped; negative is INVALID_ARGUMENT. RESOURCE_EXHAUSTED past
  // max_sessions.
  absl::StatusOr<std::shared_ptr<Session>> Create(
      absl::Duration ttl, std::string label, absl::Time now,
      bool bind_to_connection = false);

  // The session `id`, its lease renewed unless `renew` is false. Errors:
  // INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown, expired,
  // closed, another agent's or earlier-incarnation id.
  absl::StatusOr<std::shared_ptr<Session>> Renew(absl::string_view id,
                                                 absl::Time now,
                                                 bool renew = true);

  // The live session `id`, or nullptr; no check, no renewal.
  std::shared_ptr<Session> Find(absl::string_view id) const;

  // Removes the session, or returns nullptr if there is none.
  std::shared_ptr<Session> Remove(absl::string_view id);
  // Removes `session` if the table still holds exactly it; false otherwise.
  bool RemoveIf(const std::shared_ptr<Session>& session);

  // Removes and returns every session whose lease ended at or before `now`
  // and on whose behalf no call waits.
  std::vector<std::shared_ptr<Session>> TakeExpired(absl::Time now);

  // Removes and returns every session.
  std::vector<std::shared_ptr<Session>> TakeAll();

  // Every live session (a snapshot; the table keeps them).
  std::vector<std::shared_ptr<Session>> List() const;

  size_t size() const;
  // Sockets held by all sessions.
  size_t socket_count() const;
  const Options& options() const { return options_; }

 private:
  const Options options_;
  IdIssuer* const ids_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_SESSION_TABLE_H_
