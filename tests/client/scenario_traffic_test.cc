// Scenario traffic and fault steps against two real agents. Built only with
// SOCKAGENT_SCENARIO_TRAFFIC=ON (the agent's Traffic, Abort and SetFaults).

#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "client/agent.h"
#include "client/scenario/scenario.h"
#include "client/scenario/traffic_steps.h"
#include "tests/integration/agent_process.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

class ScenarioTrafficTest : public ::testing::Test {
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
      AgentOptions options;
      options.target = process->target();
      options.open_session = false;
      absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
      ASSERT_TRUE(agent.ok()) << agent.status();
      absl::StatusOr<v1::GetAgentInfoResponse> info = (*agent)->GetAgentInfo();
      ASSERT_TRUE(info.ok()) << info.status();
      EXPECT_EQ(info->stats().open_sockets(), 0u);
    }
  }
  static RunOptions Options() {
    RunOptions options;
    options.agent_targets["a"] = processes_[0]->target();
    options.agent_targets["b"] = processes_[1]->target();
    return options;
  }
  static testing::AgentProcess* processes_[2];
};

testing::AgentProcess* ScenarioTrafficTest::processes_[2] = {nullptr, nullptr};

TEST_F(ScenarioTrafficTest, TheTrafficExamplesPass) {
  ASSERT_TRUE(scenario::TrafficStepsAvailable());
  for (const char* name : {"echo_sink_source", "faults_reset"}) {
    absl::StatusOr<Scenario> scenario = Scenario::ParseFile(absl::StrCat(
        SOCKAGENT_SOURCE_DIR, "/examples/scenarios/traffic/", name, ".yaml"));
    ASSERT_TRUE(scenario.ok()) << scenario.status();
    ScenarioResult result = scenario->Run(Options());
    EXPECT_TRUE(result.ok()) << SummaryTable(result);
  }
}

TEST_F(ScenarioTrafficTest, AWrongChecksumIsReported) {
  absl::StatusOr<Scenario> scenario = Scenario::ParseString(R"(
agents: {a: , b: }
steps:
  - {agent: a, socket: {}, save_as: l}
  - bind: {socket: l, address: "127.0.0.1:0"}
  - listen: l
  - {agent: b, socket: {}, save_as: c}
  - connect: {socket: c, address: "${l.address}"}
  - {accept: l, save_as: s}
  - parallel:
      - name: sink
        traffic: {socket: s, mode: sink, max_bytes: 1000}
        expect: {checksum: {bytes: 1000, pattern: zero}, values: {end: bytes}}
      - sendall: {socket: c, data: {bytes: 1000, pattern: sequence}}
)");
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  ScenarioResult result = scenario->Run(Options());
  EXPECT_FALSE(result.ok());
  bool found = false;
  for (const StepResult& step : result.steps) {
    if (step.name != "sink") continue;
    found = true;
    EXPECT_EQ(step.status, StepStatus::kFailed);
    EXPECT_THAT(step.expected, HasSubstr("checksum: "));
    EXPECT_NE(step.expected, step.actual);
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace sockagent
