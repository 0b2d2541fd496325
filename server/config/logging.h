#ifndef SOCKAGENT_SERVER_CONFIG_LOGGING_H_
#define SOCKAGENT_SERVER_CONFIG_LOGGING_H_

// sockagentd's log output on stderr: "text" (time, level, message) or
// "json" (one object per line: {"time","level","logger","msg"}, the message
// JSON-escaped). Call once at startup; SetLogLevel may be called at any time
// (SIGHUP) from any thread.

#include <string>

#include "absl/status/status.h"

namespace sockagent {

// Installs the default spdlog logger "sockagentd" on stderr. INVALID_ARGUMENT
// for an unknown format or level.
absl::Status SetUpLogging(const std::string& format, const std::string& level);

// True for trace|debug|info|warn|error.
bool IsLogLevel(const std::string& level);

// trace|debug|info|warn|error; INVALID_ARGUMENT otherwise.
absl::Status SetLogLevel(const std::string& level);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CONFIG_LOGGING_H_
