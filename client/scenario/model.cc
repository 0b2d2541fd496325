#include "client/scenario/model.h"

#include <sys/socket.h>

#include <cctype>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/address.h"
#include "client/vocab/quantities.h"
#include "client/vocab/socket_options.h"
#include "client/vocab/words.h"
#include "proto/traffic_data.h"
#include "proto/units.h"

namespace sockagent::scenario {

bool HasReference(absl::string_view text) {
  return absl::StrContains(text, "${");
}

absl::StatusOr<uint64_t> ParseUint(absl::string_view text) {
  uint64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a non-negative integer"));
  }
  return value;
}

absl::StatusOr<uint64_t> ParseSize(absl::string_view text) {
  constexpr uint64_t kMaxScenarioSize = uint64_t{1} << 40;
  absl::StatusOr<uint64_t> size = ParseByteSize(text);
  if (size.ok() && *size > kMaxScenarioSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is too large"));
  }
  return size;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (t == "true" || t == "yes" || t == "on" || t == "1") return true;
  if (t == "false" || t == "no" || t == "off" || t == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\" is not a boolean (true/false)"));
}

absl::StatusOr<int> ParseRecvFlags(absl::string_view text) {
  int flags = 0;
  for (absl::string_view word :
       absl::StrSplit(text, absl::ByAnyChar(", []"), absl::SkipEmpty())) {
    const std::string w = absl::AsciiStrToLower(word);
    if (w == "peek") {
      flags |= MSG_PEEK;
    } else if (w == "waitall") {
      flags |= MSG_WAITALL;
    } else if (w == "oob") {
      flags |= MSG_OOB;
    } else if (w == "dontwait") {
      flags |= MSG_DONTWAIT;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown flag \"", word, "\" (peek, waitall, oob, dontwait)"));
    }
  }
  return flags;
}

absl::StatusOr<double> ParsePercent(absl::string_view text) {
  absl::string_view number = text;
  absl::ConsumeSuffix(&number, "%");
  double value = 0;
  if (!absl::SimpleAtod(number, &value) || !(value >= 0 && value <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a percentage from 0 to 100"));
  }
  return value;
}

RE2::Options RegexOptions() {
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingLatin1);
  options.set_log_errors(false);
  return options;
}

std::string DurationText(absl::Duration duration) {
  return vocab::DurationText(duration);
}

absl::Status CheckArg(ArgType type, absl::string_view value) {
  switch (type) {
    case ArgType::kString:
    case ArgType::kSocketName:
      return absl::OkStatus();
    case ArgType::kAddress:
      return ParseAddress(value).status();
    case ArgType::kUint:
      return ParseUint(value).status();
    case ArgType::kSize:
      return ParseSize(value).status();
    case ArgType::kDuration:
      return ParseDurationText(value).status();
    case ArgType::kTimeout:
      return vocab::ParseTimeout(value).status();
    case ArgType::kBool:
      return ParseBool(value).status();
    case ArgType::kFamily:
      return vocab::ParseFamily(value).status();
    case ArgType::kSocketType:
      return vocab::ParseSocketType(value).status();
    case ArgType::kHow:
      return vocab::ParseShutdownHow(value).status();
    case ArgType::kOption:
      return vocab::ParseOptionName(value).status();
    case ArgType::kOptionValue:
      return absl::OkStatus();  // checked against the option at run time
    case ArgType::kFlags:
      return ParseRecvFlags(value).status();
    case ArgType::kMode: {
      if (value == "echo" || value == "sink" || value == "source") {
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(
          absl::StrCat("\"", value, "\": expected echo, sink or source"));
    }
    case ArgType::kPattern: {
      if (value == "sequence" || value == "random" || value == "zero") {
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(
          absl::StrCat("\"", value, "\": expected sequence, random or zero"));
    }
    case ArgType::kPercent:
      return ParsePercent(value).status();
    case ArgType::kDirection: {
      if (value == "both" || value == "upstream" || value == "downstream") {
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", value, "\": expected both, upstream or downstream"));
    }
  }
  return absl::InvalidArgumentError("unknown argument type");
}

absl::Status FillPatternBytes(absl::string_view pattern, uint64_t seed,
                              uint64_t offset, char* out, size_t n) {
  v1::TrafficPattern value;
  if (pattern == "zero") {
    value = v1::TRAFFIC_PATTERN_ZERO;
  } else if (pattern == "sequence") {
    value = v1::TRAFFIC_PATTERN_SEQUENCE;
  } else if (pattern == "random") {
    value = v1::TRAFFIC_PATTERN_RANDOM;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown pattern \"", pattern, "\""));
  }
  FillPattern(value, seed, offset, out, n);
  return absl::OkStatus();
}

}  // namespace sockagent::scenario
