// sockagentd's log output on stderr: JSON lines that parse back to the
// message whatever it holds, the text format, the level filter, and errors
// naming the field for an unknown format or level.

#include "server/config/logging.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace sockagent {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::SizeIs;

// Runs `log` with stderr redirected to a file; returns the lines written.
template <typename Log>
std::vector<std::string> StderrLinesOf(Log log) {
  char path[] = "/tmp/logging_test.XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  log();
  spdlog::default_logger()->flush();
  ::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(path);
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (!line.empty()) lines.emplace_back(line);
  }
  return lines;
}

TEST(LoggingTest, JsonLinesParseBackToTheMessageWhateverItHolds) {
  ASSERT_TRUE(SetUpLogging("json", "info").ok());
  const std::string message =
      "quote \" backslash \\ newline \n tab \t bell \x07 unicode \xc3\xa9";
  const std::vector<std::string> lines =
      StderrLinesOf([&] { spdlog::info("{}", message); });
  ASSERT_THAT(lines, SizeIs(1));
  const nlohmann::json line = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(line.at("msg").get<std::string>(), message);
  EXPECT_EQ(line.at("level").get<std::string>(), "info");
  EXPECT_EQ(line.at("logger").get<std::string>(), "sockagentd");
  EXPECT_THAT(line.at("time").get<std::string>(),
              ContainsRegex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+"));
}

TEST(LoggingTest, TextLinesHoldTimeLevelAndMessage) {
  ASSERT_TRUE(SetUpLogging("text", "info").ok());
  const std::vector<std::string> lines =
      StderrLinesOf([] { spdlog::warn("disk {} is full", "sda"); });
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.+-]+ "
                                     ".*warning.* disk sda is full"));
}

TEST(LoggingTest, MessagesBelowTheLevelAreNotWritten) {
  ASSERT_TRUE(SetUpLogging("json", "warn").ok());
  const std::vector<std::string> lines = StderrLinesOf([] {
    spdlog::debug("dropped debug");
    spdlog::info("dropped info");
    spdlog::error("kept error");
  });
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], HasSubstr("kept error"));
}

TEST(LoggingTest, SetLogLevelChangesTheFilterOfTheInstalledLogger) {
  ASSERT_TRUE(SetUpLogging("json", "error").ok());
  ASSERT_TRUE(SetLogLevel("debug").ok());
  const std::vector<std::string> lines =
      StderrLinesOf([] { spdlog::debug("now visible"); });
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], HasSubstr("now visible"));
}

TEST(LoggingTest, AnUnknownFormatIsInvalidArgumentNamingTheField) {
  const absl::Status status = SetUpLogging("xml", "info");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("log_format: 'xml'"));
}

TEST(LoggingTest, AnUnknownLevelIsInvalidArgumentNamingTheField) {
  const absl::Status status = SetLogLevel("loud");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("log_level: 'loud'"));
  EXPECT_FALSE(IsLogLevel("loud"));
  EXPECT_FALSE(IsLogLevel("INFO"));
  for (const char* level : {"trace", "debug", "info", "warn", "error"}) {
    EXPECT_TRUE(IsLogLevel(level)) << level;
  }
}

}  // namespace
}  // namespace sockagent
