// Scenario runs against two real sockagentd child processes on 127.0.0.1:
// every step kind and expectation kind holding, each expectation kind
// failing (reported with step, expected and actual), retries, barriers,
// runtime errors, an unreachable agent, and an interrupted run. After every
// run both agents hold zero sockets.

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "client/agent.h"
#include "client/scenario/scenario.h"
#include "client/scenario/traffic_steps.h"
#include "tests/integration/agent_process.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ScenarioRunnerTest : public ::testing::Test {
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
    // Whatever a run did, it leaves nothing open on either agent.
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

  static RunOptions Options() {
    RunOptions options;
    options.agent_targets["a"] = processes_[0]->target();
    options.agent_targets["b"] = processes_[1]->target();
    return options;
  }

  // Parses `steps` under two agents a and b and runs it.
  static ScenarioResult RunSteps(const std::string& steps,
                                 const RunOptions& options = Options()) {
    absl::StatusOr<Scenario> scenario = Scenario::ParseString(
        absl::StrCat("name: test\nagents: {a: , b: }\ndefaults: {timeout: "
                     "30s}\nsteps:\n",
                     steps),
        "test.yaml");
    EXPECT_TRUE(scenario.ok()) << scenario.status();
    if (!scenario.ok()) return ScenarioResult();
    return scenario->Run(options);
  }

  static std::string Dump(const ScenarioResult& result) {
    return SummaryTable(result);
  }

  static const StepResult* Step(const ScenarioResult& result, int index) {
    for (const StepResult& step : result.steps) {
      if (step.index == index) return &step;
    }
    return nullptr;
  }

  static testing::AgentProcess* processes_[2];
};

testing::AgentProcess* ScenarioRunnerTest::processes_[2] = {nullptr, nullptr};

// A TCP connection from b to a: sockets l (listener, a), c (client, b),
// s (server side, a).
constexpr char kConnected[] = R"(
  - {agent: a, socket: {}, save_as: l}
  - bind: {socket: l, address: "127.0.0.1:0"}
  - listen: l
  - {agent: b, socket: {}, save_as: c}
  - connect: {socket: c, address: "127.0.0.1:${l.port}"}
  - {accept: l, save_as: s}
)";

TEST_F(ScenarioRunnerTest, EveryStepAndExpectationKindHolds) {
  const std::string steps = absl::StrCat(kConnected, R"(
  - name: accept saw b's socket
    getpeername: s
    expect: {values: {address: "${c.address}", port: "${c.port}"}}
  - getsockname: c
    expect: {data: "${c.address}", matches: "^127\\.0\\.0\\.1:[0-9]+$"}
  - send: {socket: c, data: hello}
    save_as: sent
    expect: {bytes: 5, checksum: 9555e8555c62dcfd}  # xxh3_64("hello")
  - recv: {socket: s, max: 3, flags: [peek]}
    expect: {data: hel}
  - recv: {socket: s, max: 64}
    save_as: got
    expect:
      status: OK
      data: hello
      contains: ell
      matches: "h.*o"
      bytes: 5
      checksum: "${sent.checksum}"
      eof: false
      values: {checksum: "${sent.checksum}"}
      within: 5s
  - sendall: {socket: s, data: {text: "${got.data} ", repeat: 1000}}
  - recv_all: {socket: c, bytes: 6000}
    expect: {data: {text: "hello ", repeat: 1000}, checksum: {text: "hello ", repeat: 1000}}
  - name: nothing more for c
    recv: c
    expect: {no_data_for: 200ms}
  - setsockopt: {socket: c, option: TCP_NODELAY, value: on}
  - getsockopt: {socket: c, option: TCP_NODELAY}
    expect: {data: "on"}
  - settimeout: {socket: s, timeout: 2.5s}
  - gettimeout: s
    expect: {values: {value: 2.5s}}
  - settimeout: {socket: s, timeout: "0"}
  - name: non-blocking recv with nothing queued
    recv: s
    expect: {errno: EAGAIN}
  - settimeout: {socket: s, timeout: none}
  - shutdown: {socket: c, how: wr}
  - recv_stream: s
    expect: {bytes: 0, eof: true}
  - {agent: b, gethostname: , save_as: host}
  - {agent: a, gethostname: , expect: {data: "${host.value}"}}
  - {agent: a, getaddrinfo: {host: 127.0.0.1, port: "80", type: stream}, expect: {values: {address: "127.0.0.1:80", count: 1}}}
  - {agent: a, list_sockets: , expect: {values: {count: 2}}}
  - {agent: a, socket: {type: dgram}, save_as: u}
  - bind: {socket: u, address: "127.0.0.1:0"}
  - {agent: b, socket: {type: dgram}, save_as: v}
  - sendto: {socket: v, address: "${u.address}", data: {hex: "00 01 ff"}}
  - recvfrom: u
    expect:
      data: {hex: "0001ff"}
      matches: "^\\x00\\x01\\xff$"
      values: {from_host: 127.0.0.1}
  - getsockname: v
  - close: v
  - name: connecting to a closed port is refused
    agent: b
    socket: {}
    save_as: r
  - connect: {socket: r, address: "${v.address}"}
    expect: {status: UNAVAILABLE, errno: ECONNREFUSED}
  - parallel:
      - steps:
          - sleep: 100ms
          - signal: ready
      - wait: ready
      - steps:
          - wait: ready
          - sleep: 10ms
  - close: s
)");
  ScenarioResult result = RunSteps(steps);
  EXPECT_TRUE(result.ok()) << Dump(result);
  EXPECT_FALSE(result.interrupted);
  EXPECT_EQ(result.Count(StepStatus::kPassed),
            static_cast<int>(result.steps.size()));
  ASSERT_GE(result.steps.size(), 4u);
  EXPECT_EQ(result.steps.front().kind, "session");
  EXPECT_EQ(result.steps.back().kind, "cleanup");
  const StepResult* peer = Step(result, 7);
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(peer->name, "accept saw b's socket");
  EXPECT_EQ(peer->agent, "a");
}

TEST_F(ScenarioRunnerTest, TheIssueStoryPassesOnTwoAgentsAndOnOneAgentTwice) {
  absl::StatusOr<Scenario> scenario = Scenario::ParseFile(absl::StrCat(
      SOCKAGENT_SOURCE_DIR, "/examples/scenarios/tcp_transfer_reset.yaml"));
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  ScenarioResult two = scenario->Run(Options());
  EXPECT_TRUE(two.ok()) << Dump(two);
  RunOptions same = Options();
  same.agent_targets["b"] = processes_[0]->target();
  ScenarioResult one = scenario->Run(same);
  EXPECT_TRUE(one.ok()) << Dump(one);
}

struct FailingCase {
  const char* expect;    // the expect: block of a recv of "hello" on s
  const char* expected;  // substring of StepResult::expected
  const char* actual;    // substring of StepResult::actual
};

class ScenarioFailureTest : public ScenarioRunnerTest,
                            public ::testing::WithParamInterface<FailingCase> {
};

TEST_P(ScenarioFailureTest, IsReportedWithStepExpectedAndActual) {
  const FailingCase& param = GetParam();
  const std::string steps = absl::StrCat(kConnected, R"(
  - send: {socket: c, data: hello}
  - name: the step under test
    recv: s
    expect: )",
                                         param.expect, R"(
  - name: never runs
    close: s
)");
  ScenarioResult result = RunSteps(steps);
  EXPECT_FALSE(result.ok());
  const StepResult* failed = Step(result, 8);
  ASSERT_NE(failed, nullptr) << Dump(result);
  EXPECT_EQ(failed->status, StepStatus::kFailed) << Dump(result);
  EXPECT_EQ(failed->name, "the step under test");
  EXPECT_EQ(failed->agent, "a");
  EXPECT_THAT(failed->expected, HasSubstr(param.expected));
  EXPECT_THAT(failed->actual, HasSubstr(param.actual));
  const StepResult* skipped = Step(result, 9);
  ASSERT_NE(skipped, nullptr);
  EXPECT_EQ(skipped->status, StepStatus::kSkipped);
  EXPECT_THAT(skipped->message, HasSubstr("step 8 (the step under test)"));
  EXPECT_EQ(result.steps.back().kind, "cleanup");
  EXPECT_EQ(result.steps.back().status, StepStatus::kPassed);
  // The reports carry the same.
  const std::string junit = JUnitXml({result});
  EXPECT_THAT(junit, HasSubstr("<failure message="));
  EXPECT_THAT(junit, HasSubstr("08 the step under test"));
  EXPECT_THAT(ResultsJson({result}), HasSubstr("\"status\":\"failed\""));
  EXPECT_THAT(SummaryTable(result), HasSubstr("FAIL"));
}

INSTANTIATE_TEST_SUITE_P(
    EveryExpectationKind, ScenarioFailureTest,
    ::testing::Values(
        FailingCase{"{data: goodbye}", "data: 7 bytes \"goodbye\"",
                    "data: 5 bytes \"hello\""},
        FailingCase{"{data: hellp}", "data: 5 bytes \"hellp\"",
                    "first difference at byte 4"},
        FailingCase{"{contains: bye}", "contains: \"bye\"", "\"hello\""},
        FailingCase{"{matches: \"^x\"}", "matches: /^x/", "\"hello\""},
        FailingCase{"{bytes: 6}", "bytes: 6", "bytes: 5"},
        FailingCase{"{checksum: 0000000000000000}",
                    "checksum: 0000000000000000", "checksum: "},
        FailingCase{"{eof: true}", "eof: true", "eof: false"},
        FailingCase{"{values: {nosuch: 1}}", "nosuch: 1",
                    "no such field (fields: "},
        FailingCase{"{status: UNAVAILABLE}", "status: UNAVAILABLE",
                    "status: OK"},
        FailingCase{"{errno: ECONNRESET}", "errno: ECONNRESET",
                    "errno: none (OK)"},
        FailingCase{"{no_data_for: 1s}", "no data for: 1s",
                    "5 bytes \"hello\""},
        FailingCase{"{within: 0s}", "within: 0s", "within: "}));

TEST_F(ScenarioRunnerTest, AFailedCallIsAFailedStatusExpectation) {
  ScenarioResult result = RunSteps(absl::StrCat(kConnected, R"(
  - close: c
  - name: recv on a closed handle
    recv: c
)"));
  const StepResult* failed = Step(result, 8);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status, StepStatus::kFailed);
  EXPECT_EQ(failed->expected, "status: OK");
  EXPECT_THAT(failed->actual, HasSubstr("status: "));
}

TEST_F(ScenarioRunnerTest, RetriesUntilTheDeadlineThenFail) {
  ScenarioResult result = RunSteps(R"(
  - {agent: a, socket: {}, save_as: l}
  - bind: {socket: l, address: "127.0.0.1:0"}
  - {agent: b, socket: {}, save_as: c}
  - name: connect to a port nobody listens on
    connect: {socket: c, address: "${l.address}"}
    retry: {until: 1s, interval: 50ms}
)");
  const StepResult* failed = Step(result, 4);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status, StepStatus::kFailed);
  EXPECT_GT(failed->attempts, 1);
  EXPECT_THAT(failed->actual, HasSubstr("ECONNREFUSED"));
}

// The first recv finds "hi"; every later one waits for data that never comes
// until the retry deadline cuts it. The step reports what the first found.
TEST_F(ScenarioRunnerTest, AnAttemptCutByTheRetryDeadlineReportsThePrevious) {
  ScenarioResult result = RunSteps(absl::StrCat(kConnected, R"(
  - send: {socket: c, data: hi}
  - name: wait for a greeting that never comes
    recv: {socket: s, max: 64}
    retry: {until: 1s, interval: 10ms}
    expect: {data: hello}
)"));
  const StepResult* failed = Step(result, 8);
  ASSERT_NE(failed, nullptr) << Dump(result);
  EXPECT_EQ(failed->status, StepStatus::kFailed) << Dump(result);
  EXPECT_EQ(failed->attempts, 2);
  EXPECT_THAT(failed->actual, HasSubstr("\"hi\""));
  EXPECT_THAT(failed->actual, Not(HasSubstr("DEADLINE_EXCEEDED")));
  EXPECT_GE(failed->duration, absl::Seconds(1));
}

TEST_F(ScenarioRunnerTest, RetriesStopAtTheAttemptCount) {
  ScenarioResult result = RunSteps(R"(
  - {agent: a, socket: {}, save_as: l}
  - bind: {socket: l, address: "127.0.0.1:0"}
  - connect: {socket: l, address: "${l.address}"}
    retry: {attempts: 3, interval: 10ms}
    expect: {errno: EHOSTUNREACH}
)");
  const StepResult* failed = Step(result, 3);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->attempts, 3);
}

TEST_F(ScenarioRunnerTest, ABadValueAfterSubstitutionIsAnError) {
  ScenarioResult result = RunSteps(R"(
  - {agent: a, socket: {}, save_as: l}
  - {agent: a, gethostname: , save_as: h}
  - name: bind to the host name without a port
    bind: {socket: l, address: "${h.value}"}
  - name: a field that does not exist
    bind: {socket: l, address: "${h.nosuch}"}
)");
  const StepResult* bad = Step(result, 3);
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->status, StepStatus::kError) << Dump(result);
  EXPECT_THAT(bad->message, HasSubstr("address:"));
  EXPECT_EQ(Step(result, 4)->status, StepStatus::kSkipped);

  result = RunSteps(R"(
  - {agent: a, gethostname: , save_as: h}
  - {agent: a, socket: {}, save_as: l}
  - bind: {socket: l, address: "${h.nosuch}"}
)");
  EXPECT_EQ(Step(result, 3)->status, StepStatus::kError);
  EXPECT_THAT(Step(result, 3)->message,
              HasSubstr("${h.nosuch}: h has no field nosuch (fields: "));
}

TEST_F(ScenarioRunnerTest, AWaitWithoutItsSignalTimesOut) {
  ScenarioResult result = RunSteps(R"(
  - wait: never
    timeout: 200ms
)");
  EXPECT_EQ(Step(result, 1)->status, StepStatus::kFailed);
  EXPECT_THAT(Step(result, 1)->actual, HasSubstr("DEADLINE_EXCEEDED"));
}

TEST_F(ScenarioRunnerTest, AFailureInOneBranchStopsTheOthers) {
  ScenarioResult result = RunSteps(R"(
  - {agent: a, socket: {}, save_as: l}
  - bind: {socket: l, address: "127.0.0.1:0"}
  - listen: l
  - parallel:
      - name: waits for a connection that never comes
        accept: l
        timeout: 120s
      - name: waits for a signal that never comes
        wait: never
        timeout: 120s
      - name: fails
        agent: b
        gethostname:
        expect: {data: "not the host name"}
)");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(Step(result, 6)->status, StepStatus::kFailed);
  EXPECT_EQ(Step(result, 4)->status, StepStatus::kSkipped) << Dump(result);
  EXPECT_EQ(Step(result, 5)->status, StepStatus::kSkipped) << Dump(result);
  EXPECT_THAT(Step(result, 4)->message, HasSubstr("stopped: step 6 (fails)"));
}

TEST_F(ScenarioRunnerTest, AnInterruptStopsTheRunAndCleansUp) {
  absl::Notification interrupt;
  RunOptions options = Options();
  options.interrupt = &interrupt;
  options.on_step = [&interrupt](const StepResult& step) {
    if (step.name == "listen l") interrupt.Notify();
  };
  ScenarioResult result = RunSteps(R"(
  - {agent: a, socket: {}, save_as: l}
  - bind: {socket: l, address: "127.0.0.1:0"}
  - {agent: b, socket: {}, save_as: c}
  - listen: l
  - name: waits for a connection that never comes
    accept: l
    timeout: 120s
  - close: l
)",
                                   options);
  EXPECT_TRUE(result.interrupted);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(Step(result, 4)->status, StepStatus::kPassed);
  EXPECT_EQ(Step(result, 5)->status, StepStatus::kSkipped) << Dump(result);
  EXPECT_EQ(Step(result, 6)->status, StepStatus::kSkipped);
  EXPECT_THAT(Step(result, 6)->message, HasSubstr("interrupted"));
  int cleanups = 0;
  for (const StepResult& step : result.steps) {
    if (step.kind != "cleanup") continue;
    ++cleanups;
    EXPECT_EQ(step.status, StepStatus::kPassed) << step.message;
  }
  EXPECT_EQ(cleanups, 2);
  EXPECT_THAT(JUnitXml({result}), HasSubstr("name=\"interrupted\""));
  // TearDown checks that both agents hold zero sockets.
}

TEST_F(ScenarioRunnerTest, AnUnreachableAgentIsAnErrorAndNothingRuns) {
  RunOptions options = Options();
  options.agent_targets["b"] = "127.0.0.1:1";
  options.connect_timeout = absl::Seconds(3);  // also bounds the live agent
  ScenarioResult result = RunSteps(R"(
  - {agent: a, socket: {}, save_as: l}
)",
                                   options);
  EXPECT_FALSE(result.ok());
  ASSERT_GE(result.steps.size(), 3u);
  EXPECT_EQ(result.steps[0].status, StepStatus::kPassed);
  EXPECT_EQ(result.steps[1].status, StepStatus::kError);
  EXPECT_THAT(result.steps[1].message, HasSubstr("127.0.0.1:1"));
  EXPECT_EQ(Step(result, 1)->status, StepStatus::kSkipped);
  EXPECT_EQ(result.steps.back().kind, "cleanup");
}

TEST_F(ScenarioRunnerTest, AMalformedAgentAddressIsAnErrorNamingIt) {
  absl::StatusOr<Scenario> scenario = Scenario::ParseString(
      "agents: {a: \"127.0.0.1:abc\"}\nsteps:\n  - {agent: a, gethostname: }\n",
      "bad_agent.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  ScenarioResult result = scenario->Run(RunOptions());
  ASSERT_FALSE(result.steps.empty());
  EXPECT_EQ(result.steps[0].status, StepStatus::kError) << Dump(result);
  EXPECT_THAT(result.steps[0].message,
              HasSubstr("agent a: \"127.0.0.1:abc\": port \"abc\""));
}

TEST_F(ScenarioRunnerTest, ARefusedAgentFailsFastWhenAsked) {
  RunOptions options = Options();
  options.agent_targets["a"] = "127.0.0.1:1";
  options.connect_timeout = absl::Seconds(600);  // not waited for
  options.fail_fast = true;
  ScenarioResult result = RunSteps("  - {agent: b, gethostname: }\n", options);
  ASSERT_FALSE(result.steps.empty());
  EXPECT_EQ(result.steps[0].status, StepStatus::kError) << Dump(result);
  EXPECT_THAT(result.steps[0].message,
              HasSubstr("cannot reach the agent at 127.0.0.1:1: the connection "
                        "failed"));
}

TEST_F(ScenarioRunnerTest, AfterAnUnreachableAgentTheOthersAreNotConnected) {
  RunOptions options = Options();
  options.agent_targets["a"] = "127.0.0.1:1";
  options.connect_timeout = absl::Seconds(3);  // also bounds the live agent
  ScenarioResult result = RunSteps("  - {agent: b, gethostname: }\n", options);
  ASSERT_EQ(result.steps.size(), 3u) << Dump(result);
  EXPECT_EQ(result.steps[0].status, StepStatus::kError);
  EXPECT_EQ(result.steps[1].status, StepStatus::kSkipped);
  EXPECT_THAT(result.steps[1].message,
              HasSubstr("not connected: no session on agent a"));
  EXPECT_EQ(result.steps[2].status, StepStatus::kSkipped);
}

TEST_F(ScenarioRunnerTest, AVarFromAnUnsetEnvironmentVariableIsAnError) {
  absl::StatusOr<Scenario> scenario = Scenario::ParseString(
      "agents: {a: }\nvars: {x: \"${env.SOCKAGENT_TEST_SURELY_UNSET}\"}\n"
      "steps:\n  - {agent: a, gethostname: , expect: {data: \"${x}\"}}\n");
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  ScenarioResult result = scenario->Run(Options());
  ASSERT_EQ(result.steps.size(), 2u) << Dump(result);
  EXPECT_EQ(result.steps[0].kind, "vars");
  EXPECT_EQ(result.steps[0].status, StepStatus::kError);
  EXPECT_THAT(result.steps[0].message,
              HasSubstr("SOCKAGENT_TEST_SURELY_UNSET is not set"));
  EXPECT_EQ(result.steps[1].status, StepStatus::kSkipped);
}

TEST_F(ScenarioRunnerTest, AnAgentWithoutAnAddressIsAnError) {
  absl::StatusOr<Scenario> scenario = Scenario::ParseString(
      "agents: {nowhere-1: }\nsteps:\n  - {agent: nowhere-1, gethostname: }\n");
  ASSERT_TRUE(scenario.ok());
  ScenarioResult result = scenario->Run(RunOptions());
  ASSERT_FALSE(result.steps.empty());
  EXPECT_EQ(result.steps[0].status, StepStatus::kError);
  EXPECT_THAT(result.steps[0].message, HasSubstr("SOCKAGENT_AGENT_NOWHERE_1"));
}

}  // namespace
}  // namespace sockagent
