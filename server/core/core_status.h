#ifndef SOCKAGENT_SERVER_CORE_CORE_STATUS_H_
#define SOCKAGENT_SERVER_CORE_CORE_STATUS_H_

// Statuses more than one room of the core returns, worded once.

#include "absl/status/status.h"

namespace sockagent {

// UNAVAILABLE: every call after AgentCore::Drain.
absl::Status DrainingError();

// Why a session ended (its audit close reason), for the calls still waiting
// on it: UNAVAILABLE for "agent_drain", CANCELLED for "connection_closed",
// ABORTED otherwise.
absl::Status SessionEndStatus(const char* reason);

// FAILED_PRECONDITION with EBADF: the handle's socket was closed, as
// Python's OSError on a closed socket.
absl::Status ClosedHandle();
// Whether `status` is ClosedHandle()'s.
bool IsClosedHandle(const absl::Status& status);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_CORE_STATUS_H_
