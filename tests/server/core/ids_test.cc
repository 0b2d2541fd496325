// Tests for server/core/ids.h: session ids and socket handles.

#include "server/core/ids.h"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

bool AllLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        !(c >= 'a' && c <= 'f')) {
      return false;
    }
  }
  return true;
}

TEST(IdIssuerTest, FixedIncarnationIsSixteenHexDigits) {
  IdIssuer ids(0x0123456789abcdefULL);
  EXPECT_EQ(ids.incarnation(), "0123456789abcdef");

  IdIssuer small(0x2a);
  EXPECT_EQ(small.incarnation(), "000000000000002a");
}

TEST(IdIssuerTest, RandomIncarnationsDifferBetweenRuns) {
  IdIssuer first;
  IdIssuer second;
  EXPECT_EQ(first.incarnation().size(), 16u);
  EXPECT_TRUE(AllLowerHex(first.incarnation())) << first.incarnation();
  EXPECT_NE(first.incarnation(), second.incarnation());
}

TEST(IdIssuerTest, IdsAreAgentRunSequenceRandomAndCheckDigits) {
  IdIssuer ids(0xfeedfacecafebeefULL, "host\nmachine\n127.0.0.1:7700");
  EXPECT_EQ(ids.agent_id().size(), 8u);
  for (int i = 0; i < 100; ++i) {
    const std::string id = ids.Next();
    std::vector<std::string> parts = absl::StrSplit(id, '.');
    ASSERT_EQ(parts.size(), 5u) << id;
    EXPECT_EQ(parts[0], ids.agent_id()) << id;
    EXPECT_EQ(parts[1], "feedface") << id;
    EXPECT_FALSE(parts[2].empty()) << id;
    EXPECT_TRUE(AllLowerHex(parts[2])) << id;
    EXPECT_EQ(parts[3].size(), 16u) << id;
    EXPECT_TRUE(AllLowerHex(parts[3])) << id;
    EXPECT_EQ(parts[4].size(), 4u) << id;
    EXPECT_TRUE(AllLowerHex(parts[4])) << id;
    EXPECT_TRUE(ids.Check(id, "handle").ok()) << ids.Check(id, "handle");
  }
}

TEST(IdIssuerTest, TheAgentIdStaysAcrossRunsAndDiffersBetweenAgents) {
  EXPECT_EQ(IdIssuer(1, "a:7700").agent_id(), IdIssuer(2, "a:7700").agent_id());
  EXPECT_NE(IdIssuer(1, "a:7700").agent_id(), IdIssuer(1, "b:7700").agent_id());
  EXPECT_NE(IdIssuer(1, "a:7700").agent_id(), IdIssuer(1, "a:7701").agent_id());
}

TEST(IdIssuerTest, IdsAreDistinctAndCarryIncreasingSequences) {
  IdIssuer ids(1);
  std::set<std::string> seen;
  std::set<std::string> random_parts;
  for (int i = 1; i <= 1000; ++i) {
    const std::string id = ids.Next();
    EXPECT_TRUE(seen.insert(id).second) << "duplicate " << id;
    std::vector<std::string> parts = absl::StrSplit(id, '.');
    ASSERT_EQ(parts.size(), 5u);
    EXPECT_EQ(std::stoul(parts[2], nullptr, 16), static_cast<unsigned>(i));
    random_parts.insert(parts[3]);
  }
  // The random part is random, not derived from the sequence alone.
  EXPECT_EQ(random_parts.size(), 1000u);
}

TEST(IdIssuerTest, IdsIssuedFromManyThreadsAreDistinct) {
  IdIssuer ids(7);
  absl::Mutex mu;
  std::set<std::string> seen;
  int duplicates = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 500; ++i) mine.push_back(ids.Next());
      absl::MutexLock lock(&mu);
      for (std::string& id : mine) {
        if (!seen.insert(std::move(id)).second) ++duplicates;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(seen.size(), 4000u);
}

TEST(IdIssuerTest, CheckRejectsAnEmptyIdNamingTheField) {
  IdIssuer ids(1);
  absl::Status status = ids.Check("", "session");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("session: "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("required"));
}

TEST(IdIssuerTest, CheckRejectsMalformedIdsNamingTheField) {
  IdIssuer ids(0x1111111122222222ULL);
  const std::string good = ids.Next();
  ASSERT_TRUE(ids.Check(good, "handle").ok());
  for (const std::string& bad : std::vector<std::string>{
           "x",
           "11111111",
           "11111111.1",
           "11111111.1.0123456789abcdef.0",                   // four parts
           "1111111.1.0123456789abcdef",                      // short tag
           "111111111.1.0123456789abcdef",                    // long tag
           "11111111..0123456789abcdef",                      // empty sequence
           "11111111.1.0123456789abcde",                      // short random
           "11111111.1.0123456789abcdef0",                    // long random
           "11111111.12345678901234567.0123456789abcdef",     // long sequence
           "1111111g.1.0123456789abcdef",                     // not hex
           "11111111.1.0123456789abcdeg",                     // not hex
           "11111111.-1.0123456789abcdef",                    // sign
           " 11111111.1.0123456789abcdef",                    // space
           std::string("11111111.1\0.0123456789abcdef", 27),  // NUL
           std::string(10000, 'a'),
       }) {
    absl::Status status = ids.Check(bad, "handle");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << "'" << bad << "': " << status;
    EXPECT_THAT(std::string(status.message()), StartsWith("handle: ")) << bad;
  }
}

TEST(IdIssuerTest, MalformedIdIsQuotedShortAndEscapedInTheMessage) {
  IdIssuer ids(1);
  absl::Status status =
      ids.Check(std::string("\x01\n") + std::string(500, 'z'), "session");
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(status.message().size(), 300u) << status.message();
  EXPECT_THAT(std::string(status.message()), HasSubstr("\\x01\\n"))
      << status.message();
  EXPECT_EQ(status.message().find('\n'), absl::string_view::npos);
}

TEST(IdIssuerTest, EveryMistypedCharacterFailsTheCheckDigits) {
  IdIssuer ids(0x1111111122222222ULL, "agent");
  const std::string good = ids.Next();
  int checked = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    if (good[i] == '.') continue;
    std::string typo = good;
    typo[i] = good[i] == '7' ? '8' : '7';  // another hex digit
    absl::Status status = ids.Check(typo, "session");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << typo << ": " << status;
    EXPECT_THAT(std::string(status.message()), StartsWith("session: "));
    EXPECT_THAT(std::string(status.message()), HasSubstr("check digits"));
    EXPECT_THAT(std::string(status.message()),
                ::testing::Not(HasSubstr("restarted")));
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(good.size()) - 4);
}

TEST(IdIssuerTest, IdOfAnotherAgentSaysSoAndNotThatTheAgentRestarted) {
  IdIssuer other(0x1111111122222222ULL, "other-host\n\n10.0.0.1:7700");
  IdIssuer here(0x3333333344444444ULL, "this-host\n\n127.0.0.1:7700");
  const std::string foreign = other.Next();

  absl::Status status = here.Check(foreign, "session");

  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), StartsWith("session: "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("another agent"));
  EXPECT_THAT(std::string(status.message()), HasSubstr(other.agent_id()));
  EXPECT_THAT(std::string(status.message()),
              ::testing::Not(HasSubstr("restarted")));
}

TEST(IdIssuerTest, IdOfTheOlderFormatSaysAnOlderAgentIssuedIt) {
  IdIssuer ids(0x1111111122222222ULL);
  absl::Status status = ids.Check("11111111.1a.0123456789abcdef", "session");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("older sockagentd"));
}

TEST(IdIssuerTest, IdOfAnotherIncarnationIsNotFoundSayingTheAgentRestarted) {
  IdIssuer before(0x1111111122222222ULL);
  IdIssuer now(0x3333333344444444ULL);
  const std::string old_id = before.Next();

  absl::Status status = now.Check(old_id, "handle");

  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), StartsWith("handle: "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("restarted"));
  EXPECT_THAT(std::string(status.message()), HasSubstr(old_id));
  // The issuing run still accepts it.
  EXPECT_TRUE(before.Check(old_id, "handle").ok());
}

TEST(IdIssuerTest, WellFormedIdOfThisRunPassesCheckEvenIfNeverIssued) {
  // Check() validates the form, the agent and the run; whether the id names
  // a live session or socket is the tables' business (NOT_FOUND there).
  IdIssuer ids(0xabcdef0012345678ULL, "key");
  IdIssuer twin(0xabcdef0012345678ULL, "key");
  EXPECT_TRUE(ids.Check(twin.Next(), "handle").ok());
}

}  // namespace
}  // namespace sockagent
