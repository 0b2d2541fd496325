#include "client/scenario/expectations.h"

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include <re2/re2.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/errno_status.h"
#include "proto/traffic_data.h"

namespace sockagent::scenario {

// The text of a received or compared byte string in a report: printable
// text as is (shortened), anything else as a count and hex preview.
std::string Preview(absl::string_view data) {
  constexpr size_t kMax = 64;
  bool printable = true;
  for (char c : data) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c)) && c != '\n' &&
        c != '\r' && c != '\t') {
      printable = false;
      break;
    }
  }
  std::string shown;
  if (printable) {
    shown = absl::StrCat("\"", absl::CEscape(data.substr(0, kMax)),
                         data.size() > kMax ? "..." : "", "\"");
  } else {
    shown = absl::StrCat("0x", absl::BytesToHexString(data.substr(0, 16)),
                         data.size() > 16 ? "..." : "");
  }
  return absl::StrCat(data.size(), " bytes ", shown);
}

std::string StatusText(const absl::Status& status) {
  if (status.ok()) return "OK";
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                      status.message());
}

std::vector<Check> EvaluateExpectations(const Expectation& e,
                                        const Outcome& outcome,
                                        absl::Duration elapsed,
                                        const Interpolator& interpolate,
                                        absl::Status* error) {
  std::vector<Check> checks;
  const absl::Status& status = outcome.status;
  std::optional<ErrnoInfo> err = GetErrno(status);
  const std::string actual_errno =
      err.has_value() ? err->name
                      : absl::StrCat("none (", StatusText(status), ")");
  const std::string actual_status = absl::StrCat(
      absl::StatusCodeToString(status.code()),
      status.ok() ? "" : absl::StrCat(" (", status.message(), ")"));

  auto value_of = [&](absl::string_view template_text) -> std::string {
    absl::StatusOr<std::string> text = interpolate(template_text);
    if (!text.ok()) {
      if (error->ok()) *error = text.status();
      return std::string(template_text);
    }
    return *text;
  };

  bool evaluate_data = status.ok();
  if (e.no_data_for.has_value()) {
    Check c{"no data for", DurationText(*e.no_data_for), "", false};
    const bool timed_out = absl::IsDeadlineExceeded(status) ||
                           (err.has_value() && (err->number == EAGAIN ||
                                                err->number == ETIMEDOUT));
    if (timed_out && outcome.data.empty()) {
      c.held = true;
      c.actual = "no data";
    } else if (status.ok()) {
      c.actual = outcome.data.empty() ? "EOF" : Preview(outcome.data);
    } else {
      c.actual = actual_status;
    }
    checks.push_back(std::move(c));
    evaluate_data = false;
  } else if (e.status.has_value() || e.errno_name.has_value()) {
    if (e.status.has_value()) {
      Check c{"status", *e.status, actual_status, false};
      if (*e.status == "ERROR") {
        c.held = !status.ok();
      } else {
        c.held = absl::StatusCodeToString(status.code()) == *e.status;
      }
      checks.push_back(std::move(c));
    }
    if (e.errno_name.has_value()) {
      Check c{"errno", value_of(*e.errno_name), actual_errno, false};
      c.held = err.has_value() && err->name == c.expected;
      checks.push_back(std::move(c));
    }
  } else {
    Check c{"status", "OK", actual_status, status.ok()};
    checks.push_back(std::move(c));
  }

  const std::string data =
      outcome.has_data ? outcome.data
                       : (outcome.fields.count("") != 0 ? outcome.fields.at("")
                                                        : std::string());
  if (evaluate_data) {
    if (e.data.has_value()) {
      absl::StatusOr<std::string> want = MaterializeData(*e.data, interpolate);
      if (!want.ok()) {
        if (error->ok()) *error = want.status();
      } else {
        Check c{"data", Preview(*want), Preview(data), *want == data};
        if (!c.held && want->size() == data.size()) {
          size_t at = 0;
          while (at < data.size() && data[at] == (*want)[at]) ++at;
          absl::StrAppend(&c.actual, ", first difference at byte ", at);
        }
        checks.push_back(std::move(c));
      }
    }
    if (e.contains.has_value()) {
      const std::string want = value_of(*e.contains);
      checks.push_back(Check{"contains", absl::StrCat("\"", want, "\""),
                             Preview(data), absl::StrContains(data, want)});
    }
    if (e.matches.has_value()) {
      const std::string pattern = value_of(*e.matches);
      RE2 re(pattern, RegexOptions());
      if (!re.ok() && error->ok()) {
        *error = absl::InvalidArgumentError(
            absl::StrCat("matches: bad regex: ", re.error()));
      }
      const bool held = re.ok() && RE2::PartialMatch(data, re);
      checks.push_back(Check{"matches", absl::StrCat("/", pattern, "/"),
                             Preview(data), held});
    }
    if (e.bytes.has_value()) {
      absl::StatusOr<uint64_t> want = ParseSize(value_of(*e.bytes));
      const std::string actual = outcome.fields.count("bytes") != 0
                                     ? outcome.fields.at("bytes")
                                     : absl::StrCat(data.size());
      if (!want.ok()) {
        if (error->ok()) *error = want.status();
      } else {
        checks.push_back(Check{"bytes", absl::StrCat(*want), actual,
                               absl::StrCat(*want) == actual});
      }
    }
    if (e.checksum.has_value() || e.checksum_of.has_value()) {
      std::string want;
      if (e.checksum_of.has_value()) {
        absl::StatusOr<std::string> bytes =
            MaterializeData(*e.checksum_of, interpolate);
        if (!bytes.ok() && error->ok()) *error = bytes.status();
        StreamChecksum sum;
        if (bytes.ok()) sum.Update(*bytes);
        want = sum.Hex();
      } else {
        want = value_of(*e.checksum);
      }
      std::string actual;
      if (outcome.fields.count("checksum") != 0) {
        actual = outcome.fields.at("checksum");
      } else {
        StreamChecksum sum;
        sum.Update(data);
        actual = sum.Hex();
      }
      checks.push_back(Check{"checksum", want, actual, want == actual});
    }
    for (const auto& [field, expected] : e.values) {
      const std::string want = value_of(expected);
      auto it = outcome.fields.find(field);
      if (it == outcome.fields.end()) {
        std::vector<std::string> names;
        for (const auto& [name, v] : outcome.fields) {
          if (!name.empty()) names.push_back(name);
        }
        checks.push_back(Check{field, want,
                               absl::StrCat("no such field (fields: ",
                                            absl::StrJoin(names, ", "), ")"),
                               false});
      } else {
        checks.push_back(Check{field, want, it->second, it->second == want});
      }
    }
  }
  if (e.within.has_value()) {
    checks.push_back(Check{"within", DurationText(*e.within),
                           DurationText(elapsed), elapsed <= *e.within});
  }
  return checks;
}

}  // namespace sockagent::scenario
