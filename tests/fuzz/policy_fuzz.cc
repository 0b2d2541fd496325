// libFuzzer target: the policy file parser and compiler
// (PolicyEngine::ParseFile, JSON or text format, then PolicyEngine::Load).
//
// Invariants: no crash; a rejected policy leaves the engine as it was
// (still permissive) and counts a rejected load; a loaded policy answers
// every check, and whatever it says, the hard-deny list holds for every
// identity (169.254.169.254 and fe80::1 are never reachable, also in
// report-only mode); a loaded policy printed as text and as JSON parses and
// loads again.

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include "server/policy/policy_engine.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_util.h"

namespace sockagent {
namespace {

// Parses `text` through the real file path: a memfd named by /proc/self/fd.
absl::StatusOr<v1::Policy> ParseText(const std::string& text) {
  static const fuzz::MemFile* file = new fuzz::MemFile("policy");
  file->Write(text);
  return PolicyEngine::ParseFile(file->path());
}

// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates).
bool IsUtf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      length = 2;
      code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      length = 3;
      code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      length = 4;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    const uint32_t min = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

// Whether every string in `message` (recursively) is UTF-8: only then has
// it a faithful JSON form (protobuf's JSON printer drops the other bytes).
bool AllUtf8(const google::protobuf::Message& message) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    using Field = google::protobuf::FieldDescriptor;
    const int count =
        field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      if (field->cpp_type() == Field::CPPTYPE_STRING) {
        const std::string value =
            field->is_repeated()
                ? reflection->GetRepeatedString(message, field, i)
                : reflection->GetString(message, field);
        if (!IsUtf8(value)) return false;
      } else if (field->cpp_type() == Field::CPPTYPE_MESSAGE) {
        const google::protobuf::Message& child =
            field->is_repeated()
                ? reflection->GetRepeatedMessage(message, field, i)
                : reflection->GetMessage(message, field);
        if (!AllUtf8(child)) return false;
      }
    }
  }
  return true;
}

// MessageDifferencer::Equals, printing the differences when there are some.
bool SameMessage(const v1::Policy& a, const v1::Policy& b) {
  google::protobuf::util::MessageDifferencer differencer;
  std::string differences;
  differencer.ReportDifferencesToString(&differences);
  if (differencer.Compare(a, b)) return true;
  std::fprintf(stderr, "differences:\n%s\n", differences.c_str());
  return false;
}

void CheckEngine(PolicyEngine& engine, const v1::Policy& policy) {
  std::vector<std::string> identities = {"anonymous", "", "*"};
  for (const v1::PolicyRule& rule : policy.rules()) {
    for (const std::string& identity : rule.identities()) {
      if (identities.size() < 8) identities.push_back(identity);
    }
  }
  const fuzz::Ip hard_denied[] = {fuzz::Ip::V4("169.254.169.254", 80),
                                  fuzz::Ip::V6("fe80::1", 80),
                                  fuzz::Ip::V6("::ffff:169.254.169.254", 80),
                                  fuzz::Ip::V6("64:ff9b::169.254.169.254", 80)};
  const fuzz::Ip others[] = {
      fuzz::Ip::V4("127.0.0.1", 7700),    fuzz::Ip::V4("10.1.2.3", 0),
      fuzz::Ip::V4("0.0.0.0", 443),       fuzz::Ip::V6("::1", 1),
      fuzz::Ip::V6("2001:db8::1", 65535), fuzz::Ip::V6("::", 80)};
  for (const std::string& identity : identities) {
    for (const fuzz::Ip& ip : hard_denied) {
      PolicyDecision decision =
          engine.CheckDestination(identity, "connect", ip.get(), ip.length);
      FUZZ_CHECK(!decision.allowed);
      FUZZ_CHECK(decision.code == absl::StatusCode::kPermissionDenied);
      FUZZ_CHECK(!decision.ToStatus().ok());
    }
    for (const fuzz::Ip& ip : others) {
      PolicyDecision decision =
          engine.CheckDestination(identity, "connect", ip.get(), ip.length);
      FUZZ_CHECK(decision.allowed == decision.ToStatus().ok());
      engine.CheckBind(identity, ip.get(), ip.length);
      engine.CheckSource(identity, "accept", ip.get(), ip.length);
    }
    engine.CheckRpc(identity, "Connect");
    engine.CheckSocket(identity, AF_INET6, SOCK_DGRAM);
    engine.CheckListen(identity, 128);
    engine.CheckListen(identity, -1);
    engine.CheckAdmin(identity);
    engine.HasSourceFilter(identity);
    engine.Quotas(identity);
    engine.CheckBytes(identity, PolicyEngine::Direction::kSend);
    engine.ChargeBytes(identity, PolicyEngine::Direction::kRecv, 1 << 20);
    v1::SetSockOptRequest option;
    option.set_option(v1::OPT_SO_REUSEADDR);
    engine.CheckSockOpt(identity, option);
    option.mutable_raw_option()->set_level(1);
    engine.CheckSockOpt(identity, option);
  }
}

}  // namespace
}  // namespace sockagent

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sockagent::PolicyEngine;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sockagent::v1::Policy> policy = sockagent::ParseText(text);
  if (!policy.ok()) {
    FUZZ_CHECK(policy.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  PolicyEngine engine;
  engine.SetProtectedPorts({7700});
  absl::Status loaded = engine.Load(*policy);
  if (!loaded.ok()) {
    FUZZ_CHECK(loaded.code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!engine.configured());
    FUZZ_CHECK(engine.rejected_loads() == 1);
    sockagent::CheckEngine(engine, *policy);
    return 0;
  }
  FUZZ_CHECK(engine.configured());
  FUZZ_CHECK(engine.report_only() == policy->report_only());
  sockagent::CheckEngine(engine, *policy);

  // Printed as text and as JSON, the policy parses to the same message.
  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*policy, &printed));
  absl::StatusOr<sockagent::v1::Policy> again = sockagent::ParseText(printed);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(sockagent::SameMessage(*policy, *again));
  // Strings that are not UTF-8 have no JSON form.
  if (!sockagent::AllUtf8(*policy)) return 0;
  std::string json;
  FUZZ_CHECK(google::protobuf::util::MessageToJsonString(*policy, &json).ok());
  again = sockagent::ParseText(json);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(sockagent::SameMessage(*policy, *again));
  PolicyEngine reloaded;
  FUZZ_CHECK(reloaded.Load(*again).ok());
  return 0;
}
