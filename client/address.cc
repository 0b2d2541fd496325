#include "client/address.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace sockagent {
namespace {

constexpr uint32_t kMaxPort = 65535;

// Sets the port of `inet` from a number or a service name.
absl::Status SetPort(absl::string_view text, absl::string_view whole,
                     v1::InetAddress* inet) {
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", whole, "\": missing port"));
  }
  bool all_digits = true;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) all_digits = false;
  }
  if (all_digits) {
    uint32_t port = 0;
    if (text.size() > 5 || !absl::SimpleAtoi(text, &port) || port > kMaxPort) {
      return absl::InvalidArgumentError(absl::StrCat(
          "address \"", whole, "\": port ", text, " is out of range 0..65535"));
    }
    inet->set_port(port);
    return absl::OkStatus();
  }
  // A service name (services(5)): a letter, then letters, digits and '-'.
  if (!absl::ascii_isalpha(static_cast<unsigned char>(text.front()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address \"", whole, "\": bad port or service name \"", text, "\""));
  }
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.' && c != '+') {
      return absl::InvalidArgumentError(absl::StrCat(
          "address \"", whole, "\": bad port or service name \"", text, "\""));
    }
  }
  inet->set_port_name(std::string(text));
  return absl::OkStatus();
}

}  // namespace

v1::Address InetAddress(absl::string_view host, uint32_t port) {
  v1::Address address;
  address.mutable_inet()->set_host(std::string(host));
  address.mutable_inet()->set_port(port);
  return address;
}

v1::Address UnixPathAddress(absl::string_view path) {
  v1::Address address;
  address.mutable_unix()->set_path(std::string(path));
  return address;
}

v1::Address AbstractAddress(absl::string_view name) {
  v1::Address address;
  address.mutable_unix()->set_abstract(std::string(name));
  return address;
}

absl::StatusOr<v1::Address> ParseAddress(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("address is empty");
  if (absl::ConsumePrefix(&text, "unix:") || absl::StartsWith(text, "/")) {
    // "unix:" alone is the unnamed address: bind autobinds (Python's
    // bind("")).
    return UnixPathAddress(text);
  }
  if (absl::ConsumePrefix(&text, "abstract:") ||
      absl::ConsumePrefix(&text, "@")) {
    if (text.empty()) {
      return absl::InvalidArgumentError("abstract address: empty name");
    }
    return AbstractAddress(text);
  }
  v1::Address address;
  v1::InetAddress* inet = address.mutable_inet();
  absl::string_view port;
  if (absl::StartsWith(text, "[")) {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", text, "\": missing ']'"));
    }
    absl::string_view rest = text.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", text, "\": expected \":port\" after ']'"));
    }
    inet->set_host(std::string(text.substr(1, close - 1)));
    port = rest;
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", text, "\": missing \":port\""));
    }
    absl::string_view host = text.substr(0, colon);
    if (absl::StrContains(host, ':')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "address \"", text, "\": write IPv6 literals as [addr]:port"));
    }
    inet->set_host(std::string(host));
    port = text.substr(colon + 1);
  }
  absl::Status status = SetPort(port, text, inet);
  if (!status.ok()) return status;
  return address;
}

std::string FormatAddress(const v1::Address& address) {
  switch (address.kind_case()) {
    case v1::Address::kInet: {
      const v1::InetAddress& inet = address.inet();
      std::string host;
      if (inet.host_kind_case() == v1::InetAddress::kHostInt) {
        const uint32_t v = inet.host_int();
        host = absl::StrFormat("%d.%d.%d.%d", v >> 24, (v >> 16) & 0xff,
                               (v >> 8) & 0xff, v & 0xff);
      } else if (absl::StrContains(inet.host(), ':')) {
        // The agent returns the bare address with the scope in scope_id
        // (as Python does); print it as a numeric %scope.
        host = inet.scope_id() != 0 && !absl::StrContains(inet.host(), '%')
                   ? absl::StrCat("[", inet.host(), "%", inet.scope_id(), "]")
                   : absl::StrCat("[", inet.host(), "]");
      } else {
        host = inet.host();
      }
      if (inet.port_kind_case() == v1::InetAddress::kPortName) {
        return absl::StrCat(host, ":", inet.port_name());
      }
      return absl::StrCat(host, ":", inet.port());
    }
    case v1::Address::kUnix:
      if (address.unix().name_case() == v1::UnixAddress::kAbstract) {
        return absl::StrCat("abstract:",
                            absl::CHexEscape(address.unix().abstract()));
      }
      if (!address.unix().path().empty() && address.unix().path()[0] == '\0') {
        // A path starting with NUL names an abstract socket, as in Python.
        return absl::StrCat(
            "abstract:",
            absl::CHexEscape(
                absl::string_view(address.unix().path()).substr(1)));
      }
      return absl::StrCat("unix:", address.unix().path());
    case v1::Address::KIND_NOT_SET:
      break;
  }
  return "";
}

}  // namespace sockagent
