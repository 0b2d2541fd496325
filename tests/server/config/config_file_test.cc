// sockagentd's configuration file: text format and JSON, errors that name
// the file, the line and the field (with a did-you-mean), and the bridge to
// the command line (ConfigAsFlags).

#include "server/config/config_file.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockagent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

TEST(ConfigFileTest, TextFormatSetsTheNamedFields) {
  absl::StatusOr<v1::AgentConfig> config = ParseAgentConfig(
      "listen: \"127.0.0.1:7701\"\n# a comment\nmax_sessions: 12\n"
      "require_client_cert: true\n",
      "agent.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen(), "127.0.0.1:7701");
  EXPECT_EQ(config->max_sessions(), 12u);
  EXPECT_TRUE(config->require_client_cert());
  EXPECT_FALSE(config->has_session_ttl());
}

TEST(ConfigFileTest, JsonIsRecognisedByItsOpeningBrace) {
  absl::StatusOr<v1::AgentConfig> config = ParseAgentConfig(
      "  \n{\"listen\": \"[::1]:7702\", \"session_ttl\": \"45s\"}", "a.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen(), "[::1]:7702");
  EXPECT_EQ(config->session_ttl(), "45s");
}

TEST(ConfigFileTest, AnUnknownTextFieldNamesFileLineAndTheClosestField) {
  absl::StatusOr<v1::AgentConfig> config = ParseAgentConfig(
      "listen: \"127.0.0.1:0\"\nsesion_ttl: \"5s\"\n", "x.conf");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_THAT(message, StartsWith("x.conf:2:"));
  EXPECT_THAT(message, HasSubstr("unknown field \"sesion_ttl\""));
  EXPECT_THAT(message, HasSubstr("did you mean \"session_ttl\""));
}

TEST(ConfigFileTest, AnUnknownJsonFieldNamesItsLineAndTheClosestField) {
  absl::StatusOr<v1::AgentConfig> config = ParseAgentConfig(
      "{\n  \"listen\": \"127.0.0.1:0\",\n  \"max_sesions\": 3\n}\n", "c.json");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_THAT(message, StartsWith("c.json:3: "));
  EXPECT_THAT(message, HasSubstr("did you mean \"max_sessions\""));
}

TEST(ConfigFileTest, AFieldFarFromEveryKnownOneGetsNoSuggestion) {
  absl::StatusOr<v1::AgentConfig> config =
      ParseAgentConfig("completely_unrelated: 1\n", "");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_THAT(message, StartsWith("config:1:"));
  EXPECT_THAT(message, Not(HasSubstr("did you mean")));
}

TEST(ConfigFileTest, AValueOfTheWrongTypeIsAnErrorWithItsPosition) {
  absl::StatusOr<v1::AgentConfig> config =
      ParseAgentConfig("max_sessions: \"many\"\n", "t.conf");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), StartsWith("t.conf:1:"));
}

TEST(ConfigFileTest, FieldLineFindsTextAndJsonSpellingsOrZero) {
  const std::string text = "listen: \"a\"\n  max_sessions : 3\n";
  EXPECT_EQ(ConfigFieldLine(text, "listen"), 1);
  EXPECT_EQ(ConfigFieldLine(text, "max_sessions"), 2);
  EXPECT_EQ(ConfigFieldLine(text, "max_session"), 0);
  EXPECT_EQ(ConfigFieldLine("{\n\"policy\": \"p\"}", "policy"), 2);
  EXPECT_EQ(ConfigFieldLine("listen: 1", "port_file"), 0);
}

TEST(ConfigFileTest, LoadingAMissingFileIsNotFoundNamingIt) {
  absl::StatusOr<v1::AgentConfig> config =
      LoadAgentConfig("/nonexistent/sockagentd.textproto");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("/nonexistent/sockagentd.textproto"));
}

TEST(ConfigFileTest, LoadingAFileParsesItUnderItsName) {
  char path[] = "/tmp/config_file_test.XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << "drain_timeout: \"7s\"\nbogus: 1\n";
  }
  absl::StatusOr<v1::AgentConfig> config = LoadAgentConfig(path);
  ::unlink(path);
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              StartsWith(std::string(path) + ":2:"));
}

TEST(ConfigFileTest, SetFieldsBecomeFlagsInFieldOrderWithDashes) {
  v1::AgentConfig config;
  config.set_max_session_ttl("10s");
  config.set_listen("127.0.0.1:7700");
  config.set_max_sessions(4);
  config.set_require_client_cert(false);
  config.set_fd_reserve(-1);
  EXPECT_THAT(
      ConfigAsFlags(config),
      ElementsAre(Pair("listen", "127.0.0.1:7700"),
                  Pair("max-session-ttl", "10s"), Pair("max-sessions", "4"),
                  Pair("require-client-cert", "false"),
                  Pair("fd-reserve", "-1")));
}

TEST(ConfigFileTest, AnEmptyConfigGivesNoFlags) {
  EXPECT_THAT(ConfigAsFlags(v1::AgentConfig()), IsEmpty());
}

}  // namespace
}  // namespace sockagent
