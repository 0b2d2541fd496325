#ifndef SOCKAGENT_CLIENT_VOCAB_WORDS_H_
#define SOCKAGENT_CLIENT_VOCAB_WORDS_H_

// The words sockctl and scenario files use for the API's enums, both ways:
// "inet", "stream", "rdwr", "listening", "random", "eof". Parsing is
// case-insensitive and names the field in INVALID_ARGUMENT. Pure functions;
// thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace vocab {

// "inet" | "inet6" | "unix" (also "ipv4", "ipv6", "4", "6", "local").
absl::StatusOr<v1::Family> ParseFamily(absl::string_view text);
// "stream" | "dgram" | "seqpacket" (also "tcp", "udp").
absl::StatusOr<v1::SocketType> ParseSocketType(absl::string_view text);
// "rd" | "wr" | "rdwr" (also "read", "write", "both").
absl::StatusOr<v1::ShutdownHow> ParseShutdownHow(absl::string_view text);
// "sequence" | "random" | "zero" (case-insensitive).
absl::StatusOr<v1::TrafficPattern> ParseTrafficPattern(absl::string_view text);

std::string FamilyName(v1::Family family);           // "inet"
std::string SocketTypeName(v1::SocketType type);     // "stream"
std::string SocketStateName(v1::SocketState state);  // "listening", "shut_down"
// "eof", "bytes", "duration", "fault" ("unspecified" otherwise).
std::string TrafficEndName(v1::TrafficEnd end);

}  // namespace vocab
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_VOCAB_WORDS_H_
