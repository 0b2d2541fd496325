#ifndef SOCKAGENT_SERVER_IO_ENGINE_H_
#define SOCKAGENT_SERVER_IO_ENGINE_H_

// The epoll engine: every socket is non-blocking and registered once
// (edge-triggered); an operation that would block waits in its socket's queue
// and holds no thread. The engine has one or more shards, each with its own
// epoll set, wake-up eventfd, socket map, timers and thread; a socket belongs
// to one shard for its whole life, so its readiness and deadlines are always
// handled by that shard's thread, and two sockets of one transfer (a source
// and its sink, the two ends of a relay) can run on two cores. The cost of a
// waiting operation is one queue entry. Knows nothing of gRPC.

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/io/cancel_token.h"
#include "server/io/scoped_fd.h"

namespace sockagent {

enum class Interest { kRead = 0, kWrite = 1 };

// One socket operation that may have to wait for readiness.
class IoOp {
 public:
  virtual ~IoOp() = default;

  // Tries the operation. Called with the socket's lock held and its
  // descriptor open. Returns nullopt when the socket is not ready (keep
  // waiting), otherwise the final status.
  virtual std::optional<absl::Status> Attempt(int fd) = 0;

  // Delivers the outcome. Called exactly once, with no engine or socket lock
  // held, possibly on the engine thread; the op is destroyed afterwards.
  virtual void Complete(absl::Status status) = 0;

  // The system call's name, for error messages ("recv").
  virtual const char* name() const = 0;

  // What a non-blocking socket reports instead of waiting.
  virtual int would_block_errno() const { return EAGAIN; }
};

// How long an operation may wait.
struct WaitOptions {
  // Then the op ends with DEADLINE_EXCEEDED "<name>: timed out".
  absl::Time deadline = absl::InfiniteFuture();
  // Fail with would_block_errno() instead of waiting (Python's timeout 0).
  bool nonblocking = false;
  // When it fires, the op ends with CANCELLED. Must outlive the wait.
  CancelToken* cancel = nullptr;
};

class Engine;

// A descriptor registered with an Engine. Thread-safe. Owned by shared_ptr so
// an in-flight operation keeps it alive while another caller closes it; the
// descriptor itself is closed exactly once, by Engine::Close or destruction.
// Must be destroyed before its Engine.
class IoSocket {
 public:
  IoSocket(const IoSocket&) = delete;
  IoSocket& operator=(const IoSocket&) = delete;
  ~IoSocket();

  int family() const { return family_; }
  int type() const { return type_; }
  int protocol() const { return protocol_; }

  // Runs `fn(fd)` with the socket's lock held, serialized with every other
  // operation on it. Returns false, without calling `fn`, if it is closed.
  bool WithFd(absl::FunctionRef<void(int fd)> fn);

  bool closed() const;

  // The engine shard (0 .. shards()-1) that runs this socket's readiness
  // and deadlines; fixed at registration.
  size_t shard() const { return shard_; }

 private:
  friend class Engine;
  struct Pending {
    uint64_t id;
    std::unique_ptr<IoOp> op;
    absl::Time deadline;
  };

  IoSocket(Engine* engine, size_t shard, uint64_t id, ScopedFd fd, int family,
           int type, int protocol)
      : engine_(engine),
        shard_(shard),
        id_(id),
        family_(family),
        type_(type),
        protocol_(protocol),
        fd_(std::move(fd)) {}

  Engine* const engine_;
  const size_t shard_;
  const uint64_t id_;
  const int family_;
  const int type_;
  const int protocol_;
  mutable absl::Mutex mu_;
  ScopedFd fd_ ABSL_GUARDED_BY(mu_);
  std::deque<Pending> queues_[2] ABSL_GUARDED_BY(mu_);
};

class Engine {
 public:
  friend class IoSocket;
  // The most shards Create accepts.
  static constexpr int kMaxShards = 256;

  // Starts `shards` engine threads (1 .. kMaxShards), each with its own
  // epoll set. Errors: INVALID_ARGUMENT for a shard count out of range; the
  // errno of epoll_create1/eventfd.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(int shards = 1);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // Shuts down and joins the engine threads. Every IoSocket must be gone.
  ~Engine();

  // Takes ownership of a non-blocking descriptor and watches it on the shard
  // with the fewest registered sockets (ties go round-robin, so sockets
  // registered one after another, like a connection's two ends, land on
  // different shards).
  absl::StatusOr<std::shared_ptr<IoSocket>> Register(ScopedFd fd, int family,
                                                     int type, int protocol);

  // Runs `op` now if its socket is ready and no earlier op of the same
  // interest waits; otherwise queues it (FIFO per interest) until the socket
  // is ready. The op ends exactly once: with its own result, DEADLINE_EXCEEDED,
  // CANCELLED, ABORTED when the socket is closed while it waits,
  // FAILED_PRECONDITION with EBADF when the socket was already closed, or
  // UNAVAILABLE once the engine shuts down. May complete before returning,
  // on the caller's thread; otherwise it completes on the socket's shard
  // thread (or on the thread that cancels, closes or shuts down).
  void Submit(const std::shared_ptr<IoSocket>& socket, Interest interest,
              std::unique_ptr<IoOp> op, const WaitOptions& options);

  // Closes the descriptor; waiting ops end with ABORTED. Idempotent.
  void Close(IoSocket& socket);

  // Runs `fn` once, with no lock held: on `socket`'s shard thread at or
  // after `when`, or earlier, on the thread that calls Shutdown(); at once
  // on the caller's thread when the engine is already shutting down. It
  // neither waits in nor blocks the socket's queues (a timer, not an op).
  void RunAt(const IoSocket& socket, absl::Time when,
             absl::AnyInvocable<void()> fn);

  // Ends every waiting op and every later Submit with UNAVAILABLE, on every
  // shard. Sockets stay open until closed. Idempotent.
  void Shutdown();

  // Ops currently waiting, across all sockets and shards (for tests and
  // metrics).
  size_t waiting_ops() const;

  // How many shards (engine threads) there are.
  size_t shards() const { return shards_.size(); }

  // Sockets registered on `shard` and not yet closed (for tests).
  size_t sockets_on_shard(size_t shard) const;

 private:
  struct Completion {
    std::unique_ptr<IoOp> op;
    absl::Status status;
  };
  using TimerKey = std::pair<absl::Time, uint64_t>;
  // Ops that ended under a socket's lock, to be delivered after it.
  struct Batch {
    std::vector<Completion> done;
    std::vector<TimerKey> timers;
  };
  // One epoll set and the thread that waits on it.
  struct Shard {
    Shard(int epoll, int wake) : epoll_fd(epoll), wake_fd(wake) {}
    ScopedFd epoll_fd;
    ScopedFd wake_fd;
    mutable absl::Mutex mu;
    // Op ids (timer keys) are unique within the shard.
    std::atomic<uint64_t> next_op_id{1};
    std::atomic<size_t> waiting{0};
    // Registered and not yet forgotten; read by Register to pick a shard.
    std::atomic<size_t> sockets_count{0};
    absl::flat_hash_map<uint64_t, std::weak_ptr<IoSocket>> sockets
        ABSL_GUARDED_BY(mu);
    std::map<TimerKey, std::weak_ptr<IoSocket>> timers ABSL_GUARDED_BY(mu);
    // RunAt's callbacks, keyed like the timers.
    std::map<TimerKey, absl::AnyInvocable<void()>> callbacks
        ABSL_GUARDED_BY(mu);
    std::thread thread;
  };

  explicit Engine(std::vector<std::unique_ptr<Shard>> shards);
  Shard& ShardOf(const IoSocket& socket) { return *shards_[socket.shard_]; }
  // Queues `op` (moving it) unless `options.cancel` already fired; then
  // returns CANCELLED and leaves `op` with the caller. Socket lock held.
  std::optional<absl::Status> Enqueue(const std::shared_ptr<IoSocket>& socket,
                                      std::deque<IoSocket::Pending>& queue,
                                      std::unique_ptr<IoOp>& op,
                                      const WaitOptions& options);
  void Run(Shard& shard);
  static void Wake(Shard& shard);
  void OnEvents(Shard& shard, uint64_t socket_id, uint32_t events);
  void ExpireTimers(Shard& shard, absl::Time now);
  // Takes the callbacks due at `now` (all of them when `all`).
  static std::vector<absl::AnyInvocable<void()>> TakeCallbacks(Shard& shard,
                                                               absl::Time now,
                                                               bool all);
  // Attempts the queue's ops in order until one must keep waiting.
  void RunQueueLocked(IoSocket& socket, Interest interest, Batch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(socket.mu_);
  // Drops the batch's timers (of `shard`) and completes its ops. No lock
  // held.
  static void Deliver(Shard& shard, Batch& batch);
  // Removes op `op_id` from `socket` (if it still waits) and ends it.
  void EndWaiting(const std::weak_ptr<IoSocket>& socket, uint64_t op_id,
                  absl::Status status);
  void Forget(const IoSocket& socket);
  static void FinishAll(Shard& shard, std::deque<IoSocket::Pending>& ops,
                        absl::Status status);

  // Fixed after Create.
  std::vector<std::unique_ptr<Shard>> shards_;
  // Read under a socket's lock by Submit and under a shard's lock by
  // Register; set before sockets are drained.
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> stop_threads_{false};
  std::atomic<uint64_t> next_socket_id_{1};
  // Where Register's search for the least-loaded shard starts.
  std::atomic<size_t> next_shard_{0};
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_IO_ENGINE_H_
