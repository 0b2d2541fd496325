#include "client/cli/cli_util.h"

#include <netdb.h>

#include <cerrno>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "client/address.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"

namespace sockagent::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ExitCodeTest, OkErrnoAndPlainErrors) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), kExitOk);
  EXPECT_EQ(ExitCodeFor(OsError(ECONNREFUSED, "connect")), kExitSocket);
  EXPECT_EQ(ExitCodeFor(absl::NotFoundError("unknown handle")), kExitRpc);
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("unreachable")), kExitRpc);
}

TEST(DescribeErrorTest, ErrnoErrorReadsLikeOsError) {
  EXPECT_EQ(DescribeError("connect", OsError(ECONNREFUSED, "connect")),
            "connect: Connection refused (ECONNREFUSED)");
}

TEST(DescribeErrorTest, ErrnoWithoutASyscallKeepsTheAgentsMessage) {
  EXPECT_EQ(
      DescribeError(
          "recv", OsErrorWithCode(absl::StatusCode::kFailedPrecondition, EBADF,
                                  "", "handle: the socket is closed")),
      "handle: the socket is closed (EBADF)");
}

TEST(DescribeErrorTest, PlainErrorNamesContextAndCode) {
  EXPECT_EQ(DescribeError("recv", absl::NotFoundError("no such handle")),
            "recv: no such handle (NOT_FOUND)");
}

TEST(ErrorJsonTest, CarriesErrnoFields) {
  EXPECT_EQ(ErrorJson(OsError(ECONNREFUSED, "connect")),
            "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"connect: "
            "Connection refused (ECONNREFUSED)\",\"errno\":111,\"errno_name\":"
            "\"ECONNREFUSED\",\"syscall\":\"connect\"}}");
}

TEST(ErrorJsonTest, OmitsErrnoFieldsWithoutDetail) {
  EXPECT_EQ(ErrorJson(absl::NotFoundError("x")),
            "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"x\"}}");
}

TEST(ParseTimeoutTest, Forms) {
  EXPECT_EQ(*ParseTimeout("none"), std::nullopt);
  EXPECT_EQ(*ParseTimeout("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseTimeout("2.5s"), absl::Milliseconds(2500));
  EXPECT_EQ(*ParseTimeout("2.5"), absl::Milliseconds(2500));
  EXPECT_EQ(*ParseTimeout("100ms"), absl::Milliseconds(100));
  EXPECT_FALSE(ParseTimeout("-1s").ok());
  EXPECT_FALSE(ParseTimeout("soon").ok());
  EXPECT_FALSE(ParseTimeout("inf").ok());
  EXPECT_FALSE(ParseTimeout("").ok());
}

TEST(ParseDurationArgTest, Forms) {
  EXPECT_EQ(*ParseDurationArg("10m"), absl::Minutes(10));
  EXPECT_EQ(*ParseDurationArg("30"), absl::Seconds(30));
  EXPECT_FALSE(ParseDurationArg("ten minutes").ok());
  EXPECT_FALSE(ParseDurationArg("nan").ok());
}

TEST(ParseEnumsTest, FamilyTypeShutdown) {
  EXPECT_EQ(*ParseFamily("inet"), v1::FAMILY_INET);
  EXPECT_EQ(*ParseFamily("INET6"), v1::FAMILY_INET6);
  EXPECT_EQ(*ParseFamily("unix"), v1::FAMILY_UNIX);
  EXPECT_FALSE(ParseFamily("ipx").ok());
  EXPECT_EQ(*ParseSocketType("stream"), v1::SOCKET_TYPE_STREAM);
  EXPECT_EQ(*ParseSocketType("dgram"), v1::SOCKET_TYPE_DGRAM);
  EXPECT_EQ(*ParseSocketType("seqpacket"), v1::SOCKET_TYPE_SEQPACKET);
  EXPECT_FALSE(ParseSocketType("raw").ok());
  EXPECT_EQ(*ParseShutdownHow("rd"), v1::SHUTDOWN_HOW_READ);
  EXPECT_EQ(*ParseShutdownHow("wr"), v1::SHUTDOWN_HOW_WRITE);
  EXPECT_EQ(*ParseShutdownHow("rdwr"), v1::SHUTDOWN_HOW_BOTH);
  EXPECT_FALSE(ParseShutdownHow("sideways").ok());
}

TEST(ParseOptionNameTest, CaseAndPrefixInsensitive) {
  EXPECT_EQ(ParseOptionName("SO_REUSEADDR")->option, v1::OPT_SO_REUSEADDR);
  EXPECT_EQ(ParseOptionName("tcp_nodelay")->option, v1::OPT_TCP_NODELAY);
  EXPECT_EQ(ParseOptionName("OPT_IP_TTL")->kind, OptionKind::kInt);
  EXPECT_EQ(ParseOptionName("SO_LINGER")->kind, OptionKind::kLinger);
  EXPECT_FALSE(ParseOptionName("SO_ERROR")->settable);
  EXPECT_FALSE(ParseOptionName("IP_ADD_MEMBERSHIP")->gettable);
  EXPECT_EQ(ParseOptionName("SO_NOPE").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseOptionValueTest, Bool) {
  EXPECT_TRUE(ParseOptionValue(OptionKind::kBool, "on")->bool_value());
  EXPECT_TRUE(ParseOptionValue(OptionKind::kBool, "1")->bool_value());
  EXPECT_FALSE(ParseOptionValue(OptionKind::kBool, "off")->bool_value());
  EXPECT_FALSE(ParseOptionValue(OptionKind::kBool, "maybe").ok());
}

TEST(ParseOptionValueTest, Int) {
  EXPECT_EQ(ParseOptionValue(OptionKind::kInt, "64")->int_value(), 64);
  EXPECT_FALSE(ParseOptionValue(OptionKind::kInt, "6x").ok());
}

TEST(ParseOptionValueTest, Linger) {
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

TEST(ParseOptionValueTest, Membership) {
  absl::StatusOr<v1::OptionValue> m =
      ParseOptionValue(OptionKind::kMembership, "239.1.2.3@127.0.0.1");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->membership().group(), "239.1.2.3");
  EXPECT_EQ(m->membership().interface(), "127.0.0.1");
  EXPECT_FALSE(ParseOptionValue(OptionKind::kMembership, "").ok());
}

TEST(FormatOptionValueTest, RoundTrips) {
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

TEST(JsonTest, EscapesControlQuotesAndInvalidUtf8) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(JsonString("h\xc3\xa9"), "\"h\xc3\xa9\"");
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");
}

TEST(JsonTest, Utf8Validity) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
}

TEST(JsonTest, ObjectWithData) {
  EXPECT_EQ(
      JsonObject().AddInt("n", 2).AddBool("eof", false).AddData("hi").Build(),
      "{\"n\":2,\"eof\":false,\"data_base64\":\"aGk=\",\"text\":\"hi\"}");
  EXPECT_EQ(JsonObject().AddData("\xff").Build(), "{\"data_base64\":\"/w==\"}");
}

TEST(TrafficArgsTest, ByteCountsUseTheProjectSizeGrammar) {
  EXPECT_EQ(*ParseByteCount("1000", "--bytes"), 1000u);
  EXPECT_EQ(*ParseByteCount("64K", "--bytes"), 65536u);
  EXPECT_EQ(*ParseByteCount("10m", "--bytes"), 10u << 20);
  EXPECT_EQ(*ParseByteCount("1GiB", "--bytes"), 1u << 30);
  EXPECT_EQ(*ParseByteCount("1MB", "--bytes"), 1000000u);
  EXPECT_EQ(*ParseByteCount("0", "--rate"), 0u);
  for (const char* bad :
       {"", "K", "-1", "1.5M", "12X", "99999999999999999999"}) {
    absl::StatusOr<uint64_t> parsed = ParseByteCount(bad, "--rate");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(absl::StartsWith(parsed.status().message(), "--rate"))
        << parsed.status();
  }
}

TEST(TrafficArgsTest, Patterns) {
  EXPECT_EQ(*ParseTrafficPattern("sequence"), v1::TRAFFIC_PATTERN_SEQUENCE);
  EXPECT_EQ(*ParseTrafficPattern("RANDOM"), v1::TRAFFIC_PATTERN_RANDOM);
  EXPECT_EQ(*ParseTrafficPattern("zero"), v1::TRAFFIC_PATTERN_ZERO);
  EXPECT_FALSE(ParseTrafficPattern("ones").ok());
}

TEST(TrafficArgsTest, ResultAsTextAndJson) {
  v1::TrafficResponse response;
  response.set_bytes_received(1024);
  response.set_bytes_sent(2048);
  response.mutable_elapsed()->set_nanos(500000000);
  response.set_bytes_per_second(6144);
  response.set_checksum("0123456789abcdef");
  response.set_end(v1::TRAFFIC_END_EOF);
  EXPECT_EQ(FormatTraffic(response),
            "end=eof bytes_received=1024 bytes_sent=2048 datagrams_received=0 "
            "datagrams_sent=0 elapsed=500ms bytes_per_second=6144 "
            "checksum=0123456789abcdef");
  EXPECT_EQ(TrafficJson(response),
            "{\"end\":\"eof\",\"bytes_received\":1024,\"bytes_sent\":2048,"
            "\"datagrams_received\":0,\"datagrams_sent\":0,"
            "\"elapsed_s\":0.5,\"bytes_per_second\":6144,"
            "\"checksum\":\"0123456789abcdef\"}");
  EXPECT_EQ(TrafficEndName(v1::TRAFFIC_END_FAULT), "fault");
}

TEST(ExitCodeTest, ResolutionFailureHasItsOwnCode) {
  absl::Status eai = NamedOsError(
      absl::StatusCode::kNotFound, EAI_NONAME, "EAI_NONAME", "getaddrinfo",
      "address.inet.host: 'x' did not resolve: Name or service not known "
      "(EAI_NONAME)");
  EXPECT_EQ(ExitCodeFor(eai), kExitResolve);
  EXPECT_EQ(DescribeError("sendto", eai),
            "name resolution failed on the agent: address.inet.host: 'x' did "
            "not resolve: Name or service not known (EAI_NONAME)");
}

TEST(DescribeErrorTest, ContextIsNotRepeated) {
  EXPECT_EQ(
      DescribeError("recv", absl::DeadlineExceededError("recv: timed out")),
      "recv: timed out (DEADLINE_EXCEEDED)");
}

TEST(CheckAddressArgTest, RejectsWhatCannotBeAnAddress) {
  auto check = [](const std::string& text) {
    absl::StatusOr<v1::Address> address = ParseAddress(text);
    if (!address.ok()) return address.status();
    return CheckAddressArg(*address, text);
  };
  EXPECT_TRUE(check("127.0.0.1:80").ok());
  EXPECT_TRUE(check("127.0.0.1:http").ok());
  EXPECT_TRUE(check("example.internal:80").ok());
  EXPECT_TRUE(check("[::1]:0").ok());
  EXPECT_TRUE(check("[fe80::1%lo]:0").ok());
  EXPECT_TRUE(check(":0").ok());
  EXPECT_FALSE(check("300.1.1.1:80").ok());
  EXPECT_FALSE(check("1.2.3.4.5:80").ok());
  EXPECT_FALSE(check("127.0.0.1:abc").ok());
  EXPECT_FALSE(check("[::g]:80").ok());
}

TEST(AgentTargetTest, DefaultPortAndChecks) {
  EXPECT_EQ(*AgentTarget("127.0.0.1"), "127.0.0.1:7700");
  EXPECT_EQ(*AgentTarget("node1"), "node1:7700");
  EXPECT_EQ(*AgentTarget("[::1]"), "[::1]:7700");
  EXPECT_EQ(*AgentTarget("[::1]:7701"), "[::1]:7701");
  EXPECT_EQ(*AgentTarget("node1:7701"), "node1:7701");
  EXPECT_EQ(*AgentTarget("unix:/run/sockagent.sock"),
            "unix:/run/sockagent.sock");
  for (const char* bad : {"", "127.0.0.1:abc", "127.0.0.1:0", "127.0.0.1:65536",
                          "::1", "300.1.1.1", ":7700", "[::1", "[::1]x"}) {
    EXPECT_FALSE(AgentTarget(bad).ok()) << bad;
  }
}

TEST(DurationTextTest, GoStyleWithBoundedPrecision) {
  EXPECT_EQ(DurationText(absl::Nanoseconds(359123)), "359us");
  EXPECT_EQ(DurationText(absl::Nanoseconds(9123456)), "9.12ms");
  EXPECT_EQ(DurationText(absl::Nanoseconds(2182739846)), "2.182s");
  EXPECT_EQ(DurationText(absl::Minutes(10)), "10m");
  EXPECT_EQ(DurationText(absl::Hours(24)), "24h");
  EXPECT_EQ(DurationSeconds(absl::Minutes(10)), "600");
  EXPECT_EQ(DurationSeconds(absl::Microseconds(359)), "0.000359");
}

TEST(MessageJsonTest, TextWordsNumbersAndSeconds) {
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
  EXPECT_EQ(SocketStateName(v1::SOCKET_STATE_SHUT_DOWN), "shut_down");
}

TEST(FormatTableTest, PadsColumns) {
  EXPECT_EQ(FormatTable({{"A", "BB"}, {"CCC", "D"}}), "A    BB\nCCC  D\n");
}

}  // namespace
}  // namespace sockagent::cli
