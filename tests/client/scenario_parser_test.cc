// Scenario parsing: good files (the examples and one with every step kind)
// and every kind of error, each with its file:line:column and key. No agent.

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "client/scenario/model.h"
#include "client/scenario/scenario.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

constexpr char kHeader[] = R"(name: t
agents:
  a: 127.0.0.1:1
  b: {address: "127.0.0.1:2", ttl: 20s}
steps:
)";

// Parses kHeader + `steps` and returns the error message ("" if it parsed).
std::string ParseError(const std::string& steps) {
  absl::StatusOr<Scenario> scenario =
      Scenario::ParseString(absl::StrCat(kHeader, steps), "t.yaml");
  if (scenario.ok()) return "";
  EXPECT_EQ(scenario.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(scenario.status().message());
}

TEST(ScenarioParserTest, ShippedExamplesParse) {
  for (const char* name : {"tcp_transfer_reset", "udp_exchange",
                           "parallel_barrier_retry", "proxy_partition_heal"}) {
    const std::string path = absl::StrCat(
        SOCKAGENT_SOURCE_DIR, "/examples/scenarios/", name, ".yaml");
    absl::StatusOr<Scenario> scenario = Scenario::ParseFile(path);
    ASSERT_TRUE(scenario.ok()) << scenario.status();
    EXPECT_EQ(scenario->file(), path);
    EXPECT_EQ(scenario->agent_names(), (std::vector<std::string>{"a", "b"}));
    EXPECT_GT(scenario->step_count(), 5);
  }
}

TEST(ScenarioParserTest, TrafficExamplesParse) {
  for (const char* name : {"echo_sink_source", "faults_reset"}) {
    const std::string path = absl::StrCat(
        SOCKAGENT_SOURCE_DIR, "/examples/scenarios/traffic_", name, ".yaml");
    absl::StatusOr<Scenario> scenario = Scenario::ParseFile(path);
    ASSERT_TRUE(scenario.ok()) << scenario.status();
  }
}

TEST(ScenarioParserTest, EveryStepKindParses) {
  const std::string steps = R"(
  - {agent: a, socket: {family: inet, type: stream, protocol: 0}, save_as: l}
  - {agent: a, socket: {family: inet6, type: dgram}, save_as: u}
  - bind: {socket: l, address: "127.0.0.1:0"}
  - listen: {socket: l, backlog: 4}
  - {accept: l, save_as: c, timeout: 5s}
  - connect: {socket: l, address: "${c.peer}"}
  - send: {socket: c, data: hello}
  - sendall: {socket: c, data: {hex: "00ff 10", repeat: 2}}
  - recv: {socket: c, max: 1KiB, flags: [peek, waitall]}
  - recv_stream: {socket: c, bytes: 1MiB, chunk: 64KiB}
  - recv_all: {socket: c, bytes: 10}
  - sendto: {socket: u, address: "[::1]:9", data: {bytes: 10, pattern: zero}}
  - recvfrom: {socket: u, max: 1500}
  - shutdown: {socket: c, how: wr}
  - setsockopt: {socket: c, option: SO_LINGER, value: "on:0"}
  - getsockopt: {socket: c, option: SO_RCVBUF}
  - getsockname: c
  - getpeername: c
  - settimeout: {socket: c, timeout: none}
  - gettimeout: c
  - {agent: b, gethostname: }
  - {agent: b, getaddrinfo: {host: localhost, port: "80", family: inet, type: stream}}
  - {agent: b, list_sockets: {}, expect: {values: {count: 0}}}
  - traffic: {socket: c, mode: source, bytes: 1MiB, pattern: random, seed: 7, rate: 1MiB, shutdown_write_at_end: true}
  - traffic: {socket: c, mode: sink, max_bytes: 10, duration: 1s}
  - faults: {socket: c, send_delay: 10ms, send_rate: 1MiB, slice_bytes: 10, slice_delay: 1ms, close_after_bytes: 100, close_with_reset: true, stop_reading: false}
  - abort: c
  - {agent: a, proxy: {listen: "127.0.0.1:0", upstream: "127.0.0.1:9", udp: true, idle_timeout: 5s, direction: upstream, loss_percent: "5%", duplicate_percent: 1, reorder_percent: 0.5, seed: 7}, save_as: p}
  - proxy_faults: {proxy: p, direction: downstream, send_delay: 10ms, send_delay_jitter: 1ms, blackhole: true, close_after_time: 1s, close_delay: 1ms}
  - proxy_faults: {proxy: p, clear: true}
  - proxy_stop: {proxy: p, connections: 1}
  - proxy_stop: p
  - close: l
  - parallel:
      - steps:
          - sleep: 10ms
          - signal: go
      - wait: go
  - recv: {socket: u}
    retry: {until: 2s, attempts: 3, interval: 10ms}
    expect:
      status: ok
      data: x
      contains: x
      matches: "^x$"
      bytes: 1
      checksum: af63dc4c8601ec8c
      eof: false
      values: {bytes: 1}
      within: 1s
  - recv: {socket: u}
    retry: 1s
    expect: {no_data_for: 100ms}
  - connect: {socket: u, address: "127.0.0.1:9"}
    expect: {status: UNAVAILABLE, errno: ECONNREFUSED}
)";
  absl::StatusOr<Scenario> scenario =
      Scenario::ParseString(absl::StrCat(kHeader, steps), "t.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  EXPECT_EQ(scenario->step_count(), 39);
  EXPECT_EQ(scenario->name(), "t");
}

TEST(ScenarioParserTest, NameDefaultsToTheFileName) {
  absl::StatusOr<Scenario> scenario = Scenario::ParseString(
      "agents: {a: }\nsteps:\n  - {agent: a, gethostname: }\n",
      "dir/my_test.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  EXPECT_EQ(scenario->name(), "my_test");
}

TEST(ScenarioParserTest, MissingFileIsNotFound) {
  EXPECT_EQ(Scenario::ParseFile("/nonexistent/x.yaml").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ScenarioParserTest, YamlSyntaxErrorHasItsLocation) {
  absl::StatusOr<Scenario> scenario =
      Scenario::ParseString("agents:\n  a: [1, 2\nsteps: []\n", "bad.yaml");
  ASSERT_FALSE(scenario.ok());
  EXPECT_THAT(scenario.status().message(), HasSubstr("bad.yaml:"));
  EXPECT_THAT(scenario.status().message(), HasSubstr("YAML syntax error"));
}

TEST(ScenarioParserTest, TopLevelErrorsNameFileLineAndKey) {
  auto error = [](const std::string& text) {
    return std::string(
        Scenario::ParseString(text, "f.yaml").status().message());
  };
  EXPECT_EQ(error("- 1\n"),
            "f.yaml:1:1: a scenario file is a mapping with agents: and steps:");
  EXPECT_THAT(error("agents: {a: }\nsteps: []\nstep: 1\n"),
              HasSubstr("f.yaml:3:1: step: unknown key"));
  EXPECT_THAT(error("steps: []\n"), HasSubstr("agents: missing"));
  EXPECT_THAT(error("agents: {a: }\n"), HasSubstr("steps: missing"));
  EXPECT_THAT(error("agents: {a: }\nsteps: []\n"), HasSubstr("steps: empty"));
  EXPECT_THAT(error("agents: {a: }\ndefaults: {timeout: soon}\nsteps: []\n"),
              HasSubstr("f.yaml:2:21: timeout: \"soon\" is not a duration"));
  EXPECT_THAT(error("agents: {a: }\ndefaults: {retries: 1}\nsteps: []\n"),
              HasSubstr("f.yaml:2:12: retries: unknown key in defaults"));
}

TEST(ScenarioParserTest, AgentErrorsNameFileLineAndKey) {
  auto error = [](const std::string& agents) {
    return std::string(
        Scenario::ParseString(
            absl::StrCat("agents:\n", agents,
                         "steps:\n  - {agent: a, gethostname: }\n"),
            "f.yaml")
            .status()
            .message());
  };
  EXPECT_THAT(error("  a: {adress: x}\n"),
              HasSubstr("f.yaml:2:7: adress: unknown key in an agent"));
  EXPECT_THAT(error("  a: {address: nocolon}\n"),
              HasSubstr("address: \"nocolon\": expected host:port"));
  EXPECT_THAT(error("  a: {tls: {ca: x, crt: y}}\n"),
              HasSubstr("f.yaml:2:20: crt: unknown key in tls"));
  EXPECT_THAT(error("  env: 127.0.0.1:1\n"), HasSubstr("f.yaml:2:3: env:"));
  EXPECT_THAT(error("  a: ${vars.x}\n"),
              HasSubstr("\"vars\" is not a var or an earlier save_as"));
  EXPECT_EQ(error("  a: {address: \"${env.A:-127.0.0.1:1}\", token: "
                  "\"${env.T:-}\", tls: {ca: c.pem, server_name: n}}\n"),
            "");
}

// yaml-cpp keeps every entry of a mapping whose key repeats: a second
// agents: block was ignored and an agent named twice was used twice (found
// by tests/fuzz/scenario_fuzz.cc). A repeated key is an error at its second
// place, in any mapping.
TEST(ScenarioParserTest, RepeatedKeysAreErrors) {
  auto error = [](const std::string& text) {
    return std::string(
        Scenario::ParseString(text, "f.yaml").status().message());
  };
  EXPECT_EQ(error("agents:\n  a: 127.0.0.1:1\n  a: 127.0.0.1:2\n"
                  "steps:\n  - {agent: a, gethostname: }\n"),
            "f.yaml:3:3: a: duplicate key (first at line 2)");
  EXPECT_EQ(error("agents: {a: 127.0.0.1:1}\nagents: {b: 127.0.0.1:2}\n"
                  "steps:\n  - {agent: a, gethostname: }\n"),
            "f.yaml:2:1: agents: duplicate key (first at line 1)");
  EXPECT_THAT(
      ParseError("  - {agent: a, socket: {}, save_as: s, save_as: t}\n"),
      HasSubstr("t.yaml:6:40: save_as: duplicate key"));
  // An alias repeats a node, not a key.
  EXPECT_EQ(ParseError("  - &x {agent: a, gethostname: }\n  - *x\n"), "");
}

// Each level of `parallel: [*a, *a]` doubles the steps: 18 levels in a
// 1 KB file are 2^18 leaves. Found with tests/fuzz/scenario_fuzz.cc: an
// input of 24 levels ran it out of memory.
TEST(ScenarioParserTest, AliasesCannotMultiplyStepsWithoutBound) {
  std::string steps = "  - &s0 {agent: a, gethostname: }\n";
  for (int i = 1; i <= 18; ++i) {
    absl::StrAppend(&steps, "  - &s", i, " {parallel: [*s", i - 1, ", *s",
                    i - 1, "]}\n");
  }
  EXPECT_THAT(ParseError(steps),
              HasSubstr("parallel: more than 10000 steps (an alias counts "
                        "each time it is used)"));
}

// An alias used inside the node it names is a cycle: parsing recursed until
// the stack overflowed (found by tests/fuzz/scenario_fuzz.cc). Nesting is
// bounded, which also bounds honest deep nesting.
TEST(ScenarioParserTest, SelfReferencingAliasIsAnError) {
  EXPECT_THAT(ParseError("  - &s {parallel: [*s]}\n"),
              HasSubstr("nested more than 64 deep (or an alias used inside "
                        "itself)"));
  std::string deep = "  - ";
  for (int i = 0; i < 65; ++i) absl::StrAppend(&deep, "{steps: [");
  absl::StrAppend(&deep, "{agent: a, gethostname: }");
  for (int i = 0; i < 65; ++i) absl::StrAppend(&deep, "]}");
  EXPECT_THAT(ParseError(deep + "\n"), HasSubstr("nested more than 64 deep"));
}

TEST(ScenarioParserTest, ProxyStepErrorsNameTheirKey) {
  EXPECT_THAT(ParseError("  - {agent: a, proxy: {listen: \"127.0.0.1:0\", "
                         "upstream: \"127.0.0.1:9\"}}\n"),
              HasSubstr("save_as: proxy needs save_as:"));
  EXPECT_THAT(ParseError("  - {proxy: {listen: \"127.0.0.1:0\", upstream: "
                         "\"127.0.0.1:9\"}, save_as: p}\n"),
              HasSubstr("agent: proxy needs agent:"));
  EXPECT_THAT(ParseError("  - {agent: a, proxy: {listen: \"127.0.0.1:0\"}, "
                         "save_as: p}\n"),
              HasSubstr("missing upstream:"));
  EXPECT_THAT(ParseError("  - proxy_faults: {proxy: p, direction: sideways}\n"),
              HasSubstr("direction: \"sideways\": expected both, upstream or "
                        "downstream"));
  EXPECT_THAT(ParseError("  - proxy_faults: {proxy: p, loss_percent: 120}\n"),
              HasSubstr("loss_percent: \"120\" is not a percentage from 0 to "
                        "100"));
  EXPECT_THAT(
      ParseError(
          "  - proxy_faults: {proxy: p, clear: true, blackhole: true}\n"),
      HasSubstr("clear: takes no fault argument (blackhole:)"));
  EXPECT_THAT(ParseError("  - proxy_stop: {proxy: p, connections: -1}\n"),
              HasSubstr("connections:"));
}

TEST(ScenarioParserTest, StepErrorsNameLineColumnAndKey) {
  // Line 6 is the first step line.
  EXPECT_EQ(ParseError("  - {agent: a, sockett: {}, save_as: s}\n"),
            "t.yaml:6:16: sockett: unknown step key (an RPC such as socket, "
            "bind, connect, send, recv, ...; parallel, steps, matrix, "
            "for_each, signal, wait, sleep; or name, agent, save_as, expect, "
            "timeout, retry) (did you mean \"socket\"?)");
  EXPECT_THAT(ParseError("  - {agent: a, name: x}\n"),
              HasSubstr("t.yaml:6:5: a step needs an action"));
  EXPECT_THAT(ParseError("  - {agent: a, socket: {}, gethostname: , "
                         "save_as: s}\n"),
              HasSubstr("t.yaml:6:28: gethostname: a step does one thing"));
  EXPECT_THAT(ParseError("  - {agent: c, gethostname: }\n"),
              HasSubstr("t.yaml:6:13: agent: \"c\" is not under agents:"));
  EXPECT_THAT(ParseError("  - {socket: {}, save_as: s}\n"),
              HasSubstr("agent: socket needs agent:"));
  EXPECT_THAT(ParseError("  - {agent: a, socket: {}}\n"),
              HasSubstr("save_as: socket needs save_as:"));
  EXPECT_THAT(ParseError("  - {agent: a, socket: {family: inet7}, save_as: "
                         "s}\n"),
              HasSubstr("t.yaml:6:33: family: family \"inet7\": expected inet, "
                        "inet6 or unix"));
  EXPECT_THAT(ParseError("  - {agent: a, socket: {colour: red}, save_as: s}\n"),
              HasSubstr("t.yaml:6:25: colour: unknown argument of socket "
                        "(family, type, protocol)"));
  EXPECT_THAT(ParseError("  - close: nosuch\n"),
              HasSubstr("t.yaml:6:12: socket: \"nosuch\" is not a socket "
                        "saved earlier with save_as"));
  EXPECT_THAT(ParseError("  - {agent: a, socket: {}, save_as: s}\n"
                         "  - {agent: b, close: s}\n"),
              HasSubstr("t.yaml:7:13: agent: socket \"s\" lives on agent "
                        "\"a\", not \"b\""));
  const std::string s = "  - {agent: a, socket: {}, save_as: s}\n";
  EXPECT_THAT(ParseError(s + "  - bind: {socket: s}\n"),
              HasSubstr("t.yaml:7:11: bind: missing address:"));
  EXPECT_THAT(ParseError(s + "  - bind: {socket: s, address: 127.0.0.1}\n"),
              HasSubstr("t.yaml:7:32: address: address \"127.0.0.1\": missing "
                        "\":port\""));
  EXPECT_THAT(ParseError(s + "  - send: {socket: s}\n"),
              HasSubstr("t.yaml:7:11: send: missing data:"));
  EXPECT_THAT(ParseError(s + "  - send: s\n"),
              HasSubstr("t.yaml:7:11: send: expected a mapping of arguments"));
  EXPECT_THAT(ParseError(s + "  - send: {socket: s, data: {text: a, hex: "
                             "ff}}\n"),
              HasSubstr("data: give exactly one of text, hex or bytes"));
  EXPECT_THAT(ParseError(s + "  - send: {socket: s, data: {hex: fg}}\n"),
              HasSubstr("t.yaml:7:35: hex: expected hex digits"));
  EXPECT_THAT(ParseError(s + "  - send: {socket: s, data: {bytes: 1XB}}\n"),
              HasSubstr("t.yaml:7:37: bytes: \"1XB\": unknown size unit"));
  EXPECT_THAT(ParseError(s + "  - send: {socket: s, data: {txt: a}}\n"),
              HasSubstr("t.yaml:7:30: txt: unknown key in data"));
  EXPECT_THAT(ParseError(s + "  - recv: {socket: s, flags: [peek, nowait]}\n"),
              HasSubstr("flags: unknown flag \"nowait\""));
  EXPECT_THAT(
      ParseError(s + "  - shutdown: {socket: s, how: sideways}\n"),
      HasSubstr("t.yaml:7:32: how: shutdown \"sideways\": expected rd, wr "
                "or rdwr"));
  EXPECT_THAT(ParseError(s + "  - setsockopt: {socket: s, option: SO_NOPE, "
                             "value: 1}\n"),
              HasSubstr("t.yaml:7:37: option: option \"SO_NOPE\": unknown"));
  EXPECT_THAT(ParseError(s + "  - traffic: {socket: s, mode: source}\n"),
              HasSubstr("traffic: source needs bytes: or duration:"));
  EXPECT_THAT(ParseError(s + "  - traffic: {socket: s, mode: blast}\n"),
              HasSubstr("mode: \"blast\": expected echo, sink or source"));
  EXPECT_THAT(ParseError(s + "  - faults: {socket: s, send_delay: x}\n"),
              HasSubstr("send_delay: \"x\" is not a duration"));
  EXPECT_THAT(ParseError(s + "  - {close: s, save_as: a}\n"),
              HasSubstr("save_as: \"a\" is an agent's name"));
  EXPECT_THAT(ParseError(s + "  - {close: s, save_as: a.b}\n"),
              HasSubstr("save_as: a name without"));
  EXPECT_THAT(ParseError("  - parallel: []\n"),
              HasSubstr("t.yaml:6:15: parallel: empty"));
  EXPECT_THAT(ParseError("  - {parallel: [{sleep: 1s}], agent: a}\n"),
              HasSubstr("agent: not allowed on parallel"));
  EXPECT_THAT(ParseError("  - {sleep: soon}\n"),
              HasSubstr("t.yaml:6:13: duration: \"soon\" is not a duration"));
  EXPECT_THAT(ParseError("  - {sleep: 1s, timeout: -1s}\n"),
              HasSubstr("timeout: \"-1s\""));
}

TEST(ScenarioParserTest, UnknownReferencesAreErrorsAtTheirValue) {
  const std::string s = "  - {agent: a, socket: {}, save_as: s}\n";
  EXPECT_THAT(
      ParseError(s + "  - connect: {socket: s, address: \"${l.address}\"}\n"),
      HasSubstr("t.yaml:7:35: address: ${l.address}: \"l\" is not a var or "
                "an earlier save_as"));
  EXPECT_THAT(ParseError(s + "  - connect: {socket: s, address: \"${s.x\"}\n"),
              HasSubstr("address: unterminated ${"));
  EXPECT_THAT(ParseError(s + "  - connect: {socket: s, address: \"${env}\"}\n"),
              HasSubstr("expected ${env.NAME}"));
  // A later save_as does not count.
  EXPECT_THAT(ParseError(s + "  - {recv: s, expect: {data: \"${r.data}\"}}\n" +
                         "  - {recv: s, save_as: r}\n"),
              HasSubstr("\"r\" is not a var or an earlier save_as"));
  EXPECT_EQ(ParseError(s + "  - {recv: s, save_as: r}\n" +
                       "  - {recv: s, expect: {data: \"${r.data}\"}}\n"),
            "");
}

TEST(ScenarioParserTest, ExpectationErrors) {
  const std::string s = "  - {agent: a, socket: {}, save_as: s}\n";
  auto expect = [&s](const std::string& block) {
    return ParseError(
        absl::StrCat(s, "  - recv: s\n    expect: ", block, "\n"));
  };
  EXPECT_THAT(expect("{status: BROKEN}"),
              HasSubstr("t.yaml:8:22: status: \"BROKEN\" is not OK, error or "
                        "a status code name"));
  EXPECT_EQ(expect("{status: deadline_exceeded}"), "");
  EXPECT_THAT(expect("{errno: connreset}"),
              HasSubstr("t.yaml:8:21: errno: \"connreset\" is not an errno"));
  EXPECT_THAT(expect("{errno: ECONNRESETT}"),
              HasSubstr("errno: \"ECONNRESETT\" is not an errno name "
                        "(ECONNRESET, ...) (did you mean \"ECONNRESET\"?)"));
  EXPECT_THAT(expect("{errnum: ECONNRESET}"),
              HasSubstr("(did you mean \"errno\"?)"));
  EXPECT_EQ(expect("{errno: EAI_NONAME}"), "");
  EXPECT_THAT(expect("{matches: \"(\"}"),
              HasSubstr("t.yaml:8:23: matches: bad regex"));
  EXPECT_THAT(expect("{checksum: 123}"),
              HasSubstr("checksum: expected 16 lowercase hex digits"));
  EXPECT_THAT(expect("{bytes: lots}"),
              HasSubstr("t.yaml:8:21: bytes: \"lots\" is not a size"));
  EXPECT_THAT(expect("{within: fast}"),
              HasSubstr("t.yaml:8:22: within: \"fast\" is not a duration"));
  EXPECT_THAT(expect("{eof: maybe}"), HasSubstr("eof: \"maybe\""));
  EXPECT_THAT(expect("{value: 1}"),
              HasSubstr("t.yaml:8:14: value: unknown expectation"));
  EXPECT_THAT(expect("[1]"), HasSubstr("expect: expected a mapping"));
  EXPECT_THAT(
      ParseError(s + "  - send: {socket: s, data: x}\n    expect: "
                     "{no_data_for: 1s}\n"),
      HasSubstr("no_data_for: only for recv, recv_stream and recvfrom"));
  EXPECT_THAT(ParseError(s + "  - recv: s\n    retry: {interval: 1s}\n"),
              HasSubstr("t.yaml:8:12: retry: give until: or attempts:"));
  EXPECT_THAT(ParseError(s + "  - recv: s\n    retry: {attempts: 0}\n"),
              HasSubstr("attempts: expected a count"));
  EXPECT_THAT(ParseError(s + "  - recv: s\n    retry: {forever: yes}\n"),
              HasSubstr("t.yaml:8:13: forever: unknown key in retry"));
}

TEST(ScenarioParserTest, MalformedDocumentsFailCleanly) {
  for (const char* text : {
           "",
           "~",
           "[]",
           "agents: [a]\nsteps: []\n",
           "agents: {a: }\nsteps: [[]]\n",
           "agents: {a: }\nsteps: [{socket: [1]}]\n",
           "agents: {a: }\nsteps: [{agent: [a], gethostname: }]\n",
           "agents: {a: }\nsteps: [{agent: a, socket: {family: [x]}, "
           "save_as: s}]\n",
           "agents: {a: }\nsteps: [{agent: a, gethostname: , expect: "
           "{values: [1]}}]\n",
           "agents: {a: }\nsteps: [{agent: a, gethostname: , expect: "
           "{data: [1]}}]\n",
           "agents: {a: {tls: [1]}}\nsteps: [{agent: a, gethostname: }]\n",
           "agents: {[a]: }\nsteps: [{agent: a, gethostname: }]\n",
           "agents: {a: }\nvars: [1]\nsteps: [{agent: a, gethostname: }]\n",
           "agents: {a: }\nsteps: {agent: a}\n",
           "agents: {a: }\nsteps: [{parallel: {sleep: 1s}}]\n",
           "agents: {a: }\nsteps: [{sleep: 1s, retry: [1]}]\n",
           "agents: {a: }\nsteps: [{sleep: 1s, name: {x: 1}}]\n",
       }) {
    absl::StatusOr<Scenario> scenario = Scenario::ParseString(text, "m.yaml");
    EXPECT_FALSE(scenario.ok()) << text;
    EXPECT_EQ(scenario.status().code(), absl::StatusCode::kInvalidArgument)
        << text;
    EXPECT_THAT(scenario.status().message(), HasSubstr("m.yaml:")) << text;
  }
}

TEST(ScenarioModelTest, SizesUseTheProjectGrammar) {
  EXPECT_EQ(*scenario::ParseSize("1024"), 1024u);
  EXPECT_EQ(*scenario::ParseSize("64KiB"), 65536u);
  EXPECT_EQ(*scenario::ParseSize("64K"), 65536u);
  EXPECT_EQ(*scenario::ParseSize("1MiB"), 1048576u);
  EXPECT_EQ(*scenario::ParseSize("1 MB"), 1000000u);
  EXPECT_FALSE(scenario::ParseSize("-1").ok());
  EXPECT_FALSE(scenario::ParseSize("MiB").ok());
}

TEST(ScenarioModelTest, SizesAboveOneTebibyteAreTooLarge) {
  EXPECT_EQ(*scenario::ParseSize("1024GiB"), uint64_t{1} << 40);
  EXPECT_THAT(scenario::ParseSize("1025GiB").status().message(),
              HasSubstr("\"1025GiB\" is too large"));
  EXPECT_FALSE(scenario::ParseSize("99999999GiB").ok());
}

TEST(ScenarioModelTest, PatternsDependOnPositionOnly) {
  std::string whole(100, '\0'), parts(100, '\0');
  ASSERT_TRUE(
      scenario::FillPatternBytes("random", 7, 0, whole.data(), 100).ok());
  ASSERT_TRUE(
      scenario::FillPatternBytes("random", 7, 0, parts.data(), 13).ok());
  ASSERT_TRUE(
      scenario::FillPatternBytes("random", 7, 13, parts.data() + 13, 87).ok());
  EXPECT_EQ(whole, parts);
  std::string sequence(300, '\0');
  ASSERT_TRUE(
      scenario::FillPatternBytes("sequence", 0, 0, sequence.data(), 300).ok());
  EXPECT_EQ(static_cast<unsigned char>(sequence[255]), 255);
  EXPECT_EQ(sequence[256], '\0');
  EXPECT_FALSE(scenario::FillPatternBytes("noise", 0, 0, whole.data(), 1).ok());
}

}  // namespace
}  // namespace sockagent
