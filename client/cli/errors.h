#ifndef SOCKAGENT_CLIENT_CLI_ERRORS_H_
#define SOCKAGENT_CLIENT_CLI_ERRORS_H_

// sockctl's exit codes and how it reports an error on stderr or as --json.
// Pure functions; thread-safe.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sockagent {
namespace cli {

// sockctl's exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFalse = 1;    // `health`: not SERVING
inline constexpr int kExitUsage = 2;    // bad command line or argument value
inline constexpr int kExitRpc = 3;      // RPC failed without an errno
inline constexpr int kExitSocket = 4;   // a socket call failed with an errno
inline constexpr int kExitResolve = 5;  // name resolution failed (EAI_*)

// kExitSocket for a status carrying an errno detail, kExitResolve for a
// getaddrinfo failure (an EAI_* detail), kExitRpc for any other error,
// kExitOk for OK.
int ExitCodeFor(const absl::Status& status);

// One line for stderr, without the "sockctl: " prefix. With an errno:
// "connect: Connection refused (ECONNREFUSED)"; a resolution failure:
// "name resolution failed on the agent: <message>"; otherwise
// "<context>: <message> (<CODE>)", where the context is left out when the
// message already starts with it ("recv: timed out", not "recv: recv: ...").
std::string DescribeError(absl::string_view context,
                          const absl::Status& status);

// The --json error object:
// {"error":{"code":"UNAVAILABLE","message":"...","errno":111,
//           "errno_name":"ECONNREFUSED","syscall":"connect"}}
// (the errno fields only when the status carries one).
std::string ErrorJson(const absl::Status& status);
// ErrorJson's inner object, {"code":...,"message":...}, for an event that
// carries its error as one of its fields ("error": ErrorObjectJson(...)).
std::string ErrorObjectJson(const absl::Status& status);

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_ERRORS_H_
