#include "client/vocab/socket_options.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace sockagent::vocab {
namespace {

TEST(SocketOptionsTest, NamesAreCaseAndPrefixInsensitive) {
  EXPECT_EQ(ParseOptionName("SO_REUSEADDR")->option, v1::OPT_SO_REUSEADDR);
  EXPECT_EQ(ParseOptionName("tcp_nodelay")->option, v1::OPT_TCP_NODELAY);
  EXPECT_EQ(ParseOptionName("OPT_IP_TTL")->kind, OptionKind::kInt);
  EXPECT_EQ(ParseOptionName("SO_LINGER")->kind, OptionKind::kLinger);
  EXPECT_FALSE(ParseOptionName("SO_ERROR")->settable);
  EXPECT_FALSE(ParseOptionName("IP_ADD_MEMBERSHIP")->gettable);
  EXPECT_EQ(ParseOptionName("SO_NOPE").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SocketOptionsTest, BoolValuesAreOnOffOrDigits) {
  EXPECT_TRUE(ParseOptionValue(OptionKind::kBool, "on")->bool_value());
  EXPECT_TRUE(ParseOptionValue(OptionKind::kBool, "1")->bool_value());
  EXPECT_FALSE(ParseOptionValue(OptionKind::kBool, "off")->bool_value());
  EXPECT_FALSE(ParseOptionValue(OptionKind::kBool, "maybe").ok());
}

TEST(SocketOptionsTest, IntValuesAreDecimal) {
  EXPECT_EQ(ParseOptionValue(OptionKind::kInt, "64")->int_value(), 64);
  EXPECT_FALSE(ParseOptionValue(OptionKind::kInt, "6x").ok());
}

TEST(SocketOptionsTest, LingerValuesAreOnSecondsOrOff) {
  absl::StatusOr<v1::OptionValue> on =
      ParseOptionValue(OptionKind::kLinger, "on:5");
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE(on->linger().enabled());
  EXPECT_EQ(on->linger().seconds(), 5);
  EXPECT_FALSE(
      ParseOptionValue(OptionKind::kLinger, "off")->linger().enabled());
  EXPECT_FALSE(ParseOptionValue(OptionKind::kLinger, "on:-1").ok());
  EXPECT_FALSE(ParseOptionValue(OptionKind::kLinger, "on:5:6").ok());
  EXPECT_FALSE(ParseOptionValue(OptionKind::kLinger, "5").ok());
}

TEST(SocketOptionsTest, MembershipValuesAreGroupAtInterface) {
  absl::StatusOr<v1::OptionValue> m =
      ParseOptionValue(OptionKind::kMembership, "239.1.2.3@127.0.0.1");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->membership().group(), "239.1.2.3");
  EXPECT_EQ(m->membership().interface(), "127.0.0.1");
  EXPECT_FALSE(ParseOptionValue(OptionKind::kMembership, "").ok());
}

TEST(SocketOptionsTest, FormattedValuesParseBackToTheSameText) {
  for (auto [kind, text] : std::vector<std::pair<OptionKind, std::string>>{
           {OptionKind::kBool, "on"},
           {OptionKind::kInt, "-3"},
           {OptionKind::kLinger, "on:5"},
           {OptionKind::kMembership, "239.1.2.3@127.0.0.1"}}) {
    EXPECT_EQ(FormatOptionValue(*ParseOptionValue(kind, text)), text);
  }
  v1::OptionValue raw;
  raw.set_raw(std::string("\x01\x00", 2));
  EXPECT_EQ(FormatOptionValue(raw), "0x0100");
}

}  // namespace
}  // namespace sockagent::vocab
