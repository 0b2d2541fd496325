#ifndef SOCKAGENT_CLIENT_CLI_STDIO_H_
#define SOCKAGENT_CLIENT_CLI_STDIO_H_

// sockctl's local input and output of raw bytes: stdout, stdin and files.
// Thread-compatible (stdout is shared: one writer at a time).

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sockagent {
namespace cli {

// Writes `data` to stdout and flushes; false when either failed.
bool WriteStdout(absl::string_view data);
// Everything readable from `fd` until EOF (EINTR retried).
absl::StatusOr<std::string> ReadAll(int fd);
// The contents of `path`, or of stdin for "-".
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_STDIO_H_
