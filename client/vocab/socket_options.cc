#include "client/vocab/socket_options.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sockagent {
namespace vocab {

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

}  // namespace

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

}  // namespace vocab
}  // namespace sockagent
