#include "client/vocab/words.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sockagent {
namespace vocab {

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
    case v1::TRAFFIC_END_RELAYED:
      return "relayed";
    default:
      return "unspecified";
  }
}

}  // namespace vocab
}  // namespace sockagent
