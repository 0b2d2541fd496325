#ifndef SOCKAGENT_CLIENT_VOCAB_SOCKET_OPTIONS_H_
#define SOCKAGENT_CLIENT_VOCAB_SOCKET_OPTIONS_H_

// Socket options by name and their values as text, for `sockctl
// setsockopt/getsockopt` and the scenario steps of the same names. Pure
// functions over a constant table; thread-safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace vocab {

// The value type of a typed socket option.
enum class OptionKind { kBool, kInt, kLinger, kMembership };

struct OptionSpec {
  v1::SocketOption option;
  OptionKind kind;
  bool settable;
  bool gettable;
};

// A socket option by name, case-insensitive, with or without "OPT_":
// "SO_REUSEADDR", "tcp_nodelay", "IP_TTL", "OPT_SO_LINGER", ...
absl::StatusOr<OptionSpec> ParseOptionName(absl::string_view name);
// The names ParseOptionName accepts, for --help.
std::vector<std::string> OptionNames();

// A value for an option of `kind`:
//   bool        1/0, on/off, true/false, yes/no
//   int         a decimal integer
//   linger      "on:5", "off", "off:0" (enabled:seconds)
//   membership  "GROUP" or "GROUP@INTERFACE" ("239.1.2.3@127.0.0.1")
absl::StatusOr<v1::OptionValue> ParseOptionValue(OptionKind kind,
                                                 absl::string_view text);
// The inverse of ParseOptionValue ("on", "42", "on:5", ...); raw bytes are
// hex ("0x0100").
std::string FormatOptionValue(const v1::OptionValue& value);

}  // namespace vocab
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_VOCAB_SOCKET_OPTIONS_H_
