// Tests for server/io/engine.h on real kernel sockets: Unix socketpairs whose
// one end is registered with the engine and whose other end the test drives.

#include "server/io/engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"
#include "server/io/cancel_token.h"
#include "server/io/scoped_fd.h"
#include "tests/common/wait.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

// What happened to one op. Shared by the op and the test, so a late
// completion never touches a destroyed object.
struct Outcome {
  absl::Notification done;
  std::atomic<int> completions{0};
  // Written once, before `done` is notified.
  absl::Status status = absl::UnknownError("not completed");
  std::string data;
  std::thread::id thread;
  int order = -1;

  bool Wait() { return done.WaitForNotificationWithTimeout(kWait); }
  bool completed() const { return completions.load() > 0; }
};

// Hands out a global completion order across the ops of one test.
struct Sequence {
  std::atomic<int> next{0};
};

// recv() of up to `max_bytes`; waits on EAGAIN.
class ReadOp final : public IoOp {
 public:
  ReadOp(std::shared_ptr<Outcome> outcome, size_t max_bytes,
         Sequence* sequence = nullptr)
      : outcome_(std::move(outcome)),
        max_bytes_(max_bytes),
        sequence_(sequence) {}

  std::optional<absl::Status> Attempt(int fd) override {
    std::string buffer(max_bytes_, '\0');
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return std::nullopt;
    }
    if (n < 0) return OsError(errno, "recv");
    data_ = buffer.substr(0, static_cast<size_t>(n));
    return absl::OkStatus();
  }

  void Complete(absl::Status status) override {
    // A second completion must never overwrite the first: count it only.
    if (outcome_->completions.fetch_add(1) != 0) return;
    outcome_->status = std::move(status);
    outcome_->data = std::move(data_);
    outcome_->thread = std::this_thread::get_id();
    if (sequence_ != nullptr) outcome_->order = sequence_->next++;
    outcome_->done.Notify();
  }

  const char* name() const override { return "recv"; }

 private:
  const std::shared_ptr<Outcome> outcome_;
  const size_t max_bytes_;
  Sequence* const sequence_;
  std::string data_;
};

// send() of all of `data` in one call; waits on EAGAIN.
class WriteOp final : public IoOp {
 public:
  WriteOp(std::shared_ptr<Outcome> outcome, std::string data)
      : outcome_(std::move(outcome)), data_(std::move(data)) {}

  std::optional<absl::Status> Attempt(int fd) override {
    const ssize_t n = ::send(fd, data_.data(), data_.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return std::nullopt;
    }
    if (n < 0) return OsError(errno, "send");
    sent_ = static_cast<size_t>(n);
    return absl::OkStatus();
  }

  void Complete(absl::Status status) override {
    if (outcome_->completions.fetch_add(1) != 0) return;
    outcome_->status = std::move(status);
    outcome_->data = data_.substr(0, sent_);
    outcome_->done.Notify();
  }

  const char* name() const override { return "send"; }

 private:
  const std::shared_ptr<Outcome> outcome_;
  const std::string data_;
  size_t sent_ = 0;
};

// Waits until exactly `want` bytes can be read at once, then consumes them
// (MSG_PEEK first): an op that keeps waiting although the socket is readable,
// like AgentCore's Recv with MSG_PEEK | MSG_WAITALL.
class ReadExactlyOp final : public IoOp {
 public:
  ReadExactlyOp(std::shared_ptr<Outcome> outcome, size_t want)
      : outcome_(std::move(outcome)), want_(want) {}

  std::optional<absl::Status> Attempt(int fd) override {
    std::string buffer(want_, '\0');
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return std::nullopt;
    }
    if (n < 0) return OsError(errno, "recv");
    if (static_cast<size_t>(n) < want_) return std::nullopt;
    n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0) return OsError(errno, "recv");
    data_ = buffer.substr(0, static_cast<size_t>(n));
    return absl::OkStatus();
  }

  void Complete(absl::Status status) override {
    if (outcome_->completions.fetch_add(1) != 0) return;
    outcome_->status = std::move(status);
    outcome_->data = std::move(data_);
    outcome_->done.Notify();
  }

  const char* name() const override { return "recv"; }

 private:
  const std::shared_ptr<Outcome> outcome_;
  const size_t want_;
  std::string data_;
};

// An op that reports a different would-block errno, like a connect.
class ConnectLikeOp final : public IoOp {
 public:
  explicit ConnectLikeOp(std::shared_ptr<Outcome> outcome)
      : outcome_(std::move(outcome)) {}
  std::optional<absl::Status> Attempt(int) override { return std::nullopt; }
  void Complete(absl::Status status) override {
    if (outcome_->completions.fetch_add(1) != 0) return;
    outcome_->status = std::move(status);
    outcome_->done.Notify();
  }
  const char* name() const override { return "connect"; }
  int would_block_errno() const override { return EINPROGRESS; }

 private:
  const std::shared_ptr<Outcome> outcome_;
};

// One end registered with the engine; the other (`peer`) stays with the test.
struct Endpoint {
  std::shared_ptr<IoSocket> io;
  ScopedFd peer;
};

void WriteAll(int fd, const std::string& data) {
  ASSERT_EQ(::send(fd, data.data(), data.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(data.size()))
      << "errno " << errno;
}

// Every EngineTest runs with one shard (one engine thread, as before
// sharding) and with three (consecutive sockets on different threads).
class EngineTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { UseEngine(GetParam()); }

  // Replaces the engine by one with `shards` shards.
  void UseEngine(int shards) {
    engine_.reset();
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(shards);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_EQ(engine_->shards(), static_cast<size_t>(shards));
  }

  Endpoint NewEndpoint() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                     fds) != 0) {
      ADD_FAILURE() << "socketpair: errno " << errno;
      return {};
    }
    absl::StatusOr<std::shared_ptr<IoSocket>> io =
        engine_->Register(ScopedFd(fds[0]), AF_UNIX, SOCK_STREAM, 0);
    if (!io.ok()) {
      ADD_FAILURE() << io.status();
      ::close(fds[1]);
      return {};
    }
    return {*std::move(io), ScopedFd(fds[1])};
  }

  void SubmitRead(const Endpoint& endpoint, std::shared_ptr<Outcome> outcome,
                  const WaitOptions& options = {}, size_t max_bytes = 64,
                  Sequence* sequence = nullptr) {
    engine_->Submit(
        endpoint.io, Interest::kRead,
        std::make_unique<ReadOp>(std::move(outcome), max_bytes, sequence),
        options);
  }

  // A TCP connection on 127.0.0.1 whose registered end has SO_LINGER
  // `linger_value` and a full send buffer: the peer never read.
  Endpoint NewLingeringTcpEndpoint(linger linger_value) {
    ScopedFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    auto* raw = reinterpret_cast<sockaddr*>(&address);
    if (!listener.valid() || ::bind(listener.get(), raw, length) != 0 ||
        ::listen(listener.get(), 1) != 0 ||
        ::getsockname(listener.get(), raw, &length) != 0) {
      ADD_FAILURE() << "listener: errno " << errno;
      return {};
    }
    ScopedFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!client.valid() || ::connect(client.get(), raw, length) != 0) {
      ADD_FAILURE() << "connect: errno " << errno;
      return {};
    }
    ScopedFd peer(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!peer.valid()) {
      ADD_FAILURE() << "accept: errno " << errno;
      return {};
    }
    // Small buffers fill fast; the peer's window closes, data stays queued.
    const int small = 4096;
    ::setsockopt(client.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    ::setsockopt(peer.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    if (::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &linger_value,
                     sizeof(linger_value)) != 0) {
      ADD_FAILURE() << "SO_LINGER: errno " << errno;
      return {};
    }
    const std::string chunk(4096, 'x');
    for (int i = 0; i < 10000; ++i) {
      if (::send(client.get(), chunk.data(), chunk.size(),
                 MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        break;
      }
    }
    absl::StatusOr<std::shared_ptr<IoSocket>> io =
        engine_->Register(std::move(client), AF_INET, SOCK_STREAM, 0);
    if (!io.ok()) {
      ADD_FAILURE() << io.status();
      return {};
    }
    return {*std::move(io), std::move(peer)};
  }

  std::unique_ptr<Engine> engine_;
};

// Runs `close` on its own thread and reports whether it returned within
// kWait. If not, closing `peer` (unread data: RST) ends the lingering close
// so the thread can be joined.
bool ClosesWithoutWaiting(std::function<void()> close, ScopedFd& peer) {
  auto returned = std::make_shared<absl::Notification>();
  std::thread closer([&close, returned] {
    close();
    returned->Notify();
  });
  const bool in_time = returned->WaitForNotificationWithTimeout(kWait);
  peer.reset();
  closer.join();
  return in_time;
}

// Completes once data arrives; the completion then holds the engine thread
// until `release` (bounded), so readiness and timers pile up meanwhile.
class BlockingReadOp final : public IoOp {
 public:
  BlockingReadOp(absl::Notification* entered, absl::Notification* release)
      : entered_(entered), release_(release) {}
  std::optional<absl::Status> Attempt(int fd) override {
    char byte;
    if (::recv(fd, &byte, 1, 0) < 0) return std::nullopt;
    return absl::OkStatus();
  }
  void Complete(absl::Status) override {
    entered_->Notify();
    release_->WaitForNotificationWithTimeout(kWait);
  }
  const char* name() const override { return "recv"; }

 private:
  absl::Notification* const entered_;
  absl::Notification* const release_;
};

// The engine thread gets the socket's readiness in the same epoll batch as
// another socket's, whose completion holds it until the op's deadline passed
// (its timer not yet run): the op ends DEADLINE_EXCEEDED and the data stays
// for the next reader instead of going to a caller that gave up.
TEST_P(EngineTest, OpPastItsDeadlineTakesNothingWhenReadinessComesFirst) {
  // The three sockets must share one engine thread.
  UseEngine(1);
  Endpoint first = NewEndpoint();
  Endpoint second = NewEndpoint();
  Endpoint endpoint = NewEndpoint();
  absl::Notification entered1, release1, entered2, release2;
  engine_->Submit(first.io, Interest::kRead,
                  std::make_unique<BlockingReadOp>(&entered1, &release1), {});
  WriteAll(first.peer.get(), "x");
  ASSERT_TRUE(entered1.WaitForNotificationWithTimeout(kWait));

  // While the engine thread is held: a read with a deadline, and a blocker
  // whose socket becomes ready just before the read's.
  auto late = std::make_shared<Outcome>();
  WaitOptions options;
  options.deadline = absl::Now() + absl::Milliseconds(300);
  SubmitRead(endpoint, late, options);
  engine_->Submit(second.io, Interest::kRead,
                  std::make_unique<BlockingReadOp>(&entered2, &release2), {});
  WriteAll(second.peer.get(), "y");
  WriteAll(endpoint.peer.get(), "kept");
  release1.Notify();
  ASSERT_TRUE(entered2.WaitForNotificationWithTimeout(kWait));
  // The late read's deadline passes while the engine thread is held.
  ASSERT_TRUE(test::WaitFor([&] { return absl::Now() > options.deadline; },
                            test::kDefaultWait, "the read's deadline"));
  release2.Notify();
  ASSERT_TRUE(late->Wait());
  EXPECT_EQ(late->status.code(), absl::StatusCode::kDeadlineExceeded)
      << late->status << " data '" << late->data << "'";

  auto next = std::make_shared<Outcome>();
  SubmitRead(endpoint, next);
  ASSERT_TRUE(next->Wait());
  EXPECT_EQ(next->data, "kept");
}

TEST_P(EngineTest, ReadyOpCompletesInlineInSubmit) {
  Endpoint endpoint = NewEndpoint();
  WriteAll(endpoint.peer.get(), "hello");
  auto outcome = std::make_shared<Outcome>();

  SubmitRead(endpoint, outcome);

  // Completed before Submit returned, on this thread.
  ASSERT_TRUE(outcome->completed());
  EXPECT_EQ(outcome->thread, std::this_thread::get_id());
  EXPECT_TRUE(outcome->status.ok()) << outcome->status;
  EXPECT_EQ(outcome->data, "hello");
  EXPECT_EQ(engine_->waiting_ops(), 0u);
}

TEST_P(EngineTest, OpThatWouldBlockCompletesWhenDataArrives) {
  Endpoint endpoint = NewEndpoint();
  auto outcome = std::make_shared<Outcome>();

  SubmitRead(endpoint, outcome);
  EXPECT_FALSE(outcome->completed());
  EXPECT_EQ(engine_->waiting_ops(), 1u);

  WriteAll(endpoint.peer.get(), "late data");
  ASSERT_TRUE(outcome->Wait());
  EXPECT_TRUE(outcome->status.ok()) << outcome->status;
  EXPECT_EQ(outcome->data, "late data");
  EXPECT_EQ(outcome->completions.load(), 1);
  EXPECT_EQ(engine_->waiting_ops(), 0u);
}

TEST_P(EngineTest, WaitingWriteCompletesWhenThePeerDrainsTheBuffer) {
  Endpoint endpoint = NewEndpoint();
  // Fill the socket's send buffer (and the peer's receive buffer).
  const std::string chunk(4096, 'x');
  size_t filled = 0;
  endpoint.io->WithFd([&](int fd) {
    for (int i = 0; i < 100000; ++i) {
      const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n < 0) break;
      filled += static_cast<size_t>(n);
    }
  });
  ASSERT_GT(filled, 0u);
  auto outcome = std::make_shared<Outcome>();

  engine_->Submit(endpoint.io, Interest::kWrite,
                  std::make_unique<WriteOp>(outcome, "more"), {});
  EXPECT_FALSE(outcome->completed());
  EXPECT_EQ(engine_->waiting_ops(), 1u);

  // Drain everything the peer can read; the write then fits.
  std::string sink(1 << 16, '\0');
  for (size_t drained = 0; drained < filled;) {
    const ssize_t n = ::recv(endpoint.peer.get(), sink.data(), sink.size(), 0);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  ASSERT_TRUE(outcome->Wait());
  EXPECT_TRUE(outcome->status.ok()) << outcome->status;
  EXPECT_EQ(outcome->data, "more");
}

TEST_P(EngineTest, TwoWaitingReadsCompleteInFifoOrder) {
  Endpoint endpoint = NewEndpoint();
  Sequence sequence;
  auto first = std::make_shared<Outcome>();
  auto second = std::make_shared<Outcome>();

  SubmitRead(endpoint, first, {}, /*max_bytes=*/3, &sequence);
  SubmitRead(endpoint, second, {}, /*max_bytes=*/3, &sequence);
  EXPECT_EQ(engine_->waiting_ops(), 2u);

  WriteAll(endpoint.peer.get(), "abcdef");
  ASSERT_TRUE(first->Wait());
  ASSERT_TRUE(second->Wait());
  EXPECT_EQ(first->data, "abc");
  EXPECT_EQ(second->data, "def");
  EXPECT_EQ(first->order, 0);
  EXPECT_EQ(second->order, 1);
}

TEST_P(EngineTest, LaterReadQueuesBehindAWaitingOneEvenIfDataArrived) {
  Endpoint endpoint = NewEndpoint();
  auto first = std::make_shared<Outcome>();
  auto second = std::make_shared<Outcome>();
  SubmitRead(endpoint, first, {}, /*max_bytes=*/2);

  WriteAll(endpoint.peer.get(), "abcd");
  SubmitRead(endpoint, second, {}, /*max_bytes=*/2);

  ASSERT_TRUE(first->Wait());
  ASSERT_TRUE(second->Wait());
  EXPECT_EQ(first->data, "ab");
  EXPECT_EQ(second->data, "cd");
}

TEST_P(EngineTest, DeadlineEndsAWaitingOpWithDeadlineExceeded) {
  Endpoint endpoint = NewEndpoint();
  auto outcome = std::make_shared<Outcome>();
  WaitOptions options;
  options.deadline = absl::Now() + absl::Milliseconds(50);

  SubmitRead(endpoint, outcome, options);

  ASSERT_TRUE(outcome->Wait());
  EXPECT_EQ(outcome->status.code(), absl::StatusCode::kDeadlineExceeded)
      << outcome->status;
  EXPECT_THAT(std::string(outcome->status.message()), HasSubstr("timed out"));
  EXPECT_THAT(std::string(outcome->status.message()), HasSubstr("recv"));
  EXPECT_EQ(engine_->waiting_ops(), 0u);
}

TEST_P(EngineTest, DeadlineInThePastEndsTheOpInlineWithoutWaiting) {
  Endpoint endpoint = NewEndpoint();
  auto outcome = std::make_shared<Outcome>();
  WaitOptions options;
  options.deadline = absl::Now() - absl::Seconds(1);

  SubmitRead(endpoint, outcome, options);

  ASSERT_TRUE(outcome->completed());
  EXPECT_EQ(outcome->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(outcome->status.message()), HasSubstr("timed out"));
  EXPECT_EQ(engine_->waiting_ops(), 0u);
}

TEST_P(EngineTest, ExpiredDeadlineLeavesTheSocketUsable) {
  Endpoint endpoint = NewEndpoint();
  auto timed_out = std::make_shared<Outcome>();
  WaitOptions options;
  options.deadline = absl::Now() + absl::Milliseconds(20);
  SubmitRead(endpoint, timed_out, options);
  ASSERT_TRUE(timed_out->Wait());
  ASSERT_EQ(timed_out->status.code(), absl::StatusCode::kDeadlineExceeded);

  auto later = std::make_shared<Outcome>();
  SubmitRead(endpoint, later);
  WriteAll(endpoint.peer.get(), "still works");
  ASSERT_TRUE(later->Wait());
  EXPECT_TRUE(later->status.ok()) << later->status;
  EXPECT_EQ(later->data, "still works");
}

TEST_P(EngineTest, NonblockingOpFailsWithItsWouldBlockErrno) {
  Endpoint endpoint = NewEndpoint();
  WaitOptions options;
  options.nonblocking = true;
  auto read = std::make_shared<Outcome>();
  auto connect = std::make_shared<Outcome>();

  SubmitRead(endpoint, read, options);
  engine_->Submit(endpoint.io, Interest::kWrite,
                  std::make_unique<ConnectLikeOp>(connect), options);

  ASSERT_TRUE(read->completed());
  std::optional<ErrnoInfo> read_errno = GetErrno(read->status);
  ASSERT_TRUE(read_errno.has_value()) << read->status;
  EXPECT_EQ(read_errno->number, EAGAIN);
  EXPECT_EQ(read_errno->syscall, "recv");

  ASSERT_TRUE(connect->completed());
  std::optional<ErrnoInfo> connect_errno = GetErrno(connect->status);
  ASSERT_TRUE(connect_errno.has_value()) << connect->status;
  EXPECT_EQ(connect_errno->number, EINPROGRESS);
  EXPECT_EQ(connect_errno->syscall, "connect");
  EXPECT_EQ(engine_->waiting_ops(), 0u);
}

TEST_P(EngineTest, NonblockingOpSucceedsWhenTheSocketIsReady) {
  Endpoint endpoint = NewEndpoint();
  WriteAll(endpoint.peer.get(), "ready");
  WaitOptions options;
  options.nonblocking = true;
  auto outcome = std::make_shared<Outcome>();

  SubmitRead(endpoint, outcome, options);

  ASSERT_TRUE(outcome->completed());
  EXPECT_TRUE(outcome->status.ok()) << outcome->status;
  EXPECT_EQ(outcome->data, "ready");
}

TEST_P(EngineTest, CancelEndsAWaitingOpAndTheSocketStaysUsable) {
  Endpoint endpoint = NewEndpoint();
  CancelToken token;
  WaitOptions options;
  options.cancel = &token;
  auto cancelled = std::make_shared<Outcome>();
  SubmitRead(endpoint, cancelled, options);
  ASSERT_FALSE(cancelled->completed());
  ASSERT_EQ(engine_->waiting_ops(), 1u);

  token.Cancel();

  ASSERT_TRUE(cancelled->Wait());
  EXPECT_EQ(cancelled->status.code(), absl::StatusCode::kCancelled)
      << cancelled->status;
  EXPECT_EQ(engine_->waiting_ops(), 0u);

  auto later = std::make_shared<Outcome>();
  SubmitRead(endpoint, later);
  WriteAll(endpoint.peer.get(), "after cancel");
  ASSERT_TRUE(later->Wait());
  EXPECT_TRUE(later->status.ok()) << later->status;
  EXPECT_EQ(later->data, "after cancel");
  EXPECT_EQ(cancelled->completions.load(), 1);
}

TEST_P(EngineTest, CancellingTheFirstOfTwoWaitingReadsHandsDataToTheSecond) {
  Endpoint endpoint = NewEndpoint();
  CancelToken token;
  WaitOptions cancellable;
  cancellable.cancel = &token;
  auto first = std::make_shared<Outcome>();
  auto second = std::make_shared<Outcome>();
  SubmitRead(endpoint, first, cancellable);
  SubmitRead(endpoint, second);

  token.Cancel();
  ASSERT_TRUE(first->Wait());
  WriteAll(endpoint.peer.get(), "for the second");

  ASSERT_TRUE(second->Wait());
  EXPECT_EQ(first->status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(second->status.ok()) << second->status;
  EXPECT_EQ(second->data, "for the second");
}

TEST_P(EngineTest, TokenCancelledBeforeSubmitEndsWithCancelledWithoutWaiting) {
  Endpoint endpoint = NewEndpoint();
  CancelToken token;
  token.Cancel();
  WaitOptions options;
  options.cancel = &token;
  auto outcome = std::make_shared<Outcome>();

  SubmitRead(endpoint, outcome, options);

  ASSERT_TRUE(outcome->completed());
  EXPECT_EQ(outcome->status.code(), absl::StatusCode::kCancelled)
      << outcome->status;
  EXPECT_EQ(engine_->waiting_ops(), 0u);
}

// Regression (fixed): server/io/engine.cc, Engine::Submit: an op whose token
// was already cancelled still runs when its socket is ready (`queue.empty()` ->
// Attempt), so a Recv whose RPC was cancelled before it reached the engine
// consumes bytes that nobody will ever see.
TEST_P(EngineTest, TokenCancelledBeforeSubmitLeavesReadyDataInTheSocket) {
  Endpoint endpoint = NewEndpoint();
  WriteAll(endpoint.peer.get(), "keep me");
  CancelToken token;
  token.Cancel();
  WaitOptions options;
  options.cancel = &token;
  auto cancelled = std::make_shared<Outcome>();

  SubmitRead(endpoint, cancelled, options);

  ASSERT_TRUE(cancelled->completed());
  EXPECT_EQ(cancelled->status.code(), absl::StatusCode::kCancelled)
      << cancelled->status << " data='" << cancelled->data << "'";
  auto later = std::make_shared<Outcome>();
  WaitOptions nonblocking;
  nonblocking.nonblocking = true;
  SubmitRead(endpoint, later, nonblocking);
  ASSERT_TRUE(later->completed());
  EXPECT_EQ(later->data, "keep me") << later->status;
}

TEST_P(EngineTest, CloseEndsWaitingOpsWithAborted) {
  Endpoint endpoint = NewEndpoint();
  auto read = std::make_shared<Outcome>();
  auto timed = std::make_shared<Outcome>();
  WaitOptions with_deadline;
  with_deadline.deadline = absl::Now() + absl::Hours(1);
  SubmitRead(endpoint, read);
  SubmitRead(endpoint, timed, with_deadline);
  ASSERT_EQ(engine_->waiting_ops(), 2u);

  engine_->Close(*endpoint.io);

  ASSERT_TRUE(read->Wait());
  ASSERT_TRUE(timed->Wait());
  EXPECT_EQ(read->status.code(), absl::StatusCode::kAborted) << read->status;
  EXPECT_EQ(timed->status.code(), absl::StatusCode::kAborted) << timed->status;
  EXPECT_EQ(engine_->waiting_ops(), 0u);
  EXPECT_TRUE(endpoint.io->closed());
  // The descriptor really is closed: the peer sees end of file.
  char byte;
  EXPECT_EQ(::recv(endpoint.peer.get(), &byte, 1, 0), 0);
}

TEST_P(EngineTest, SubmitAfterCloseFailsWithFailedPreconditionAndEbadf) {
  Endpoint endpoint = NewEndpoint();
  engine_->Close(*endpoint.io);
  engine_->Close(*endpoint.io);  // idempotent
  auto outcome = std::make_shared<Outcome>();

  SubmitRead(endpoint, outcome);

  ASSERT_TRUE(outcome->completed());
  EXPECT_EQ(outcome->status.code(), absl::StatusCode::kFailedPrecondition)
      << outcome->status;
  std::optional<ErrnoInfo> info = GetErrno(outcome->status);
  ASSERT_TRUE(info.has_value()) << outcome->status;
  EXPECT_EQ(info->number, EBADF);
  EXPECT_FALSE(
      endpoint.io->WithFd([](int) { FAIL() << "fd of closed socket"; }));
}

TEST_P(EngineTest, ShutdownEndsWaitingOpsAndLaterSubmitsWithUnavailable) {
  Endpoint first = NewEndpoint();
  Endpoint second = NewEndpoint();
  auto read = std::make_shared<Outcome>();
  auto timed = std::make_shared<Outcome>();
  WaitOptions with_deadline;
  with_deadline.deadline = absl::Now() + absl::Hours(1);
  SubmitRead(first, read);
  SubmitRead(second, timed, with_deadline);
  ASSERT_EQ(engine_->waiting_ops(), 2u);

  engine_->Shutdown();

  ASSERT_TRUE(read->Wait());
  ASSERT_TRUE(timed->Wait());
  EXPECT_EQ(read->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(timed->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(engine_->waiting_ops(), 0u);

  // Even a ready op is refused now.
  WriteAll(first.peer.get(), "too late");
  auto later = std::make_shared<Outcome>();
  SubmitRead(first, later);
  ASSERT_TRUE(later->completed());
  EXPECT_EQ(later->status.code(), absl::StatusCode::kUnavailable)
      << later->status;

  // The sockets stay open until closed.
  EXPECT_FALSE(first.io->closed());
  engine_->Shutdown();  // idempotent
}

TEST_P(EngineTest, RunAtRunsOnTheSocketsShardWithoutBlockingItsQueues) {
  Endpoint endpoint = NewEndpoint();
  // Shared with the callback: the shard thread may still be in Notify when
  // the test ends.
  struct Ran {
    absl::Notification done;
    absl::Time at;
    std::thread::id on;
  };
  auto ran = std::make_shared<Ran>();
  const absl::Time when = absl::Now() + absl::Milliseconds(20);
  engine_->RunAt(*endpoint.io, when, [ran] {
    ran->at = absl::Now();
    ran->on = std::this_thread::get_id();
    ran->done.Notify();
  });
  // A read submitted after the timer is not queued behind it.
  auto read = std::make_shared<Outcome>();
  SubmitRead(endpoint, read);
  WriteAll(endpoint.peer.get(), "x");
  ASSERT_TRUE(read->Wait());
  EXPECT_TRUE(read->status.ok()) << read->status;
  ASSERT_TRUE(ran->done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(ran->at, when);
  EXPECT_NE(ran->on, std::this_thread::get_id());  // an engine thread
}

TEST_P(EngineTest, ShutdownRunsPendingRunAtCallbacksOnceAndLaterOnesAtOnce) {
  Endpoint endpoint = NewEndpoint();
  int runs = 0;
  engine_->RunAt(*endpoint.io, absl::Now() + absl::Hours(1), [&] { ++runs; });
  engine_->Shutdown();
  EXPECT_EQ(runs, 1);
  engine_->RunAt(*endpoint.io, absl::Now() + absl::Hours(1), [&] { ++runs; });
  EXPECT_EQ(runs, 2);
  engine_->Shutdown();
  EXPECT_EQ(runs, 2);
}

TEST_P(EngineTest, RegisterAfterShutdownIsUnavailableAndClosesTheFd) {
  engine_->Shutdown();
  int fds[2];
  ASSERT_EQ(
      ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds),
      0);
  ScopedFd peer(fds[1]);

  absl::StatusOr<std::shared_ptr<IoSocket>> io =
      engine_->Register(ScopedFd(fds[0]), AF_UNIX, SOCK_STREAM, 0);

  EXPECT_EQ(io.status().code(), absl::StatusCode::kUnavailable);
  char byte;
  EXPECT_EQ(::recv(peer.get(), &byte, 1, 0), 0) << "registered fd leaked";
}

TEST_P(EngineTest, WaitingOpsCountsOnlyOpsThatWait) {
  Endpoint a = NewEndpoint();
  Endpoint b = NewEndpoint();
  EXPECT_EQ(engine_->waiting_ops(), 0u);

  WriteAll(a.peer.get(), "x");
  auto inline_op = std::make_shared<Outcome>();
  SubmitRead(a, inline_op);  // completes inline
  EXPECT_EQ(engine_->waiting_ops(), 0u);

  auto a1 = std::make_shared<Outcome>();
  auto a2 = std::make_shared<Outcome>();
  auto b1 = std::make_shared<Outcome>();
  SubmitRead(a, a1, {}, 1);
  SubmitRead(a, a2, {}, 1);
  SubmitRead(b, b1);
  EXPECT_EQ(engine_->waiting_ops(), 3u);

  WriteAll(a.peer.get(), "y");
  ASSERT_TRUE(a1->Wait());
  EXPECT_EQ(engine_->waiting_ops(), 2u);

  engine_->Close(*b.io);
  ASSERT_TRUE(b1->Wait());
  EXPECT_EQ(engine_->waiting_ops(), 1u);

  WriteAll(a.peer.get(), "z");
  ASSERT_TRUE(a2->Wait());
  EXPECT_EQ(engine_->waiting_ops(), 0u);
}

// Regression (fixed): server/io/engine.cc, Engine::EndWaiting: when a deadline
// or a cancel removes the op at the head of a queue, the ops queued behind it
// are not attempted. If the removed op had declined a readable socket
// (AgentCore's Recv with MSG_PEEK | MSG_WAITALL waiting for more bytes does
// exactly that), the edge-triggered readiness was already consumed and the next
// op waits forever although its data sits in the socket.
TEST_P(EngineTest, ExpiredHeadOpThatDeclinedDataHandsItToTheNextOp) {
  Endpoint endpoint = NewEndpoint();
  WriteAll(endpoint.peer.get(), "hello");
  auto head = std::make_shared<Outcome>();
  auto next = std::make_shared<Outcome>();
  WaitOptions short_deadline;
  short_deadline.deadline = absl::Now() + absl::Milliseconds(50);
  engine_->Submit(endpoint.io, Interest::kRead,
                  std::make_unique<ReadExactlyOp>(head, 10), short_deadline);
  SubmitRead(endpoint, next);
  ASSERT_FALSE(next->completed());

  ASSERT_TRUE(head->Wait());
  EXPECT_EQ(head->status.code(), absl::StatusCode::kDeadlineExceeded);

  ASSERT_TRUE(next->done.WaitForNotificationWithTimeout(absl::Seconds(3)))
      << "the second read never saw the 5 bytes already in the socket";
  EXPECT_EQ(next->data, "hello");
}

TEST_P(EngineTest, ShutdownThenDestructionCompletesEachWaitingOpOnce) {
  auto pending = std::make_shared<Outcome>();
  {
    Endpoint endpoint = NewEndpoint();
    SubmitRead(endpoint, pending);
    engine_->Shutdown();
  }
  engine_.reset();
  ASSERT_TRUE(pending->completed());
  EXPECT_EQ(pending->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pending->completions.load(), 1);
}

// Regression (fixed): server/io/engine.cc, IoSocket::~IoSocket: dropping the
// last reference to a socket closes its descriptor (ScopedFd) but destroys the
// ops still queued on it without calling Complete(), breaking Submit's "ends
// exactly once" promise (a gRPC reactor behind such an op is never finished, so
// Server::Shutdown hangs). AgentCore is safe only because its ops keep their
// socket alive.
TEST_P(EngineTest, DroppingTheLastReferenceEndsWaitingOpsOnce) {
  auto pending = std::make_shared<Outcome>();
  Endpoint endpoint = NewEndpoint();
  SubmitRead(endpoint, pending);
  ASSERT_EQ(engine_->waiting_ops(), 1u);
  // Release the socket while the peer stays open: closing the peer first
  // would let the engine finish the read with EOF before the release.
  endpoint.io.reset();
  ASSERT_TRUE(pending->done.WaitForNotificationWithTimeout(absl::Seconds(3)))
      << "the op was destroyed without completing";
  EXPECT_EQ(pending->status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(engine_->waiting_ops(), 0u);
}

// SO_LINGER {on, 60 s} with data the peer never reads would make close(2)
// block the closing thread for a minute (a Close RPC, the session reaper,
// shutdown); the engine closes such a socket in the background instead.
TEST_P(EngineTest, CloseOfALingeringSocketDoesNotWaitForThePeer) {
  Endpoint endpoint = NewLingeringTcpEndpoint(linger{1, 60});
  ASSERT_NE(endpoint.io, nullptr);
  EXPECT_TRUE(ClosesWithoutWaiting([&] { engine_->Close(*endpoint.io); },
                                   endpoint.peer))
      << "Engine::Close waited for SO_LINGER";
}

TEST_P(EngineTest, ReleaseOfALingeringSocketDoesNotWaitForThePeer) {
  Endpoint endpoint = NewLingeringTcpEndpoint(linger{1, 60});
  ASSERT_NE(endpoint.io, nullptr);
  EXPECT_TRUE(ClosesWithoutWaiting([&] { endpoint.io.reset(); }, endpoint.peer))
      << "releasing the last reference waited for SO_LINGER";
}

// SO_LINGER {on, 0} keeps its meaning: close(2) resets the connection.
TEST_P(EngineTest, CloseWithZeroLingerStillResetsTheConnection) {
  Endpoint endpoint = NewLingeringTcpEndpoint(linger{1, 0});
  ASSERT_NE(endpoint.io, nullptr);
  engine_->Close(*endpoint.io);
  char buffer[65536];
  ssize_t n = 0;
  // The peer reads what arrived before the RST (bounded: the buffer was
  // small), then gets ECONNRESET.
  for (int i = 0; i < 1000; ++i) {
    n = ::recv(endpoint.peer.get(), buffer, sizeof(buffer), 0);
    if (n <= 0) break;
  }
  EXPECT_EQ(n, -1);
  EXPECT_EQ(errno, ECONNRESET);
}

// 1,000 ops on 40 socketpairs, submitted by four threads while they also
// write data, cancel tokens, expire deadlines and close sockets at random.
// Every op must complete exactly once; the engine is destroyed (its thread
// joined) before the completions are counted, so no late second completion
// can slip past the check.
TEST_P(EngineTest, EveryOpCompletesExactlyOnceUnderRandomCancelCloseAndData) {
  constexpr int kSockets = 40;
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 250;
  constexpr int kOps = kThreads * kOpsPerThread;

  std::vector<Endpoint> endpoints;
  for (int i = 0; i < kSockets; ++i) endpoints.push_back(NewEndpoint());
  std::vector<std::shared_ptr<Outcome>> outcomes;
  std::vector<std::unique_ptr<CancelToken>> tokens;
  for (int i = 0; i < kOps; ++i) {
    outcomes.push_back(std::make_shared<Outcome>());
    tokens.push_back(std::make_unique<CancelToken>());
  }
  std::atomic<int> completed{0};
  absl::Notification all_done;
  // Counts completions across all ops; wraps each op's own Outcome.
  class CountingOp final : public IoOp {
   public:
    CountingOp(std::unique_ptr<IoOp> inner, std::atomic<int>* completed,
               absl::Notification* all_done, int total,
               std::atomic<int>* timed_left, absl::Notification* timed_done)
        : inner_(std::move(inner)),
          completed_(completed),
          all_done_(all_done),
          total_(total),
          timed_left_(timed_left),
          timed_done_(timed_done) {}
    std::optional<absl::Status> Attempt(int fd) override {
      return inner_->Attempt(fd);
    }
    void Complete(absl::Status status) override {
      inner_->Complete(std::move(status));
      if (timed_left_ != nullptr && timed_left_->fetch_sub(1) == 1) {
        timed_done_->Notify();
      }
      if (completed_->fetch_add(1) + 1 == total_) all_done_->Notify();
    }
    const char* name() const override { return inner_->name(); }

   private:
    std::unique_ptr<IoOp> inner_;
    std::atomic<int>* completed_;
    absl::Notification* all_done_;
    const int total_;
    std::atomic<int>* timed_left_;  // null unless the op has a deadline
    absl::Notification* timed_done_;
  };
  // Ops with a deadline, counted before submission so the count cannot
  // reach zero early; one extra count is dropped after all submissions.
  std::atomic<int> timed_left{1};
  absl::Notification timed_done;

  const uint32_t seed = std::random_device()();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(seed + static_cast<uint32_t>(t));
      auto pick = [&](int n) {
        return std::uniform_int_distribution<int>(0, n - 1)(random);
      };
      for (int i = 0; i < kOpsPerThread; ++i) {
        const int op = t * kOpsPerThread + i;
        Endpoint& endpoint = endpoints[pick(kSockets)];
        WaitOptions options;
        switch (pick(4)) {
          case 0:
            options.cancel = tokens[op].get();
            break;
          case 1:
            options.deadline = absl::Now() + absl::Milliseconds(pick(30));
            break;
          case 2:
            options.nonblocking = pick(4) == 0;
            break;
          default:
            break;
        }
        std::unique_ptr<IoOp> inner;
        if (pick(5) == 0) {
          inner = std::make_unique<WriteOp>(outcomes[op], "w");
        } else {
          inner = std::make_unique<ReadOp>(outcomes[op], 1 + pick(4));
        }
        const bool timed = options.deadline != absl::InfiniteFuture();
        if (timed) ++timed_left;
        engine_->Submit(endpoint.io,
                        pick(5) == 0 ? Interest::kWrite : Interest::kRead,
                        std::make_unique<CountingOp>(
                            std::move(inner), &completed, &all_done, kOps,
                            timed ? &timed_left : nullptr, &timed_done),
                        options);
        // Then a random action on a random socket or op.
        switch (pick(6)) {
          case 0:
          case 1: {
            const char bytes[] = "abcd";
            [[maybe_unused]] ssize_t n =
                ::send(endpoints[pick(kSockets)].peer.get(), bytes, 1 + pick(4),
                       MSG_NOSIGNAL);
            break;
          }
          case 2:
            tokens[t * kOpsPerThread + pick(i + 1)]->Cancel();
            break;
          case 3:
            if (pick(40) == 0) engine_->Close(*endpoints[pick(kSockets)].io);
            break;
          default:
            break;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  // Let every deadline fire (or the op end otherwise) before closing.
  if (timed_left.fetch_sub(1) == 1) timed_done.Notify();
  ASSERT_TRUE(timed_done.WaitForNotificationWithTimeout(kWait))
      << timed_left.load() << " ops with a deadline still waiting";

  // Ops still waiting end when their socket closes; cancels race the closes.
  std::thread canceller([&] {
    for (int i = kOps - 1; i >= 0; i -= 2) tokens[i]->Cancel();
  });
  for (Endpoint& endpoint : endpoints) engine_->Close(*endpoint.io);
  canceller.join();
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(kWait))
      << completed.load() << " of " << kOps << " ops completed";
  EXPECT_EQ(engine_->waiting_ops(), 0u);

  // Cancel every token once more: ended ops must not complete again.
  for (auto& token : tokens) token->Cancel();
  endpoints.clear();
  engine_.reset();

  EXPECT_EQ(completed.load(), kOps);
  int never = 0;
  int twice = 0;
  for (const auto& outcome : outcomes) {
    const int n = outcome->completions.load();
    if (n == 0) ++never;
    if (n > 1) ++twice;
  }
  EXPECT_EQ(never, 0);
  EXPECT_EQ(twice, 0);
}

INSTANTIATE_TEST_SUITE_P(Shards, EngineTest, ::testing::Values(1, 3),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == 1
                                      ? std::string("OneShard")
                                      : absl::StrCat(info.param, "Shards");
                         });

// Completes once data arrives and reports the thread it completed on; the
// completion then holds that thread until `release` (bounded).
class HoldingReadOp final : public IoOp {
 public:
  // Shares `release`: the shard thread may still be inside the wait after
  // the test notified it and returned.
  HoldingReadOp(std::shared_ptr<Outcome> outcome,
                std::shared_ptr<absl::Notification> release)
      : outcome_(std::move(outcome)), release_(std::move(release)) {}
  std::optional<absl::Status> Attempt(int fd) override {
    char byte;
    if (::recv(fd, &byte, 1, 0) < 0) return std::nullopt;
    return absl::OkStatus();
  }
  void Complete(absl::Status status) override {
    if (outcome_->completions.fetch_add(1) == 0) {
      outcome_->status = std::move(status);
      outcome_->thread = std::this_thread::get_id();
      outcome_->done.Notify();
    }
    release_->WaitForNotificationWithTimeout(kWait);
  }
  const char* name() const override { return "recv"; }

 private:
  const std::shared_ptr<Outcome> outcome_;
  const std::shared_ptr<absl::Notification> release_;
};

using ShardedEngineTest = EngineTest;

TEST(EngineCreateTest, RefusesAShardCountOutOfRange) {
  for (int shards : {0, -1, Engine::kMaxShards + 1}) {
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(shards);
    ASSERT_FALSE(engine.ok()) << shards;
    EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(engine.status().message(), HasSubstr("shards"));
  }
}

TEST_P(ShardedEngineTest, SocketsSpreadEvenlyAcrossShards) {
  const size_t shards = engine_->shards();
  std::vector<Endpoint> endpoints;
  for (size_t i = 0; i < 2 * shards; ++i) endpoints.push_back(NewEndpoint());
  for (size_t shard = 0; shard < shards; ++shard) {
    EXPECT_EQ(engine_->sockets_on_shard(shard), 2u) << "shard " << shard;
  }
  // Two sockets registered one after the other (a connection's two ends)
  // run on different threads.
  EXPECT_NE(endpoints[0].io->shard(), endpoints[1].io->shard());

  // Closing frees the place: the next socket goes to the emptied shard.
  const size_t emptied = endpoints[1].io->shard();
  for (Endpoint& endpoint : endpoints) {
    if (endpoint.io->shard() == emptied) engine_->Close(*endpoint.io);
  }
  EXPECT_EQ(engine_->sockets_on_shard(emptied), 0u);
  Endpoint next = NewEndpoint();
  EXPECT_EQ(next.io->shard(), emptied);
  EXPECT_EQ(engine_->sockets_on_shard(emptied), 1u);
}

// The point of sharding: a completion that takes its time on one shard's
// thread does not hold up the sockets of another. With one engine thread
// the second read could not complete until the first completion returned.
TEST_P(ShardedEngineTest, OpOnOneShardCompletesWhileAnotherShardIsHeld) {
  Endpoint held = NewEndpoint();
  Endpoint free = NewEndpoint();
  ASSERT_NE(held.io->shard(), free.io->shard());
  auto release = std::make_shared<absl::Notification>();
  auto holding = std::make_shared<Outcome>();
  engine_->Submit(held.io, Interest::kRead,
                  std::make_unique<HoldingReadOp>(holding, release), {});
  WriteAll(held.peer.get(), "x");
  ASSERT_TRUE(holding->Wait()) << "the held shard's op never completed";
  ASSERT_NE(holding->thread, std::this_thread::get_id());

  auto other = std::make_shared<Outcome>();
  SubmitRead(free, other);
  EXPECT_FALSE(other->completed()) << "no data yet: the read must wait";
  WriteAll(free.peer.get(), "moving");
  const bool completed = other->Wait();
  release->Notify();
  ASSERT_TRUE(completed) << "a held shard stalled another shard's socket";
  EXPECT_TRUE(other->status.ok()) << other->status;
  EXPECT_EQ(other->data, "moving");
  EXPECT_NE(other->thread, holding->thread);
}

// Each shard runs its own timers and cancellations: a deadline and a cancel
// on every shard end their ops, and the sockets stay usable.
TEST_P(ShardedEngineTest, DeadlinesAndCancelWorkOnEveryShard) {
  const size_t shards = engine_->shards();
  std::vector<Endpoint> endpoints;
  for (size_t i = 0; i < shards; ++i) endpoints.push_back(NewEndpoint());
  std::vector<bool> seen(shards, false);
  for (const Endpoint& endpoint : endpoints) seen[endpoint.io->shard()] = true;
  ASSERT_EQ(std::count(seen.begin(), seen.end(), true),
            static_cast<long>(shards));

  std::vector<std::shared_ptr<Outcome>> timed;
  for (const Endpoint& endpoint : endpoints) {
    WaitOptions options;
    options.deadline = absl::Now() + absl::Milliseconds(50);
    timed.push_back(std::make_shared<Outcome>());
    SubmitRead(endpoint, timed.back(), options);
  }
  for (size_t i = 0; i < shards; ++i) {
    ASSERT_TRUE(timed[i]->Wait()) << "shard " << endpoints[i].io->shard();
    EXPECT_EQ(timed[i]->status.code(), absl::StatusCode::kDeadlineExceeded)
        << timed[i]->status;
  }

  std::vector<std::unique_ptr<CancelToken>> tokens;
  std::vector<std::shared_ptr<Outcome>> cancelled;
  for (const Endpoint& endpoint : endpoints) {
    tokens.push_back(std::make_unique<CancelToken>());
    WaitOptions options;
    options.cancel = tokens.back().get();
    cancelled.push_back(std::make_shared<Outcome>());
    SubmitRead(endpoint, cancelled.back(), options);
  }
  EXPECT_EQ(engine_->waiting_ops(), shards);
  for (auto& token : tokens) token->Cancel();
  for (size_t i = 0; i < shards; ++i) {
    ASSERT_TRUE(cancelled[i]->Wait());
    EXPECT_EQ(cancelled[i]->status.code(), absl::StatusCode::kCancelled);
  }
  EXPECT_EQ(engine_->waiting_ops(), 0u);

  for (const Endpoint& endpoint : endpoints) {
    auto after = std::make_shared<Outcome>();
    SubmitRead(endpoint, after);
    WriteAll(endpoint.peer.get(), "still");
    ASSERT_TRUE(after->Wait());
    EXPECT_EQ(after->data, "still");
  }
}

// Closing a socket ends only its own ops; the other shards keep theirs.
// Shutdown then ends what waits on every shard.
TEST_P(ShardedEngineTest, CloseEndsItsOwnOpsAndShutdownEndsEveryShards) {
  const size_t shards = engine_->shards();
  std::vector<Endpoint> endpoints;
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (size_t i = 0; i < shards; ++i) {
    endpoints.push_back(NewEndpoint());
    outcomes.push_back(std::make_shared<Outcome>());
    SubmitRead(endpoints.back(), outcomes.back());
  }
  EXPECT_EQ(engine_->waiting_ops(), shards);
  engine_->Close(*endpoints[0].io);
  ASSERT_TRUE(outcomes[0]->Wait());
  EXPECT_EQ(outcomes[0]->status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(engine_->waiting_ops(), shards - 1);
  for (size_t i = 1; i < shards; ++i) EXPECT_FALSE(outcomes[i]->completed());

  engine_->Shutdown();
  for (size_t i = 1; i < shards; ++i) {
    ASSERT_TRUE(outcomes[i]->Wait());
    EXPECT_EQ(outcomes[i]->status.code(), absl::StatusCode::kUnavailable)
        << outcomes[i]->status;
  }
  EXPECT_EQ(engine_->waiting_ops(), 0u);
  for (const Endpoint& endpoint : endpoints) {
    auto late = std::make_shared<Outcome>();
    SubmitRead(endpoint, late);
    ASSERT_TRUE(late->completed());
    EXPECT_EQ(late->status.code(), absl::StatusCode::kUnavailable)
        << late->status;
  }
}

INSTANTIATE_TEST_SUITE_P(Shards, ShardedEngineTest, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat(info.param, "Shards");
                         });

}  // namespace
}  // namespace sockagent
