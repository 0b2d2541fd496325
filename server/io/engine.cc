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
  engine_->Forget(id_);
  // Every op ends exactly once, also when nobody closed the socket.
  engine_->FinishAll(ops, absl::AbortedError("the socket was released"));
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

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create() {
  ScopedFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd.valid()) return OsError(errno, "epoll_create1");
  ScopedFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd.valid()) return OsError(errno, "eventfd");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 0;  // socket ids start at 1
  if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &event) != 0) {
    return OsError(errno, "epoll_ctl");
  }
  std::unique_ptr<Engine> engine(
      new Engine(epoll_fd.release(), wake_fd.release()));
  engine->thread_ = std::thread([e = engine.get()] { e->Run(); });
  return engine;
}

Engine::Engine(int epoll_fd, int wake_fd)
    : epoll_fd_(epoll_fd), wake_fd_(wake_fd) {}

Engine::~Engine() {
  Shutdown();
  stop_thread_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
}

void Engine::Wake() {
  const uint64_t one = 1;
  // A full counter already guarantees a wake-up, so EAGAIN is fine.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
}

absl::StatusOr<std::shared_ptr<IoSocket>> Engine::Register(ScopedFd fd,
                                                           int family, int type,
                                                           int protocol) {
  const uint64_t id = next_id_++;
  const int raw_fd = fd.get();
  std::shared_ptr<IoSocket> socket(
      new IoSocket(this, id, std::move(fd), family, type, protocol));
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      return absl::UnavailableError("the agent is shutting down");
    }
    sockets_[id] = socket;
  }
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = id;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, raw_fd, &event) != 0) {
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
  const uint64_t op_id = next_id_++;
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
  ++waiting_;
  if (options.deadline != absl::InfiniteFuture()) {
    absl::MutexLock lock(&mu_);
    auto it = timers_.emplace(TimerKey{options.deadline, op_id}, socket).first;
    if (it == timers_.begin()) Wake();
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
  Deliver(batch);
}

void Engine::FinishAll(std::deque<IoSocket::Pending>& ops,
                       absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    for (const auto& pending : ops) {
      if (pending.deadline != absl::InfiniteFuture()) {
        timers_.erase(TimerKey{pending.deadline, pending.id});
      }
    }
  }
  waiting_ -= ops.size();
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
  Forget(socket.id_);
  FinishAll(ops, absl::AbortedError("the socket was closed while waiting"));
}

void Engine::Forget(uint64_t socket_id) {
  absl::MutexLock lock(&mu_);
  sockets_.erase(socket_id);
}

void Engine::Shutdown() {
  std::vector<std::shared_ptr<IoSocket>> sockets;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_.exchange(true)) return;
    for (const auto& [id, weak] : sockets_) {
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
    FinishAll(ops, absl::UnavailableError("the agent is shutting down"));
  }
}

size_t Engine::waiting_ops() const { return waiting_; }

void Engine::OnEvents(uint64_t socket_id, uint32_t events) {
  std::shared_ptr<IoSocket> socket;
  {
    absl::MutexLock lock(&mu_);
    auto it = sockets_.find(socket_id);
    if (it == sockets_.end()) return;
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
  Deliver(batch);
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

void Engine::Deliver(Batch& batch) {
  if (!batch.timers.empty()) {
    absl::MutexLock lock(&mu_);
    for (const TimerKey& key : batch.timers) timers_.erase(key);
  }
  waiting_ -= batch.done.size();
  for (Completion& completion : batch.done) {
    completion.op->Complete(std::move(completion.status));
  }
}

void Engine::ExpireTimers(absl::Time now) {
  std::vector<std::pair<uint64_t, std::weak_ptr<IoSocket>>> expired;
  {
    absl::MutexLock lock(&mu_);
    while (!timers_.empty() && timers_.begin()->first.first <= now) {
      expired.emplace_back(timers_.begin()->first.second,
                           std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
  }
  for (auto& [op_id, socket] : expired) {
    EndWaiting(socket, op_id, absl::DeadlineExceededError("timed out"));
  }
}

void Engine::Run() {
  epoll_event events[kMaxEvents];
  while (!stop_thread_) {
    absl::Time next = absl::InfiniteFuture();
    {
      absl::MutexLock lock(&mu_);
      if (!timers_.empty()) next = timers_.begin()->first.first;
    }
    const int n = ::epoll_wait(epoll_fd_.get(), events, kMaxEvents,
                               WaitMillis(absl::Now(), next));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) {
        uint64_t count;
        [[maybe_unused]] ssize_t r =
            ::read(wake_fd_.get(), &count, sizeof(count));
        continue;
      }
      OnEvents(events[i].data.u64, events[i].events);
    }
    ExpireTimers(absl::Now());
  }
}

}  // namespace sockagent
