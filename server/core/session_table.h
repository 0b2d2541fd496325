#ifndef SOCKAGENT_SERVER_CORE_SESSION_TABLE_H_
#define SOCKAGENT_SERVER_CORE_SESSION_TABLE_H_

// Sessions (leases renewed by their client) and the sockets each one owns.
// Handles are looked up only inside their own session, so a handle of
// another session is NOT_FOUND exactly like an unknown one. Knows nothing of
// gRPC; time is passed in so expiry is testable without waiting.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/closed_handles.h"
#include "server/core/ids.h"
#include "server/io/engine.h"
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
  // The fault profile (SetFaults) that running Traffic reads before every
  // step; the default is no fault.
  v1::Faults faults() const {
    absl::MutexLock lock(&mu_);
    return faults_;
  }
  void set_faults(v1::Faults faults) {
    absl::MutexLock lock(&mu_);
    faults_ = std::move(faults);
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
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
};

// A lease and the sockets it owns. Thread-safe. Once closed it accepts no
// new socket, so nothing can be added to a session that is being torn down.
class Session {
 public:
  Session(std::string id, std::string label, absl::Duration ttl, absl::Time now)
      : id_(std::move(id)),
        label_(std::move(label)),
        ttl_(ttl),
        created_(now),
        expiry_(now + ttl) {}

  const std::string& id() const { return id_; }
  const std::string& label() const { return label_; }
  absl::Duration ttl() const { return ttl_; }
  absl::Time created() const { return created_; }

  absl::Time expiry() const;
  void Renew(absl::Time now);

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
  mutable absl::Mutex mu_;
  uint64_t removed_bytes_sent_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t removed_bytes_received_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time expiry_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, std::shared_ptr<ManagedSocket>> sockets_
      ABSL_GUARDED_BY(mu_);
  ClosedHandles closed_handles_ ABSL_GUARDED_BY(mu_);
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
  absl::StatusOr<std::shared_ptr<Session>> Create(absl::Duration ttl,
                                                  std::string label,
                                                  absl::Time now);

  // The session `id`, its lease renewed. Errors: INVALID_ARGUMENT for a
  // malformed id, NOT_FOUND for an unknown, expired, closed or
  // earlier-incarnation id.
  absl::StatusOr<std::shared_ptr<Session>> Renew(absl::string_view id,
                                                 absl::Time now);

  // Removes the session, or returns nullptr if there is none.
  std::shared_ptr<Session> Remove(absl::string_view id);

  // Removes and returns every session whose lease ended at or before `now`.
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
