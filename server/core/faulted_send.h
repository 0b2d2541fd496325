#ifndef SOCKAGENT_SERVER_CORE_FAULTED_SEND_H_
#define SOCKAGENT_SERVER_CORE_FAULTED_SEND_H_

// Send and SendTo on a socket whose Faults shape sends (ShapesSends): the
// call's data goes out as the profile says, then the call returns. Used
// instead of a plain SendOp, so Send, SendTo and SendStream obey the same
// faults as Traffic and Relay. No gRPC, no policy.
//
// Stream sockets: close_after_time (reset/FIN, then ECONNRESET or EPIPE),
// blackhole (reported sent, nothing sent), send_delay with jitter before
// the first byte, slicing with its pauses, bandwidth across calls, and
// close_after_bytes (the bytes up to the limit go out, then the socket is
// closed and the call returns what was sent). Datagram sockets:
// close_after_time, blackhole, loss (reported sent), duplication, reorder
// (held until the next datagram on the socket), delay with jitter,
// bandwidth.

#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "server/core/address.h"
#include "server/core/call_context.h"
#include "server/core/session_table.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"

namespace sockagent {

struct FaultedSend {
  std::string data;
  int flags = 0;
  bool send_all = false;
  // sendto() there; unset: send() on the connected socket.
  std::optional<SockAddr> to;
  // The call's deadline, cancellation and non-blocking mode.
  WaitOptions wait;
};

// `close(reset)` closes the socket's handle for a Faults close. `done` gets
// the bytes the caller's data counts as sent, exactly once.
void StartFaultedSend(SocketOps& ops, Engine& engine,
                      std::shared_ptr<ManagedSocket> socket, FaultedSend send,
                      absl::AnyInvocable<void(bool reset)> close,
                      Callback<uint64_t> done);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_FAULTED_SEND_H_
