#include "server/core/core_status.h"

#include <cerrno>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "proto/errno_status.h"

namespace sockagent {

absl::Status DrainingError() {
  return absl::UnavailableError(
      "the agent is shutting down (draining): it closed every session and "
      "socket; retry against a running agent");
}

absl::Status SessionEndStatus(const char* reason) {
  const absl::string_view why = reason;
  if (why == "agent_drain") return DrainingError();
  if (why == "connection_closed") {
    return absl::CancelledError(
        "session: ended because its bound connection closed");
  }
  if (why == "admin_closed") {
    return absl::AbortedError(
        "session: closed by an admin (CloseSession) while this call waited");
  }
  if (why == "session_closed") {
    return absl::AbortedError(
        "session: closed (CloseSession) while this call waited");
  }
  return absl::AbortedError(absl::StrCat("session: ended (", why, ")"));
}

absl::Status ClosedHandle() {
  return OsErrorWithCode(absl::StatusCode::kFailedPrecondition, EBADF, "",
                         "handle: the socket is closed");
}

bool IsClosedHandle(const absl::Status& status) {
  if (!absl::IsFailedPrecondition(status)) return false;
  std::optional<ErrnoInfo> info = GetErrno(status);
  return info.has_value() && info->number == EBADF && info->syscall.empty();
}

}  // namespace sockagent
