#include "client/cli/cli_util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/duration_codec.h"
#include "proto/errno_status.h"
#include "proto/units.h"

namespace sockagent {
namespace cli {
namespace {

struct NamedOption {
  const char* name;
  OptionSpec spec;
};

constexpr NamedOption kOptions[] = {
    {"SO_REUSEADDR", {v1::OPT_SO_REUSEADDR, OptionKind::kBool, true, true}},
    {"SO_REUSEPORT", {v1::OPT_SO_REUSEPORT, OptionKind::kBool, true, true}},
    {"SO_KEEPALIVE", {v1::OPT_SO_KEEPALIVE, OptionKind::kBool, true, true}},
    {"SO_RCVBUF", {v1::OPT_SO_RCVBUF, OptionKind::kInt, true, true}},
    {"SO_SNDBUF", {v1::OPT_SO_SNDBUF, OptionKind::kInt, true, true}},
    {"SO_LINGER", {v1::OPT_SO_LINGER, OptionKind::kLinger, true, true}},
    {"SO_BROADCAST", {v1::OPT_SO_BROADCAST, OptionKind::kBool, true, true}},
    {"TCP_NODELAY", {v1::OPT_TCP_NODELAY, OptionKind::kBool, true, true}},
    {"IP_TTL", {v1::OPT_IP_TTL, OptionKind::kInt, true, true}},
    {"IP_TOS", {v1::OPT_IP_TOS, OptionKind::kInt, true, true}},
    {"IPV6_V6ONLY", {v1::OPT_IPV6_V6ONLY, OptionKind::kBool, true, true}},
    {"IP_MULTICAST_TTL",
     {v1::OPT_IP_MULTICAST_TTL, OptionKind::kInt, true, true}},
    {"IP_MULTICAST_LOOP",
     {v1::OPT_IP_MULTICAST_LOOP, OptionKind::kBool, true, true}},
    {"IP_ADD_MEMBERSHIP",
     {v1::OPT_IP_ADD_MEMBERSHIP, OptionKind::kMembership, true, false}},
    {"IP_DROP_MEMBERSHIP",
     {v1::OPT_IP_DROP_MEMBERSHIP, OptionKind::kMembership, true, false}},
    {"SO_ERROR", {v1::OPT_SO_ERROR, OptionKind::kInt, false, true}},
    {"SO_TYPE", {v1::OPT_SO_TYPE, OptionKind::kInt, false, true}},
};

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "1" || lower == "on" || lower == "true" || lower == "yes") {
    return true;
  }
  if (lower == "0" || lower == "off" || lower == "false" || lower == "no") {
    return false;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("value \"", text, "\": expected on/off, 1/0, true/false"));
}

bool IsResolutionError(const ErrnoInfo& info) {
  return absl::StartsWith(info.name, "EAI_");
}

std::string ErrnoLine(const ErrnoInfo& info, const absl::Status& status) {
  // EAI_* details carry getaddrinfo codes, not errno values: the agent's
  // message says what did not resolve.
  if (IsResolutionError(info)) {
    return absl::StrCat("name resolution failed on the agent: ",
                        status.message());
  }
  if (info.number <= 0) return std::string(status.message());
  // No system call failed (a closed handle's EBADF): the agent's message.
  if (info.syscall.empty()) {
    return absl::StrCat(status.message(), " (", info.name, ")");
  }
  return absl::StrCat(info.syscall, ": ", std::strerror(info.number), " (",
                      info.name, ")");
}

}  // namespace

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  std::optional<ErrnoInfo> info = GetErrno(status);
  if (!info.has_value()) return kExitRpc;
  return IsResolutionError(*info) ? kExitResolve : kExitSocket;
}

std::string DescribeError(absl::string_view context,
                          const absl::Status& status) {
  if (std::optional<ErrnoInfo> info = GetErrno(status); info.has_value()) {
    return ErrnoLine(*info, status);
  }
  absl::string_view message = status.message();
  const std::string code =
      absl::StrCat(" (", absl::StatusCodeToString(status.code()), ")");
  if (absl::StartsWith(message, absl::StrCat(context, ":"))) {
    return absl::StrCat(message, code);
  }
  return absl::StrCat(context, ": ", message, code);
}

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

std::string ErrorJson(const absl::Status& status) {
  JsonObject error;
  error.AddString("code", absl::StatusCodeToString(status.code()));
  error.AddString("message", status.message());
  if (std::optional<ErrnoInfo> info = GetErrno(status); info.has_value()) {
    error.AddInt("errno", info->number);
    error.AddString("errno_name", info->name);
    error.AddString("syscall", info->syscall);
  }
  return JsonObject().AddRaw("error", error.Build()).Build();
}

absl::StatusOr<absl::Duration> ParseDurationArg(absl::string_view text) {
  return ParseDurationText(text);
}

absl::StatusOr<std::optional<absl::Duration>> ParseTimeout(
    absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "none" || lower == "blocking") {
    return std::optional<absl::Duration>();
  }
  absl::StatusOr<absl::Duration> duration = ParseDurationArg(text);
  if (!duration.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "timeout \"", text, "\": expected none, 0, or a duration like 2.5s"));
  }
  return std::optional<absl::Duration>(*duration);
}

absl::StatusOr<v1::Family> ParseFamily(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "inet" || lower == "ipv4" || lower == "4") {
    return v1::FAMILY_INET;
  }
  if (lower == "inet6" || lower == "ipv6" || lower == "6") {
    return v1::FAMILY_INET6;
  }
  if (lower == "unix" || lower == "local") return v1::FAMILY_UNIX;
  return absl::InvalidArgumentError(
      absl::StrCat("family \"", text, "\": expected inet, inet6 or unix"));
}

absl::StatusOr<v1::SocketType> ParseSocketType(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "stream" || lower == "tcp") return v1::SOCKET_TYPE_STREAM;
  if (lower == "dgram" || lower == "udp") return v1::SOCKET_TYPE_DGRAM;
  if (lower == "seqpacket") return v1::SOCKET_TYPE_SEQPACKET;
  return absl::InvalidArgumentError(
      absl::StrCat("type \"", text, "\": expected stream, dgram or seqpacket"));
}

absl::StatusOr<v1::ShutdownHow> ParseShutdownHow(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "rd" || lower == "read") return v1::SHUTDOWN_HOW_READ;
  if (lower == "wr" || lower == "write") return v1::SHUTDOWN_HOW_WRITE;
  if (lower == "rdwr" || lower == "both") return v1::SHUTDOWN_HOW_BOTH;
  return absl::InvalidArgumentError(
      absl::StrCat("shutdown \"", text, "\": expected rd, wr or rdwr"));
}

std::string FamilyName(v1::Family family) {
  switch (family) {
    case v1::FAMILY_INET:
      return "inet";
    case v1::FAMILY_INET6:
      return "inet6";
    case v1::FAMILY_UNIX:
      return "unix";
    default:
      return absl::StrCat(static_cast<int>(family));
  }
}

std::string SocketTypeName(v1::SocketType type) {
  switch (type) {
    case v1::SOCKET_TYPE_STREAM:
      return "stream";
    case v1::SOCKET_TYPE_DGRAM:
      return "dgram";
    case v1::SOCKET_TYPE_SEQPACKET:
      return "seqpacket";
    case v1::SOCKET_TYPE_RAW:
      return "raw";
    default:
      return absl::StrCat(static_cast<int>(type));
  }
}

std::string SocketStateName(v1::SocketState state) {
  switch (state) {
    case v1::SOCKET_STATE_OPEN:
      return "open";
    case v1::SOCKET_STATE_BOUND:
      return "bound";
    case v1::SOCKET_STATE_LISTENING:
      return "listening";
    case v1::SOCKET_STATE_CONNECTING:
      return "connecting";
    case v1::SOCKET_STATE_CONNECTED:
      return "connected";
    case v1::SOCKET_STATE_SHUT_DOWN:
      return "shut_down";
    default:
      return "-";
  }
}

absl::StatusOr<OptionSpec> ParseOptionName(absl::string_view name) {
  std::string upper = absl::AsciiStrToUpper(name);
  absl::string_view bare = upper;
  absl::ConsumePrefix(&bare, "OPT_");
  for (const NamedOption& option : kOptions) {
    if (bare == option.name) return option.spec;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("option \"", name, "\": unknown (see --help for names)"));
}

std::vector<std::string> OptionNames() {
  std::vector<std::string> names;
  for (const NamedOption& option : kOptions) names.push_back(option.name);
  return names;
}

absl::StatusOr<v1::OptionValue> ParseOptionValue(OptionKind kind,
                                                 absl::string_view text) {
  v1::OptionValue value;
  switch (kind) {
    case OptionKind::kBool: {
      absl::StatusOr<bool> b = ParseBool(text);
      if (!b.ok()) return b.status();
      value.set_bool_value(*b);
      return value;
    }
    case OptionKind::kInt: {
      int64_t i = 0;
      if (!absl::SimpleAtoi(text, &i)) {
        return absl::InvalidArgumentError(
            absl::StrCat("value \"", text, "\": expected an integer"));
      }
      value.set_int_value(i);
      return value;
    }
    case OptionKind::kLinger: {
      std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
      int seconds = 0;
      absl::StatusOr<bool> enabled = ParseBool(parts[0]);
      if (parts.size() > 2 || !enabled.ok() ||
          (parts.size() == 2 &&
           (!absl::SimpleAtoi(parts[1], &seconds) || seconds < 0))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "value \"", text, "\": expected on:SECONDS or off for SO_LINGER"));
      }
      value.mutable_linger()->set_enabled(*enabled);
      value.mutable_linger()->set_seconds(seconds);
      return value;
    }
    case OptionKind::kMembership: {
      std::vector<std::string> parts = absl::StrSplit(text, '@');
      if (parts.size() > 2 || parts[0].empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "value \"", text, "\": expected GROUP or GROUP@INTERFACE"));
      }
      value.mutable_membership()->set_group(parts[0]);
      if (parts.size() == 2)
        value.mutable_membership()->set_interface(parts[1]);
      return value;
    }
  }
  return absl::InvalidArgumentError("unknown option kind");
}

std::string FormatOptionValue(const v1::OptionValue& value) {
  switch (value.value_case()) {
    case v1::OptionValue::kBoolValue:
      return value.bool_value() ? "on" : "off";
    case v1::OptionValue::kIntValue:
      return absl::StrCat(value.int_value());
    case v1::OptionValue::kLinger:
      return absl::StrCat(value.linger().enabled() ? "on" : "off", ":",
                          value.linger().seconds());
    case v1::OptionValue::kMembership:
      return value.membership().interface().empty()
                 ? value.membership().group()
                 : absl::StrCat(value.membership().group(), "@",
                                value.membership().interface());
    case v1::OptionValue::kRaw:
      return absl::StrCat("0x", absl::BytesToHexString(value.raw()));
    case v1::OptionValue::VALUE_NOT_SET:
      break;
  }
  return "";
}

absl::StatusOr<v1::TrafficPattern> ParseTrafficPattern(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "sequence" || lower == "seq") {
    return v1::TRAFFIC_PATTERN_SEQUENCE;
  }
  if (lower == "random") return v1::TRAFFIC_PATTERN_RANDOM;
  if (lower == "zero" || lower == "zeros") return v1::TRAFFIC_PATTERN_ZERO;
  return absl::InvalidArgumentError(absl::StrCat(
      "pattern \"", text, "\": expected sequence, random or zero"));
}

absl::StatusOr<uint64_t> ParseByteCount(absl::string_view text,
                                        absl::string_view what) {
  absl::StatusOr<uint64_t> size = ParseByteSize(text);
  if (!size.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", size.status().message()));
  }
  return size;
}

std::string TrafficEndName(v1::TrafficEnd end) {
  switch (end) {
    case v1::TRAFFIC_END_EOF:
      return "eof";
    case v1::TRAFFIC_END_BYTES:
      return "bytes";
    case v1::TRAFFIC_END_DURATION:
      return "duration";
    case v1::TRAFFIC_END_FAULT:
      return "fault";
    default:
      return "unspecified";
  }
}

namespace {

absl::Duration ElapsedOf(const v1::TrafficResponse& response) {
  return FromProtoDuration(response.elapsed());
}

}  // namespace

std::string FormatTraffic(const v1::TrafficResponse& response) {
  return absl::StrCat("end=", TrafficEndName(response.end()),
                      " bytes_received=", response.bytes_received(),
                      " bytes_sent=", response.bytes_sent(),
                      " datagrams_received=", response.datagrams_received(),
                      " datagrams_sent=", response.datagrams_sent(),
                      " elapsed=", DurationText(ElapsedOf(response)),
                      " bytes_per_second=",
                      static_cast<uint64_t>(response.bytes_per_second() + 0.5),
                      " checksum=", response.checksum());
}

std::string TrafficJson(const v1::TrafficResponse& response) {
  return JsonObject()
      .AddString("end", TrafficEndName(response.end()))
      .AddInt("bytes_received", static_cast<int64_t>(response.bytes_received()))
      .AddInt("bytes_sent", static_cast<int64_t>(response.bytes_sent()))
      .AddInt("datagrams_received",
              static_cast<int64_t>(response.datagrams_received()))
      .AddInt("datagrams_sent", static_cast<int64_t>(response.datagrams_sent()))
      .AddRaw("elapsed_s", DurationSeconds(ElapsedOf(response)))
      .AddRaw("bytes_per_second", absl::StrCat(response.bytes_per_second()))
      .AddString("checksum", response.checksum())
      .Build();
}

std::string DurationText(absl::Duration duration) {
  if (duration == absl::ZeroDuration()) return "0s";
  const absl::Duration magnitude = absl::AbsDuration(duration);
  absl::Duration unit = absl::Milliseconds(1);
  if (magnitude < absl::Milliseconds(1)) {
    unit = absl::Microseconds(1);
  } else if (magnitude < absl::Seconds(1)) {
    unit = absl::Microseconds(10);
  }
  return absl::FormatDuration(absl::Trunc(duration, unit));
}

std::string DurationSeconds(absl::Duration duration) {
  return absl::StrFormat("%.9g", absl::ToDoubleSeconds(duration));
}

bool IsValidUtf8(absl::string_view data) {
  size_t i = 0;
  while (i < data.size()) {
    const unsigned char c = static_cast<unsigned char>(data[i]);
    int extra;
    uint32_t code;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= data.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(data[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10ffff ||
        (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // Copy a valid UTF-8 sequence; replace an invalid byte.
      size_t len = (c & 0xe0) == 0xc0   ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 1;
      if (len > 1 && i + len <= text.size() &&
          IsValidUtf8(text.substr(i, len))) {
        out.append(text.data() + i, len);
        i += len;
      } else {
        out += "\\ufffd";
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += "\"";
  return out;
}

JsonObject& JsonObject::AddString(absl::string_view key,
                                  absl::string_view value) {
  fields_.emplace_back(std::string(key), JsonString(value));
  return *this;
}

JsonObject& JsonObject::AddInt(absl::string_view key, int64_t value) {
  fields_.emplace_back(std::string(key), absl::StrCat(value));
  return *this;
}

JsonObject& JsonObject::AddBool(absl::string_view key, bool value) {
  fields_.emplace_back(std::string(key), value ? "true" : "false");
  return *this;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, absl::string_view json) {
  fields_.emplace_back(std::string(key), std::string(json));
  return *this;
}

JsonObject& JsonObject::AddData(absl::string_view data) {
  AddString("data_base64", absl::Base64Escape(data));
  if (IsValidUtf8(data)) AddString("text", data);
  return *this;
}

std::string JsonObject::Build() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, JsonString(fields_[i].first), ":", fields_[i].second);
  }
  out += "}";
  return out;
}

std::string EnumWord(const google::protobuf::EnumValueDescriptor& value) {
  // "SocketState" -> "SOCKET_STATE_".
  std::string prefix;
  for (char c : value.type()->name()) {
    if (absl::ascii_isupper(c) && !prefix.empty()) prefix += '_';
    prefix += absl::ascii_toupper(c);
  }
  prefix += '_';
  absl::string_view name = value.name();
  absl::ConsumePrefix(&name, prefix);
  return absl::AsciiStrToLower(name);
}

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string MessageJsonValue(const Message& message);

// One value of `field` (element `index` when repeated).
std::string FieldJsonValue(const Message& message, const FieldDescriptor* field,
                           int index) {
  const Reflection* r = message.GetReflection();
  const bool rep = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(message, field, index)
                              : r->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(message, field, index)
                              : r->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(message, field, index)
                              : r->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(message, field, index)
                              : r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const double v = field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE
                           ? (rep ? r->GetRepeatedDouble(message, field, index)
                                  : r->GetDouble(message, field))
                           : (rep ? r->GetRepeatedFloat(message, field, index)
                                  : r->GetFloat(message, field));
      return std::isfinite(v) ? absl::StrFormat("%.17g", v) : "null";
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(message, field, index)
                  : r->GetBool(message, field))
                 ? "true"
                 : "false";
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* value =
          rep ? r->GetRepeatedEnum(message, field, index)
              : r->GetEnum(message, field);
      return JsonString(EnumWord(*value));
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string value =
          rep ? r->GetRepeatedString(message, field, index)
              : r->GetString(message, field);
      return JsonString(field->type() == FieldDescriptor::TYPE_BYTES
                            ? absl::Base64Escape(value)
                            : value);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageJsonValue(rep ? r->GetRepeatedMessage(message, field, index)
                                  : r->GetMessage(message, field));
  }
  return "null";
}

std::string MessageJsonValue(const Message& message) {
  const google::protobuf::Descriptor* type = message.GetDescriptor();
  if (type->full_name() == v1::Address::descriptor()->full_name()) {
    v1::Address address;
    address.CopyFrom(message);
    return JsonString(FormatAddress(address));
  }
  if (type->full_name() == "google.protobuf.Timestamp") {
    google::protobuf::Timestamp t;
    t.CopyFrom(message);
    return JsonString(absl::FormatTime(
        "%Y-%m-%dT%H:%M:%E*SZ",
        absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()),
        absl::UTCTimeZone()));
  }
  const Reflection* r = message.GetReflection();
  std::string out = "{";
  bool first = true;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    const bool is_message =
        field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (!field->is_repeated() &&
        (field->containing_oneof() != nullptr || is_message) &&
        !r->HasField(message, field)) {
      continue;
    }
    std::string key = field->name();
    std::string value;
    if (is_message && !field->is_repeated() &&
        field->message_type()->full_name() == "google.protobuf.Duration") {
      google::protobuf::Duration d;
      d.CopyFrom(r->GetMessage(message, field));
      absl::StrAppend(&key, "_s");
      value = DurationSeconds(FromProtoDuration(d));
    } else if (field->is_repeated()) {
      value = "[";
      for (int k = 0; k < r->FieldSize(message, field); ++k) {
        if (k > 0) value += ",";
        value += FieldJsonValue(message, field, k);
      }
      value += "]";
    } else {
      value = FieldJsonValue(message, field, 0);
    }
    if (!first) out += ",";
    first = false;
    absl::StrAppend(&out, JsonString(key), ":", value);
  }
  out += "}";
  return out;
}

}  // namespace

std::string MessageJson(const google::protobuf::Message& message) {
  return MessageJsonValue(message);
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size()) {
        line += row[i];
      } else {
        absl::StrAppend(&line, row[i],
                        std::string(widths[i] - row[i].size() + 2, ' '));
      }
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace cli
}  // namespace sockagent
