// Scenarios over a fleet: agents taken from a source (a literal list, an
// inventory file with labels), matrix: groups that run their steps for
// every (from, to) pair of two agent sets, and for_each: groups, against
// three real sockagentd child processes on 127.0.0.1. Each pair is its own
// JUnit test case "from -> to"; the summary ends with a from x to table;
// a failing pair fails alone. After every run the agents hold zero sockets.

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "client/agent.h"
#include "client/scenario/scenario.h"
#include "tests/integration/agent_process.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Per pair: a listener on `to`, a connection from `from`, and an echo of
// "FROM to TO" back to `from`.
constexpr char kEchoSteps[] = R"(
        - {agent: "${to}", socket: {}, save_as: l}
        - bind: {socket: l, address: "127.0.0.1:0"}
        - listen: l
        - {agent: "${from}", socket: {}, save_as: c}
        - connect: {socket: c, address: "${to.host}:${l.port}"}
        - {accept: l, save_as: s}
        - send: {socket: c, data: "${from} to ${to}"}
        - recv_all: {socket: s, bytes: 6}
          save_as: got
        - send: {socket: s, data: "${got.data}"}
        - recv_all: {socket: c, bytes: 6}
          expect: {data: "${from} to ${to}"}
)";

class ScenarioMatrixTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (testing::AgentProcess*& process : processes_) {
      process = new testing::AgentProcess();
      ASSERT_TRUE(process->Start(SOCKAGENTD_PATH)) << process->Log();
    }
  }
  static void TearDownTestSuite() {
    for (testing::AgentProcess*& process : processes_) {
      delete process;
      process = nullptr;
    }
  }

  void TearDown() override {
    for (testing::AgentProcess* process : processes_) {
      EXPECT_EQ(OpenSockets(process->target()), 0) << process->target();
    }
  }

  static int64_t OpenSockets(const std::string& target) {
    AgentOptions options;
    options.target = target;
    options.open_session = false;
    options.call_timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
    if (!agent.ok()) return -1;
    absl::StatusOr<v1::GetAgentInfoResponse> info = (*agent)->GetAgentInfo();
    if (!info.ok()) return -1;
    return static_cast<int64_t>(info->stats().open_sockets());
  }

  // "a=HOST:PORT,b=HOST:PORT,c=HOST:PORT".
  static std::string AgentList() {
    return absl::StrCat("a=", processes_[0]->target(),
                        ",b=", processes_[1]->target(),
                        ",c=", processes_[2]->target());
  }

  // An inventory file: a is a client, b and c are servers.
  static std::string WriteInventory() {
    const std::string path = ::testing::TempDir() + "/matrix_inventory.yaml";
    std::ofstream out(path);
    out << "agents:\n"
        << "  a: {address: " << processes_[0]->target()
        << ", labels: {role: client}}\n"
        << "  b: {address: " << processes_[1]->target()
        << ", labels: {role: server}}\n"
        << "  c: {address: " << processes_[2]->target()
        << ", labels: {role: server}}\n";
    return path;
  }

  static ScenarioResult Run(const std::string& yaml) {
    absl::StatusOr<Scenario> scenario =
        Scenario::ParseString(yaml, "matrix.yaml");
    EXPECT_TRUE(scenario.ok()) << scenario.status();
    if (!scenario.ok()) return ScenarioResult();
    return scenario->Run(RunOptions{});
  }

  static const StepResult* Entry(const ScenarioResult& result,
                                 const std::string& name) {
    for (const StepResult& step : result.steps) {
      if (step.name == name) return &step;
    }
    return nullptr;
  }

  static testing::AgentProcess* processes_[3];
};

testing::AgentProcess* ScenarioMatrixTest::processes_[3] = {nullptr, nullptr,
                                                            nullptr};

TEST_F(ScenarioMatrixTest, AllPairsEachPassAsTheirOwnTestCase) {
  const ScenarioResult result = Run(absl::StrCat(
      "name: mesh\nagents_from: \"", AgentList(),
      "\"\nsteps:\n  - matrix:\n      from: \"*\"\n      to: \"*\"\n"
      "      concurrency: 4\n      steps:",
      kEchoSteps));
  const std::string table = SummaryTable(result);
  EXPECT_TRUE(result.ok()) << table;
  const std::string junit = JUnitXml({result});
  for (const char* from : {"a", "b", "c"}) {
    for (const char* to : {"a", "b", "c"}) {
      const std::string name = absl::StrCat(from, " -> ", to);
      const StepResult* pair = Entry(result, name);
      if (std::string(from) == to) {
        EXPECT_EQ(pair, nullptr) << name;
        continue;
      }
      ASSERT_NE(pair, nullptr) << name << "\n" << table;
      EXPECT_EQ(pair->status, StepStatus::kPassed)
          << name << ": " << pair->message;
      EXPECT_EQ(pair->kind, "matrix");
      EXPECT_THAT(junit, HasSubstr(absl::StrCat("<testcase name=\"", from,
                                                " -&gt; ", to, "\"")));
    }
  }
  // Sessions and cleanup that passed are no test cases: the 6 pairs are.
  EXPECT_THAT(junit, HasSubstr("tests=\"6\" failures=\"0\""));
  ASSERT_EQ(result.matrices.size(), 1u);
  const MatrixResult& matrix = result.matrices[0];
  EXPECT_EQ(matrix.from, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(matrix.to, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(matrix.cells.size(), 9u);
  EXPECT_FALSE(matrix.cells[0].ran);  // a -> a
  EXPECT_TRUE(matrix.cells[1].ran);   // a -> b
  EXPECT_EQ(matrix.cells[1].status, StepStatus::kPassed);
  EXPECT_GT(matrix.cells[1].latency, absl::ZeroDuration());
  EXPECT_THAT(table, HasSubstr("FROM \\ TO"));
  EXPECT_THAT(table, HasSubstr("a          -"));
  EXPECT_THAT(MatrixTable(matrix), Not(HasSubstr("FAIL")));

  const std::string png = ::testing::TempDir() + "/matrix_heat_map.png";
  ASSERT_TRUE(WriteMatrixHeatMap(matrix, png).ok());
  std::ifstream in(png, std::ios::binary);
  std::string magic(8, '\0');
  in.read(magic.data(), 8);
  EXPECT_EQ(magic, "\x89PNG\r\n\x1a\n");
}

TEST_F(ScenarioMatrixTest, SelectsByLabelAndAFailingPairFailsAlone) {
  // Echo from the client to each server; the last step holds only when
  // `to` is b.
  const ScenarioResult result = Run(absl::StrCat(
      "name: clients\nagents_from: ", WriteInventory(),
      "\nsteps:\n  - matrix:\n      from: role=client\n      to: role=server\n"
      "      steps:",
      kEchoSteps,
      "        - send: {socket: c, data: \"${to}\"}\n"
      "        - name: to is b\n"
      "          recv_all: {socket: s, bytes: 1}\n"
      "          expect: {data: b}\n"));
  const std::string table = SummaryTable(result);
  EXPECT_FALSE(result.ok()) << table;
  const StepResult* ab = Entry(result, "a -> b");
  const StepResult* ac = Entry(result, "a -> c");
  ASSERT_NE(ab, nullptr) << table;
  ASSERT_NE(ac, nullptr) << table;
  EXPECT_EQ(Entry(result, "b -> c"), nullptr) << table;  // b is no client
  EXPECT_EQ(ab->status, StepStatus::kPassed) << ab->message;
  EXPECT_EQ(ac->status, StepStatus::kFailed) << ac->message;
  EXPECT_THAT(ac->message, HasSubstr("(to is b) on c"));
  EXPECT_THAT(ac->expected, HasSubstr("\"b\""));
  EXPECT_THAT(ac->actual, HasSubstr("\"c\""));
  // A failed pair points at its failed step's line, not the group's.
  EXPECT_NE(ac->where, ab->where);

  ASSERT_EQ(result.matrices.size(), 1u);
  const MatrixResult& matrix = result.matrices[0];
  EXPECT_EQ(matrix.from, std::vector<std::string>{"a"});
  EXPECT_EQ(matrix.to, (std::vector<std::string>{"b", "c"}));
  ASSERT_EQ(matrix.cells.size(), 2u);
  EXPECT_EQ(matrix.cells[0].status, StepStatus::kPassed);
  EXPECT_EQ(matrix.cells[1].status, StepStatus::kFailed);
  EXPECT_THAT(table, HasSubstr("FAIL"));
  EXPECT_THAT(MatrixTable(matrix), HasSubstr("a          PASS"));

  // The failing pair is its own test case with a <failure>; the passing
  // one has none.
  const std::string junit = JUnitXml({result});
  const size_t b_case = junit.find("<testcase name=\"a -&gt; b\"");
  const size_t c_case = junit.find("<testcase name=\"a -&gt; c\"");
  ASSERT_NE(b_case, std::string::npos) << junit;
  ASSERT_NE(c_case, std::string::npos) << junit;
  const std::string b_xml =
      junit.substr(b_case, junit.find('\n', b_case) - b_case);
  EXPECT_THAT(b_xml, HasSubstr("/>"));
  const std::string c_xml =
      junit.substr(c_case, junit.find("</testcase>", c_case) - c_case);
  EXPECT_THAT(c_xml, HasSubstr("<failure"));
}

TEST_F(ScenarioMatrixTest, ForEachRunsOncePerSelectedAgent) {
  const ScenarioResult result = Run(absl::StrCat(
      "name: each\nagents_from: ", WriteInventory(),
      "\nsteps:\n  - for_each:\n      agents: role=server\n"
      "      concurrency: 2\n      steps:\n"
      "        - {agent: \"${agent}\", socket: {}, save_as: l}\n"
      "        - bind: {socket: l, address: \"${agent.host}:0\"}\n"));
  EXPECT_TRUE(result.ok()) << SummaryTable(result);
  ASSERT_NE(Entry(result, "b"), nullptr) << SummaryTable(result);
  ASSERT_NE(Entry(result, "c"), nullptr) << SummaryTable(result);
  EXPECT_EQ(Entry(result, "a"), nullptr);
  EXPECT_EQ(Entry(result, "b")->kind, "for_each");
  EXPECT_TRUE(result.matrices.empty());
}

TEST_F(ScenarioMatrixTest,
       AnInventoryAgentWithTlsAndNoCaIsNeverReachedInPlaintext) {
  // `tls: true` with no file: TLS verified by the system's roots. The agent
  // serves plaintext, so connecting must fail rather than quietly fall back.
  const std::string path = ::testing::TempDir() + "/tls_inventory.yaml";
  {
    std::ofstream out(path);
    out << "agents:\n  a: {address: " << processes_[0]->target()
        << ", tls: true}\n";
  }
  absl::StatusOr<Scenario> scenario = Scenario::ParseString(
      absl::StrCat("name: tls\nagents_from: ", path,
                   "\nsteps:\n  - {agent: a, socket: {}, save_as: s}\n"),
      "tls.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  RunOptions options;
  options.connect_timeout = absl::Seconds(3);
  options.fail_fast = true;
  const ScenarioResult result = scenario->Run(options);
  EXPECT_FALSE(result.ok()) << SummaryTable(result);
  EXPECT_EQ(OpenSockets(processes_[0]->target()), 0);
}

TEST_F(ScenarioMatrixTest, BadMatricesAreRejectedWithTheirKey) {
  absl::StatusOr<Scenario> missing = Scenario::ParseString(
      "agents: {a: x:1}\nsteps:\n  - matrix: {from: a, steps: [sleep: 1ms]}\n",
      "m.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("to: missing"));
  absl::StatusOr<Scenario> cap = Scenario::ParseString(
      "agents: {a: x:1}\nsteps:\n  - matrix: {from: a, to: a, concurrency: 0,"
      " steps: [sleep: 1ms]}\n",
      "m.yaml");
  ASSERT_FALSE(cap.ok());
  EXPECT_THAT(cap.status().message(), HasSubstr("concurrency"));
  absl::StatusOr<Scenario> outside = Scenario::ParseString(
      "agents: {a: x:1}\nsteps:\n  - {agent: \"${from}\", socket: {}, "
      "save_as: s}\n",
      "m.yaml");
  ASSERT_FALSE(outside.ok());
  EXPECT_THAT(outside.status().message(), HasSubstr("${from}"));
  absl::StatusOr<Scenario> no_pair = Scenario::ParseString(
      "agents: {a: x:1}\nsteps:\n  - matrix: {from: a, to: a, steps: "
      "[sleep: 1ms]}\n",
      "m.yaml");
  ASSERT_TRUE(no_pair.ok()) << no_pair.status();
}

}  // namespace
}  // namespace sockagent
