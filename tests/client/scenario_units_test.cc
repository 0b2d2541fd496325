// The scenario library's parts that need no agent: the step-kind registry,
// interpolation of ${...} and data: specs, and expectations.

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/scenario/expectations.h"
#include "client/scenario/interpolation.h"
#include "client/scenario/model.h"
#include "client/scenario/step_kinds.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"

namespace sockagent::scenario {
namespace {

using ::testing::HasSubstr;

std::string ReadDoc(const std::string& name) {
  std::ifstream in(std::string(SOCKAGENT_SOURCE_DIR) + "/docs/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(StepKindsTest, EveryKindIsInTheFileReference) {
  const std::string doc = ReadDoc("scenarios.md");
  ASSERT_FALSE(doc.empty());
  for (const StepKind& kind : StepKinds::Get().all()) {
    EXPECT_THAT(doc, HasSubstr("`" + kind.name + "`")) << kind.name;
  }
}

TEST(StepKindsTest, EveryKindHasAHandlerAndUniqueName) {
  std::set<std::string> names;
  for (const StepKind& kind : StepKinds::Get().all()) {
    EXPECT_TRUE(static_cast<bool>(kind.run)) << kind.name;
    EXPECT_TRUE(names.insert(kind.name).second) << kind.name;
    if (!kind.shorthand.empty() && kind.shorthand != "socket") {
      bool declared = false;
      for (const ArgDef& arg : kind.args) declared |= arg.key == kind.shorthand;
      EXPECT_TRUE(declared) << kind.name << ": shorthand " << kind.shorthand;
    }
    if (kind.shorthand == "socket") {
      EXPECT_TRUE(kind.on_socket) << kind.name;
    }
  }
}

TEST(StepKindsTest, RecvAllIsTheAliasOfRecvStream) {
  const StepKind* kind = StepKinds::Get().Find("recv_all");
  ASSERT_NE(kind, nullptr);
  EXPECT_EQ(kind->name, "recv_stream");
  EXPECT_EQ(StepKinds::Get().Find("recv_everything"), nullptr);
}

TEST(StepKindsTest, TrafficSourceWithoutAnEndFailsItsCheck) {
  const StepKind* traffic = StepKinds::Get().Find("traffic");
  ASSERT_NE(traffic, nullptr);
  ASSERT_TRUE(static_cast<bool>(traffic->check));
  EXPECT_THAT(traffic->check({{"mode", "source"}}).message(),
              HasSubstr("source needs bytes: or duration:"));
  EXPECT_TRUE(traffic->check({{"mode", "source"}, {"bytes", "1K"}}).ok());
  EXPECT_TRUE(traffic->check({{"mode", "sink"}}).ok());
}

FieldsLookup Vars(std::map<std::string, Fields> vars) {
  return [vars](const std::string& name) -> std::optional<Fields> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(InterpolationTest, NamesAndFieldsAreReplaced) {
  FieldsLookup lookup =
      Vars({{"c", {{"", "h1"}, {"port", "8080"}}}, {"host", {{"", "x"}}}});
  EXPECT_EQ(*Interpolate("${c} on ${host}:${c.port}", lookup), "h1 on x:8080");
  EXPECT_EQ(*Interpolate("no references", lookup), "no references");
}

TEST(InterpolationTest, EnvironmentVariablesAndFallbacksAreReplaced) {
  ::setenv("SCENARIO_UNITS_TEST_SET", "yes", 1);
  ::unsetenv("SCENARIO_UNITS_TEST_UNSET");
  FieldsLookup none = Vars({});
  EXPECT_EQ(*Interpolate("${env.SCENARIO_UNITS_TEST_SET}", none), "yes");
  EXPECT_EQ(*Interpolate("${env.SCENARIO_UNITS_TEST_UNSET:-dflt}", none),
            "dflt");
  EXPECT_THAT(
      Interpolate("${env.SCENARIO_UNITS_TEST_UNSET}", none).status().message(),
      HasSubstr("is not set"));
}

TEST(InterpolationTest, MissingValuesAreErrorsNamingTheReference) {
  FieldsLookup lookup = Vars({{"c", {{"", "h1"}, {"port", "1"}}}});
  EXPECT_THAT(Interpolate("${d}", lookup).status().message(),
              HasSubstr("${d}: d has no value yet"));
  EXPECT_THAT(Interpolate("${c.host}", lookup).status().message(),
              HasSubstr("c has no field host (fields: port)"));
  EXPECT_THAT(Interpolate("${c", lookup).status().message(),
              HasSubstr("unterminated ${"));
}

absl::StatusOr<std::string> Plain(absl::string_view text) {
  return std::string(text);
}

TEST(InterpolationTest, DataSpecsRepeatTextAndFillPatterns) {
  DataSpec text;
  text.text = "ab";
  text.repeat = "3";
  EXPECT_EQ(*MaterializeData(text, Plain), "ababab");
  DataSpec hex;
  hex.hex = "00ff";
  EXPECT_EQ(*MaterializeData(hex, Plain), std::string("\x00\xff", 2));
  DataSpec sequence;
  sequence.size = "1K";
  const std::string bytes = *MaterializeData(sequence, Plain);
  ASSERT_EQ(bytes.size(), 1024u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[300]), 300 % 256);
}

TEST(InterpolationTest, DataOverOneGibibyteIsRefused) {
  DataSpec big;
  big.size = "1MiB";
  big.repeat = "1025";
  EXPECT_THAT(MaterializeData(big, Plain).status().message(),
              HasSubstr("larger than 1 GiB"));
}

const Check* Find(const std::vector<Check>& checks, const std::string& what) {
  for (const Check& check : checks) {
    if (check.what == what) return &check;
  }
  return nullptr;
}

TEST(ExpectationsTest, WithoutExpectationsTheCallMustSucceed) {
  absl::Status error;
  Outcome failed;
  failed.status = absl::UnavailableError("down");
  std::vector<Check> checks = EvaluateExpectations(
      Expectation(), failed, absl::ZeroDuration(), Plain, &error);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].what, "status");
  EXPECT_FALSE(checks[0].held);
  EXPECT_EQ(checks[0].actual, "UNAVAILABLE (down)");
  EXPECT_TRUE(error.ok());
}

TEST(ExpectationsTest, AnExpectedErrnoHoldsOnlyForThatErrno) {
  Expectation e;
  e.errno_name = "ECONNREFUSED";
  Outcome refused;
  refused.status = OsError(ECONNREFUSED, "connect");
  absl::Status error;
  EXPECT_TRUE(
      EvaluateExpectations(e, refused, absl::ZeroDuration(), Plain, &error)[0]
          .held);
  Outcome reset;
  reset.status = OsError(ECONNRESET, "recv");
  const std::vector<Check> checks =
      EvaluateExpectations(e, reset, absl::ZeroDuration(), Plain, &error);
  EXPECT_FALSE(checks[0].held);
  EXPECT_EQ(checks[0].actual, "ECONNRESET");
}

TEST(ExpectationsTest, DataMismatchNamesTheFirstDifferentByte) {
  Expectation e;
  DataSpec want;
  want.text = "hello";
  e.data = want;
  Outcome got;
  got.data = "help!";
  got.has_data = true;
  absl::Status error;
  const std::vector<Check> checks =
      EvaluateExpectations(e, got, absl::ZeroDuration(), Plain, &error);
  const Check* data = Find(checks, "data");
  ASSERT_NE(data, nullptr);
  EXPECT_FALSE(data->held);
  EXPECT_THAT(data->actual, HasSubstr("first difference at byte 3"));
}

TEST(ExpectationsTest, ValuesCompareResultFieldsAndListTheFieldsThereAre) {
  Expectation e;
  e.values = {{"eof", "true"}, {"nope", "1"}};
  Outcome got;
  got.fields = {{"eof", "true"}, {"bytes", "0"}};
  absl::Status error;
  const std::vector<Check> checks =
      EvaluateExpectations(e, got, absl::ZeroDuration(), Plain, &error);
  EXPECT_TRUE(Find(checks, "eof")->held);
  EXPECT_FALSE(Find(checks, "nope")->held);
  EXPECT_THAT(Find(checks, "nope")->actual,
              HasSubstr("no such field (fields: bytes, eof)"));
}

TEST(ExpectationsTest, WithinBoundsTheElapsedTime) {
  Expectation e;
  e.within = absl::Milliseconds(200);
  absl::Status error;
  EXPECT_TRUE(Find(EvaluateExpectations(e, Outcome(), absl::Milliseconds(150),
                                        Plain, &error),
                   "within")
                  ->held);
  EXPECT_FALSE(Find(EvaluateExpectations(e, Outcome(), absl::Milliseconds(250),
                                         Plain, &error),
                    "within")
                   ->held);
}

TEST(ExpectationsTest, NoDataForHoldsOnATimeoutWithNothingReceived) {
  Expectation e;
  e.no_data_for = absl::Milliseconds(50);
  Outcome quiet;
  quiet.status = absl::DeadlineExceededError("recv: timed out");
  quiet.has_data = true;
  absl::Status error;
  EXPECT_TRUE(Find(EvaluateExpectations(e, quiet, absl::Milliseconds(50), Plain,
                                        &error),
                   "no data for")
                  ->held);
  Outcome spoke;
  spoke.data = "x";
  spoke.has_data = true;
  EXPECT_FALSE(
      Find(EvaluateExpectations(e, spoke, absl::Milliseconds(1), Plain, &error),
           "no data for")
          ->held);
}

TEST(ExpectationsTest, AnUnresolvableExpectedValueIsAnError) {
  Expectation e;
  e.contains = "${missing}";
  Outcome got;
  got.has_data = true;
  absl::Status error;
  EvaluateExpectations(
      e, got, absl::ZeroDuration(),
      [](absl::string_view) -> absl::StatusOr<std::string> {
        return absl::InvalidArgumentError("${missing}: no value");
      },
      &error);
  EXPECT_THAT(error.message(), HasSubstr("${missing}"));
}

}  // namespace
}  // namespace sockagent::scenario
