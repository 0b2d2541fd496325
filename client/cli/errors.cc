#include "client/cli/errors.h"

#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/vocab/json.h"
#include "proto/errno_status.h"

namespace sockagent {
namespace cli {

using vocab::JsonObject;

namespace {

bool IsResolutionError(const ErrnoInfo& info) {
  return absl::StartsWith(info.name, "EAI_");
}

std::string ErrnoLine(const ErrnoInfo& info, const absl::Status& status) {
  // EAI_* details carry getaddrinfo codes, not errno values: the agent's
  // message says what did not resolve.
  if (IsResolutionError(info)) {
    return absl::StrCat("name resolution failed on the agent: ",
                        status.message());
  }
  if (info.number <= 0) return std::string(status.message());
  // No system call failed (a closed handle's EBADF): the agent's message.
  if (info.syscall.empty()) {
    return absl::StrCat(status.message(), " (", info.name, ")");
  }
  return absl::StrCat(info.syscall, ": ", std::strerror(info.number), " (",
                      info.name, ")");
}

}  // namespace

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  std::optional<ErrnoInfo> info = GetErrno(status);
  if (!info.has_value()) return kExitRpc;
  return IsResolutionError(*info) ? kExitResolve : kExitSocket;
}

std::string DescribeError(absl::string_view context,
                          const absl::Status& status) {
  if (std::optional<ErrnoInfo> info = GetErrno(status); info.has_value()) {
    return ErrnoLine(*info, status);
  }
  absl::string_view message = status.message();
  const std::string code =
      absl::StrCat(" (", absl::StatusCodeToString(status.code()), ")");
  if (absl::StartsWith(message, absl::StrCat(context, ":"))) {
    return absl::StrCat(message, code);
  }
  return absl::StrCat(context, ": ", message, code);
}

std::string ErrorJson(const absl::Status& status) {
  return JsonObject().AddRaw("error", ErrorObjectJson(status)).Build();
}

std::string ErrorObjectJson(const absl::Status& status) {
  JsonObject error;
  error.AddString("code", absl::StatusCodeToString(status.code()));
  error.AddString("message", status.message());
  if (std::optional<ErrnoInfo> info = GetErrno(status); info.has_value()) {
    error.AddInt("errno", info->number);
    error.AddString("errno_name", info->name);
    error.AddString("syscall", info->syscall);
  }
  return error.Build();
}

}  // namespace cli
}  // namespace sockagent
