#ifndef SOCKAGENT_CLIENT_ADDRESS_H_
#define SOCKAGENT_CLIENT_ADDRESS_H_

// Building, parsing and printing sockagent.v1.Address values on the client.
// Pure functions; thread-safe. Nothing here resolves names: host and service
// names travel to the agent unchanged and are looked up there.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// An IPv4/IPv6 address: `host` is an IP literal, a host name (resolved on the
// agent), "" for the wildcard address, or "<broadcast>".
v1::Address InetAddress(absl::string_view host, uint32_t port);

// A Unix-domain socket at a filesystem path.
v1::Address UnixPathAddress(absl::string_view path);

// A Linux abstract-namespace Unix socket; `name` excludes the leading NUL.
v1::Address AbstractAddress(absl::string_view name);

// Parses the textual forms sockctl accepts:
//   "host:port"       "127.0.0.1:80", "localhost:8080", ":80" (wildcard)
//   "host:service"    "localhost:http" (the service is looked up on the agent)
//   "[v6]:port"       "[::1]:80", "[fe80::1%eth0]:http", "[]:80" (wildcard)
//   "unix:/path"      also a bare "/path"; "unix:" alone is the unnamed
//                     address, which bind autobinds (Python's bind(""))
//   "abstract:name"   also "@name"; the name is taken literally
// Errors: INVALID_ARGUMENT saying what is wrong (missing port, port out of
// range, unbracketed IPv6 literal, empty abstract name, ...).
absl::StatusOr<v1::Address> ParseAddress(absl::string_view text);

// The inverse of ParseAddress for canonical addresses: "127.0.0.1:80",
// "[::1]:80", "[fe80::1%2]:80" (scope_id as a number), "unix:/p",
// "abstract:n". Non-printable bytes of an abstract
// name are C-escaped ("abstract:a\x01"); a path starting with NUL is shown as
// the abstract name it names. A path's other bytes are printed as they are
// (Linux paths need not be UTF-8). An unnamed Unix socket gives "unix:", an
// Address with no kind gives "".
std::string FormatAddress(const v1::Address& address);

}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_ADDRESS_H_
