#ifndef SOCKAGENT_SERVER_CORE_RESOLVED_SOCKET_H_
#define SOCKAGENT_SERVER_CORE_RESOLVED_SOCKET_H_

// A call's socket, resolved once (SessionRegistry::Resolve): who calls, the
// session and the socket its handle names, the socket's timeout and the
// identity's byte-rate quotas as they were then. A call carries it through
// its steps, and a stream keeps it for its whole life, so no step looks the
// session, the handle or the owner up again. Copyable; keeps the session
// and the socket alive (not open: a closed socket fails the next step).
// Thread-compatible.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/core/call_context.h"
#include "server/core/session_table.h"
#include "server/io/engine.h"

namespace sockagent {

// The identity's byte-rate quotas (0 = none) from policy generation
// `generation` (PolicyEngine::generation()).
struct ByteRates {
  uint64_t generation = 0;
  uint64_t send = 0;
  uint64_t recv = 0;
};

struct ResolvedSocket {
  CallContext ctx;
  std::shared_ptr<Session> session;
  std::shared_ptr<ManagedSocket> socket;
  // The socket's timeout when resolved (SetTimeout later applies to later
  // calls): nullopt = blocking, zero = non-blocking.
  std::optional<absl::Duration> timeout;
  ByteRates rates;

  // How long one operation started now may wait: the call's deadline and
  // cancellation, and the socket's timeout (zero: do not wait).
  WaitOptions WaitFromNow() const {
    WaitOptions wait;
    wait.deadline = ctx.deadline;
    wait.cancel = ctx.cancel;
    if (timeout.has_value()) {
      if (*timeout == absl::ZeroDuration()) {
        wait.nonblocking = true;
      } else {
        wait.deadline = std::min(wait.deadline, absl::Now() + *timeout);
      }
    }
    return wait;
  }
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_RESOLVED_SOCKET_H_
