#include "client/address.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace sockagent {
namespace {

v1::Address MustParse(absl::string_view text) {
  absl::StatusOr<v1::Address> address = ParseAddress(text);
  EXPECT_TRUE(address.ok()) << text << ": " << address.status();
  return address.ok() ? *address : v1::Address();
}

void ExpectInvalid(absl::string_view text) {
  absl::StatusOr<v1::Address> address = ParseAddress(text);
  EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument)
      << "\"" << text << "\" gave " << address.status();
}

TEST(ParseAddressTest, HostAndNumericPort) {
  v1::Address a = MustParse("127.0.0.1:80");
  ASSERT_TRUE(a.has_inet());
  EXPECT_EQ(a.inet().host(), "127.0.0.1");
  EXPECT_EQ(a.inet().port_kind_case(), v1::InetAddress::kPort);
  EXPECT_EQ(a.inet().port(), 80u);
}

TEST(ParseAddressTest, HostNameIsKeptForTheAgentToResolve) {
  v1::Address a = MustParse("localhost:8080");
  EXPECT_EQ(a.inet().host(), "localhost");
  EXPECT_EQ(a.inet().port(), 8080u);
}

TEST(ParseAddressTest, ServiceNameGoesToPortName) {
  v1::Address a = MustParse("localhost:http");
  EXPECT_EQ(a.inet().host(), "localhost");
  EXPECT_EQ(a.inet().port_kind_case(), v1::InetAddress::kPortName);
  EXPECT_EQ(a.inet().port_name(), "http");
}

TEST(ParseAddressTest, PortZeroAndMaximum) {
  EXPECT_EQ(MustParse("127.0.0.1:0").inet().port(), 0u);
  EXPECT_EQ(MustParse("127.0.0.1:65535").inet().port(), 65535u);
  EXPECT_EQ(MustParse("127.0.0.1:0").inet().port_kind_case(),
            v1::InetAddress::kPort);
}

TEST(ParseAddressTest, EmptyHostIsTheWildcard) {
  v1::Address a = MustParse(":9000");
  EXPECT_EQ(a.inet().host_kind_case(), v1::InetAddress::kHost);
  EXPECT_EQ(a.inet().host(), "");
  EXPECT_EQ(a.inet().port(), 9000u);
}

TEST(ParseAddressTest, BracketedIpv6) {
  v1::Address a = MustParse("[::1]:80");
  EXPECT_EQ(a.inet().host(), "::1");
  EXPECT_EQ(a.inet().port(), 80u);
}

TEST(ParseAddressTest, BracketedIpv6WithScopeAndService) {
  v1::Address a = MustParse("[fe80::1%lo]:domain");
  EXPECT_EQ(a.inet().host(), "fe80::1%lo");
  EXPECT_EQ(a.inet().port_name(), "domain");
}

TEST(ParseAddressTest, EmptyBracketsAreTheIpv6Wildcard) {
  v1::Address a = MustParse("[]:80");
  EXPECT_EQ(a.inet().host(), "");
  EXPECT_EQ(a.inet().port(), 80u);
}

TEST(ParseAddressTest, BroadcastHostIsKeptAsWritten) {
  EXPECT_EQ(MustParse("<broadcast>:9").inet().host(), "<broadcast>");
}

TEST(ParseAddressTest, UnixPrefixGivesAPathAddress) {
  v1::Address a = MustParse("unix:/tmp/agent.sock");
  ASSERT_TRUE(a.has_unix());
  EXPECT_EQ(a.unix().name_case(), v1::UnixAddress::kPath);
  EXPECT_EQ(a.unix().path(), "/tmp/agent.sock");
}

TEST(ParseAddressTest, BareAbsolutePathIsUnix) {
  EXPECT_EQ(MustParse("/run/x.sock").unix().path(), "/run/x.sock");
}

TEST(ParseAddressTest, RelativeUnixPath) {
  EXPECT_EQ(MustParse("unix:rel.sock").unix().path(), "rel.sock");
}

TEST(ParseAddressTest, UnixPathWithColons) {
  EXPECT_EQ(MustParse("unix:/tmp/a:b").unix().path(), "/tmp/a:b");
}

TEST(ParseAddressTest, AbstractPrefixGivesAnAbstractAddress) {
  v1::Address a = MustParse("abstract:my-name");
  ASSERT_TRUE(a.has_unix());
  EXPECT_EQ(a.unix().name_case(), v1::UnixAddress::kAbstract);
  EXPECT_EQ(a.unix().abstract(), "my-name");
}

TEST(ParseAddressTest, AtSignIsAbstract) {
  EXPECT_EQ(MustParse("@name").unix().abstract(), "name");
}

TEST(ParseAddressTest, EmptyTextIsRejected) { ExpectInvalid(""); }

TEST(ParseAddressTest, RejectsMissingPort) {
  ExpectInvalid("127.0.0.1");
  ExpectInvalid("127.0.0.1:");
  ExpectInvalid("localhost");
  ExpectInvalid("[::1]:");
  ExpectInvalid("[::1]");
}

TEST(ParseAddressTest, RejectsPortOutOfRange) {
  ExpectInvalid("127.0.0.1:65536");
  ExpectInvalid("127.0.0.1:99999999999999999999");
  ExpectInvalid("127.0.0.1:000080");
}

TEST(ParseAddressTest, RejectsNegativeOrMalformedPort) {
  ExpectInvalid("127.0.0.1:-1");
  ExpectInvalid("127.0.0.1:8 0");
  ExpectInvalid("127.0.0.1:80/tcp");
  ExpectInvalid("127.0.0.1:8x");
}

TEST(ParseAddressTest, RejectsUnbracketedIpv6) {
  ExpectInvalid("::1:80");
  ExpectInvalid("fe80::1:http");
}

TEST(ParseAddressTest, RejectsUnclosedBracket) { ExpectInvalid("[::1:80"); }

TEST(ParseAddressTest, RejectsGarbageAfterBracket) {
  ExpectInvalid("[::1]80");
  ExpectInvalid("[::1]x:80");
}

TEST(ParseAddressTest, RejectsEmptyAbstractNames) {
  ExpectInvalid("abstract:");
  ExpectInvalid("@");
}

// The unnamed address, as FormatAddress prints it: bind autobinds.
TEST(ParseAddressTest, BareUnixPrefixIsTheUnnamedAddress) {
  v1::Address a = MustParse("unix:");
  ASSERT_EQ(a.unix().name_case(), v1::UnixAddress::kPath);
  EXPECT_EQ(a.unix().path(), "");
  EXPECT_EQ(FormatAddress(a), "unix:");
}

TEST(FormatAddressTest, Ipv4) {
  EXPECT_EQ(FormatAddress(InetAddress("127.0.0.1", 80)), "127.0.0.1:80");
}

TEST(FormatAddressTest, Ipv6IsBracketed) {
  EXPECT_EQ(FormatAddress(InetAddress("::1", 80)), "[::1]:80");
  EXPECT_EQ(FormatAddress(InetAddress("fe80::1%lo", 7)), "[fe80::1%lo]:7");
}

TEST(FormatAddressTest, ScopeIdOfABareIpv6HostIsANumericScope) {
  v1::Address a = InetAddress("fe80::1", 7);
  a.mutable_inet()->set_scope_id(2);
  EXPECT_EQ(FormatAddress(a), "[fe80::1%2]:7");
}

TEST(FormatAddressTest, HostIntIsDottedQuad) {
  v1::Address a;
  a.mutable_inet()->set_host_int(0x7f000001);
  a.mutable_inet()->set_port(5);
  EXPECT_EQ(FormatAddress(a), "127.0.0.1:5");
}

TEST(FormatAddressTest, PortNameIsPrintedAfterTheHost) {
  v1::Address a;
  a.mutable_inet()->set_host("localhost");
  a.mutable_inet()->set_port_name("http");
  EXPECT_EQ(FormatAddress(a), "localhost:http");
}

TEST(FormatAddressTest, UnsetPortIsZero) {
  v1::Address a;
  a.mutable_inet()->set_host("127.0.0.1");
  EXPECT_EQ(FormatAddress(a), "127.0.0.1:0");
}

TEST(FormatAddressTest, UnixAddressesKeepTheirPrefix) {
  EXPECT_EQ(FormatAddress(UnixPathAddress("/p")), "unix:/p");
  EXPECT_EQ(FormatAddress(AbstractAddress("n")), "abstract:n");
}

TEST(FormatAddressTest, PathStartingWithNulIsShownAsAbstract) {
  EXPECT_EQ(FormatAddress(UnixPathAddress(std::string("\0n\x01", 3))),
            "abstract:n\\x01");
}

TEST(FormatAddressTest, AbstractNonPrintableBytesAreEscaped) {
  EXPECT_EQ(FormatAddress(AbstractAddress(std::string("a\0", 2))),
            "abstract:a\\x00");
}

TEST(FormatAddressTest, UnnamedUnixAndEmptyAddress) {
  v1::Address unnamed;
  unnamed.mutable_unix();
  EXPECT_EQ(FormatAddress(unnamed), "unix:");
  EXPECT_EQ(FormatAddress(v1::Address()), "");
}

TEST(AddressRoundTripTest, ParseOfFormatIsIdentity) {
  for (const char* text :
       {"127.0.0.1:80", "[::1]:443", "localhost:http", ":0", "unix:/tmp/x",
        "abstract:name", "[fe80::1%eth0]:65535"}) {
    absl::StatusOr<v1::Address> parsed = ParseAddress(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(FormatAddress(*parsed), text);
  }
}

}  // namespace
}  // namespace sockagent
