#include "client/cli/cli_util.h"

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
#include "google/protobuf/util/json_util.h"
#include "proto/errno_status.h"

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

std::string ErrnoLine(const ErrnoInfo& info, const absl::Status& status) {
  // EAI_* details carry getaddrinfo codes, not errno values: keep the
  // agent's message for them.
  if (absl::StartsWith(info.name, "EAI_") || info.number <= 0) {
    return std::string(status.message());
  }
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
  return GetErrno(status).has_value() ? kExitSocket : kExitRpc;
}

std::string DescribeError(absl::string_view context,
                          const absl::Status& status) {
  if (std::optional<ErrnoInfo> info = GetErrno(status); info.has_value()) {
    return ErrnoLine(*info, status);
  }
  return absl::StrCat(context, ": ", status.message(), " (",
                      absl::StatusCodeToString(status.code()), ")");
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
  absl::Duration duration;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds)) {
    duration = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &duration)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "duration \"", text, "\": expected e.g. 2.5s, 100ms, 10m or 1.5"));
  }
  if (duration < absl::ZeroDuration() || duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration \"", text, "\": must be finite and >= 0"));
  }
  return duration;
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
      return "shut-down";
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
  std::string lower = absl::AsciiStrToLower(text);
  uint64_t multiplier = 1;
  for (const auto& [suffix, factor] :
       {std::pair<const char*, uint64_t>{"kib", 1ULL << 10},
        {"mib", 1ULL << 20},
        {"gib", 1ULL << 30},
        {"k", 1ULL << 10},
        {"m", 1ULL << 20},
        {"g", 1ULL << 30}}) {
    if (absl::EndsWith(lower, suffix)) {
      lower.resize(lower.size() - std::strlen(suffix));
      multiplier = factor;
      break;
    }
  }
  uint64_t value = 0;
  if (lower.empty() || !absl::SimpleAtoi(lower, &value) ||
      (value != 0 && value > UINT64_MAX / multiplier)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", text,
                     "\": expected a byte count like 1000, 64K, 10M or 1G"));
  }
  return value * multiplier;
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
  return absl::Seconds(response.elapsed().seconds()) +
         absl::Nanoseconds(response.elapsed().nanos());
}

}  // namespace

std::string FormatTraffic(const v1::TrafficResponse& response) {
  return absl::StrCat("end=", TrafficEndName(response.end()),
                      " received=", response.bytes_received(),
                      " sent=", response.bytes_sent(),
                      " datagrams_received=", response.datagrams_received(),
                      " datagrams_sent=", response.datagrams_sent(),
                      " elapsed=", absl::FormatDuration(ElapsedOf(response)),
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
      .AddRaw("elapsed_seconds",
              absl::StrCat(absl::ToDoubleSeconds(ElapsedOf(response))))
      .AddRaw("bytes_per_second", absl::StrCat(response.bytes_per_second()))
      .AddString("checksum", response.checksum())
      .Build();
}

std::string DurationText(absl::Duration duration) {
  return absl::FormatDuration(duration);
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

std::string ProtoJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options)
           .ok()) {
    return "null";
  }
  return out;
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
