// The stream relay: two pipes (socket -> peer, peer -> socket), each reading
// its source and sending on its destination, shaped by the destination's
// Faults (delay, rate, slices, blackhole, close after time or bytes). An
// EOF is passed on as a shutdown, an RST as an RST (or a FIN with
// reset_as_fin).

#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "server/core/faults.h"
#include "server/core/relay_run.h"

namespace sockagent {
namespace internal {
namespace {

// Bytes per stream receive.
constexpr size_t kStreamChunk = 128 * 1024;
// A direction stops reading while this much waits to be sent (a latency
// fault holds up to rate x delay).
constexpr size_t kMaxQueuedBytes = 8 * 1024 * 1024;

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

}  // namespace

std::shared_ptr<RelayRun> MakeStreamRelay(RelayStart start) {
  return std::make_shared<StreamRelay>(std::move(start));
}

}  // namespace internal
}  // namespace sockagent
