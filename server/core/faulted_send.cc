#include "server/core/faulted_send.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proto/errno_status.h"
#include "server/core/faults.h"
#include "server/core/serial_events.h"

namespace sockagent {
namespace {

class FaultedSendRun;

// One send() / sendto() attempt, or a timer (kWait), as an engine op.
class StepOp final : public IoOp {
 public:
  StepOp(std::shared_ptr<FaultedSendRun> run, bool wait, const char* data,
         size_t len, int flags, const std::optional<SockAddr>& to,
         SocketOps& ops)
      : run_(std::move(run)),
        wait_(wait),
        data_(data),
        len_(len),
        flags_(flags),
        to_(to),
        ops_(ops) {}

  std::optional<absl::Status> Attempt(int fd) override {
    if (wait_) return std::nullopt;
    SysCallSize rc = to_.has_value()
                         ? ops_.SendTo(fd, data_, len_, flags_ | MSG_NOSIGNAL,
                                       to_->get(), to_->length)
                         : ops_.Send(fd, data_, len_, flags_ | MSG_NOSIGNAL);
    if (rc.would_block()) return std::nullopt;
    if (!rc.ok()) return OsError(rc.error, to_.has_value() ? "sendto" : "send");
    sent_ = static_cast<size_t>(rc.value);
    return absl::OkStatus();
  }
  void Complete(absl::Status status) override;
  const char* name() const override {
    return to_.has_value() ? "sendto" : "send";
  }

 private:
  std::shared_ptr<FaultedSendRun> run_;
  const bool wait_;
  const char* data_;
  const size_t len_;
  const int flags_;
  const std::optional<SockAddr> to_;
  SocketOps& ops_;
  size_t sent_ = 0;
};

class FaultedSendRun : public std::enable_shared_from_this<FaultedSendRun> {
 public:
  FaultedSendRun(SocketOps& ops, Engine& engine,
                 std::shared_ptr<ManagedSocket> socket, FaultedSend send,
                 absl::AnyInvocable<void(bool reset)> close,
                 Callback<uint64_t> done)
      : ops_(ops),
        engine_(engine),
        socket_(std::move(socket)),
        send_(std::move(send)),
        close_(std::move(close)),
        done_(std::move(done)),
        stream_(socket_->io()->type() == SOCK_STREAM) {}

  void Start() {
    Post([self = shared_from_this()] { self->Begin(); });
  }

  void OnStep(bool wait, absl::Status status, size_t sent) {
    Post([self = shared_from_this(), wait, status = std::move(status),
          sent]() mutable { self->Handle(wait, std::move(status), sent); });
  }

 private:
  void Post(absl::AnyInvocable<void()> event) {
    events_.Post(std::move(event));
  }

  const char* syscall() const {
    return send_.to.has_value() ? "sendto" : "send";
  }

  void Begin() {
    const v1::Faults faults = socket_->faults();
    const absl::Time now = absl::Now();
    if (ToAbsl(faults.close_after_time()) > absl::ZeroDuration() &&
        now >= socket_->faults_set_at() + ToAbsl(faults.close_after_time())) {
      return CloseForFault(faults.close_with_reset(), "close_after_time");
    }
    if (faults.blackhole()) return Finish(send_.data.size());
    FaultDice dice(faults.seed(), socket_->TakeFaultDraws(4));
    absl::Duration delay;
    if (stream_) {
      delay = DrawSendDelay(faults, dice);
    } else {
      const DatagramFate fate = DrawDatagramFate(faults, dice);
      if (fate.lost) return Finish(send_.data.size());
      copies_ = fate.duplicated ? 2 : 1;
      delay = fate.delay;
      std::optional<std::string> to;
      if (fate.reordered && send_.to.has_value()) {
        to = std::string(reinterpret_cast<const char*>(&send_.to->storage),
                         send_.to->length);
      }
      // Held until the next datagram goes (Next sends it after that one),
      // or, with none, alone once the hold limit passes. While one is held
      // this one is not: it goes now, and the held one after it.
      if (std::optional<uint64_t> ticket =
              fate.reordered ? socket_->TryHoldDatagram(
                                   std::make_pair(send_.data, std::move(to)))
                             : std::nullopt) {
        engine_.RunAt(
            *socket_->io(), now + delay + kReorderHoldLimit,
            [self = shared_from_this(), ticket = *ticket] {
              if (auto held = self->socket_->TakeHeldDatagram(ticket)) {
                self->SendHeld(std::move(*held));
              }
            });
        return Finish(send_.data.size());
      }
    }
    if (delay > absl::ZeroDuration()) {
      return Wait(now + delay);
    }
    Next();
  }

  // Decides the next step: a send, a pause, or the end.
  void Next() {
    const v1::Faults faults = socket_->faults();
    const absl::Time now = absl::Now();
    const size_t left = send_.data.size() - offset_;
    if (!stream_) {
      if (copies_ == 0) {
        if (auto held = socket_->SwapHeldDatagram(std::nullopt)) {
          SendHeld(std::move(*held));
        }
        // The datagram that reached close_after_bytes went; now the socket
        // closes, as a stream's does at its limit.
        if (faults.close_after_bytes() != 0 &&
            socket_->bytes_since_faults() >= faults.close_after_bytes()) {
          close_(faults.close_with_reset());
        }
        return Finish(send_.data.size());
      }
      if (faults.close_after_bytes() != 0 &&
          socket_->bytes_since_faults() >= faults.close_after_bytes()) {
        return CloseForFault(faults.close_with_reset(), "close_after_bytes");
      }
    } else if (left == 0 || (sent_any_ && stop_after_one_)) {
      return Finish(offset_);
    }
    if (not_before_ > now) return Wait(not_before_);
    size_t n = stream_ ? left : send_.data.size();
    if (stream_) {
      if (slice_left_ == 0) {
        FaultDice dice(faults.seed(), socket_->TakeFaultDraws(1));
        slice_left_ = DrawSliceBytes(faults, dice);
      }
      if (slice_left_ != 0) n = std::min(n, slice_left_);
      n = RatePacer::MaxChunk(faults.send_rate_bytes_per_second(), n);
      if (faults.close_after_bytes() != 0) {
        const uint64_t used = socket_->bytes_since_faults();
        if (used >= faults.close_after_bytes()) {
          return CloseForFault(faults.close_with_reset(), "close_after_bytes");
        }
        n = static_cast<size_t>(
            std::min<uint64_t>(n, faults.close_after_bytes() - used));
      }
    }
    if (faults.send_rate_bytes_per_second() != 0) {
      const absl::Time start =
          socket_->TakeSendSlot(n, faults.send_rate_bytes_per_second(), now);
      if (start > now) {
        pending_len_ = n;
        not_before_ = start;
        slot_taken_ = true;
        return Wait(start);
      }
    }
    Submit(false, n);
  }

  void Submit(bool wait, size_t n, absl::Time until = absl::InfiniteFuture()) {
    WaitOptions options = send_.wait;
    if (wait) {
      options.nonblocking = false;
      options.deadline = std::min(options.deadline, until);
    }
    const char* data = send_.data.data() + (stream_ ? offset_ : 0);
    engine_.Submit(socket_->io(), Interest::kWrite,
                   std::make_unique<StepOp>(shared_from_this(), wait, data, n,
                                            send_.flags, send_.to, ops_),
                   options);
  }

  void Wait(absl::Time until) {
    waiting_until_ = until;
    Submit(true, 0, until);
  }

  void Handle(bool wait, absl::Status status, size_t sent) {
    if (finished_) return;
    if (wait) {
      if (absl::IsDeadlineExceeded(status) && absl::Now() >= waiting_until_) {
        if (slot_taken_) {
          // The bandwidth slot was reserved: send what it was for.
          slot_taken_ = false;
          return Submit(false, pending_len_);
        }
        not_before_ = absl::InfinitePast();
        return Next();
      }
      return Fail(std::move(status));
    }
    if (!status.ok()) {
      if (offset_ > 0 && stream_) return Finish(offset_);
      return Fail(std::move(status));
    }
    socket_->bytes_sent += sent;
    sent_any_ = true;
    if (!stream_) {
      --copies_;
      return Next();
    }
    offset_ += sent;
    if (slice_left_ != 0) {
      slice_left_ -= std::min(slice_left_, sent);
      const absl::Duration pause = ToAbsl(socket_->faults().slice_delay());
      if (slice_left_ == 0 && pause > absl::ZeroDuration() &&
          offset_ < send_.data.size()) {
        not_before_ = absl::Now() + pause;
      }
    }
    const v1::Faults faults = socket_->faults();
    if (faults.close_after_bytes() != 0 &&
        socket_->bytes_since_faults() >= faults.close_after_bytes()) {
      // The limit is reached: the socket closes now, as the fault says.
      close_(faults.close_with_reset());
      return Finish(offset_);
    }
    // Like the kernel: without send_all a short write ends the call, unless
    // the shortness is the slicer's or the bandwidth's doing.
    if (!send_.send_all && faults.slice_bytes() == 0 &&
        faults.send_rate_bytes_per_second() == 0) {
      stop_after_one_ = true;
    }
    Next();
  }

  // Sends a held datagram now, best effort (never waits).
  void SendHeld(std::pair<std::string, std::optional<std::string>> held) {
    socket_->io()->WithFd([&](int fd) {
      SysCallSize rc{0, 0};
      if (held.second.has_value()) {
        SockAddr to;
        to.length = static_cast<socklen_t>(held.second->size());
        std::memcpy(&to.storage, held.second->data(), held.second->size());
        rc = ops_.SendTo(fd, held.first.data(), held.first.size(),
                         MSG_NOSIGNAL | MSG_DONTWAIT, to.get(), to.length);
      } else {
        rc = ops_.Send(fd, held.first.data(), held.first.size(),
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      if (rc.ok()) socket_->bytes_sent += static_cast<uint64_t>(rc.value);
    });
  }

  void CloseForFault(bool reset, const char* field) {
    close_(reset);
    const int err = reset ? ECONNRESET : EPIPE;
    Fail(OsErrorWithCode(
        ErrnoToCode(err), err, syscall(),
        absl::StrCat(syscall(), ": the socket was closed by Faults.", field)));
  }

  void Finish(uint64_t n) {
    if (finished_) return;
    finished_ = true;
    auto done = std::move(done_);
    done(n);
  }
  void Fail(absl::Status status) {
    if (finished_) return;
    finished_ = true;
    auto done = std::move(done_);
    done(std::move(status));
  }

  SocketOps& ops_;
  Engine& engine_;
  const std::shared_ptr<ManagedSocket> socket_;
  FaultedSend send_;
  absl::AnyInvocable<void(bool reset)> close_;
  Callback<uint64_t> done_;
  const bool stream_;

  SerialEvents events_;

  // Used by one event at a time (Post serializes them).
  bool finished_ = false;
  size_t offset_ = 0;
  int copies_ = 1;
  bool sent_any_ = false;
  bool stop_after_one_ = false;
  size_t slice_left_ = 0;
  absl::Time not_before_ = absl::InfinitePast();
  absl::Time waiting_until_ = absl::InfinitePast();
  bool slot_taken_ = false;
  size_t pending_len_ = 0;
};

void StepOp::Complete(absl::Status status) {
  std::shared_ptr<FaultedSendRun> run = std::move(run_);
  run->OnStep(wait_, std::move(status), sent_);
}

}  // namespace

void StartFaultedSend(SocketOps& ops, Engine& engine,
                      std::shared_ptr<ManagedSocket> socket, FaultedSend send,
                      absl::AnyInvocable<void(bool reset)> close,
                      Callback<uint64_t> done) {
  auto run = std::make_shared<FaultedSendRun>(ops, engine, std::move(socket),
                                              std::move(send), std::move(close),
                                              std::move(done));
  run->Start();
}

}  // namespace sockagent
