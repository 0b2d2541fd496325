// PolicyReloader: Reload() installs the file's policy or keeps the last valid
// one; the background poll reloads a file that changed on disk.

#include "server/policy/policy_reloader.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/policy/policy_engine.h"
#include "tests/common/wait.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

// A policy that lets `identity` call every RPC and nobody else anything.
std::string PolicyFor(const std::string& identity) {
  return absl::StrCat("rules {\n  name: \"only-", identity,
                      "\"\n  identities: \"", identity,
                      "\"\n  allow_rpcs: \"*\"\n}\n");
}

class PolicyReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/policy_reloader_test.XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/policy.textproto";
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  void Write(const std::string& text) {
    // Replaced by rename, as editors and ConfigMap updates do: the poll never
    // sees a half-written file.
    const std::string part = path_ + ".part";
    {
      std::ofstream out(part, std::ios::trunc);
      out << text;
    }
    ASSERT_EQ(::rename(part.c_str(), path_.c_str()), 0);
  }

  bool Allows(const std::string& identity) {
    return engine_.CheckRpc(identity, "CreateSession").allowed;
  }

  std::string dir_;
  std::string path_;
  PolicyEngine engine_;
};

TEST_F(PolicyReloaderTest, ReloadInstallsThePolicyOfTheFile) {
  Write(PolicyFor("alice"));
  PolicyReloader reloader(&engine_, path_, absl::Hours(1));
  ASSERT_TRUE(reloader.Reload().ok());
  EXPECT_TRUE(Allows("alice"));
  EXPECT_FALSE(Allows("bob"));
  EXPECT_EQ(reloader.reloads(), 1u);
  EXPECT_EQ(reloader.rejected_reloads(), 0u);
}

TEST_F(PolicyReloaderTest, AnInvalidFileIsRejectedAndTheLastValidPolicyStays) {
  Write(PolicyFor("alice"));
  PolicyReloader reloader(&engine_, path_, absl::Hours(1));
  ASSERT_TRUE(reloader.Reload().ok());
  Write("rules { name: \"broken\" allow_rpcs: ");
  const absl::Status rejected = reloader.Reload();
  EXPECT_EQ(rejected.code(), absl::StatusCode::kInvalidArgument) << rejected;
  EXPECT_THAT(std::string(rejected.message()), HasSubstr(path_));
  EXPECT_EQ(reloader.rejected_reloads(), 1u);
  EXPECT_EQ(reloader.reloads(), 1u);
  EXPECT_TRUE(Allows("alice"));
  EXPECT_FALSE(Allows("bob"));
}

TEST_F(PolicyReloaderTest, AMissingFileIsNotFoundAndCountedAsRejected) {
  PolicyReloader reloader(&engine_, path_, absl::Hours(1));
  const absl::Status missing = reloader.Reload();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_EQ(reloader.rejected_reloads(), 1u);
  EXPECT_FALSE(engine_.configured());
}

TEST_F(PolicyReloaderTest, AChangedFileIsReloadedByThePollWithoutASignal) {
  Write(PolicyFor("alice"));
  PolicyReloader reloader(&engine_, path_, absl::Milliseconds(10));
  ASSERT_TRUE(reloader.Reload().ok());
  Write(PolicyFor("bob-the-builder"));  // another size: a change for sure
  ASSERT_TRUE(test::WaitFor([&] { return reloader.reloads() == 2; },
                            test::kDefaultWait, "the poll to reload"));
  EXPECT_TRUE(Allows("bob-the-builder"));
  EXPECT_FALSE(Allows("alice"));
}

TEST_F(PolicyReloaderTest,
       APolledInvalidFileIsRejectedAndTheNextValidOneLoads) {
  Write(PolicyFor("alice"));
  PolicyReloader reloader(&engine_, path_, absl::Milliseconds(10));
  ASSERT_TRUE(reloader.Reload().ok());
  Write("rules { this is not a policy }");
  ASSERT_TRUE(test::WaitFor([&] { return reloader.rejected_reloads() >= 1; },
                            test::kDefaultWait, "the poll to reject the file"));
  EXPECT_TRUE(Allows("alice"));
  Write(PolicyFor("carol-the-third"));
  ASSERT_TRUE(test::WaitFor([&] { return reloader.reloads() == 2; },
                            test::kDefaultWait, "the poll to reload"));
  EXPECT_TRUE(Allows("carol-the-third"));
  // The unchanged invalid file was rejected once, not at every poll.
  EXPECT_EQ(reloader.rejected_reloads(), 1u);
}

}  // namespace
}  // namespace sockagent
