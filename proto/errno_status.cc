#include "proto/errno_status.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "sockagent/v1/error_detail.pb.h"

namespace sockagent {

absl::StatusCode ErrnoToCode(int err) {
  switch (err) {
    case 0:
      return absl::StatusCode::kOk;
    case EINVAL:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
    case ESOCKTNOSUPPORT:
    case EPROTOTYPE:
    case EOPNOTSUPP:
    case ENOPROTOOPT:
    case EMSGSIZE:
    case EADDRNOTAVAIL:
    case ENAMETOOLONG:
    case EFAULT:
      return absl::StatusCode::kInvalidArgument;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case EADDRINUSE:
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
    case ENETRESET:
    case EAGAIN:
    case EINPROGRESS:
    case EALREADY:
      return absl::StatusCode::kUnavailable;
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case ENOTCONN:
    case EISCONN:
    case EDESTADDRREQ:
    case ESHUTDOWN:
    case EBADF:
    case ENOTSOCK:
      return absl::StatusCode::kFailedPrecondition;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case ENOSPC:
      return absl::StatusCode::kResourceExhausted;
    case EINTR:
    case ECANCELED:
      return absl::StatusCode::kCancelled;
    case ENOSYS:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kUnknown;
  }
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return absl::StrCat("E", err);
}

int ErrnoFromName(absl::string_view name) {
  // Linux errno values are small and dense; 4096 covers them all.
  for (int err = 1; err < 4096; ++err) {
    const char* candidate = strerrorname_np(err);
    if (candidate != nullptr && name == candidate) return err;
  }
  return 0;
}

absl::Status NamedOsError(absl::StatusCode code, int number,
                          absl::string_view name, absl::string_view syscall,
                          absl::string_view message) {
  absl::Status status(code, message);
  v1::ErrorDetail detail;
  detail.set_errno_number(number);
  detail.set_errno_name(std::string(name));
  detail.set_syscall(std::string(syscall));
  status.SetPayload(kErrorDetailTypeUrl,
                    absl::Cord(detail.SerializeAsString()));
  return status;
}

absl::Status OsErrorWithCode(absl::StatusCode code, int err,
                             absl::string_view syscall,
                             absl::string_view message) {
  return NamedOsError(code, err, ErrnoName(err), syscall, message);
}

absl::Status OsError(int err, absl::string_view syscall) {
  return OsErrorWithCode(ErrnoToCode(err), err, syscall,
                         absl::StrCat(syscall, ": ", std::strerror(err), " (",
                                      ErrnoName(err), ")"));
}

std::optional<ErrnoInfo> GetErrno(const absl::Status& status) {
  // absl::optional is not std::optional in Debian's Abseil build.
  absl::optional<absl::Cord> payload = status.GetPayload(kErrorDetailTypeUrl);
  if (!payload.has_value()) return std::nullopt;
  v1::ErrorDetail detail;
  if (!detail.ParseFromString(std::string(*payload))) return std::nullopt;
  return ErrnoInfo{detail.errno_number(), detail.errno_name(),
                   detail.syscall()};
}

}  // namespace sockagent
