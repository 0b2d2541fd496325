// sockctl run: scenario files (client/scenario/scenario.h).

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/cli/interrupt_watcher.h"
#include "client/scenario/scenario.h"
#include "client/vocab/addresses.h"

namespace sockagent {
namespace cli {

using ::sockagent::vocab::AgentTarget;

namespace {

struct RunArgs {
  std::vector<std::string> files;
  std::string junit;
  std::string heat_map;
  bool check = false;  // parse only
};

int RunScenarios(const Cli& cli, const RunArgs& args,
                 const std::vector<std::string>& extras) {
  RunOptions options;
  for (const std::string& extra : extras) {
    // --agent-NAME=HOST:PORT
    absl::string_view text = extra;
    if (!absl::ConsumePrefix(&text, "--agent-") ||
        text.find('=') == absl::string_view::npos || text.find('=') == 0) {
      return cli.Usage(absl::InvalidArgumentError(absl::StrCat(
          "run: unexpected argument \"", extra,
          "\" (files, --junit FILE, --json, --agent-NAME=HOST:PORT)")));
    }
    size_t name_end = text.find('=');
    absl::StatusOr<std::string> target = AgentTarget(text.substr(name_end + 1));
    if (!target.ok()) {
      return cli.Usage(absl::InvalidArgumentError(absl::StrCat(
          "run: --agent-", text.substr(0, name_end),
          absl::StripPrefix(target.status().message(), "--agent"))));
    }
    options.agent_targets[std::string(text.substr(0, name_end))] = *target;
  }
  if (cli.call_timeout() != absl::InfiniteDuration()) {
    options.connect_timeout = cli.call_timeout();
  }
  options.fail_fast = true;
  options.default_security.tls_ca = cli.options().tls_ca;
  options.default_security.tls_cert = cli.options().tls_cert;
  options.default_security.tls_key = cli.options().tls_key;
  options.default_security.tls_server_name = cli.options().tls_server_name;
  options.default_security.token = cli.options().token;

  // Every file is checked before anything runs; each error goes to stderr,
  // and with --json the first one also to stdout.
  std::vector<Scenario> scenarios;
  absl::Status first_error;
  auto report = [&first_error](const absl::Status& status) {
    std::cerr << "sockctl: " << status.message() << std::endl;
    if (first_error.ok()) first_error = status;
  };
  for (const std::string& file : args.files) {
    absl::StatusOr<Scenario> scenario = Scenario::ParseFile(file);
    if (!scenario.ok()) {
      report(scenario.status());
      continue;
    }
    for (const auto& [name, target] : options.agent_targets) {
      std::vector<std::string> names = scenario->agent_names();
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        report(absl::InvalidArgumentError(absl::StrCat(
            file, ": --agent-", name, ": no agent of that name (agents: ",
            absl::StrJoin(names, ", "), ")")));
      }
    }
    scenarios.push_back(*std::move(scenario));
  }
  if (!first_error.ok()) {
    if (cli.json()) std::cout << ErrorJson(first_error) << std::endl;
    return kExitUsage;
  }
  if (args.check) {
    for (const Scenario& scenario : scenarios) {
      std::cout << scenario.file() << ": " << scenario.name() << ", "
                << scenario.step_count() << " steps, agents "
                << absl::StrJoin(scenario.agent_names(), ", ") << std::endl;
    }
    return kExitOk;
  }

  InterruptWatcher watcher;
  options.interrupt = watcher.interrupt();
  options.on_step = [](const StepResult& step) {
    std::cerr << ProgressLine(step) << std::endl;
  };
  std::vector<ScenarioResult> results;
  for (const Scenario& scenario : scenarios) {
    if (watcher.interrupt()->HasBeenNotified()) break;
    std::cerr << "== " << scenario.name()
              << (scenario.file().empty() ? "" : " (" + scenario.file() + ")")
              << ": " << scenario.step_count() << " steps" << std::endl;
    results.push_back(scenario.Run(options));
    std::ostream& table = cli.json() ? std::cerr : std::cout;
    table << SummaryTable(results.back()) << std::flush;
  }
  watcher.Stop();
  (cli.json() ? std::cerr : std::cout)
      << TotalLine(results, static_cast<int>(scenarios.size() - results.size()))
      << std::endl;

  int rc = kExitOk;
  if (!args.junit.empty()) {
    std::ofstream out(args.junit, std::ios::trunc);
    out << JUnitXml(results);
    out.close();
    if (!out) {
      std::cerr << "sockctl: cannot write " << args.junit << std::endl;
      rc = kExitFalse;
    }
  }
  if (!args.heat_map.empty()) {
    // The first matrix to FILE, the next ones to FILE-2.png, FILE-3.png ...
    int n = 0;
    for (const ScenarioResult& result : results) {
      for (const MatrixResult& matrix : result.matrices) {
        std::string path = args.heat_map;
        if (++n > 1) {
          const size_t dot = path.rfind('.');
          path.insert(dot == std::string::npos ? path.size() : dot,
                      absl::StrCat("-", n));
        }
        absl::Status written = WriteMatrixHeatMap(matrix, path);
        if (!written.ok()) {
          std::cerr << "sockctl: --heat-map: " << written.message()
                    << std::endl;
          rc = kExitFalse;
        }
      }
    }
  }
  if (cli.json()) std::cout << ResultsJson(results) << std::endl;
  bool step_failed = false;
  bool agent_failed = false;
  for (const ScenarioResult& result : results) {
    for (const StepResult& step : result.steps) {
      if (step.status == StepStatus::kPassed ||
          step.status == StepStatus::kSkipped) {
        continue;
      }
      (step.kind == "session" ? agent_failed : step_failed) = true;
    }
    if (!result.ok() && !agent_failed) step_failed = true;
  }
  if (watcher.signal() != 0) return 128 + watcher.signal();
  if (step_failed) return kExitFalse;
  if (agent_failed) return kExitRpc;
  return rc;
}

}  // namespace

void RegisterRunCommands(Cli& cli) {
  RunArgs& run_args = cli.Own<RunArgs>();
  CLI::App* run_cmd = cli.AddCommand(
      "run",
      "Run scenario files, declarative distributed tests of named agents, "
      "steps that map onto the RPCs and their expectations (the README's "
      "Scenarios section has the file format). Progress goes to stderr, a "
      "summary table to stdout (with "
      "--json: one JSON report on stdout, the table on stderr), --junit "
      "writes JUnit XML. Agents come from the file's address, "
      "SOCKAGENT_AGENT_<NAME>, or --agent-NAME=HOST:PORT (strongest). "
      "SIGINT/SIGTERM stops the run; cleanup (close every handle and "
      "session) always runs. Exit 0 only when every expectation held.\n\n"
      "Example:\n  sockctl run examples/scenarios/*.yaml --junit "
      "report.xml --agent-b=127.0.0.1:7701");
  run_cmd->add_option("FILE", run_args.files, "scenario files (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  run_cmd->add_option("--junit", run_args.junit, "write JUnit XML here");
  run_cmd->add_option("--heat-map", run_args.heat_map,
                      "write each matrix: as a PNG heat map (FILE.png, then "
                      "FILE-2.png, ...)");
  run_cmd->add_flag("--check", run_args.check,
                    "only parse the files (exit 0, or 2 naming the error)");
  cli.OnRun(run_cmd,
            [&] { return RunScenarios(cli, run_args, cli.agent_overrides()); });
  cli.AcceptAgentOverrides(run_cmd);
}

}  // namespace cli
}  // namespace sockagent
