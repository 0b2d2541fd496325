#include "client/cli/help_text.h"

#include "gtest/gtest.h"

namespace sockagent::cli {
namespace {

TEST(HelpTextTest, SummaryIsTheFirstSentence) {
  EXPECT_EQ(Summary("Close a socket.\n\nExample:\n  sockctl close $H"),
            "Close a socket");
  EXPECT_EQ(Summary("Bind it. Then more."), "Bind it");
}

TEST(HelpTextTest, SummaryIgnoresDotsInsideParenthesesAndWords) {
  EXPECT_EQ(Summary("Sessions on the agent (as `session list`. ok) x. y"),
            "Sessions on the agent (as `session list`. ok) x");
  EXPECT_EQ(Summary("Use 1.5s or 64.0K now. Later"), "Use 1.5s or 64.0K now");
}

TEST(HelpTextTest, SummaryStopsAtTheFirstLine) {
  EXPECT_EQ(Summary("No dot here\nsecond line."), "No dot here");
  EXPECT_EQ(Summary("no end at all"), "no end at all");
}

TEST(HelpTextTest, ProseIsWrappedAt78Columns) {
  std::string line;
  for (int i = 0; i < 30; ++i) line += "word ";
  const std::string wrapped = Wrap(line);
  size_t start = 0;
  int lines = 0;
  while (start < wrapped.size()) {
    const size_t end = wrapped.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LE(end - start, 78u);
    start = end + 1;
    ++lines;
  }
  EXPECT_EQ(lines, 2);
}

TEST(HelpTextTest, ExampleLinesAndBlankLinesAreKept) {
  const std::string example =
      "  sockctl traffic source $C --bytes 64M --rate 1M --shutdown-write "
      "--pattern random --seed 7";
  EXPECT_EQ(Wrap("Text.\n\nExample:\n" + example),
            "Text.\n\nExample:\n" + example + "\n");
}

}  // namespace
}  // namespace sockagent::cli
