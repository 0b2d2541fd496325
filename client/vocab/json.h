#ifndef SOCKAGENT_CLIENT_VOCAB_JSON_H_
#define SOCKAGENT_CLIENT_VOCAB_JSON_H_

// JSON as sockctl --json and `sockctl run --json` print it: string
// literals, objects built field by field, and any API message in the same
// words as the text output. Pure functions; a JsonObject is a plain value
// (thread-compatible).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace sockagent {
namespace vocab {

// A JSON string literal, with quotes; bytes that are not valid UTF-8 are
// replaced by U+FFFD.
std::string JsonString(absl::string_view text);
// Whether `data` is valid UTF-8.
bool IsValidUtf8(absl::string_view data);

// A JSON object built field by field, in insertion order.
class JsonObject {
 public:
  JsonObject& AddString(absl::string_view key, absl::string_view value);
  JsonObject& AddInt(absl::string_view key, int64_t value);
  JsonObject& AddBool(absl::string_view key, bool value);
  // `json` must already be valid JSON.
  JsonObject& AddRaw(absl::string_view key, absl::string_view json);
  // Received bytes: "data_base64" always, "text" when valid UTF-8.
  JsonObject& AddData(absl::string_view data);
  std::string Build() const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// A message as sockctl's JSON, the same words the text output uses: proto
// field names (snake_case), every scalar printed (defaults too), integers of
// every width as JSON numbers, enums as the lower-case words of the text
// ("inet", "stream", "listening"), sockagent.v1.Address as its text form
// ("127.0.0.1:80"), google.protobuf.Duration as a number of seconds under
// the field name plus "_s" ("ttl_s": 600), Timestamp as RFC 3339 UTC text,
// bytes as base64. Unset message fields are left out.
std::string MessageJson(const google::protobuf::Message& message);
// An enum value's lower-case word: the value name without the enum type's
// prefix ("FAMILY_INET" -> "inet", "SOCKET_STATE_SHUT_DOWN" -> "shut_down").
std::string EnumWord(const google::protobuf::EnumValueDescriptor& value);

}  // namespace vocab
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_VOCAB_JSON_H_
