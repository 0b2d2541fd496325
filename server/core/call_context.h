#ifndef SOCKAGENT_SERVER_CORE_CALL_CONTEXT_H_
#define SOCKAGENT_SERVER_CORE_CALL_CONTEXT_H_

// Who calls, and how long the call may wait: what every core operation gets
// from the adapter. No gRPC.

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/io/cancel_token.h"

namespace sockagent {

struct CallContext {
  std::string session_id;
  // The authenticated caller (certificate SAN/CN or token name); "anonymous"
  // without authentication. Policy rules and quotas are per identity.
  std::string identity = "anonymous";
  // The caller's transport address, for the audit log.
  std::string peer = {};
  absl::Time deadline = absl::InfiniteFuture();
  CancelToken* cancel = nullptr;  // outlives the call
  // Whether the call renews the session's lease: false for the operations
  // a stream runs to push messages (renewal comes from the client's own
  // messages, not from the agent's pushes).
  bool renew_lease = true;
};

// The completion of an operation that may wait: runs exactly once.
template <typename T>
using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_CALL_CONTEXT_H_
