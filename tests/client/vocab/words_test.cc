#include "client/vocab/words.h"

#include "gtest/gtest.h"

namespace sockagent::vocab {
namespace {

TEST(WordsTest, FamiliesParseCaseInsensitively) {
  EXPECT_EQ(*ParseFamily("inet"), v1::FAMILY_INET);
  EXPECT_EQ(*ParseFamily("INET6"), v1::FAMILY_INET6);
  EXPECT_EQ(*ParseFamily("unix"), v1::FAMILY_UNIX);
  EXPECT_FALSE(ParseFamily("ipx").ok());
  EXPECT_EQ(FamilyName(v1::FAMILY_INET6), "inet6");
}

TEST(WordsTest, SocketTypesParseTheirWordsOnly) {
  EXPECT_EQ(*ParseSocketType("stream"), v1::SOCKET_TYPE_STREAM);
  EXPECT_EQ(*ParseSocketType("dgram"), v1::SOCKET_TYPE_DGRAM);
  EXPECT_EQ(*ParseSocketType("seqpacket"), v1::SOCKET_TYPE_SEQPACKET);
  EXPECT_FALSE(ParseSocketType("raw").ok());
  EXPECT_EQ(SocketTypeName(v1::SOCKET_TYPE_DGRAM), "dgram");
}

TEST(WordsTest, ShutdownHowsParseRdWrAndRdwr) {
  EXPECT_EQ(*ParseShutdownHow("rd"), v1::SHUTDOWN_HOW_READ);
  EXPECT_EQ(*ParseShutdownHow("wr"), v1::SHUTDOWN_HOW_WRITE);
  EXPECT_EQ(*ParseShutdownHow("rdwr"), v1::SHUTDOWN_HOW_BOTH);
  EXPECT_FALSE(ParseShutdownHow("sideways").ok());
}

TEST(WordsTest, TrafficPatternsParseCaseInsensitively) {
  EXPECT_EQ(*ParseTrafficPattern("sequence"), v1::TRAFFIC_PATTERN_SEQUENCE);
  EXPECT_EQ(*ParseTrafficPattern("RANDOM"), v1::TRAFFIC_PATTERN_RANDOM);
  EXPECT_EQ(*ParseTrafficPattern("zero"), v1::TRAFFIC_PATTERN_ZERO);
  EXPECT_FALSE(ParseTrafficPattern("ones").ok());
}

TEST(WordsTest, StatesAndEndsHaveLowerCaseNames) {
  EXPECT_EQ(SocketStateName(v1::SOCKET_STATE_SHUT_DOWN), "shut_down");
  EXPECT_EQ(SocketStateName(v1::SOCKET_STATE_LISTENING), "listening");
  EXPECT_EQ(TrafficEndName(v1::TRAFFIC_END_FAULT), "fault");
  EXPECT_EQ(TrafficEndName(v1::TRAFFIC_END_UNSPECIFIED), "unspecified");
}

}  // namespace
}  // namespace sockagent::vocab
