#include "client/cli/did_you_mean.h"

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockagent::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A small app shaped like sockctl's: global options with and without a
// value, a command family with subcommands, and leaves with positionals.
class DidYouMeanTest : public ::testing::Test {
 protected:
  DidYouMeanTest() : app_("test", "sockctl") {
    app_.add_option("--agent", agent_, "agent");
    app_.add_flag("--json", json_, "json");
    CLI::App* session = app_.add_subcommand("session", "sessions");
    session->add_subcommand("open", "open one");
    session->add_subcommand("close", "close one");
    session->add_subcommand("keepalive", "renew");
    app_.add_subcommand("socket", "create")
        ->add_option("--family", family_, "family");
    app_.add_subcommand("send", "send")->add_option("DATA", data_, "data");
    app_.add_subcommand("sendto", "send to");
  }

  std::string Unknown(std::vector<std::string> words) {
    words.insert(words.begin(), "sockctl");
    std::vector<char*> args;
    for (std::string& word : words) args.push_back(word.data());
    return UnknownSubcommand(app_, args);
  }

  CLI::App app_;
  std::string agent_;
  bool json_ = false;
  std::string family_;
  std::string data_;
};

TEST_F(DidYouMeanTest, KnownCommandsAreNotReported) {
  EXPECT_EQ(Unknown({"session", "open"}), "");
  EXPECT_EQ(Unknown({"socket", "--family", "inet"}), "");
}

TEST_F(DidYouMeanTest, MisspelledCommandSuggestsTheCloseNames) {
  EXPECT_EQ(Unknown({"sokcet"}),
            "unknown subcommand 'sokcet' (did you mean socket?); `sockctl "
            "--help` lists them");
}

TEST_F(DidYouMeanTest, AWordInsideANameSuggestsEveryNameHoldingIt) {
  EXPECT_THAT(Unknown({"sen"}), HasSubstr("(did you mean send, sendto?)"));
}

TEST_F(DidYouMeanTest, UnknownSubcommandOfAFamilyNamesTheFamily) {
  EXPECT_EQ(Unknown({"session", "opne"}),
            "unknown subcommand 'opne' of session (did you mean open?); "
            "`sockctl session --help` lists them");
}

TEST_F(DidYouMeanTest, AWordFarFromEveryNameHasNoSuggestion) {
  const std::string message = Unknown({"xyzzyq"});
  EXPECT_THAT(message, HasSubstr("unknown subcommand 'xyzzyq'"));
  EXPECT_THAT(message, Not(HasSubstr("did you mean")));
}

TEST_F(DidYouMeanTest, OptionValuesAreSteppedOver) {
  // "socket" is --agent's value, not a command; "sokcet" is the command.
  EXPECT_THAT(Unknown({"--agent", "socket", "sokcet"}),
              HasSubstr("unknown subcommand 'sokcet'"));
  EXPECT_THAT(Unknown({"--agent=x", "--json", "sokcet"}),
              HasSubstr("unknown subcommand 'sokcet'"));
}

TEST_F(DidYouMeanTest, ALeafsPositionalIsNotACommand) {
  EXPECT_EQ(Unknown({"send", "hello"}), "");
}

}  // namespace
}  // namespace sockagent::cli
