#include "client/vocab/addresses.h"

#include <string>

#include "absl/status/statusor.h"
#include "client/address.h"
#include "gtest/gtest.h"

namespace sockagent::vocab {
namespace {

TEST(AddressesTest, ArgumentsThatCannotBeAnAddressAreRejected) {
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

TEST(AddressesTest, AgentTargetGetsTheDefaultPortAndChecksTheRest) {
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

}  // namespace
}  // namespace sockagent::vocab
