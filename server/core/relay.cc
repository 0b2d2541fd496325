#include "server/core/relay.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proto/errno_status.h"
#include "proto/traffic_data.h"
#include "server/core/faults.h"
#include "server/core/serial_events.h"

namespace sockagent {
namespace {

// Bytes per stream receive.
constexpr size_t kStreamChunk = 128 * 1024;
// A direction stops reading while this much waits to be sent (a latency
// fault holds up to rate x delay).
constexpr size_t kMaxQueuedBytes = 8 * 1024 * 1024;
constexpr size_t kDatagramBuffer = 64 * 1024;
// How often a relay paused by Faults.stop_reading looks again.
constexpr absl::Duration kStopReadingPoll = absl::Milliseconds(10);
// How soon an idle relay sees a close fault set while it runs (SetFaults
// does not wake a relay; an idle one looks again this often).
constexpr absl::Duration kIdleFaultPoll = absl::Milliseconds(100);

void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

// What one engine op did; the syscall's errno travels raw so the relay can
// tell an RST (ECONNRESET) from the rest.
struct IoResult {
  absl::Status status;  // the engine's verdict (ABORTED, CANCELLED, ...)
  int error = 0;        // the system call's errno
  size_t bytes = 0;
  std::string buffer;
  SockAddr from;
};

enum class OpKind { kRecv, kRecvFrom, kSend, kWait };

class RelayRun;

class RelayOp final : public IoOp {
 public:
  RelayOp(std::shared_ptr<RelayRun> run, SocketOps& ops, OpKind kind,
          absl::AnyInvocable<void(IoResult)> handler)
      : run_(std::move(run)),
        ops_(ops),
        kind_(kind),
        handler_(std::move(handler)) {}

  // kRecv/kRecvFrom: receive into `buffer` (its size is the cap).
  void set_buffer(std::string buffer) { result_.buffer = std::move(buffer); }
  // kRecv/kRecvFrom of one datagram (up to kDatagramBuffer bytes): the
  // result's buffer holds exactly its bytes. Received into the calling
  // thread's scratch buffer, so a datagram costs no 64 KiB buffer of its own.
  void set_datagram() { datagram_ = true; }
  // kSend: send [data, data + len) (to `to` when set). The bytes must stay
  // put until the op completes.
  void set_send(const char* data, size_t len, const SockAddr* to) {
    data_ = data;
    len_ = len;
    if (to != nullptr) to_ = *to;
  }

  std::optional<absl::Status> Attempt(int fd) override {
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

  void Complete(absl::Status status) override;

  const char* name() const override {
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

 private:
  // This thread's datagram buffer: Attempt runs on one thread at a time and
  // copies what it received before returning.
  static char* Scratch() {
    thread_local std::unique_ptr<char[]> buffer(new char[kDatagramBuffer]);
    return buffer.get();
  }
  char* RecvBuffer() { return datagram_ ? Scratch() : result_.buffer.data(); }
  size_t RecvCapacity() const {
    return datagram_ ? kDatagramBuffer : result_.buffer.size();
  }

  std::shared_ptr<RelayRun> run_;
  SocketOps& ops_;
  const OpKind kind_;
  bool datagram_ = false;
  absl::AnyInvocable<void(IoResult)> handler_;
  IoResult result_;
  const char* data_ = nullptr;
  size_t len_ = 0;
  std::optional<SockAddr> to_;
};

// One run of a relay. Every event (an op's outcome, a cancellation) is
// handled by Post, one at a time, so the fields need no lock of their own;
// an op's Attempt touches only the op.
class RelayRun : public std::enable_shared_from_this<RelayRun> {
 public:
  RelayRun(SocketOps& ops, Engine& engine,
           std::shared_ptr<ManagedSocket> socket, RelayOptions options,
           RelayHooks hooks,
           absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done)
      : ops_(ops),
        engine_(engine),
        socket_(std::move(socket)),
        options_(std::move(options)),
        hooks_(std::move(hooks)),
        done_(std::move(done)),
        start_(absl::Now()) {}
  virtual ~RelayRun() = default;

  void Start() {
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

  // Runs `event` now, or after the event being handled.
  void Post(absl::AnyInvocable<void()> event) {
    events_.Post(std::move(event));
  }

 protected:
  virtual void Begin() = 0;
  // Ends every op still waiting and releases what the relay owns.
  virtual void Stop() = 0;
  virtual void Fill(v1::TrafficResponse& response) = 0;

  // A cancel token per op slot, fresh for every op, so one op can be ended
  // without touching the others.
  struct Slot {
    bool busy = false;
    std::shared_ptr<CancelToken> token;
    void Cancel() {
      if (token != nullptr) token->Cancel();
    }
  };

  void Submit(Slot& slot, const std::shared_ptr<IoSocket>& io,
              Interest interest, std::unique_ptr<RelayOp> op,
              absl::Time until = absl::InfiniteFuture()) {
    slot.busy = true;
    slot.token = std::make_shared<CancelToken>();
    WaitOptions wait;
    wait.deadline = std::min({until, options_.end, options_.deadline});
    wait.cancel = slot.token.get();
    // The op keeps the token alive while the engine may call it.
    engine_.Submit(io, interest, std::move(op), wait);
  }

  std::unique_ptr<RelayOp> MakeOp(OpKind kind,
                                  absl::AnyInvocable<void(IoResult)> handler) {
    return std::make_unique<RelayOp>(shared_from_this(), ops_, kind,
                                     std::move(handler));
  }

  // Handles the engine's own verdicts common to every op. Returns true when
  // the op's result is to be used (status OK).
  bool Usable(const IoResult& result, bool* timer_fired) {
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

  void End(v1::TrafficEnd end) {
    if (finished_) return;
    // Both ends saw EOF because the session closed its sockets one by one:
    // the relay was ended by the session, not by its peers.
    if (socket_->session_ended()) return Fail(ClosedError());
    v1::TrafficResponse response;
    const absl::Duration elapsed = absl::Now() - start_;
    ToProto(elapsed, response.mutable_elapsed());
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

  void Fail(absl::Status status) { Deliver(std::move(status)); }

  void Deliver(absl::StatusOr<v1::TrafficResponse> result) {
    if (finished_) return;
    finished_ = true;
    Stop();
    auto done = std::move(done_);
    done(std::move(result));
  }

  static absl::Status ClosedError() {
    return absl::AbortedError("relay: a socket was closed");
  }

  SocketOps& ops_;
  Engine& engine_;
  const std::shared_ptr<ManagedSocket> socket_;
  RelayOptions options_;
  RelayHooks hooks_;
  absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done_;
  const absl::Time start_;
  bool finished_ = false;
  StreamChecksum checksum_;

 private:
  SerialEvents events_;
};

void RelayOp::Complete(absl::Status status) {
  result_.status = std::move(status);
  std::shared_ptr<RelayRun> run = std::move(run_);
  run->Post(
      [handler = std::move(handler_), result = std::move(result_)]() mutable {
        handler(std::move(result));
      });
}

// --- Stream relay -----------------------------------------------------------

class StreamRelay final : public RelayRun {
 public:
  using RelayRun::RelayRun;

 private:
  struct Chunk {
    std::string data;
    size_t offset = 0;
    absl::Time due;
    bool eof = false;
  };

  // One direction: reads `src`, sends on `dst`, shaped by dst's faults.
  struct Pipe {
    std::shared_ptr<ManagedSocket> src;
    std::shared_ptr<ManagedSocket> dst;
    Slot reader;
    Slot writer;
    // The writer waits for data, not for a timer or the socket: new data
    // cancels that wait.
    bool writer_idle_wait = false;
    std::deque<Chunk> queue;
    size_t queued = 0;
    bool src_done = false;
    bool ended = false;
    absl::Time last_due = absl::InfinitePast();
    RatePacer pacer;
    size_t slice_left = 0;
    absl::Time next_slice_at = absl::InfinitePast();
    v1::RelayDirection figures;
  };

  void Begin() override {
    pipes_[0].src = socket_;
    pipes_[0].dst = options_.peer;
    pipes_[1].src = options_.peer;
    pipes_[1].dst = socket_;
    Pump(0);
    Pump(1);
  }

  void Stop() override {
    for (Pipe& pipe : pipes_) {
      pipe.reader.Cancel();
      pipe.writer.Cancel();
      pipe.queue.clear();
    }
  }

  void Fill(v1::TrafficResponse& response) override {
    response.set_bytes_received(pipes_[0].figures.bytes_received());
    response.set_bytes_sent(pipes_[1].figures.bytes_sent());
    *response.mutable_relay()->mutable_to_peer() = pipes_[0].figures;
    *response.mutable_relay()->mutable_from_peer() = pipes_[1].figures;
  }

  FaultDice DiceFor(ManagedSocket& socket, uint64_t draws) {
    return FaultDice(socket.faults().seed(), socket.TakeFaultDraws(draws));
  }

  void EndPipe(int index, v1::RelayDirectionEnd end) {
    Pipe& pipe = pipes_[index];
    if (pipe.ended) return;
    pipe.ended = true;
    pipe.src_done = true;
    pipe.figures.set_end(end);
    pipe.queue.clear();
    pipe.queued = 0;
    pipe.reader.Cancel();
    pipe.writer.Cancel();
    if (pipes_[0].ended && pipes_[1].ended) {
      End(fault_ended_ ? v1::TRAFFIC_END_FAULT : v1::TRAFFIC_END_RELAYED);
    }
  }

  // Closes `socket` as the relay's own act, so the ops that then end
  // ABORTED on it are expected.
  void CloseOwn(const std::shared_ptr<ManagedSocket>& socket, bool reset) {
    closed_by_relay_.push_back(socket.get());
    if (hooks_.close) {
      hooks_.close(socket, reset);
    } else {
      engine_.Close(*socket->io());
    }
  }

  bool ClosedByRelay(const ManagedSocket* socket) const {
    return std::find(closed_by_relay_.begin(), closed_by_relay_.end(),
                     socket) != closed_by_relay_.end();
  }

  // The sending side of pipe `index` closes for a fault: the relay ends,
  // and the other socket is told as a proxy would (RST passed on as RST
  // unless reset_as_fin; a FIN as shutdown).
  void FaultClose(int index, bool reset) {
    Pipe& pipe = pipes_[index];
    fault_ended_ = true;
    CloseOwn(pipe.dst, reset);
    PassClose(pipe.src, reset);
    EndPipe(index, v1::RELAY_DIRECTION_END_FAULT);
    EndPipe(1 - index, v1::RELAY_DIRECTION_END_FAULT);
  }

  void PassClose(const std::shared_ptr<ManagedSocket>& socket, bool reset) {
    if (reset && !options_.reset_as_fin) {
      CloseOwn(socket, /*reset=*/true);
    } else {
      socket->io()->WithFd([&](int fd) { ops_.Shutdown(fd, SHUT_WR).ok(); });
    }
  }

  // An op on a socket ended ABORTED or FAILED_PRECONDITION: closed.
  void OnClosed(int index, const ManagedSocket* socket) {
    if (ClosedByRelay(socket)) {
      EndPipe(index,
              pipes_[index].figures.end() != v1::RELAY_DIRECTION_END_UNSPECIFIED
                  ? pipes_[index].figures.end()
                  : v1::RELAY_DIRECTION_END_RESET);
      return;
    }
    Fail(ClosedError());
  }

  void Pump(int index) {
    if (finished_) return;
    PumpWriter(index);
    PumpReader(index);
  }

  void PumpReader(int index) {
    Pipe& pipe = pipes_[index];
    if (finished_ || pipe.ended || pipe.reader.busy || pipe.src_done ||
        pipe.queued >= kMaxQueuedBytes) {
      return;
    }
    if (pipe.src->faults().stop_reading()) {
      Submit(pipe.reader, pipe.src->io(), Interest::kRead,
             MakeOp(OpKind::kWait,
                    [this, index](IoResult result) {
                      OnReaderWait(index, std::move(result));
                    }),
             absl::Now() + kStopReadingPoll);
      return;
    }
    std::unique_ptr<RelayOp> op = MakeOp(
        OpKind::kRecv,
        [this, index](IoResult result) { OnRead(index, std::move(result)); });
    std::string buffer = TakeBuffer();
    buffer.resize(kStreamChunk);
    op->set_buffer(std::move(buffer));
    Submit(pipe.reader, pipe.src->io(), Interest::kRead, std::move(op));
  }

  void OnReaderWait(int index, IoResult result) {
    Pipe& pipe = pipes_[index];
    pipe.reader.busy = false;
    bool timer = false;
    if (!Usable(result, &timer) && !timer) {
      if (!finished_ && !pipe.ended) Abnormal(index, pipe.src.get(), result);
      return;
    }
    Pump(index);
  }

  // A non-OK engine verdict that is not a timer.
  void Abnormal(int index, const ManagedSocket* socket,
                const IoResult& result) {
    if (absl::IsAborted(result.status) ||
        absl::IsFailedPrecondition(result.status)) {
      return OnClosed(index, socket);
    }
    Fail(result.status);
  }

  void OnRead(int index, IoResult result) {
    Pipe& pipe = pipes_[index];
    pipe.reader.busy = false;
    bool timer = false;
    if (!Usable(result, &timer)) {
      if (!timer && !finished_ && !pipe.ended) {
        Abnormal(index, pipe.src.get(), result);
      } else if (timer) {
        Pump(index);
      }
      return;
    }
    if (pipe.ended) return;
    const v1::Faults faults = pipe.dst->faults();
    const absl::Time now = absl::Now();
    if (result.error != 0) {
      // An RST (or another connection error) read on src.
      pipe.src_done = true;
      if (options_.reset_as_fin) return QueueEof(index, faults, now);
      CloseOwn(pipe.dst, /*reset=*/true);
      EndPipe(index, v1::RELAY_DIRECTION_END_RESET);
      EndPipe(1 - index, v1::RELAY_DIRECTION_END_RESET);
      return;
    }
    if (result.bytes == 0) {
      pipe.src_done = true;
      return QueueEof(index, faults, now);
    }
    const size_t n = result.bytes;
    pipe.figures.set_bytes_received(pipe.figures.bytes_received() + n);
    pipe.src->bytes_received += n;
    if (index == 0)
      checksum_.Update(absl::string_view(result.buffer.data(), n));
    result.buffer.resize(n);
    Chunk chunk;
    chunk.data = std::move(result.buffer);
    chunk.due = now;
    if (faults.has_send_delay()) {
      FaultDice dice = DiceFor(*pipe.dst, 1);
      chunk.due = now + DrawSendDelay(faults, dice);
    }
    // A byte stream keeps its order, whatever the jitter drew.
    chunk.due = std::max(chunk.due, pipe.last_due);
    pipe.last_due = chunk.due;
    pipe.queued += n;
    pipe.queue.push_back(std::move(chunk));
    WakeWriter(pipe);
    Pump(index);
  }

  void QueueEof(int index, const v1::Faults& faults, absl::Time now) {
    Pipe& pipe = pipes_[index];
    Chunk eof;
    eof.eof = true;
    eof.due = std::max(now, pipe.last_due) + ToAbsl(faults.close_delay());
    pipe.queue.push_back(std::move(eof));
    WakeWriter(pipe);
    Pump(index);
  }

  void WakeWriter(Pipe& pipe) {
    if (pipe.writer.busy && pipe.writer_idle_wait) pipe.writer.Cancel();
  }

  void PumpWriter(int index) {
    Pipe& pipe = pipes_[index];
    if (finished_ || pipe.ended || pipe.writer.busy) return;
    const v1::Faults faults = pipe.dst->faults();
    const absl::Time now = absl::Now();
    // close_after_time (reset_peer, timeout): on time even when idle.
    absl::Time close_at = absl::InfiniteFuture();
    if (ToAbsl(faults.close_after_time()) > absl::ZeroDuration()) {
      close_at = pipe.dst->faults_set_at() + ToAbsl(faults.close_after_time());
      if (now >= close_at) return FaultClose(index, faults.close_with_reset());
    }
    // close_after_bytes counts both ways: the other direction's reads on
    // this socket may reach it while this one is idle.
    if (faults.close_after_bytes() != 0 &&
        pipe.dst->bytes_since_faults() >= faults.close_after_bytes()) {
      return FaultClose(index, faults.close_with_reset());
    }
    if (pipe.queue.empty()) {
      // Idle: new data cancels this wait; the poll sees a close fault set
      // while nothing flows.
      WriterWait(index, std::min(close_at, now + kIdleFaultPoll),
                 /*idle=*/true);
      return;
    }
    Chunk& front = pipe.queue.front();
    if (front.due > now) return WriterWait(index, front.due, false);
    if (front.eof) {
      pipe.dst->io()->WithFd([&](int fd) { ops_.Shutdown(fd, SHUT_WR).ok(); });
      pipe.queue.pop_front();
      return EndPipe(index, v1::RELAY_DIRECTION_END_EOF);
    }
    size_t n = front.data.size() - front.offset;
    if (faults.blackhole()) {
      pipe.figures.set_bytes_blackholed(pipe.figures.bytes_blackholed() + n);
      Consume(pipe, n);
      return Pump(index);
    }
    const uint64_t rate = faults.send_rate_bytes_per_second();
    if (rate != 0 && pipe.pacer.ready_at() > now) {
      return WriterWait(index, pipe.pacer.ready_at(), false);
    }
    if (faults.slice_bytes() != 0) {
      if (pipe.next_slice_at > now) {
        return WriterWait(index, pipe.next_slice_at, false);
      }
      if (pipe.slice_left == 0) {
        FaultDice dice = DiceFor(*pipe.dst, 1);
        pipe.slice_left = DrawSliceBytes(faults, dice);
      }
      n = std::min(n, pipe.slice_left);
    } else {
      pipe.slice_left = 0;
    }
    n = RatePacer::MaxChunk(rate, n);
    if (faults.close_after_bytes() != 0) {
      const uint64_t used = pipe.dst->bytes_since_faults();
      if (used >= faults.close_after_bytes()) {
        return FaultClose(index, faults.close_with_reset());
      }
      n = static_cast<size_t>(
          std::min<uint64_t>(n, faults.close_after_bytes() - used));
    }
    std::unique_ptr<RelayOp> op =
        MakeOp(OpKind::kSend, [this, index, now, rate](IoResult result) {
          OnWritten(index, now, rate, std::move(result));
        });
    op->set_send(front.data.data() + front.offset, n, nullptr);
    pipe.writer_idle_wait = false;
    Submit(pipe.writer, pipe.dst->io(), Interest::kWrite, std::move(op));
  }

  void WriterWait(int index, absl::Time until, bool idle) {
    Pipe& pipe = pipes_[index];
    pipe.writer_idle_wait = idle;
    Submit(pipe.writer, pipe.dst->io(), Interest::kWrite,
           MakeOp(OpKind::kWait,
                  [this, index](IoResult result) {
                    Pipe& p = pipes_[index];
                    p.writer.busy = false;
                    p.writer_idle_wait = false;
                    bool timer = false;
                    if (!Usable(result, &timer) && !timer) {
                      if (!finished_ && !p.ended) {
                        Abnormal(index, p.dst.get(), result);
                      }
                      return;
                    }
                    Pump(index);
                  }),
           until);
  }

  void Consume(Pipe& pipe, size_t n) {
    Chunk& front = pipe.queue.front();
    front.offset += n;
    pipe.queued -= n;
    if (front.offset >= front.data.size()) {
      GiveBuffer(std::move(front.data));
      pipe.queue.pop_front();
    }
  }

  void OnWritten(int index, absl::Time started, uint64_t rate,
                 IoResult result) {
    Pipe& pipe = pipes_[index];
    pipe.writer.busy = false;
    bool timer = false;
    if (!Usable(result, &timer)) {
      if (!timer && !finished_ && !pipe.ended) {
        Abnormal(index, pipe.dst.get(), result);
      } else if (timer) {
        Pump(index);
      }
      return;
    }
    if (pipe.ended) return;
    if (result.error != 0) {
      // dst is gone (EPIPE, ECONNRESET): this direction ends; the other one
      // reads the reset from dst and passes it on.
      return EndPipe(index, v1::RELAY_DIRECTION_END_ERROR);
    }
    const size_t n = result.bytes;
    pipe.figures.set_bytes_sent(pipe.figures.bytes_sent() + n);
    pipe.dst->bytes_sent += n;
    pipe.pacer.Sent(n, rate, started);
    if (pipe.slice_left != 0) {
      pipe.slice_left -= std::min(pipe.slice_left, n);
      if (pipe.slice_left == 0) {
        const absl::Duration pause = ToAbsl(pipe.dst->faults().slice_delay());
        if (pause > absl::ZeroDuration()) {
          pipe.next_slice_at = absl::Now() + pause;
        }
      }
    }
    Consume(pipe, n);
    Pump(index);
  }

  std::string TakeBuffer() {
    if (pool_.empty()) return std::string();
    std::string buffer = std::move(pool_.back());
    pool_.pop_back();
    return buffer;
  }
  void GiveBuffer(std::string buffer) {
    if (pool_.size() < 8 && buffer.capacity() >= kStreamChunk) {
      pool_.push_back(std::move(buffer));
    }
  }

  Pipe pipes_[2];
  bool fault_ended_ = false;
  std::vector<const ManagedSocket*> closed_by_relay_;
  std::vector<std::string> pool_;
};

// --- Datagram relay ---------------------------------------------------------

class DatagramRelay final : public RelayRun {
 public:
  using RelayRun::RelayRun;

 private:
  // One client address and its upstream socket.
  struct Mapping {
    SockAddr client;
    std::shared_ptr<IoSocket> io;
    Slot reader;
    absl::Time last_used;
    bool closed = false;
  };

  // A datagram on its way, sent at `due` (ties in arrival order).
  struct Pending {
    std::string data;
    std::shared_ptr<Mapping> mapping;
  };

  // One direction: clients -> upstream (0) or upstream -> clients (1).
  struct Direction {
    std::multimap<absl::Time, Pending> queue;
    std::optional<Pending> held;  // reordered: goes after the next one
    absl::Time held_due;
    Slot writer;
    std::shared_ptr<IoSocket> writer_io;
    bool writer_idle_wait = false;
    RatePacer pacer;
    v1::RelayDirection figures;
  };

  static std::string Key(const SockAddr& address) {
    return std::string(reinterpret_cast<const char*>(&address.storage),
                       address.length);
  }

  void Begin() override {
    // Every op's deadline includes the request's end, and the client
    // reader always waits, so the duration ends the relay when idle too.
    ReadClients();
  }

  void Stop() override {
    reader_.Cancel();
    for (Direction& d : directions_) {
      d.writer.Cancel();
      d.queue.clear();
      d.held.reset();
    }
    for (auto& [key, mapping] : mappings_) {
      mapping->reader.Cancel();
      if (!mapping->closed) engine_.Close(*mapping->io);
      mapping->closed = true;
    }
    mappings_.clear();
  }

  void Fill(v1::TrafficResponse& response) override {
    response.set_bytes_received(directions_[0].figures.bytes_received());
    response.set_datagrams_received(
        directions_[0].figures.datagrams_received());
    response.set_bytes_sent(directions_[1].figures.bytes_sent());
    response.set_datagrams_sent(directions_[1].figures.datagrams_sent());
    v1::RelayFigures* relay = response.mutable_relay();
    *relay->mutable_to_peer() = directions_[0].figures;
    *relay->mutable_from_peer() = directions_[1].figures;
    relay->set_clients(clients_);
    relay->set_refused_datagrams(refused_);
  }

  void OnAbnormal(const IoResult& result) {
    if (absl::IsAborted(result.status) ||
        absl::IsFailedPrecondition(result.status)) {
      return Fail(ClosedError());
    }
    if (!result.status.ok()) return Fail(result.status);
  }

  // The socket whose faults shape direction `d`.
  ManagedSocket* Shaper(int d) {
    return d == 0 ? options_.peer.get() : socket_.get();
  }

  // When a shaper's close_after_time closes it (InfiniteFuture: never).
  static absl::Time CloseAt(const ManagedSocket& shaper,
                            const v1::Faults& faults) {
    const absl::Duration after = ToAbsl(faults.close_after_time());
    return after > absl::ZeroDuration() ? shaper.faults_set_at() + after
                                        : absl::InfiniteFuture();
  }

  // close_after_time and close_after_bytes, as a stream relay obeys them: the
  // shaper whose fault fires is closed and the relay ends (TRAFFIC_END_FAULT)
  // with its figures. Returns true when the relay ended.
  bool CloseFaultFired() {
    const absl::Time now = absl::Now();
    for (int d = 0; d < 2; ++d) {
      ManagedSocket* shaper = Shaper(d);
      if (shaper == nullptr) continue;
      const v1::Faults faults = shaper->faults();
      const bool time_up = now >= CloseAt(*shaper, faults);
      const bool bytes_up =
          faults.close_after_bytes() != 0 &&
          shaper->bytes_since_faults() >= faults.close_after_bytes();
      if (!time_up && !bytes_up) continue;
      std::shared_ptr<ManagedSocket> owned = d == 0 ? options_.peer : socket_;
      if (hooks_.close) {
        hooks_.close(owned, faults.close_with_reset());
      } else {
        engine_.Close(*owned->io());
      }
      End(v1::TRAFFIC_END_FAULT);
      return true;
    }
    return false;
  }

  // The client reader's wake-up: the next close_after_time, polled so that
  // one set while the relay runs is seen.
  absl::Time NextFaultCheck() {
    absl::Time at = absl::Now() + kIdleFaultPoll;
    for (int d = 0; d < 2; ++d) {
      if (ManagedSocket* shaper = Shaper(d); shaper != nullptr) {
        at = std::min(at, CloseAt(*shaper, shaper->faults()));
      }
    }
    return at;
  }

  void ReadClients() {
    if (finished_ || reader_.busy || CloseFaultFired()) return;
    if (socket_->faults().stop_reading()) {
      Submit(reader_, socket_->io(), Interest::kRead,
             MakeOp(OpKind::kWait,
                    [this](IoResult result) {
                      reader_.busy = false;
                      bool timer = false;
                      if (!Usable(result, &timer) && !timer) {
                        if (!finished_) OnAbnormal(result);
                        return;
                      }
                      ReadClients();
                    }),
             absl::Now() + kStopReadingPoll);
      return;
    }
    std::unique_ptr<RelayOp> op = MakeOp(
        OpKind::kRecvFrom,
        [this](IoResult result) { OnClientDatagram(std::move(result)); });
    op->set_datagram();
    Submit(reader_, socket_->io(), Interest::kRead, std::move(op),
           NextFaultCheck());
  }

  void OnClientDatagram(IoResult result) {
    reader_.busy = false;
    bool timer = false;
    if (!Usable(result, &timer)) {
      if (!timer && !finished_) OnAbnormal(result);
      if (timer) ReadClients();
      return;
    }
    if (result.error != 0 || result.from.length <= sizeof(sa_family_t)) {
      // ICMP errors from earlier replies, or an unnamed sender: skip.
      return ReadClients();
    }
    if (hooks_.accept_source &&
        !hooks_.accept_source(result.from.get(), result.from.length)) {
      ++refused_;
      return ReadClients();
    }
    const size_t n = result.bytes;
    Direction& up = directions_[0];
    up.figures.set_bytes_received(up.figures.bytes_received() + n);
    up.figures.set_datagrams_received(up.figures.datagrams_received() + 1);
    socket_->bytes_received += n;
    checksum_.Update(absl::string_view(result.buffer.data(), n));
    std::shared_ptr<Mapping> mapping = MappingFor(result.from);
    if (mapping == nullptr) return ReadClients();  // could not open: dropped
    mapping->last_used = absl::Now();
    result.buffer.resize(n);
    Enqueue(0, Pending{std::move(result.buffer), mapping});
    ReadClients();
  }

  std::shared_ptr<Mapping> MappingFor(const SockAddr& client) {
    const std::string key = Key(client);
    auto it = mappings_.find(key);
    if (it != mappings_.end()) return it->second;
    if (hooks_.admit_upstream_socket) {
      if (!hooks_.admit_upstream_socket().ok()) return nullptr;
    }
    const SockAddr& upstream = *options_.upstream;
    SysCallInt fd = ops_.Socket(upstream.family(), SOCK_DGRAM, 0);
    if (!fd.ok()) return nullptr;
    ScopedFd owned(fd.value);
    if (!ops_.Connect(owned.get(), upstream.get(), upstream.length).ok()) {
      return nullptr;
    }
    absl::StatusOr<std::shared_ptr<IoSocket>> io =
        engine_.Register(std::move(owned), upstream.family(), SOCK_DGRAM, 0);
    if (!io.ok()) return nullptr;
    auto mapping = std::make_shared<Mapping>();
    mapping->client = client;
    mapping->io = *std::move(io);
    mapping->last_used = absl::Now();
    mappings_.emplace(key, mapping);
    ++clients_;
    ReadUpstream(mapping);
    return mapping;
  }

  void ReadUpstream(const std::shared_ptr<Mapping>& mapping) {
    if (finished_ || mapping->closed || mapping->reader.busy) return;
    std::unique_ptr<RelayOp> op =
        MakeOp(OpKind::kRecv, [this, mapping](IoResult result) {
          OnUpstreamDatagram(mapping, std::move(result));
        });
    op->set_datagram();
    Submit(mapping->reader, mapping->io, Interest::kRead, std::move(op),
           mapping->last_used + options_.idle_timeout);
  }

  void CloseMapping(const std::shared_ptr<Mapping>& mapping) {
    if (mapping->closed) return;
    mapping->closed = true;
    engine_.Close(*mapping->io);
    mappings_.erase(Key(mapping->client));
  }

  void OnUpstreamDatagram(const std::shared_ptr<Mapping>& mapping,
                          IoResult result) {
    mapping->reader.busy = false;
    if (finished_ || mapping->closed) return;
    bool timer = false;
    if (!Usable(result, &timer)) {
      if (finished_) return;
      if (timer) {
        if (absl::Now() - mapping->last_used >= options_.idle_timeout) {
          return CloseMapping(mapping);
        }
        return ReadUpstream(mapping);
      }
      return CloseMapping(mapping);  // closed under us: forget the client
    }
    if (result.error != 0) {
      // ECONNREFUSED from an earlier datagram's ICMP: keep the mapping.
      return ReadUpstream(mapping);
    }
    const size_t n = result.bytes;
    Direction& down = directions_[1];
    down.figures.set_bytes_received(down.figures.bytes_received() + n);
    down.figures.set_datagrams_received(down.figures.datagrams_received() + 1);
    mapping->last_used = absl::Now();
    result.buffer.resize(n);
    Enqueue(1, Pending{std::move(result.buffer), mapping});
    ReadUpstream(mapping);
  }

  void Enqueue(int d, Pending pending) {
    Direction& dir = directions_[d];
    const absl::Time now = absl::Now();
    ManagedSocket* shaper = Shaper(d);
    DatagramFate fate;
    if (shaper != nullptr) {
      const v1::Faults faults = shaper->faults();
      FaultDice dice(faults.seed(), shaper->TakeFaultDraws(4));
      fate = DrawDatagramFate(faults, dice);
      if (faults.blackhole()) {
        dir.figures.set_bytes_blackholed(dir.figures.bytes_blackholed() +
                                         pending.data.size());
        return;
      }
    }
    if (fate.lost) {
      dir.figures.set_datagrams_lost(dir.figures.datagrams_lost() + 1);
      return;
    }
    const absl::Time due = now + fate.delay;
    if (fate.duplicated) {
      dir.figures.set_datagrams_duplicated(dir.figures.datagrams_duplicated() +
                                           1);
      dir.queue.emplace(due, Pending{pending.data, pending.mapping});
    }
    if (fate.reordered && !dir.held.has_value()) {
      dir.figures.set_datagrams_reordered(dir.figures.datagrams_reordered() +
                                          1);
      dir.held = std::move(pending);
      dir.held_due = due;
      return PumpWriter(d);  // an idle writer waits out the hold limit
    }
    dir.queue.emplace(due, std::move(pending));
    if (dir.held.has_value()) {
      // The held datagram goes right after this one.
      dir.queue.emplace(std::max(due, dir.held_due), *std::move(dir.held));
      dir.held.reset();
    }
    if (dir.writer.busy && dir.writer_idle_wait) dir.writer.Cancel();
    PumpWriter(d);
  }

  void PumpWriter(int d) {
    Direction& dir = directions_[d];
    if (finished_ || dir.writer.busy) return;
    if (dir.queue.empty() && dir.held.has_value()) {
      // No next datagram came: the held one goes alone once the hold limit
      // passes (a new datagram cancels this wait and goes first).
      const std::shared_ptr<Mapping>& mapping = dir.held->mapping;
      const absl::Time release = dir.held_due + kReorderHoldLimit;
      if (mapping->closed) {
        dir.held.reset();
      } else if (absl::Now() < release) {
        dir.writer_idle_wait = true;
        return WriterWait(d, d == 0 ? mapping->io : socket_->io(), release);
      } else {
        dir.queue.emplace(release, *std::move(dir.held));
        dir.held.reset();
      }
    }
    while (!dir.queue.empty()) {
      auto it = dir.queue.begin();
      const std::shared_ptr<Mapping>& mapping = it->second.mapping;
      if (mapping->closed) {
        dir.queue.erase(it);
        continue;
      }
      const absl::Time now = absl::Now();
      const std::shared_ptr<IoSocket>& io =
          d == 0 ? mapping->io : socket_->io();
      if (it->first > now) return WriterWait(d, io, it->first);
      uint64_t rate = 0;
      if (ManagedSocket* shaper = Shaper(d); shaper != nullptr) {
        rate = shaper->faults().send_rate_bytes_per_second();
      }
      if (rate != 0 && dir.pacer.ready_at() > now) {
        return WriterWait(d, io, dir.pacer.ready_at());
      }
      std::unique_ptr<RelayOp> op =
          MakeOp(OpKind::kSend, [this, d, now, rate](IoResult result) {
            OnDatagramSent(d, now, rate, std::move(result));
          });
      op->set_send(it->second.data.data(), it->second.data.size(),
                   d == 0 ? nullptr : &mapping->client);
      dir.writer_idle_wait = false;
      return Submit(dir.writer, io, Interest::kWrite, std::move(op));
    }
  }

  void WriterWait(int d, const std::shared_ptr<IoSocket>& io,
                  absl::Time until) {
    Direction& dir = directions_[d];
    Submit(dir.writer, io, Interest::kWrite,
           MakeOp(OpKind::kWait,
                  [this, d](IoResult result) {
                    directions_[d].writer.busy = false;
                    directions_[d].writer_idle_wait = false;
                    bool timer = false;
                    if (!Usable(result, &timer) && !timer) {
                      // The mapping closed under the wait: its datagrams
                      // are dropped by PumpWriter.
                      if (finished_) return;
                      if (d == 1) return OnAbnormal(result);
                    }
                    PumpWriter(d);
                  }),
           until);
  }

  void OnDatagramSent(int d, absl::Time started, uint64_t rate,
                      IoResult result) {
    Direction& dir = directions_[d];
    dir.writer.busy = false;
    bool timer = false;
    if (!Usable(result, &timer)) {
      if (finished_) return;
      if (!timer && d == 1) return OnAbnormal(result);
      // An upstream socket closed under the send: drop that datagram.
      if (!dir.queue.empty() && !timer) dir.queue.erase(dir.queue.begin());
      return PumpWriter(d);
    }
    auto it = dir.queue.begin();
    if (it == dir.queue.end()) return PumpWriter(d);
    if (result.error == 0) {
      const size_t n = result.bytes;
      dir.figures.set_bytes_sent(dir.figures.bytes_sent() + n);
      dir.figures.set_datagrams_sent(dir.figures.datagrams_sent() + 1);
      // The shaper's counters: its close_after_bytes counts what it shaped.
      if (d == 1) {
        socket_->bytes_sent += n;
      } else if (options_.peer != nullptr) {
        options_.peer->bytes_sent += n;
      }
      dir.pacer.Sent(n, rate, started);
      it->second.mapping->last_used = absl::Now();
    }
    // A datagram that failed (ECONNREFUSED, EMSGSIZE) is dropped, as the
    // network would.
    dir.queue.erase(it);
    if (CloseFaultFired()) return;
    PumpWriter(d);
  }

  Slot reader_;
  Direction directions_[2];
  absl::flat_hash_map<std::string, std::shared_ptr<Mapping>> mappings_;
  uint64_t clients_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace

absl::Status ValidateRelay(const v1::RelayTraffic& relay, int socket_type) {
  if (relay.has_idle_timeout()) {
    const google::protobuf::Duration& d = relay.idle_timeout();
    if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() >= 1000000000 ||
        (d.seconds() == 0 && d.nanos() == 0)) {
      return absl::InvalidArgumentError(
          "relay.idle_timeout: must be a positive duration");
    }
  }
  if (socket_type == SOCK_DGRAM) {
    if (!relay.has_upstream()) {
      return absl::InvalidArgumentError(
          "relay.upstream: required for a datagram relay (where clients' "
          "datagrams go)");
    }
    return absl::OkStatus();
  }
  if (socket_type != SOCK_STREAM) {
    return absl::InvalidArgumentError(
        "relay: only stream (TCP, Unix stream) and datagram sockets relay");
  }
  if (relay.peer().empty()) {
    return absl::InvalidArgumentError(
        "relay.peer: required for a stream relay (the other socket's "
        "handle)");
  }
  if (relay.has_upstream()) {
    return absl::InvalidArgumentError(
        "relay.upstream: only for datagram relays (connect the peer socket "
        "of a stream relay)");
  }
  if (relay.has_idle_timeout()) {
    return absl::InvalidArgumentError(
        "relay.idle_timeout: only for datagram relays");
  }
  return absl::OkStatus();
}

void StartRelay(
    SocketOps& ops, Engine& engine, std::shared_ptr<ManagedSocket> socket,
    RelayOptions options, RelayHooks hooks,
    absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done) {
  std::shared_ptr<RelayRun> run;
  if (socket->io()->type() == SOCK_DGRAM) {
    run = std::make_shared<DatagramRelay>(ops, engine, std::move(socket),
                                          std::move(options), std::move(hooks),
                                          std::move(done));
  } else {
    run = std::make_shared<StreamRelay>(ops, engine, std::move(socket),
                                        std::move(options), std::move(hooks),
                                        std::move(done));
  }
  run->Start();
}

}  // namespace sockagent
