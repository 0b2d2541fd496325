#ifndef SOCKAGENT_CLIENT_CLI_CLI_UTIL_H_
#define SOCKAGENT_CLIENT_CLI_CLI_UTIL_H_

// Argument parsing, output formatting and exit codes of sockctl, kept apart
// from main() so they can be unit-tested. Pure functions; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace cli {

// sockctl's exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFalse = 1;    // `health`: not SERVING
inline constexpr int kExitUsage = 2;    // bad command line or argument value
inline constexpr int kExitRpc = 3;      // RPC failed without an errno
inline constexpr int kExitSocket = 4;   // a socket call failed with an errno
inline constexpr int kExitResolve = 5;  // name resolution failed (EAI_*)

// The default port of an --agent target given without one.
inline constexpr int kDefaultAgentPort = 7700;

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

// Checks what sockctl can check of an address argument before any call, so
// that a malformed one is a usage error (exit 2) rather than an agent error:
// a host made only of digits and dots must be an IPv4 address inet_aton
// accepts (not "300.1.1.1"); a bracketed host must be an IPv6 literal
// (optionally with %scope); a port must be a number 0..65535 or a service
// name in this host's services database (/etc/services). INVALID_ARGUMENT
// naming the part otherwise.
absl::Status CheckAddressArg(const v1::Address& address,
                             absl::string_view text);

// The gRPC target for --agent TEXT: "host:port" as given (the port checked:
// 1..65535), "host" or "[v6]" without a port gets kDefaultAgentPort; a bare
// IPv6 literal must be bracketed. gRPC URIs ("unix:", "unix-abstract:",
// "dns:", "ipv4:", "ipv6:") pass unchanged. INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> AgentTarget(absl::string_view text);

// The --json error object:
// {"error":{"code":"UNAVAILABLE","message":"...","errno":111,
//           "errno_name":"ECONNREFUSED","syscall":"connect"}}
// (the errno fields only when the status carries one).
std::string ErrorJson(const absl::Status& status);

// "none" -> nullopt (blocking); "0" -> zero (non-blocking); "2.5s", "100ms",
// "1m" or a plain number of seconds ("2.5") -> that duration.
// INVALID_ARGUMENT for anything else or a negative value.
absl::StatusOr<std::optional<absl::Duration>> ParseTimeout(
    absl::string_view text);

// A duration ("10m", "30s", "1.5") for --ttl, --timeout, --duration: the
// project's one duration parser (ParseDurationText, proto/units.h).
absl::StatusOr<absl::Duration> ParseDurationArg(absl::string_view text);

// "inet" | "inet6" | "unix" (also "ipv4", "ipv6", "4", "6", "local").
absl::StatusOr<v1::Family> ParseFamily(absl::string_view text);
// "stream" | "dgram" | "seqpacket" (also "tcp", "udp").
absl::StatusOr<v1::SocketType> ParseSocketType(absl::string_view text);
// "rd" | "wr" | "rdwr" (also "read", "write", "both").
absl::StatusOr<v1::ShutdownHow> ParseShutdownHow(absl::string_view text);

// "sequence" | "random" | "zero" (case-insensitive).
absl::StatusOr<v1::TrafficPattern> ParseTrafficPattern(absl::string_view text);
// A byte count or rate in the project's one size grammar (ParseByteSize,
// proto/units.h: "64K" = "64KiB" = 65536, "1MB" = 1000000). `what` names the
// flag in errors ("--rate: ...").
absl::StatusOr<uint64_t> ParseByteCount(absl::string_view text,
                                        absl::string_view what);
// "eof", "bytes", "duration", "fault" ("unspecified" otherwise).
std::string TrafficEndName(v1::TrafficEnd end);
// One line for a finished traffic, key=value pairs with the keys of
// TrafficJson: "end=eof bytes_received=1048576 bytes_sent=0
// datagrams_received=0 datagrams_sent=0 elapsed=12.5ms
// bytes_per_second=83886080 checksum=0123456789abcdef".
std::string FormatTraffic(const v1::TrafficResponse& response);
// The same as a JSON object: counts as numbers, elapsed as "elapsed_s"
// (seconds, a number).
std::string TrafficJson(const v1::TrafficResponse& response);

std::string FamilyName(v1::Family family);           // "inet"
std::string SocketTypeName(v1::SocketType type);     // "stream"
std::string SocketStateName(v1::SocketState state);  // "listening", "shut_down"

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

// A duration as sockctl and `sockctl run` print it in text, Go style:
// "0s", "359us", "9.12ms", "2.182s", "10m", "24h" (microseconds below 1 ms, 10
// us steps below 1 s, milliseconds above). JSON carries durations as numbers of
// seconds in keys ending "_s" (see MessageJson).
std::string DurationText(absl::Duration duration);
// A duration as a JSON number of seconds ("0.000359", "600").
std::string DurationSeconds(absl::Duration duration);

// A JSON string literal, with quotes; bytes that are not valid UTF-8 are
// replaced by U+FFFD.
std::string JsonString(absl::string_view text);
// Whether `data` is valid UTF-8.
bool IsValidUtf8(absl::string_view data);

// A JSON object built field by field, in insertion order.
class JsonObject {
 public:
  JsonObject& AddString(absl::string_view key, absl::string_view value);
  JsonObject& AddInt(absl::string_view key, int64_t value);
  JsonObject& AddBool(absl::string_view key, bool value);
  // `json` must already be valid JSON.
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);
  // Received bytes: "data_base64" always, "text" when valid UTF-8.
  JsonObject& AddData(absl::string_view data);
  std::string Build() const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// A message as sockctl's JSON, the same words the text output uses: proto
// field names (snake_case), every scalar printed (defaults too), integers of
// every width as JSON numbers, enums as the lower-case words of the text
// ("inet", "stream", "listening"), sockagent.v1.Address as its text form
// ("127.0.0.1:80"), google.protobuf.Duration as a number of seconds under
// the field name plus "_s" ("ttl_s": 600), Timestamp as RFC 3339 UTC text,
// bytes as base64. Unset message fields are left out.
std::string MessageJson(const google::protobuf::Message& message);
// An enum value's lower-case word: the value name without the enum type's
// prefix ("FAMILY_INET" -> "inet", "SOCKET_STATE_SHUT_DOWN" -> "shut_down").
std::string EnumWord(const google::protobuf::EnumValueDescriptor& value);

// A right-padded text table.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_CLI_UTIL_H_
