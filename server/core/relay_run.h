#ifndef SOCKAGENT_SERVER_CORE_RELAY_RUN_H_
#define SOCKAGENT_SERVER_CORE_RELAY_RUN_H_

// Internal to the relay (relay.cc, stream_relay.cc, datagram_relay.cc): what
// the stream and the datagram relay share. RelayRun is one run of a relay:
// its ops on the epoll engine, the engine verdicts common to every op, the
// caller's cancellation, deadline and duration, and the one delivery of the
// result. Every event (an op's outcome, a cancellation) is handled by Post,
// one at a time, so a run's fields need no lock of their own; an op's
// Attempt touches only the op. Not for use outside the relay.

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/traffic_data.h"
#include "server/core/address.h"
#include "server/core/relay.h"
#include "server/core/serial_events.h"
#include "server/core/session_table.h"
#include "server/io/cancel_token.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace internal {

// The largest datagram a relay moves.
inline constexpr size_t kDatagramBuffer = 64 * 1024;
// How often a relay paused by Faults.stop_reading looks again.
inline constexpr absl::Duration kStopReadingPoll = absl::Milliseconds(10);
// How soon an idle relay sees a close fault set while it runs (SetFaults
// does not wake a relay; an idle one looks again this often).
inline constexpr absl::Duration kIdleFaultPoll = absl::Milliseconds(100);

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

// StartRelay's arguments, handed to the run of either kind.
struct RelayStart {
  SocketOps& ops;
  Engine& engine;
  std::shared_ptr<ManagedSocket> socket;
  RelayOptions options;
  RelayHooks hooks;
  absl::AnyInvocable<void(absl::StatusOr<v1::TrafficResponse>)> done;
};

// One engine op of a run: a receive, a send or a wait (kWait: a timer or
// readiness only). Its outcome reaches `handler` through the run's Post.
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

  std::optional<absl::Status> Attempt(int fd) override;
  void Complete(absl::Status status) override;
  const char* name() const override;

 private:
  // This thread's datagram buffer: Attempt runs on one thread at a time and
  // copies what it received before returning.
  static char* Scratch();
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

// One run of a relay; StreamRelay and DatagramRelay fill in Begin, Stop and
// Fill. Owned by shared_ptr: its ops hold it until they complete.
class RelayRun : public std::enable_shared_from_this<RelayRun> {
 public:
  explicit RelayRun(RelayStart start)
      : ops_(start.ops),
        engine_(start.engine),
        socket_(std::move(start.socket)),
        options_(std::move(start.options)),
        hooks_(std::move(start.hooks)),
        done_(std::move(start.done)),
        start_(absl::Now()) {}
  virtual ~RelayRun() = default;

  // Hooks the caller's cancellation and posts Begin.
  void Start();

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

  // Submits `op` on `io` in `slot`, waiting until `until`, the request's end
  // or the call's deadline, whichever comes first.
  void Submit(Slot& slot, const std::shared_ptr<IoSocket>& io,
              Interest interest, std::unique_ptr<RelayOp> op,
              absl::Time until = absl::InfiniteFuture());

  std::unique_ptr<RelayOp> MakeOp(OpKind kind,
                                  absl::AnyInvocable<void(IoResult)> handler) {
    return std::make_unique<RelayOp>(shared_from_this(), ops_, kind,
                                     std::move(handler));
  }

  // Handles the engine's own verdicts common to every op. Returns true when
  // the op's result is to be used (status OK); sets `*timer_fired` when the
  // op ended for its own timer or its slot's cancel (the relay goes on).
  // The request's end ends the relay OK, the call's deadline fails it.
  bool Usable(const IoResult& result, bool* timer_fired);

  // Ends the relay OK with `end` and the figures (Fill), or ABORTED when the
  // session closed the sockets.
  void End(v1::TrafficEnd end);
  void Fail(absl::Status status) { Deliver(std::move(status)); }

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
  // Stops the run and runs done_ once.
  void Deliver(absl::StatusOr<v1::TrafficResponse> result);

  SerialEvents events_;
};

// The two kinds of run (stream_relay.cc, datagram_relay.cc); StartRelay
// picks one by the socket's type.
std::shared_ptr<RelayRun> MakeStreamRelay(RelayStart start);
std::shared_ptr<RelayRun> MakeDatagramRelay(RelayStart start);

}  // namespace internal
}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_RELAY_RUN_H_
