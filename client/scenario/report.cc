// The reports of a scenario run: JUnit XML, JSON, the summary table and the
// progress lines.

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/fleet/heat_map.h"
#include "client/scenario/model.h"
#include "client/scenario/scenario.h"
#include "client/vocab/json.h"
#include "client/vocab/table.h"

namespace sockagent {
namespace {

// Text for an XML attribute or element: markup characters escaped, control
// characters XML 1.0 cannot hold replaced by '?', invalid UTF-8 by U+FFFD
// (through the JSON escaper's validation).
std::string Xml(absl::string_view text) {
  std::string valid(text);
  if (!vocab::IsValidUtf8(text)) {
    valid.clear();
    for (unsigned char c : text) {
      valid.push_back(c < 0x80 ? static_cast<char>(c) : '?');
    }
  }
  std::string out;
  for (char c : valid) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' &&
            c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

// The host running the scenario (JUnit's testsuite hostname).
std::string LocalHostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.3f", absl::ToDoubleSeconds(d));
}

// Whether an entry is a test case of the reports: every step of the file;
// a session, vars or cleanup entry only when it did not pass (then it is why
// the steps did not run, or what they left behind).
bool IsCase(const StepResult& step) {
  return step.index > 0 || step.kind == "matrix" || step.kind == "for_each" ||
         step.status == StepStatus::kFailed ||
         step.status == StepStatus::kError;
}

// The test cases of `results` by status, as every report counts them.
struct Counts {
  int tests = 0;
  int passed = 0;
  int failed = 0;
  int errors = 0;
  int skipped = 0;

  void Add(const ScenarioResult& r) {
    for (const StepResult& step : r.steps) {
      if (!IsCase(step)) continue;
      ++tests;
      switch (step.status) {
        case StepStatus::kPassed:
          ++passed;
          break;
        case StepStatus::kFailed:
          ++failed;
          break;
        case StepStatus::kError:
          ++errors;
          break;
        case StepStatus::kSkipped:
          ++skipped;
          break;
      }
    }
    if (r.interrupted) {
      ++tests;
      ++errors;
    }
  }
};

Counts CountsOf(const ScenarioResult& r) {
  Counts counts;
  counts.Add(r);
  return counts;
}

// "FILE:LINE: " of a step, or "".
std::string At(const StepResult& step) {
  return step.where.empty() ? "" : absl::StrCat(step.where, ": ");
}

std::string CaseName(const StepResult& step) {
  if (step.index == 0) return step.name;
  return absl::StrFormat("%02d %s", step.index, step.name);
}

std::string Detail(const StepResult& step) {
  if (step.status == StepStatus::kFailed && !step.expected.empty()) {
    return absl::StrCat("expected ", step.expected, "; actual ", step.actual);
  }
  return step.message;
}

std::string StatusWord(StepStatus status) {
  switch (status) {
    case StepStatus::kPassed:
      return "PASS";
    case StepStatus::kFailed:
      return "FAIL";
    case StepStatus::kError:
      return "ERROR";
    case StepStatus::kSkipped:
      return "SKIP";
  }
  return "?";
}

}  // namespace

std::string JUnitXml(const std::vector<ScenarioResult>& results) {
  Counts all;
  absl::Duration total;
  for (const ScenarioResult& r : results) {
    all.Add(r);
    total += r.duration;
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&out, "<testsuites name=\"sockctl run\" tests=\"", all.tests,
                  "\" failures=\"", all.failed, "\" errors=\"", all.errors,
                  "\" skipped=\"", all.skipped, "\" time=\"", Seconds(total),
                  "\">\n");
  int id = 0;
  for (const ScenarioResult& r : results) {
    const Counts counts = CountsOf(r);
    absl::StrAppend(
        &out, "  <testsuite name=\"", Xml(r.name), "\" id=\"", id++,
        "\" tests=\"", counts.tests, "\" failures=\"", counts.failed,
        "\" errors=\"", counts.errors, "\" skipped=\"", counts.skipped,
        "\" time=\"", Seconds(r.duration), "\" timestamp=\"",
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", r.started, absl::UTCTimeZone()),
        "\" hostname=\"", Xml(LocalHostname()), "\">\n");
    if (!r.file.empty()) {
      absl::StrAppend(&out,
                      "    <properties>\n      <property name=\"file\" "
                      "value=\"",
                      Xml(r.file), "\"/>\n    </properties>\n");
    }
    const std::string classname = Xml(r.name);
    for (const StepResult& step : r.steps) {
      if (!IsCase(step)) continue;
      absl::StrAppend(&out, "    <testcase name=\"", Xml(CaseName(step)),
                      "\" classname=\"", classname,
                      step.agent.empty() ? "" : ".", Xml(step.agent),
                      "\" time=\"", Seconds(step.duration), "\"");
      if (const size_t colon = step.where.rfind(':');
          colon != std::string::npos) {
        absl::StrAppend(&out, " file=\"", Xml(step.where.substr(0, colon)),
                        "\" line=\"", Xml(step.where.substr(colon + 1)), "\"");
      }
      switch (step.status) {
        case StepStatus::kPassed:
          absl::StrAppend(&out, "/>\n");
          continue;
        case StepStatus::kFailed: {
          std::vector<std::string> lines = {
              absl::StrCat("step:     ", CaseName(step)),
              absl::StrCat("at:       ", step.where),
              absl::StrCat("kind:     ", step.kind),
              absl::StrCat("agent:    ", step.agent),
              absl::StrCat("expected: ", step.expected),
              absl::StrCat("actual:   ", step.actual),
              absl::StrCat("attempts: ", step.attempts)};
          for (const Check& check : step.checks) {
            lines.push_back(absl::StrCat(
                check.held ? "  held    " : "  FAILED  ", check.what,
                ": expected ", check.expected, ", actual ", check.actual));
          }
          absl::StrAppend(
              &out, ">\n      <failure message=\"",
              Xml(At(step) + Detail(step)), "\" type=\"expectation\">",
              Xml(absl::StrJoin(lines, "\n")), "</failure>\n    </testcase>\n");
          continue;
        }
        case StepStatus::kError:
          absl::StrAppend(&out, ">\n      <error message=\"",
                          Xml(At(step) + step.message), "\" type=\"",
                          Xml(step.kind), "\">", Xml(At(step) + step.message),
                          "</error>\n    </testcase>\n");
          continue;
        case StepStatus::kSkipped:
          absl::StrAppend(&out, ">\n      <skipped message=\"",
                          Xml(step.message), "\"/>\n    </testcase>\n");
          continue;
      }
    }
    if (r.interrupted) {
      absl::StrAppend(&out, "    <testcase name=\"interrupted\" classname=\"",
                      classname,
                      "\" time=\"0.000\">\n      <error message=\"the run was "
                      "interrupted\" type=\"interrupt\">the run was "
                      "interrupted; cleanup ran</error>\n    </testcase>\n");
    }
    absl::StrAppend(&out, "  </testsuite>\n");
  }
  absl::StrAppend(&out, "</testsuites>\n");
  return out;
}

namespace {

std::string CountsJson(const Counts& counts) {
  return vocab::JsonObject()
      .AddInt("tests", counts.tests)
      .AddInt("passed", counts.passed)
      .AddInt("failed", counts.failed)
      .AddInt("errors", counts.errors)
      .AddInt("skipped", counts.skipped)
      .Build();
}

std::string CountsText(const Counts& counts) {
  return absl::StrCat(counts.passed, " passed, ", counts.failed, " failed, ",
                      counts.errors, " errors, ", counts.skipped, " skipped");
}

}  // namespace

std::string ResultsJson(const std::vector<ScenarioResult>& results) {
  bool all_ok = !results.empty();
  std::vector<std::string> scenarios;
  for (const ScenarioResult& r : results) {
    all_ok = all_ok && r.ok();
    std::vector<std::string> steps;
    for (const StepResult& step : r.steps) {
      std::vector<std::string> checks;
      for (const Check& check : step.checks) {
        checks.push_back(vocab::JsonObject()
                             .AddString("what", check.what)
                             .AddString("expected", check.expected)
                             .AddString("actual", check.actual)
                             .AddBool("held", check.held)
                             .Build());
      }
      vocab::JsonObject object;
      object.AddInt("index", step.index)
          .AddString("name", step.name)
          .AddString("kind", step.kind)
          .AddString("agent", step.agent)
          .AddString("where", step.where)
          .AddString("status", StepStatusName(step.status))
          .AddRaw("duration_s", Seconds(step.duration))
          .AddInt("attempts", step.attempts)
          .AddString("message", step.message);
      if (!step.expected.empty() || !step.actual.empty()) {
        object.AddString("expected", step.expected)
            .AddString("actual", step.actual);
      }
      object.AddRaw("checks",
                    absl::StrCat("[", absl::StrJoin(checks, ","), "]"));
      if (!step.figures.empty()) {
        object.AddRaw("figures",
                      absl::StrCat("[", absl::StrJoin(step.figures, ","), "]"));
      }
      steps.push_back(object.Build());
    }
    scenarios.push_back(
        vocab::JsonObject()
            .AddString("name", r.name)
            .AddString("file", r.file)
            .AddBool("ok", r.ok())
            .AddBool("interrupted", r.interrupted)
            .AddString("started",
                       absl::FormatTime(absl::RFC3339_full, r.started,
                                        absl::UTCTimeZone()))
            .AddRaw("duration_s", Seconds(r.duration))
            .AddRaw("counts", CountsJson(CountsOf(r)))
            .AddRaw("steps", absl::StrCat("[", absl::StrJoin(steps, ","), "]"))
            .Build());
  }
  Counts all;
  for (const ScenarioResult& r : results) all.Add(r);
  return vocab::JsonObject()
      .AddBool("ok", all_ok)
      .AddRaw("counts", CountsJson(all))
      .AddRaw("scenarios",
              absl::StrCat("[", absl::StrJoin(scenarios, ","), "]"))
      .Build();
}

std::string SummaryTable(const ScenarioResult& result) {
  std::vector<std::vector<std::string>> rows = {
      {"#", "STEP", "AGENT", "STATUS", "TIME", "DETAIL"}};
  for (const StepResult& step : result.steps) {
    std::string detail = Detail(step);
    if (detail.size() > 100) detail = absl::StrCat(detail.substr(0, 97), "...");
    rows.push_back({step.index == 0 ? "-" : absl::StrCat(step.index), step.name,
                    step.agent.empty() ? "-" : step.agent,
                    StatusWord(step.status),
                    scenario::DurationText(step.duration), detail});
  }
  std::string out =
      absl::StrCat("scenario ", result.name, result.file.empty() ? "" : " (",
                   result.file, result.file.empty() ? "" : ")", "\n");
  for (absl::string_view line :
       absl::StrSplit(vocab::FormatTable(rows), '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  absl::StrAppend(&out, result.ok() ? "PASSED" : "FAILED", ": ",
                  CountsText(CountsOf(result)),
                  result.interrupted ? ", interrupted" : "", " in ",
                  scenario::DurationText(result.duration), "\n");
  for (const MatrixResult& matrix : result.matrices) {
    absl::StrAppend(&out, MatrixTable(matrix));
  }
  return out;
}

std::string MatrixTable(const MatrixResult& matrix) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"FROM \\ TO"};
  for (const std::string& to : matrix.to) header.push_back(to);
  rows.push_back(std::move(header));
  for (size_t i = 0; i < matrix.from.size(); ++i) {
    std::vector<std::string> row = {matrix.from[i]};
    for (size_t j = 0; j < matrix.to.size(); ++j) {
      const MatrixResult::Cell& cell = matrix.cells[i * matrix.to.size() + j];
      if (!cell.ran) {
        row.push_back("-");
      } else if (cell.status == StepStatus::kSkipped) {
        row.push_back("SKIP");
      } else {
        row.push_back(absl::StrCat(StatusWord(cell.status), " ",
                                   scenario::DurationText(cell.latency)));
      }
    }
    rows.push_back(std::move(row));
  }
  std::string out = absl::StrCat(matrix.name, " (", matrix.where, ")\n");
  for (absl::string_view line :
       absl::StrSplit(vocab::FormatTable(rows), '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

absl::Status WriteMatrixHeatMap(const MatrixResult& matrix,
                                const std::string& path) {
  std::vector<fleet::MatrixCell> cells;
  cells.reserve(matrix.cells.size());
  for (const MatrixResult::Cell& cell : matrix.cells) {
    fleet::MatrixCell out;
    if (cell.ran && cell.status == StepStatus::kPassed) {
      out.state = fleet::MatrixCell::State::kPassed;
    } else if (cell.ran && cell.status != StepStatus::kSkipped) {
      out.state = fleet::MatrixCell::State::kFailed;
    }
    out.latency = cell.latency;
    cells.push_back(out);
  }
  return fleet::WriteHeatMapPng(path, matrix.from.size(), matrix.to.size(),
                                cells);
}

std::string TotalLine(const std::vector<ScenarioResult>& results, int not_run) {
  Counts all;
  int passed = 0;
  absl::Duration total;
  for (const ScenarioResult& r : results) {
    all.Add(r);
    passed += r.ok() ? 1 : 0;
    total += r.duration;
  }
  const int scenarios = static_cast<int>(results.size()) + not_run;
  const bool ok = passed == scenarios && scenarios > 0;
  std::string out = absl::StrCat(
      "TOTAL ", ok ? "PASSED" : "FAILED", ": ", scenarios, " scenario",
      scenarios == 1 ? "" : "s", " (", passed, " passed");
  if (not_run > 0) absl::StrAppend(&out, ", ", not_run, " not run");
  absl::StrAppend(&out, "), steps: ", CountsText(all), " in ",
                  scenario::DurationText(total));
  return out;
}

std::string ProgressLine(const StepResult& step) {
  std::string out = absl::StrFormat(
      "[%3s] %-5s %-8s %s (%s)",
      step.index == 0 ? "-" : absl::StrCat(step.index), StatusWord(step.status),
      step.agent.empty() ? "-" : step.agent, step.name,
      scenario::DurationText(step.duration));
  if ((step.status == StepStatus::kFailed ||
       step.status == StepStatus::kError) &&
      !step.where.empty()) {
    absl::StrAppend(&out, " at ", step.where);
  }
  if (step.attempts > 1)
    absl::StrAppend(&out, " after ", step.attempts, " attempts");
  if (step.status == StepStatus::kFailed && !step.expected.empty()) {
    absl::StrAppend(&out, "\n      expected: ", step.expected,
                    "\n      actual:   ", step.actual);
  } else if (step.status != StepStatus::kPassed && !step.message.empty()) {
    absl::StrAppend(&out, "\n      ", step.message);
  } else if (step.status == StepStatus::kPassed && !step.message.empty()) {
    absl::StrAppend(&out, ": ", step.message.substr(0, 80));
  }
  return out;
}

}  // namespace sockagent
