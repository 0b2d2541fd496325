#include "client/vocab/addresses.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace sockagent {
namespace vocab {

namespace {

// "" or a name of letters, digits, '-', '_', '.', '+', '/' that is in this
// host's services database.
bool KnownService(const std::string& name) {
  servent entry;
  servent* found = nullptr;
  char buffer[4096];
  return ::getservbyname_r(name.c_str(), nullptr, &entry, buffer,
                           sizeof(buffer), &found) == 0 &&
         found != nullptr;
}

absl::Status CheckHost(absl::string_view host, absl::string_view text) {
  if (!host.empty() &&
      host.find_first_not_of("0123456789.") == absl::string_view::npos) {
    in_addr unused;
    if (::inet_aton(std::string(host).c_str(), &unused) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", text, "\": host \"", host,
                       "\" is not an IPv4 address"));
    }
  }
  if (absl::StrContains(host, ':')) {
    std::string literal(host.substr(0, host.find('%')));
    in6_addr unused;
    if (::inet_pton(AF_INET6, literal.c_str(), &unused) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", text, "\": host \"", host,
                       "\" is not an IPv6 address"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckAddressArg(const v1::Address& address,
                             absl::string_view text) {
  if (!address.has_inet()) return absl::OkStatus();
  const v1::InetAddress& inet = address.inet();
  if (inet.host_kind_case() == v1::InetAddress::kHost) {
    if (absl::Status s = CheckHost(inet.host(), text); !s.ok()) return s;
  }
  const std::string& name = inet.port_name();
  if (inet.port_kind_case() == v1::InetAddress::kPortName &&
      name.find_first_not_of("0123456789") != std::string::npos &&
      !KnownService(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", text, "\": port \"", inet.port_name(),
                     "\" is neither a number 0..65535 nor a service name in "
                     "/etc/services"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AgentTarget(absl::string_view text) {
  for (absl::string_view scheme :
       {"unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(text, scheme)) return std::string(text);
  }
  auto bad = [text](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--agent \"", text, "\": ", why));
  };
  if (text.empty()) return bad("empty (expected HOST[:PORT])");
  absl::string_view host = text;
  absl::string_view port;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return bad("missing ']'");
    host = text.substr(1, close - 1);
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty() && !absl::ConsumePrefix(&rest, ":")) {
      return bad("expected \":PORT\" after ']'");
    }
    port = rest;
    if (absl::Status s = CheckHost(host, text); !s.ok())
      return bad(s.message());
    if (!absl::StrContains(host, ':'))
      return bad("[...] holds an IPv6 address");
  } else {
    const size_t colon = text.rfind(':');
    if (colon != absl::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (absl::StrContains(host, ':')) {
        return bad("write an IPv6 address as [ADDRESS]:PORT");
      }
    }
    if (host.empty()) return bad("no host (expected HOST[:PORT])");
    if (absl::Status s = CheckHost(host, text); !s.ok())
      return bad(s.message());
  }
  if (port.empty()) {
    const std::string bracketed = absl::StrContains(host, ':')
                                      ? absl::StrCat("[", host, "]")
                                      : std::string(host);
    return absl::StrCat(bracketed, ":", kDefaultAgentPort);
  }
  int number = 0;
  if (!absl::SimpleAtoi(port, &number) || number < 1 || number > 65535 ||
      port.find_first_not_of("0123456789") != absl::string_view::npos) {
    return bad(absl::StrCat("port \"", port, "\" is not a number 1..65535"));
  }
  return std::string(text);
}

}  // namespace vocab
}  // namespace sockagent
