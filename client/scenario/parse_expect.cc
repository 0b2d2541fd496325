// The scenario parser's step details: data: (what a send step sends),
// expect: (what a step's outcome must show) and retry:.

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/scenario/parser.h"
#include "proto/errno_status.h"
#include "proto/units.h"

namespace sockagent {
namespace scenario {
namespace internal {
namespace {

// Every errno name the agent can report: the system's errno names, their
// aliases, and getaddrinfo's EAI_* names.
const std::vector<std::string>& ErrnoNames() {
  static const auto* names = [] {
    auto* out = new std::vector<std::string>;
    for (int err = 1; err < 4096; ++err) {
      const std::string name = ErrnoName(err);
      // ErrnoName() gives "E<number>" for a value without a name.
      if (name.size() > 1 && !absl::ascii_isdigit(name[1])) {
        out->push_back(name);
      }
    }
    for (const char* extra :
         {"EWOULDBLOCK", "EDEADLOCK", "ENOTSUP", "EAI_ADDRFAMILY", "EAI_AGAIN",
          "EAI_BADFLAGS", "EAI_FAIL", "EAI_FAMILY", "EAI_MEMORY", "EAI_NODATA",
          "EAI_NONAME", "EAI_OVERFLOW", "EAI_SERVICE", "EAI_SOCKTYPE",
          "EAI_SYSTEM"}) {
      out->push_back(extra);
    }
    return out;
  }();
  return *names;
}

}  // namespace

absl::Status Parser::ParseData(const YAML::Node& node, absl::string_view key,
                               DataSpec* data) {
  data->location = Where(node);
  if (node.IsScalar()) {
    data->text = node.Scalar();
    return CheckRefs(node, key, *data->text);
  }
  if (!node.IsMap()) {
    return Error(node, key,
                 "expected text or a mapping (text, hex, bytes, pattern, "
                 "seed, repeat)");
  }
  int sources = 0;
  for (const auto& entry : node) {
    const std::string k = entry.first.Scalar();
    absl::StatusOr<std::string> value = Scalar(entry.second, k);
    if (!value.ok()) return value.status();
    if (absl::Status s = CheckRefs(entry.second, k, *value); !s.ok()) return s;
    const bool literal = !HasReference(*value);
    if (k == "text") {
      data->text = *value;
      ++sources;
    } else if (k == "hex") {
      std::string digits;
      for (char c : *value) {
        if (c == ' ' || c == ':') continue;
        if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
          return Error(entry.second, k, "expected hex digits");
        }
        digits.push_back(c);
      }
      if (digits.size() % 2 != 0) {
        return Error(entry.second, k, "odd number of hex digits");
      }
      data->hex = digits;
      ++sources;
    } else if (k == "bytes") {
      if (literal && !ParseSize(*value).ok()) {
        return Error(entry.second, k, ParseSize(*value).status().message());
      }
      data->size = *value;
      ++sources;
    } else if (k == "pattern") {
      if (absl::Status s = CheckArg(ArgType::kPattern, *value); !s.ok()) {
        return Error(entry.second, k, s.message());
      }
      data->pattern = *value;
    } else if (k == "seed" || k == "repeat") {
      if (literal && !ParseUint(*value).ok()) {
        return Error(entry.second, k, ParseUint(*value).status().message());
      }
      (k == "seed" ? data->seed : data->repeat) = *value;
    } else {
      return Error(entry.first, k,
                   "unknown key in data (text, hex, bytes, pattern, seed, "
                   "repeat)");
    }
  }
  if (sources != 1) {
    return Error(node, key, "give exactly one of text, hex or bytes");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseExpect(const YAML::Node& node, Step* step) {
  if (!node.IsMap()) return Error(node, "expect", "expected a mapping");
  Expectation& expect = step->expect;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (key == "data") {
      DataSpec data;
      if (absl::Status s = ParseData(value, key, &data); !s.ok()) return s;
      expect.data = std::move(data);
      continue;
    }
    if (key == "checksum" && value.IsMap()) {
      DataSpec data;
      if (absl::Status s = ParseData(value, key, &data); !s.ok()) return s;
      expect.checksum_of = std::move(data);
      continue;
    }
    if (key == "values") {
      if (!value.IsMap()) return Error(value, key, "expected a mapping");
      for (const auto& field : value) {
        absl::StatusOr<std::string> text =
            Scalar(field.second, field.first.Scalar());
        if (!text.ok()) return text.status();
        if (absl::Status s =
                CheckRefs(field.second, field.first.Scalar(), *text);
            !s.ok()) {
          return s;
        }
        expect.values.emplace_back(field.first.Scalar(), *text);
      }
      continue;
    }
    if (key == "within" || key == "no_data_for") {
      absl::StatusOr<absl::Duration> d = Duration(value, key);
      if (!d.ok()) return d.status();
      (key == "within" ? expect.within : expect.no_data_for) = *d;
      continue;
    }
    absl::StatusOr<std::string> text = Scalar(value, key);
    if (!text.ok()) return text.status();
    if (absl::Status s = CheckRefs(value, key, *text); !s.ok()) return s;
    const bool literal = !HasReference(*text);
    if (key == "status") {
      std::string upper = absl::AsciiStrToUpper(*text);
      bool known = upper == "OK" || upper == "ERROR";
      for (int c = 1; c <= 16 && !known; ++c) {
        known =
            absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == upper;
      }
      if (!known) {
        return Error(value, key,
                     absl::StrCat("\"", *text,
                                  "\" is not OK, error or a status code name "
                                  "(UNAVAILABLE, DEADLINE_EXCEEDED, ...)"));
      }
      expect.status = upper;
    } else if (key == "errno") {
      const std::vector<std::string>& names = ErrnoNames();
      if (literal &&
          std::find(names.begin(), names.end(), *text) == names.end()) {
        return Error(value, key,
                     absl::StrCat("\"", *text,
                                  "\" is not an errno name (ECONNRESET, ...)",
                                  DidYouMean(*text, names)));
      }
      expect.errno_name = *text;
    } else if (key == "contains") {
      expect.contains = *text;
    } else if (key == "matches") {
      if (literal) {
        RE2 re(*text, RegexOptions());
        if (!re.ok()) {
          return Error(value, key, absl::StrCat("bad regex: ", re.error()));
        }
      }
      expect.matches = *text;
    } else if (key == "bytes") {
      if (literal && !ParseSize(*text).ok()) {
        return Error(value, key, ParseSize(*text).status().message());
      }
      expect.bytes = *text;
    } else if (key == "checksum") {
      if (literal &&
          (text->size() != 16 ||
           text->find_first_not_of("0123456789abcdef") != std::string::npos)) {
        return Error(value, key,
                     "expected 16 lowercase hex digits (XXH3-64) or a "
                     "${step.checksum}");
      }
      expect.checksum = *text;
    } else if (key == "eof") {
      absl::StatusOr<bool> b = ParseBool(*text);
      if (!b.ok()) return Error(value, key, b.status().message());
      expect.values.emplace_back("eof", *b ? "true" : "false");
    } else {
      return Error(entry.first, key,
                   "unknown expectation (status, errno, data, contains, "
                   "matches, bytes, checksum, eof, values, within, "
                   "no_data_for)");
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseRetry(const YAML::Node& node, Retry* retry) {
  retry->enabled = true;
  if (node.IsScalar()) {
    absl::StatusOr<absl::Duration> d = Duration(node, "retry");
    if (!d.ok()) return d.status();
    retry->until = *d;
    return absl::OkStatus();
  }
  if (!node.IsMap()) {
    return Error(node, "retry", "expected a duration or a mapping");
  }
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    if (key == "until" || key == "interval") {
      absl::StatusOr<absl::Duration> d = Duration(entry.second, key);
      if (!d.ok()) return d.status();
      (key == "until" ? retry->until : retry->interval) = *d;
    } else if (key == "attempts") {
      absl::StatusOr<std::string> text = Scalar(entry.second, key);
      if (!text.ok()) return text.status();
      absl::StatusOr<uint64_t> n = ParseUint(*text);
      if (!n.ok() || *n == 0 || *n > 100000) {
        return Error(entry.second, key, "expected a count from 1 to 100000");
      }
      retry->attempts = static_cast<int>(*n);
    } else {
      return Error(entry.first, key,
                   "unknown key in retry (until, attempts, interval)");
    }
  }
  if (retry->attempts == 0 && retry->until == absl::ZeroDuration()) {
    return Error(node, "retry", "give until: or attempts:");
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace scenario
}  // namespace sockagent
