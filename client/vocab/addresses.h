#ifndef SOCKAGENT_CLIENT_VOCAB_ADDRESSES_H_
#define SOCKAGENT_CLIENT_VOCAB_ADDRESSES_H_

// What the client can check of an address before any call: socket address
// arguments and agent targets. Pure functions; thread-safe
// (getservbyname_r).

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace vocab {

// The default port of an agent target given without one.
inline constexpr int kDefaultAgentPort = 7700;

// Checks what can be checked of an address argument before any call, so
// that a malformed one is a usage error rather than an agent error: a host
// made only of digits and dots must be an IPv4 address inet_aton accepts
// (not "300.1.1.1"); a bracketed host must be an IPv6 literal (optionally
// with %scope); a port must be a number 0..65535 or a service name in this
// host's services database (/etc/services). INVALID_ARGUMENT naming the part
// otherwise.
absl::Status CheckAddressArg(const v1::Address& address,
                             absl::string_view text);

// The gRPC target for --agent TEXT: "host:port" as given (the port checked:
// 1..65535), "host" or "[v6]" without a port gets kDefaultAgentPort; a bare
// IPv6 literal must be bracketed. gRPC URIs ("unix:", "unix-abstract:",
// "dns:", "ipv4:", "ipv6:") pass unchanged. INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> AgentTarget(absl::string_view text);

}  // namespace vocab
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_VOCAB_ADDRESSES_H_
