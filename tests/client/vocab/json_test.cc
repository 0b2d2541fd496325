#include "client/vocab/json.h"

#include <string>

#include "client/address.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent::vocab {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(JsonTest, StringsEscapeControlsQuotesAndInvalidUtf8) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(JsonString("h\xc3\xa9"), "\"h\xc3\xa9\"");
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");
}

TEST(JsonTest, Utf8ValidityRejectsTruncatedOverlongAndSurrogates) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
}

TEST(JsonTest, ObjectCarriesDataAsBase64AndAsTextWhenUtf8) {
  EXPECT_EQ(
      JsonObject().AddInt("n", 2).AddBool("eof", false).AddData("hi").Build(),
      "{\"n\":2,\"eof\":false,\"data_base64\":\"aGk=\",\"text\":\"hi\"}");
  EXPECT_EQ(JsonObject().AddData("\xff").Build(), "{\"data_base64\":\"/w==\"}");
}

TEST(JsonTest, MessageUsesTheTextWordsNumbersAndSeconds) {
  v1::SocketInfo info;
  info.set_handle("h");
  info.set_family(v1::FAMILY_INET6);
  info.set_type(v1::SOCKET_TYPE_DGRAM);
  info.set_state(v1::SOCKET_STATE_SHUT_DOWN);
  info.set_bytes_sent(1ULL << 40);
  *info.mutable_local() = *ParseAddress("[::1]:53");
  info.mutable_timeout()->set_seconds(2);
  info.mutable_timeout()->set_nanos(500000000);
  const std::string json = MessageJson(info);
  EXPECT_THAT(json, HasSubstr("\"family\":\"inet6\""));
  EXPECT_THAT(json, HasSubstr("\"type\":\"dgram\""));
  EXPECT_THAT(json, HasSubstr("\"state\":\"shut_down\""));
  EXPECT_THAT(json, HasSubstr("\"bytes_sent\":1099511627776"));
  EXPECT_THAT(json, HasSubstr("\"local\":\"[::1]:53\""));
  EXPECT_THAT(json, HasSubstr("\"timeout_s\":2.5"));
  EXPECT_THAT(json, Not(HasSubstr("\"peer\"")));
}

}  // namespace
}  // namespace sockagent::vocab
