#ifndef SOCKAGENT_PROTO_ERRNO_STATUS_H_
#define SOCKAGENT_PROTO_ERRNO_STATUS_H_

// absl::Status values that carry an operating-system errno.
//
// An OS failure becomes a status whose code follows ErrnoToCode() and whose
// payload (type URL kErrorDetailTypeUrl) is a serialized
// sockagent.v1.ErrorDetail. The payload crosses the wire unchanged as a
// google.rpc.Status detail (status_codec.h), so the same GetErrno() works on
// both sides. Depends on no gRPC header.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sockagent {

inline constexpr char kErrorDetailTypeUrl[] =
    "type.googleapis.com/sockagent.v1.ErrorDetail";

struct ErrnoInfo {
  int number = 0;
  std::string name;     // "ECONNREFUSED"
  std::string syscall;  // "connect"
};

// The canonical code for an errno; the README's error table is this function.
absl::StatusCode ErrnoToCode(int err);

// "ECONNREFUSED" for 111; "E<n>" for a number the C library cannot name.
std::string ErrnoName(int err);

// The errno for a symbolic name, or 0 if the name is unknown.
int ErrnoFromName(absl::string_view name);

// A status for `syscall` failing with `err`: code from ErrnoToCode, message
// "connect: Connection refused (ECONNREFUSED)", errno detail attached.
absl::Status OsError(int err, absl::string_view syscall);

// Same detail, but with an explicit code and message; used where the agent
// answers for the kernel (an unsupported family is INVALID_ARGUMENT carrying
// EAFNOSUPPORT).
absl::Status OsErrorWithCode(absl::StatusCode code, int err,
                             absl::string_view syscall,
                             absl::string_view message);

// A status with an explicit code and message whose detail carries a number
// and name from outside the errno space, e.g. an EAI_* value of getaddrinfo()
// (errno_number -2, errno_name "EAI_NONAME", syscall "getaddrinfo").
// OsErrorWithCode() is this function with `name` = ErrnoName(err).
absl::Status NamedOsError(absl::StatusCode code, int number,
                          absl::string_view name, absl::string_view syscall,
                          absl::string_view message);

// The errno detail of `status`, if it has one.
std::optional<ErrnoInfo> GetErrno(const absl::Status& status);

}  // namespace sockagent

#endif  // SOCKAGENT_PROTO_ERRNO_STATUS_H_
