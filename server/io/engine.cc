#include "server/io/engine.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/errno_status.h"

namespace sockagent {
namespace {

constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr uint32_t kWriteEvents = EPOLLOUT | EPOLLHUP | EPOLLERR;
constexpr int kMaxEvents = 256;

int Index(Interest interest) { return static_cast<int>(interest); }

// Milliseconds until `deadline`, rounded up, for epoll_wait (-1: forever).
int WaitMillis(absl::Time now, absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  if (deadline <= now) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(
      absl::Ceil(deadline - now, absl::Milliseconds(1)));
  return ms > 60000 ? 60000 : static_cast<int>(ms);
}

// close(2) of a socket with SO_LINGER {on, N > 0} blocks the closing thread
// for up to N seconds while queued data waits for a peer that does not read.
// The agent's threads never block, so such a socket is closed in the
// background instead (SO_LINGER off: the kernel still sends what is queued).
// An abortive close, SO_LINGER {on, 0}, is kept.
void DisarmLinger(int fd) {
  linger value{};
  socklen_t length = sizeof(value);
  if (::getsockopt(fd, SOL_SOCKET, SO_LINGER, &value, &length) != 0 ||
      value.l_onoff == 0 || value.l_linger == 0) {
    return;
  }
  const linger off{0, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof(off));
}

}  // namespace

IoSocket::~IoSocket() {
  std::deque<Pending> ops;
  {
    absl::MutexLock lock(&mu_);
    if (fd_.valid()) DisarmLinger(fd_.get());
    for (auto& queue : queues_) {
      for (auto& pending : queue) ops.push_back(std::move(pending));
      queue.clear();
    }
  }
  engine_->Forget(*this);
  // Every op ends exactly once, also when nobody closed the socket.
  Engine::FinishAll(engine_->ShardOf(*this), ops,
                    absl::AbortedError("the socket was released"));
}

bool IoSocket::WithFd(absl::FunctionRef<void(int fd)> fn) {
  absl::MutexLock lock(&mu_);
  if (!fd_.valid()) return false;
  fn(fd_.get());
  return true;
}

bool IoSocket::closed() const {
  absl::MutexLock lock(&mu_);
  return !fd_.valid();
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(int shards) {
  if (shards < 1 || shards > kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("shards: ", shards, " is not between 1 and ", kMaxShards));
  }
  std::vector<std::unique_ptr<Shard>> made;
  for (int i = 0; i < shards; ++i) {
    ScopedFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_fd.valid()) return OsError(errno, "epoll_create1");
    ScopedFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fd.valid()) return OsError(errno, "eventfd");
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = 0;  // socket ids start at 1
    if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &event) !=
        0) {
      return OsError(errno, "epoll_ctl");
    }
    made.push_back(
        std::make_unique<Shard>(epoll_fd.release(), wake_fd.release()));
  }
  std::unique_ptr<Engine> engine(new Engine(std::move(made)));
  for (auto& shard : engine->shards_) {
    shard->thread =
        std::thread([e = engine.get(), s = shard.get()] { e->Run(*s); });
  }
  return engine;
}

Engine::Engine(std::vector<std::unique_ptr<Shard>> shards)
    : shards_(std::move(shards)) {}

Engine::~Engine() {
  Shutdown();
  stop_threads_ = true;
  for (auto& shard : shards_) Wake(*shard);
  for (auto& shard : shards_) {
    if (shard->thread.joinable()) shard->thread.join();
  }
}

void Engine::Wake(Shard& shard) {
  const uint64_t one = 1;
  // A full counter already guarantees a wake-up, so EAGAIN is fine.
  [[maybe_unused]] ssize_t n = ::write(shard.wake_fd.get(), &one, sizeof(one));
}

absl::StatusOr<std::shared_ptr<IoSocket>> Engine::Register(ScopedFd fd,
                                                           int family, int type,
                                                           int protocol) {
  // The least-loaded shard, searching from a rotating start so that equal
  // loads are shared out in turn. The counts are read without a lock: a
  // race only makes the choice slightly less even.
  const size_t count = shards_.size();
  const size_t start = next_shard_.fetch_add(1, std::memory_order_relaxed);
  size_t chosen = start % count;
  size_t fewest = shards_[chosen]->sockets_count.load();
  for (size_t i = 1; i < count && fewest > 0; ++i) {
    const size_t candidate = (start + i) % count;
    const size_t load = shards_[candidate]->sockets_count.load();
    if (load < fewest) {
      chosen = candidate;
      fewest = load;
    }
  }
  Shard& shard = *shards_[chosen];
  const uint64_t id = next_socket_id_++;
  const int raw_fd = fd.get();
  std::shared_ptr<IoSocket> socket(
      new IoSocket(this, chosen, id, std::move(fd), family, type, protocol));
  {
    absl::MutexLock lock(&shard.mu);
    if (shutting_down_) {
      return absl::UnavailableError("the agent is shutting down");
    }
    shard.sockets[id] = socket;
    ++shard.sockets_count;
  }
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = id;
  if (::epoll_ctl(shard.epoll_fd.get(), EPOLL_CTL_ADD, raw_fd, &event) != 0) {
    // `socket` is destroyed on return, which closes the fd and forgets it.
    return OsError(errno, "epoll_ctl");
  }
  return socket;
}

void Engine::Submit(const std::shared_ptr<IoSocket>& socket, Interest interest,
                    std::unique_ptr<IoOp> op, const WaitOptions& options) {
  std::optional<absl::Status> result;
  {
    absl::MutexLock lock(&socket->mu_);
    auto& queue = socket->queues_[Index(interest)];
    if (shutting_down_) {
      result = absl::UnavailableError("the agent is shutting down");
    } else if (!socket->fd_.valid()) {
      result = OsErrorWithCode(absl::StatusCode::kFailedPrecondition, EBADF,
                               op->name(),
                               absl::StrCat(op->name(), ": socket is closed"));
    } else if (options.cancel != nullptr && options.cancel->cancelled()) {
      // Never consume data for a caller that is already gone.
      result = absl::CancelledError("cancelled by the caller");
    } else if (queue.empty()) {
      result = op->Attempt(socket->fd_.get());
    }
    if (!result.has_value()) {
      if (options.nonblocking) {
        result = OsError(op->would_block_errno(), op->name());
      } else if (options.deadline <= absl::Now()) {
        result = absl::DeadlineExceededError(
            absl::StrCat(op->name(), ": timed out"));
      } else {
        result = Enqueue(socket, queue, op, options);
      }
    }
  }
  if (result.has_value()) op->Complete(*std::move(result));
}

std::optional<absl::Status> Engine::Enqueue(
    const std::shared_ptr<IoSocket>& socket,
    std::deque<IoSocket::Pending>& queue, std::unique_ptr<IoOp>& op,
    const WaitOptions& options) {
  Shard& shard = ShardOf(*socket);
  const uint64_t op_id = shard.next_op_id++;
  // The cancel callback is set before the op becomes visible to other
  // threads: once queued, the op may end and its caller be gone at once.
  if (options.cancel != nullptr &&
      !options.cancel->TrySetCallback(
          [this, weak = std::weak_ptr<IoSocket>(socket), op_id] {
            EndWaiting(weak, op_id,
                       absl::CancelledError("cancelled by the caller"));
          })) {
    return absl::CancelledError("cancelled by the caller");
  }
  queue.push_back({op_id, std::move(op), options.deadline});
  ++shard.waiting;
  if (options.deadline != absl::InfiniteFuture()) {
    absl::MutexLock lock(&shard.mu);
    auto it =
        shard.timers.emplace(TimerKey{options.deadline, op_id}, socket).first;
    if (it == shard.timers.begin()) Wake(shard);
  }
  return std::nullopt;
}

void Engine::EndWaiting(const std::weak_ptr<IoSocket>& weak, uint64_t op_id,
                        absl::Status status) {
  std::shared_ptr<IoSocket> socket = weak.lock();
  if (socket == nullptr) return;
  Batch batch;
  {
    absl::MutexLock lock(&socket->mu_);
    for (Interest interest : {Interest::kRead, Interest::kWrite}) {
      auto& queue = socket->queues_[Index(interest)];
      auto it = std::find_if(queue.begin(), queue.end(),
                             [op_id](const IoSocket::Pending& pending) {
                               return pending.id == op_id;
                             });
      if (it == queue.end()) continue;
      const bool was_front = it == queue.begin();
      if (it->deadline != absl::InfiniteFuture()) {
        batch.timers.emplace_back(it->deadline, it->id);
      }
      if (status.code() == absl::StatusCode::kDeadlineExceeded) {
        status = absl::DeadlineExceededError(
            absl::StrCat(it->op->name(), ": timed out"));
      }
      batch.done.push_back({std::move(it->op), std::move(status)});
      queue.erase(it);
      // The op that left may have declined data that is already there; with
      // edge-triggered epoll no new event comes for it, so the ops behind
      // it get their try now.
      if (was_front && socket->fd_.valid()) {
        RunQueueLocked(*socket, interest, batch);
      }
      break;
    }
  }
  Deliver(ShardOf(*socket), batch);
}

void Engine::FinishAll(Shard& shard, std::deque<IoSocket::Pending>& ops,
                       absl::Status status) {
  {
    absl::MutexLock lock(&shard.mu);
    for (const auto& pending : ops) {
      if (pending.deadline != absl::InfiniteFuture()) {
        shard.timers.erase(TimerKey{pending.deadline, pending.id});
      }
    }
  }
  shard.waiting -= ops.size();
  for (auto& pending : ops) pending.op->Complete(status);
  ops.clear();
}

void Engine::Close(IoSocket& socket) {
  std::deque<IoSocket::Pending> ops;
  {
    absl::MutexLock lock(&socket.mu_);
    if (!socket.fd_.valid()) return;
    for (auto& queue : socket.queues_) {
      for (auto& pending : queue) ops.push_back(std::move(pending));
      queue.clear();
    }
    // close() also removes the descriptor from the epoll set.
    DisarmLinger(socket.fd_.get());
    socket.fd_.reset();
  }
  Forget(socket);
  FinishAll(ShardOf(socket), ops,
            absl::AbortedError("the socket was closed while waiting"));
}

void Engine::Forget(const IoSocket& socket) {
  Shard& shard = ShardOf(socket);
  absl::MutexLock lock(&shard.mu);
  if (shard.sockets.erase(socket.id_) > 0) --shard.sockets_count;
}

void Engine::Shutdown() {
  if (shutting_down_.exchange(true)) return;
  // RunAt's callbacks run now, before the sockets they may use are drained.
  for (auto& shard : shards_) {
    for (auto& fn : TakeCallbacks(*shard, absl::Now(), /*all=*/true)) fn();
  }
  // Register checks the flag under its shard's lock, so a socket either is
  // in a map collected below or was refused.
  for (auto& shard : shards_) {
    std::vector<std::shared_ptr<IoSocket>> sockets;
    {
      absl::MutexLock lock(&shard->mu);
      for (const auto& [id, weak] : shard->sockets) {
        if (auto socket = weak.lock()) sockets.push_back(std::move(socket));
      }
    }
    for (const auto& socket : sockets) {
      std::deque<IoSocket::Pending> ops;
      {
        absl::MutexLock lock(&socket->mu_);
        for (auto& queue : socket->queues_) {
          for (auto& pending : queue) ops.push_back(std::move(pending));
          queue.clear();
        }
      }
      FinishAll(*shard, ops,
                absl::UnavailableError("the agent is shutting down"));
    }
  }
}

size_t Engine::waiting_ops() const {
  size_t total = 0;
  for (const auto& shard : shards_) total += shard->waiting;
  return total;
}

size_t Engine::sockets_on_shard(size_t shard) const {
  if (shard >= shards_.size()) return 0;
  return shards_[shard]->sockets_count;
}

void Engine::OnEvents(Shard& shard, uint64_t socket_id, uint32_t events) {
  std::shared_ptr<IoSocket> socket;
  {
    absl::MutexLock lock(&shard.mu);
    auto it = shard.sockets.find(socket_id);
    if (it == shard.sockets.end()) return;
    socket = it->second.lock();
  }
  if (socket == nullptr) return;
  Batch batch;
  {
    absl::MutexLock lock(&socket->mu_);
    if (!socket->fd_.valid()) return;
    for (Interest interest : {Interest::kRead, Interest::kWrite}) {
      const uint32_t mask =
          interest == Interest::kRead ? kReadEvents : kWriteEvents;
      if ((events & mask) != 0) RunQueueLocked(*socket, interest, batch);
    }
  }
  Deliver(shard, batch);
}

void Engine::RunQueueLocked(IoSocket& socket, Interest interest, Batch& batch) {
  auto& queue = socket.queues_[Index(interest)];
  const absl::Time now = absl::Now();
  while (!queue.empty()) {
    // A wait whose deadline passed ends here even if its timer has not run
    // yet: it must not take a connection or data for a caller that gave up.
    std::optional<absl::Status> result =
        queue.front().deadline <= now
            ? absl::DeadlineExceededError(
                  absl::StrCat(queue.front().op->name(), ": timed out"))
            : queue.front().op->Attempt(socket.fd_.get());
    if (!result.has_value()) break;
    if (queue.front().deadline != absl::InfiniteFuture()) {
      batch.timers.emplace_back(queue.front().deadline, queue.front().id);
    }
    batch.done.push_back({std::move(queue.front().op), *std::move(result)});
    queue.pop_front();
  }
}

void Engine::Deliver(Shard& shard, Batch& batch) {
  if (!batch.timers.empty()) {
    absl::MutexLock lock(&shard.mu);
    for (const TimerKey& key : batch.timers) shard.timers.erase(key);
  }
  shard.waiting -= batch.done.size();
  for (Completion& completion : batch.done) {
    completion.op->Complete(std::move(completion.status));
  }
}

void Engine::RunAt(const IoSocket& socket, absl::Time when,
                   absl::AnyInvocable<void()> fn) {
  Shard& shard = *shards_[socket.shard_];
  {
    absl::MutexLock lock(&shard.mu);
    // Checked under the lock Shutdown takes to drain the callbacks, so a
    // callback is either drained there or run here.
    if (!shutting_down_) {
      const bool earliest = shard.callbacks.empty() ||
                            when < shard.callbacks.begin()->first.first;
      shard.callbacks.emplace(TimerKey(when, shard.next_op_id++),
                              std::move(fn));
      if (earliest) Wake(shard);
      return;
    }
  }
  fn();
}

std::vector<absl::AnyInvocable<void()>> Engine::TakeCallbacks(Shard& shard,
                                                              absl::Time now,
                                                              bool all) {
  std::vector<absl::AnyInvocable<void()>> due;
  absl::MutexLock lock(&shard.mu);
  while (!shard.callbacks.empty() &&
         (all || shard.callbacks.begin()->first.first <= now)) {
    due.push_back(std::move(shard.callbacks.begin()->second));
    shard.callbacks.erase(shard.callbacks.begin());
  }
  return due;
}

void Engine::ExpireTimers(Shard& shard, absl::Time now) {
  std::vector<std::pair<uint64_t, std::weak_ptr<IoSocket>>> expired;
  {
    absl::MutexLock lock(&shard.mu);
    while (!shard.timers.empty() && shard.timers.begin()->first.first <= now) {
      expired.emplace_back(shard.timers.begin()->first.second,
                           std::move(shard.timers.begin()->second));
      shard.timers.erase(shard.timers.begin());
    }
  }
  for (auto& [op_id, socket] : expired) {
    EndWaiting(socket, op_id, absl::DeadlineExceededError("timed out"));
  }
  for (auto& fn : TakeCallbacks(shard, now, /*all=*/false)) fn();
}

void Engine::Run(Shard& shard) {
  epoll_event events[kMaxEvents];
  while (!stop_threads_) {
    absl::Time next = absl::InfiniteFuture();
    {
      absl::MutexLock lock(&shard.mu);
      if (!shard.timers.empty()) next = shard.timers.begin()->first.first;
      if (!shard.callbacks.empty()) {
        next = std::min(next, shard.callbacks.begin()->first.first);
      }
    }
    const int n = ::epoll_wait(shard.epoll_fd.get(), events, kMaxEvents,
                               WaitMillis(absl::Now(), next));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) {
        uint64_t count;
        [[maybe_unused]] ssize_t r =
            ::read(shard.wake_fd.get(), &count, sizeof(count));
        continue;
      }
      OnEvents(shard, events[i].data.u64, events[i].events);
    }
    ExpireTimers(shard, absl::Now());
  }
}

}  // namespace sockagent
