#include "server/core/traffic.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proto/duration_codec.h"
#include "proto/errno_status.h"
#include "proto/traffic_data.h"

namespace sockagent {
namespace {

// Bytes per receive or per generated source chunk on a stream socket.
constexpr size_t kChunkBytes = 64 * 1024;
// Room for any datagram.
constexpr size_t kDatagramBuffer = 64 * 1024;
// How often traffic paused by Faults.stop_reading looks again.
constexpr absl::Duration kStopReadingPoll = absl::Milliseconds(10);
// A rate-limited send carries at most this much of a second's budget, so
// pacing stays smooth (and a rate change applies soon).
constexpr int64_t kRateSlicesPerSecond = 20;

absl::Status CheckDuration(const google::protobuf::Duration& d,
                           const char* field, bool positive) {
  const bool malformed =
      d.seconds() < 0 || d.nanos() < 0 || d.nanos() >= 1000000000;
  if (malformed || (positive && d.seconds() == 0 && d.nanos() == 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, positive ? ": must be a positive duration"
                                     : ": must be a non-negative duration"));
  }
  return absl::OkStatus();
}

// The smaller of two rates, where 0 means unlimited.
uint64_t MinRate(uint64_t a, uint64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

enum class Action { kStart, kRecv, kSend, kWait };

class TrafficRun;

// One step of a TrafficRun as an engine op.
class TrafficOp final : public IoOp {
 public:
  TrafficOp(std::shared_ptr<TrafficRun> run, Action action)
      : run_(std::move(run)), action_(action) {}
  std::optional<absl::Status> Attempt(int fd) override;
  void Complete(absl::Status status) override;
  const char* name() const override;

 private:
  std::shared_ptr<TrafficRun> run_;
  const Action action_;
};

class TrafficRun : public std::enable_shared_from_this<TrafficRun> {
 public:
  TrafficRun(SocketOps& ops, Engine& engine,
             std::shared_ptr<ManagedSocket> socket, TrafficOptions options,
             TrafficHooks hooks,
             absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done)
      : ops_(ops),
        engine_(engine),
        socket_(std::move(socket)),
        stream_(socket_->io()->type() == SOCK_STREAM),
        request_(std::move(options.request)),
        destination_(options.destination),
        call_deadline_(options.deadline),
        hooks_(std::move(hooks)),
        done_(std::move(done)),
        start_(absl::Now()) {
    end_ = request_.has_duration()
               ? start_ + FromProtoDuration(request_.duration())
               : absl::InfiniteFuture();
    switch (request_.kind_case()) {
      case v1::TrafficRequest::kEcho:
        max_bytes_ = request_.echo().max_bytes();
        break;
      case v1::TrafficRequest::kSink:
        max_bytes_ = request_.sink().max_bytes();
        break;
      default:
        max_bytes_ = request_.source().bytes();
        datagram_bytes_ = request_.source().datagram_bytes() == 0
                              ? kDefaultTrafficDatagramBytes
                              : request_.source().datagram_bytes();
        break;
    }
    buffer_.resize(stream_ ? kChunkBytes : kDatagramBuffer);
  }

  void Start(CancelToken* cancel) {
    if (cancel != nullptr) {
      cancel->SetCallback([weak = weak_from_this()] {
        if (std::shared_ptr<TrafficRun> run = weak.lock()) run->stop_.Cancel();
      });
    }
    OnStep(Action::kStart, absl::OkStatus());
  }

  // Runs on the engine op; the socket's lock is held.
  std::optional<absl::Status> Attempt(Action action, int fd) {
    if (action == Action::kWait) return std::nullopt;
    if (action == Action::kRecv) return AttemptRecv(fd);
    return AttemptSend(fd);
  }

  // Every op's outcome comes here. Outcomes are handled one at a time, in a
  // loop rather than by recursion, also when an op completes inside Submit.
  void OnStep(Action action, absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      queued_.emplace(action, std::move(status));
      if (running_) return;
      running_ = true;
    }
    for (;;) {
      std::optional<std::pair<Action, absl::Status>> step;
      {
        absl::MutexLock lock(&mu_);
        if (!queued_.has_value()) {
          running_ = false;
          return;
        }
        step.swap(queued_);
      }
      Handle(step->first, std::move(step->second));
    }
  }

 private:
  bool is_source() const {
    return request_.kind_case() == v1::TrafficRequest::kSource;
  }
  bool is_echo() const {
    return request_.kind_case() == v1::TrafficRequest::kEcho;
  }
  uint64_t total() const { return received_ + sent_; }

  std::optional<absl::Status> AttemptRecv(int fd) {
    SysCallSize rc;
    if (stream_) {
      rc = ops_.Recv(fd, buffer_.data(), recv_cap_, 0);
    } else {
      from_ = SockAddr();
      from_.length = sizeof(from_.storage);
      rc = ops_.RecvFrom(fd, buffer_.data(), buffer_.size(), 0,
                         from_.mutable_get(), &from_.length);
    }
    if (rc.would_block()) return std::nullopt;
    if (!rc.ok()) return OsError(rc.error, stream_ ? "recv" : "recvfrom");
    last_bytes_ = static_cast<size_t>(rc.value);
    return absl::OkStatus();
  }

  std::optional<absl::Status> AttemptSend(int fd) {
    size_t done = 0;
    for (;;) {
      const char* begin = buffer_.data() + pending_begin_ + done;
      const size_t left = send_len_ - done;
      SysCallSize rc = send_to_.has_value()
                           ? ops_.SendTo(fd, begin, left, MSG_NOSIGNAL,
                                         send_to_->get(), send_to_->length)
                           : ops_.Send(fd, begin, left, MSG_NOSIGNAL);
      if (rc.would_block()) {
        if (done == 0) return std::nullopt;
        break;
      }
      if (!rc.ok()) {
        if (done > 0) break;
        return OsError(rc.error, send_to_.has_value() ? "sendto" : "send");
      }
      done += static_cast<size_t>(rc.value);
      if (!stream_ || done >= send_len_) break;
    }
    last_bytes_ = done;
    return absl::OkStatus();
  }

  void Handle(Action action, absl::Status status) {
    if (finished_) return;
    if (!status.ok()) return OnError(std::move(status));
    switch (action) {
      case Action::kRecv:
        if (!OnReceived()) return;
        break;
      case Action::kSend:
        if (!stream_) {
          if (duplicate_) {
            duplicate_ = false;
            std::optional<std::string> to;
            if (send_to_.has_value()) {
              to =
                  std::string(reinterpret_cast<const char*>(&send_to_->storage),
                              send_to_->length);
            }
            SendHeld(std::make_pair(
                std::string(buffer_.data() + pending_begin_, last_bytes_),
                std::move(to)));
          }
          SendHeld(socket_->SwapHeldDatagram(std::nullopt));
        }
        OnSent();
        break;
      case Action::kStart:
      case Action::kWait:
        break;
    }
    Next();
  }

  void OnError(absl::Status status) {
    if (absl::IsDeadlineExceeded(status)) {
      const absl::Time now = absl::Now();
      if (now >= end_) return End(v1::TRAFFIC_END_DURATION);
      if (now >= call_deadline_) {
        return Fail(
            absl::DeadlineExceededError("traffic: the call's deadline passed"));
      }
      return Next();  // a delay or poll timer fired
    }
    if (absl::IsAborted(status) ||
        (absl::IsFailedPrecondition(status) && socket_->io()->closed())) {
      return Fail(absl::AbortedError("traffic: the socket was closed"));
    }
    Fail(std::move(status));
  }

  // Accounts a receive; false when the traffic ended (EOF).
  bool OnReceived() {
    const size_t n = last_bytes_;
    // A stream or SEQPACKET socket reads 0 bytes only at EOF; a datagram
    // socket may receive an empty datagram.
    if (n == 0 && socket_->io()->type() != SOCK_DGRAM) {
      End(v1::TRAFFIC_END_EOF);
      return false;
    }
    if (!stream_ && hooks_.accept_source &&
        from_.length > sizeof(sa_family_t) &&
        !hooks_.accept_source(from_.get(), from_.length)) {
      return true;  // dropped; receive the next one
    }
    received_ += n;
    socket_->bytes_received += n;
    if (!stream_) ++datagrams_received_;
    checksum_.Update(absl::string_view(buffer_.data(), n));
    if (is_echo()) {
      pending_begin_ = 0;
      pending_end_ = n;
      delay_owed_ = true;
      reply_to_.reset();
      if (!stream_) {
        // An unnamed sender (a connected Unix socket) is answered on the
        // connection.
        if (from_.length > sizeof(sa_family_t)) reply_to_ = from_;
        datagram_pending_ = true;  // echoed even when empty
      }
    }
    return true;
  }

  void OnSent() {
    const size_t n = last_bytes_;
    const absl::Time now = absl::Now();
    if (is_source()) {
      checksum_.Update(absl::string_view(buffer_.data() + pending_begin_, n));
    }
    sent_ += n;
    socket_->bytes_sent += n;
    if (!stream_) {
      ++datagrams_sent_;
      pending_begin_ = pending_end_;  // a datagram goes whole or not at all
      datagram_pending_ = false;
    } else {
      pending_begin_ += n;
    }
    if (send_rate_ != 0) {
      next_send_at_ = std::max(next_send_at_, send_started_) +
                      absl::Seconds(static_cast<double>(n) /
                                    static_cast<double>(send_rate_));
    }
    if (slice_delay_ > absl::ZeroDuration() && pending_begin_ < pending_end_) {
      next_send_at_ = std::max(next_send_at_, now + slice_delay_);
    }
  }

  // Decides and submits the next op, or ends the traffic.
  void Next() {
    const absl::Time now = absl::Now();
    if (now >= end_) return End(v1::TRAFFIC_END_DURATION);
    if (now >= call_deadline_) {
      return Fail(
          absl::DeadlineExceededError("traffic: the call's deadline passed"));
    }
    const v1::Faults faults = socket_->faults();
    close_at_ = absl::InfiniteFuture();
    if (ToAbsl(faults.close_after_time()) > absl::ZeroDuration()) {
      close_at_ = socket_->faults_set_at() + ToAbsl(faults.close_after_time());
      if (now >= close_at_) {
        if (hooks_.fault_close) hooks_.fault_close(faults.close_with_reset());
        return End(v1::TRAFFIC_END_FAULT);
      }
    }
    const uint64_t close_after = faults.close_after_bytes();
    if (close_after != 0 && total() >= close_after) {
      if (hooks_.fault_close) hooks_.fault_close(faults.close_with_reset());
      return End(v1::TRAFFIC_END_FAULT);
    }
    if (pending_begin_ < pending_end_ || datagram_pending_) {
      return NextSend(faults, now);
    }
    if (is_source()) {
      if (max_bytes_ != 0 && sent_ >= max_bytes_) {
        if (request_.source().shutdown_write_at_end() && stream_) {
          // slow_close: the FIN waits close_delay.
          const absl::Duration close_delay = ToAbsl(faults.close_delay());
          if (close_delay > absl::ZeroDuration() && !close_delay_done_) {
            close_delay_done_ = true;
            return Wait(Interest::kWrite, now + close_delay);
          }
          socket_->io()->WithFd(
              [&](int fd) { ops_.Shutdown(fd, SHUT_WR).ok(); });
        }
        return End(v1::TRAFFIC_END_BYTES);
      }
      return Generate(faults, now);
    }
    if (max_bytes_ != 0 && received_ >= max_bytes_) {
      return End(v1::TRAFFIC_END_BYTES);
    }
    if (faults.stop_reading()) {
      return Wait(Interest::kRead, now + kStopReadingPoll);
    }
    recv_cap_ = buffer_.size();
    if (stream_) {
      if (max_bytes_ != 0)
        recv_cap_ = std::min(recv_cap_, max_bytes_ - received_);
      if (close_after != 0) {
        recv_cap_ = std::min(recv_cap_, close_after - total());
      }
    }
    Submit(Interest::kRead, Action::kRecv);
  }

  // The source's next chunk (stream) or datagram.
  void Generate(const v1::Faults& faults, absl::Time now) {
    const v1::SourceTraffic& source = request_.source();
    size_t n = stream_ ? kChunkBytes : datagram_bytes_;
    if (max_bytes_ != 0) n = std::min<uint64_t>(n, max_bytes_ - sent_);
    const uint64_t rate = MinRate(source.rate_bytes_per_second(),
                                  faults.send_rate_bytes_per_second());
    if (stream_ && rate != 0) {
      n = std::min<uint64_t>(
          n, std::max<uint64_t>(1, rate / kRateSlicesPerSecond));
    }
    FillPattern(source.pattern(), source.seed(), sent_, buffer_.data(), n);
    pending_begin_ = 0;
    pending_end_ = n;
    datagram_pending_ = !stream_;
    delay_owed_ = true;
    NextSend(faults, now);
  }

  void NextSend(const v1::Faults& faults, absl::Time now) {
    if (delay_owed_) {
      delay_owed_ = false;
      FaultDice dice(faults.seed(), socket_->TakeFaultDraws(1));
      const absl::Duration delay = DrawSendDelay(faults, dice);
      if (delay > absl::ZeroDuration()) {
        return Wait(Interest::kWrite, now + delay);
      }
    }
    send_rate_ =
        MinRate(is_source() ? request_.source().rate_bytes_per_second() : 0,
                faults.send_rate_bytes_per_second());
    slice_delay_ = stream_ ? FromProtoDuration(faults.slice_delay())
                           : absl::ZeroDuration();
    if (next_send_at_ > now &&
        (send_rate_ != 0 || slice_delay_ > absl::ZeroDuration())) {
      return Wait(Interest::kWrite, next_send_at_);
    }
    size_t n = pending_end_ - pending_begin_;
    if (stream_) {
      if (faults.slice_bytes() != 0) {
        FaultDice dice(faults.seed(), socket_->TakeFaultDraws(1));
        n = std::min<size_t>(n, DrawSliceBytes(faults, dice));
      }
      if (send_rate_ != 0) {
        n = std::min<uint64_t>(
            n, std::max<uint64_t>(1, send_rate_ / kRateSlicesPerSecond));
      }
      if (faults.close_after_bytes() != 0) {
        n = std::min<uint64_t>(n, faults.close_after_bytes() - total());
      }
    }
    send_len_ = n;
    send_to_.reset();
    if (!stream_) {
      if (reply_to_.has_value()) {
        send_to_ = reply_to_;
      } else if (destination_.has_value()) {
        send_to_ = destination_;
      }
      if (send_to_.has_value() && hooks_.check_sendto) {
        if (absl::Status allowed = hooks_.check_sendto(*send_to_);
            !allowed.ok()) {
          return Fail(std::move(allowed));
        }
      }
    }
    send_started_ = now;
    if (faults.blackhole()) {
      // timeout/blackhole: swallowed, as if sent into a dead network.
      last_bytes_ = send_len_;
      OnSent();
      return Next();
    }
    if (!stream_) {
      FaultDice dice(faults.seed(), socket_->TakeFaultDraws(3));
      const bool lost = dice.Chance(faults.loss_percent());
      duplicate_ = !lost && dice.Chance(faults.duplicate_percent());
      const bool reorder = !lost && dice.Chance(faults.reorder_percent());
      if (lost || reorder) {
        if (reorder) {
          std::optional<std::string> to;
          if (send_to_.has_value()) {
            to = std::string(reinterpret_cast<const char*>(&send_to_->storage),
                             send_to_->length);
          }
          SendHeld(socket_->SwapHeldDatagram(std::make_pair(
              std::string(buffer_.data() + pending_begin_, send_len_),
              std::move(to))));
        }
        last_bytes_ = send_len_;
        OnSent();
        return Next();
      }
    }
    Submit(Interest::kWrite, Action::kSend);
  }

  // Sends a datagram a reorder fault held back (or a duplicate), best
  // effort, never waiting.
  void SendHeld(
      std::optional<std::pair<std::string, std::optional<std::string>>> held) {
    if (!held.has_value()) return;
    socket_->io()->WithFd([&](int fd) {
      SysCallSize rc{0, 0};
      if (held->second.has_value()) {
        SockAddr to;
        to.length = static_cast<socklen_t>(held->second->size());
        std::memcpy(&to.storage, held->second->data(), held->second->size());
        rc = ops_.SendTo(fd, held->first.data(), held->first.size(),
                         MSG_NOSIGNAL | MSG_DONTWAIT, to.get(), to.length);
      } else {
        rc = ops_.Send(fd, held->first.data(), held->first.size(),
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      if (rc.ok()) socket_->bytes_sent += static_cast<uint64_t>(rc.value);
    });
  }

  void Wait(Interest interest, absl::Time until) {
    Submit(interest, Action::kWait, until);
  }

  void Submit(Interest interest, Action action,
              absl::Time until = absl::InfiniteFuture()) {
    WaitOptions wait;
    wait.deadline = std::min({until, end_, call_deadline_, close_at_});
    wait.cancel = &stop_;
    engine_.Submit(socket_->io(), interest,
                   std::make_unique<TrafficOp>(shared_from_this(), action),
                   wait);
  }

  void End(v1::TrafficEnd end) {
    v1::TrafficResponse response;
    const absl::Duration elapsed = absl::Now() - start_;
    response.set_bytes_received(received_);
    response.set_bytes_sent(sent_);
    response.set_datagrams_received(datagrams_received_);
    response.set_datagrams_sent(datagrams_sent_);
    SetProtoDuration(elapsed, response.mutable_elapsed());
    const double seconds = absl::ToDoubleSeconds(elapsed);
    response.set_bytes_per_second(
        seconds > 0 ? static_cast<double>(total()) / seconds : 0.0);
    response.set_checksum(checksum_.Hex());
    response.set_checksum_algorithm("xxh3-64");
    response.set_end(end);
    Deliver(std::move(response));
  }

  void Fail(absl::Status status) { Deliver(std::move(status)); }

  void Deliver(absl::StatusOr<v1::TrafficResponse> result) {
    if (finished_) return;
    finished_ = true;
    auto done = std::move(done_);
    done(std::move(result));
  }

  SocketOps& ops_;
  Engine& engine_;
  const std::shared_ptr<ManagedSocket> socket_;
  const bool stream_;
  const v1::TrafficRequest request_;
  const std::optional<SockAddr> destination_;
  const absl::Time call_deadline_;
  TrafficHooks hooks_;
  absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done_;
  const absl::Time start_;
  absl::Time end_;
  // Fires once to end whatever op waits: the caller cancelled.
  CancelToken stop_;

  absl::Mutex mu_;
  std::optional<std::pair<Action, absl::Status>> queued_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;

  // The fields below are used by one step at a time (OnStep serializes the
  // steps; an op's Attempt runs only while its step waits).
  bool finished_ = false;
  uint64_t max_bytes_ = 0;
  size_t datagram_bytes_ = 0;
  uint64_t received_ = 0;
  uint64_t sent_ = 0;
  uint64_t datagrams_received_ = 0;
  uint64_t datagrams_sent_ = 0;
  StreamChecksum checksum_;
  std::string buffer_;
  size_t recv_cap_ = 0;
  size_t last_bytes_ = 0;
  SockAddr from_;
  // buffer_[pending_begin_, pending_end_) is still to be sent.
  size_t pending_begin_ = 0;
  size_t pending_end_ = 0;
  // A datagram (possibly empty) waits to be sent.
  bool datagram_pending_ = false;
  size_t send_len_ = 0;
  std::optional<SockAddr> send_to_;
  std::optional<SockAddr> reply_to_;
  // Faults.send_delay is owed before the pending data's first send.
  bool delay_owed_ = false;
  bool close_delay_done_ = false;
  // Faults.duplicate_percent drew this datagram: it goes twice.
  bool duplicate_ = false;
  // Faults.close_after_time's moment (InfiniteFuture: none).
  absl::Time close_at_ = absl::InfiniteFuture();
  uint64_t send_rate_ = 0;
  absl::Duration slice_delay_ = absl::ZeroDuration();
  absl::Time send_started_ = absl::InfinitePast();
  absl::Time next_send_at_ = absl::InfinitePast();
};

std::optional<absl::Status> TrafficOp::Attempt(int fd) {
  return run_->Attempt(action_, fd);
}

void TrafficOp::Complete(absl::Status status) {
  run_->OnStep(action_, std::move(status));
}

const char* TrafficOp::name() const {
  switch (action_) {
    case Action::kRecv:
      return "recv";
    case Action::kSend:
      return "send";
    default:
      return "traffic";
  }
}

}  // namespace

absl::Status ValidateTrafficRequest(const v1::TrafficRequest& request) {
  if (request.has_duration()) {
    if (absl::Status s = CheckDuration(request.duration(), "duration",
                                       /*positive=*/true);
        !s.ok()) {
      return s;
    }
  }
  switch (request.kind_case()) {
    case v1::TrafficRequest::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "kind: set one of echo, sink or source");
    case v1::TrafficRequest::kSource: {
      const v1::SourceTraffic& source = request.source();
      if (!IsKnownPattern(source.pattern())) {
        return absl::InvalidArgumentError(
            absl::StrCat("source.pattern: unknown pattern ",
                         static_cast<int>(source.pattern())));
      }
      if (source.bytes() == 0 && !request.has_duration()) {
        return absl::InvalidArgumentError(
            "source.bytes: required unless duration is set (a source needs "
            "an end)");
      }
      if (source.datagram_bytes() > kMaxTrafficDatagramBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "source.datagram_bytes: ", source.datagram_bytes(),
            " exceeds the largest datagram of ", kMaxTrafficDatagramBytes));
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

void StartTraffic(
    SocketOps& ops, Engine& engine, std::shared_ptr<ManagedSocket> socket,
    TrafficOptions options, TrafficHooks hooks,
    absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done) {
  CancelToken* cancel = options.cancel;
  auto run = std::make_shared<TrafficRun>(ops, engine, std::move(socket),
                                          std::move(options), std::move(hooks),
                                          std::move(done));
  run->Start(cancel);
}

}  // namespace sockagent
