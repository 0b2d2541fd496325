#ifndef SOCKAGENT_SERVER_CORE_SOCKET_OPTIONS_H_
#define SOCKAGENT_SERVER_CORE_SOCKET_OPTIONS_H_

// setsockopt/getsockopt in their typed and raw wire forms. Thread-safe
// (pure functions over a descriptor).

#include "absl/status/statusor.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// Errors: INVALID_ARGUMENT naming `option`/`value` for an unknown option, a
// value of the wrong kind, or an option that cannot be set; the kernel's
// errno (OsError "setsockopt") otherwise.
absl::Status SetSocketOption(SocketOps& ops, int fd,
                             const v1::SetSockOptRequest& request);

// Errors as above, with "getsockopt".
absl::StatusOr<v1::OptionValue> GetSocketOption(
    SocketOps& ops, int fd, const v1::GetSockOptRequest& request);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_SOCKET_OPTIONS_H_
