#include "server/core/socket_options.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/errno_status.h"

namespace sockagent {
namespace {

enum class Kind { kBool, kInt, kLinger, kMembership };

struct OptionSpec {
  int level;
  int name;
  Kind kind;
  bool settable;
  bool gettable;
};

// The typed options; nullptr for values outside the enum.
const OptionSpec* Lookup(v1::SocketOption option) {
  static const OptionSpec kSpecs[] = {
      {0, 0, Kind::kInt, false, false},  // SOCKET_OPTION_UNSPECIFIED
      {SOL_SOCKET, SO_REUSEADDR, Kind::kBool, true, true},
      {SOL_SOCKET, SO_REUSEPORT, Kind::kBool, true, true},
      {SOL_SOCKET, SO_KEEPALIVE, Kind::kBool, true, true},
      {SOL_SOCKET, SO_RCVBUF, Kind::kInt, true, true},
      {SOL_SOCKET, SO_SNDBUF, Kind::kInt, true, true},
      {SOL_SOCKET, SO_LINGER, Kind::kLinger, true, true},
      {SOL_SOCKET, SO_BROADCAST, Kind::kBool, true, true},
      {IPPROTO_TCP, TCP_NODELAY, Kind::kBool, true, true},
      {IPPROTO_IP, IP_TTL, Kind::kInt, true, true},
      {IPPROTO_IP, IP_TOS, Kind::kInt, true, true},
      {IPPROTO_IPV6, IPV6_V6ONLY, Kind::kBool, true, true},
      {IPPROTO_IP, IP_MULTICAST_TTL, Kind::kInt, true, true},
      {IPPROTO_IP, IP_MULTICAST_LOOP, Kind::kBool, true, true},
      {IPPROTO_IP, IP_ADD_MEMBERSHIP, Kind::kMembership, true, false},
      {IPPROTO_IP, IP_DROP_MEMBERSHIP, Kind::kMembership, true, false},
      {SOL_SOCKET, SO_ERROR, Kind::kInt, false, true},
      {SOL_SOCKET, SO_TYPE, Kind::kInt, false, true},
  };
  const int index = static_cast<int>(option);
  if (index <= 0 || index >= static_cast<int>(std::size(kSpecs))) {
    return nullptr;
  }
  return &kSpecs[index];
}

constexpr size_t kMaxRawLength = 1024;

absl::Status KindMismatch(v1::SocketOption option, const char* wanted) {
  return absl::InvalidArgumentError(absl::StrCat(
      "value: ", v1::SocketOption_Name(option), " takes ", wanted));
}

absl::Status SetRaw(SocketOps& ops, int fd, int level, int name,
                    const void* value, socklen_t length) {
  SysCallInt rc = ops.SetSockOpt(fd, level, name, value, length);
  if (!rc.ok()) return OsError(rc.error, "setsockopt");
  return absl::OkStatus();
}

}  // namespace

absl::Status SetSocketOption(SocketOps& ops, int fd,
                             const v1::SetSockOptRequest& request) {
  const v1::OptionValue& value = request.value();
  if (request.has_raw_option()) {
    if (value.value_case() != v1::OptionValue::kRaw) {
      return absl::InvalidArgumentError(
          "value: a raw_option takes value.raw bytes");
    }
    if (value.raw().size() > kMaxRawLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("value.raw: longer than ", kMaxRawLength, " bytes"));
    }
    return SetRaw(ops, fd, request.raw_option().level(),
                  request.raw_option().name(), value.raw().data(),
                  static_cast<socklen_t>(value.raw().size()));
  }
  const OptionSpec* spec = Lookup(request.option());
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "option: unknown socket option ", static_cast<int>(request.option())));
  }
  if (!spec->settable) {
    return absl::InvalidArgumentError(absl::StrCat(
        "option: ", v1::SocketOption_Name(request.option()), " cannot be set"));
  }
  switch (spec->kind) {
    case Kind::kBool:
    case Kind::kInt: {
      int number;
      if (value.value_case() == v1::OptionValue::kBoolValue) {
        number = value.bool_value() ? 1 : 0;
      } else if (value.value_case() == v1::OptionValue::kIntValue) {
        if (value.int_value() < INT32_MIN || value.int_value() > INT32_MAX) {
          return absl::InvalidArgumentError(
              "value.int_value: out of the range of a C int");
        }
        number = static_cast<int>(value.int_value());
      } else {
        return KindMismatch(request.option(), spec->kind == Kind::kBool
                                                  ? "bool_value"
                                                  : "int_value");
      }
      return SetRaw(ops, fd, spec->level, spec->name, &number, sizeof(number));
    }
    case Kind::kLinger: {
      if (value.value_case() != v1::OptionValue::kLinger) {
        return KindMismatch(request.option(), "linger");
      }
      linger data{};
      data.l_onoff = value.linger().enabled() ? 1 : 0;
      data.l_linger = value.linger().seconds();
      if (data.l_linger < 0) {
        return absl::InvalidArgumentError(
            "value.linger.seconds: must not be negative");
      }
      return SetRaw(ops, fd, spec->level, spec->name, &data, sizeof(data));
    }
    case Kind::kMembership: {
      if (value.value_case() != v1::OptionValue::kMembership) {
        return KindMismatch(request.option(), "membership");
      }
      ip_mreq mreq{};
      if (::inet_pton(AF_INET, value.membership().group().c_str(),
                      &mreq.imr_multiaddr) != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("value.membership.group: not an IPv4 address: '",
                         value.membership().group().substr(0, 64), "'"));
      }
      mreq.imr_interface.s_addr = htonl(INADDR_ANY);
      if (!value.membership().interface().empty() &&
          ::inet_pton(AF_INET, value.membership().interface().c_str(),
                      &mreq.imr_interface) != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("value.membership.interface: not an IPv4 address: '",
                         value.membership().interface().substr(0, 64), "'"));
      }
      return SetRaw(ops, fd, spec->level, spec->name, &mreq, sizeof(mreq));
    }
  }
  return absl::InternalError("unhandled option kind");
}

absl::StatusOr<v1::OptionValue> GetSocketOption(
    SocketOps& ops, int fd, const v1::GetSockOptRequest& request) {
  v1::OptionValue result;
  if (request.has_raw_option()) {
    const size_t length = request.raw_length() == 0 ? 4 : request.raw_length();
    if (length > kMaxRawLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("raw_length: at most ", kMaxRawLength));
    }
    std::string buffer(length, '\0');
    socklen_t got = static_cast<socklen_t>(length);
    SysCallInt rc =
        ops.GetSockOpt(fd, request.raw_option().level(),
                       request.raw_option().name(), buffer.data(), &got);
    if (!rc.ok()) return OsError(rc.error, "getsockopt");
    buffer.resize(got);
    result.set_raw(std::move(buffer));
    return result;
  }
  const OptionSpec* spec = Lookup(request.option());
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "option: unknown socket option ", static_cast<int>(request.option())));
  }
  if (!spec->gettable) {
    return absl::InvalidArgumentError(
        absl::StrCat("option: ", v1::SocketOption_Name(request.option()),
                     " cannot be read"));
  }
  if (spec->kind == Kind::kLinger) {
    linger data{};
    socklen_t length = sizeof(data);
    SysCallInt rc = ops.GetSockOpt(fd, spec->level, spec->name, &data, &length);
    if (!rc.ok()) return OsError(rc.error, "getsockopt");
    result.mutable_linger()->set_enabled(data.l_onoff != 0);
    result.mutable_linger()->set_seconds(data.l_linger);
    return result;
  }
  int number = 0;
  socklen_t length = sizeof(number);
  SysCallInt rc = ops.GetSockOpt(fd, spec->level, spec->name, &number, &length);
  if (!rc.ok()) return OsError(rc.error, "getsockopt");
  if (spec->kind == Kind::kBool) {
    result.set_bool_value(number != 0);
  } else {
    result.set_int_value(number);
  }
  return result;
}

}  // namespace sockagent
