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
#include "client/cli/cli_util.h"

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
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < rest.size() &&
         std::isdigit(static_cast<unsigned char>(rest[digits]))) {
    ++digits;
  }
  uint64_t number = 0;
  if (digits == 0 || !absl::SimpleAtoi(rest.substr(0, digits), &number)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a size (e.g. 1024, 64KiB, 1MiB)"));
  }
  const std::string unit =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(rest.substr(digits)));
  uint64_t factor = 0;
  if (unit.empty() || unit == "b") {
    factor = 1;
  } else if (unit == "kib") {
    factor = uint64_t{1} << 10;
  } else if (unit == "mib") {
    factor = uint64_t{1} << 20;
  } else if (unit == "gib") {
    factor = uint64_t{1} << 30;
  } else if (unit == "kb") {
    factor = 1000;
  } else if (unit == "mb") {
    factor = 1000 * 1000;
  } else if (unit == "gb") {
    factor = 1000 * 1000 * 1000;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text, "\": unknown size unit (B, KiB, MiB, GiB, kB, MB, GB)"));
  }
  if (number > (uint64_t{1} << 40) / factor) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is too large"));
  }
  return number * factor;
}

absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  absl::Duration duration;
  double seconds = 0;
  if (absl::SimpleAtod(t, &seconds)) {
    duration = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(t, &duration)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text, "\" is not a duration (e.g. 200ms, 2s, 1.5, 1m)"));
  }
  if (duration < absl::ZeroDuration() || duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\": a duration must be finite and >= 0"));
  }
  return duration;
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

RE2::Options RegexOptions() {
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingLatin1);
  options.set_log_errors(false);
  return options;
}

std::string DurationText(absl::Duration duration) {
  if (duration < absl::Milliseconds(1)) {
    return absl::StrCat(absl::ToInt64Microseconds(duration), "us");
  }
  if (duration < absl::Seconds(10)) {
    return absl::StrCat(absl::ToInt64Milliseconds(duration), "ms");
  }
  return absl::StrCat(absl::ToDoubleSeconds(duration), "s");
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
      return cli::ParseTimeout(value).status();
    case ArgType::kBool:
      return ParseBool(value).status();
    case ArgType::kFamily:
      return cli::ParseFamily(value).status();
    case ArgType::kSocketType:
      return cli::ParseSocketType(value).status();
    case ArgType::kHow:
      return cli::ParseShutdownHow(value).status();
    case ArgType::kOption:
      return cli::ParseOptionName(value).status();
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
  }
  return absl::InvalidArgumentError("unknown argument type");
}

namespace {

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

absl::Status FillPatternBytes(absl::string_view pattern, uint64_t seed,
                              uint64_t offset, char* out, size_t n) {
  if (pattern == "zero") {
    std::fill(out, out + n, '\0');
    return absl::OkStatus();
  }
  if (pattern == "sequence") {
    for (size_t i = 0; i < n; ++i) {
      out[i] = static_cast<char>((offset + i) & 0xff);
    }
    return absl::OkStatus();
  }
  if (pattern == "random") {
    // Eight bytes per generator step, so any offset can be reached by
    // skipping whole words.
    uint64_t state = seed;
    for (uint64_t skip = offset / 8; skip > 0; --skip) SplitMix64(&state);
    uint64_t word = SplitMix64(&state);
    size_t in_word = offset % 8;
    for (size_t i = 0; i < n; ++i) {
      out[i] = static_cast<char>((word >> (8 * in_word)) & 0xff);
      if (++in_word == 8) {
        word = SplitMix64(&state);
        in_word = 0;
      }
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown pattern \"", pattern, "\""));
}

}  // namespace sockagent::scenario
