#include "server/core/relay_run.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "proto/duration_codec.h"

namespace sockagent {
namespace internal {

std::optional<absl::Status> RelayOp::Attempt(int fd) {
  SysCallSize rc{0, 0};
  switch (kind_) {
    case OpKind::kWait:
      return std::nullopt;
    case OpKind::kRecv:
      rc = ops_.Recv(fd, RecvBuffer(), RecvCapacity(), 0);
      break;
    case OpKind::kRecvFrom:
      result_.from = SockAddr();
      result_.from.length = sizeof(result_.from.storage);
      rc = ops_.RecvFrom(fd, RecvBuffer(), RecvCapacity(), 0,
                         result_.from.mutable_get(), &result_.from.length);
      break;
    case OpKind::kSend:
      rc = to_.has_value() ? ops_.SendTo(fd, data_, len_, MSG_NOSIGNAL,
                                         to_->get(), to_->length)
                           : ops_.Send(fd, data_, len_, MSG_NOSIGNAL);
      break;
  }
  if (rc.would_block()) return std::nullopt;
  result_.error = rc.error;
  if (rc.ok()) result_.bytes = static_cast<size_t>(rc.value);
  if (datagram_ && rc.ok()) {
    result_.buffer.assign(Scratch(), result_.bytes);
  }
  return absl::OkStatus();
}

void RelayOp::Complete(absl::Status status) {
  result_.status = std::move(status);
  std::shared_ptr<RelayRun> run = std::move(run_);
  run->Post(
      [handler = std::move(handler_), result = std::move(result_)]() mutable {
        handler(std::move(result));
      });
}

const char* RelayOp::name() const {
  switch (kind_) {
    case OpKind::kRecv:
      return "recv";
    case OpKind::kRecvFrom:
      return "recvfrom";
    case OpKind::kSend:
      return "send";
    default:
      return "relay";
  }
}

char* RelayOp::Scratch() {
  thread_local std::unique_ptr<char[]> buffer(new char[kDatagramBuffer]);
  return buffer.get();
}

void RelayRun::Start() {
  if (options_.cancel != nullptr) {
    options_.cancel->SetCallback([weak = weak_from_this()] {
      if (std::shared_ptr<RelayRun> run = weak.lock()) {
        run->Post([run] {
          run->Fail(absl::CancelledError("relay: cancelled by the caller"));
        });
      }
    });
  }
  Post([self = shared_from_this()] { self->Begin(); });
}

void RelayRun::Submit(Slot& slot, const std::shared_ptr<IoSocket>& io,
                      Interest interest, std::unique_ptr<RelayOp> op,
                      absl::Time until) {
  slot.busy = true;
  slot.token = std::make_shared<CancelToken>();
  WaitOptions wait;
  wait.deadline = std::min({until, options_.end, options_.deadline});
  wait.cancel = slot.token.get();
  // The op keeps the token alive while the engine may call it.
  engine_.Submit(io, interest, std::move(op), wait);
}

bool RelayRun::Usable(const IoResult& result, bool* timer_fired) {
  *timer_fired = false;
  if (finished_) return false;
  if (result.status.ok()) return true;
  if (absl::IsDeadlineExceeded(result.status)) {
    const absl::Time now = absl::Now();
    if (now >= options_.end) {
      End(v1::TRAFFIC_END_DURATION);
      return false;
    }
    if (now >= options_.deadline) {
      Fail(absl::DeadlineExceededError("relay: the call's deadline passed"));
      return false;
    }
    *timer_fired = true;
    return false;
  }
  if (absl::IsCancelled(result.status)) {
    // An op the relay ended itself (a slot's token); the caller's cancel
    // arrives as its own event.
    *timer_fired = true;
    return false;
  }
  return false;
}

void RelayRun::End(v1::TrafficEnd end) {
  if (finished_) return;
  // Both ends saw EOF because the session closed its sockets one by one:
  // the relay was ended by the session, not by its peers.
  if (socket_->session_ended()) return Fail(ClosedError());
  v1::TrafficResponse response;
  const absl::Duration elapsed = absl::Now() - start_;
  SetProtoDuration(elapsed, response.mutable_elapsed());
  Fill(response);
  const double seconds = absl::ToDoubleSeconds(elapsed);
  response.set_bytes_per_second(
      seconds > 0 ? static_cast<double>(response.bytes_received() +
                                        response.bytes_sent()) /
                        seconds
                  : 0.0);
  response.set_checksum(checksum_.Hex());
  response.set_checksum_algorithm("xxh3-64");
  response.set_end(end);
  Deliver(std::move(response));
}

void RelayRun::Deliver(absl::StatusOr<v1::TrafficResponse> result) {
  if (finished_) return;
  finished_ = true;
  Stop();
  auto done = std::move(done_);
  done(std::move(result));
}

}  // namespace internal
}  // namespace sockagent
