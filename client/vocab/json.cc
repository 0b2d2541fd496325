#include "client/vocab/json.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "client/vocab/quantities.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/duration_codec.h"

namespace sockagent {
namespace vocab {

bool IsValidUtf8(absl::string_view data) {
  size_t i = 0;
  while (i < data.size()) {
    const unsigned char c = static_cast<unsigned char>(data[i]);
    int extra;
    uint32_t code;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= data.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(data[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10ffff ||
        (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // Copy a valid UTF-8 sequence; replace an invalid byte.
      size_t len = (c & 0xe0) == 0xc0   ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 1;
      if (len > 1 && i + len <= text.size() &&
          IsValidUtf8(text.substr(i, len))) {
        out.append(text.data() + i, len);
        i += len;
      } else {
        out += "\\ufffd";
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += "\"";
  return out;
}

JsonObject& JsonObject::AddString(absl::string_view key,
                                  absl::string_view value) {
  fields_.emplace_back(std::string(key), JsonString(value));
  return *this;
}

JsonObject& JsonObject::AddInt(absl::string_view key, int64_t value) {
  fields_.emplace_back(std::string(key), absl::StrCat(value));
  return *this;
}

JsonObject& JsonObject::AddBool(absl::string_view key, bool value) {
  fields_.emplace_back(std::string(key), value ? "true" : "false");
  return *this;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, absl::string_view json) {
  fields_.emplace_back(std::string(key), std::string(json));
  return *this;
}

JsonObject& JsonObject::AddData(absl::string_view data) {
  AddString("data_base64", absl::Base64Escape(data));
  if (IsValidUtf8(data)) AddString("text", data);
  return *this;
}

std::string JsonObject::Build() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, JsonString(fields_[i].first), ":", fields_[i].second);
  }
  out += "}";
  return out;
}

std::string EnumWord(const google::protobuf::EnumValueDescriptor& value) {
  // "SocketState" -> "SOCKET_STATE_".
  std::string prefix;
  for (char c : value.type()->name()) {
    if (absl::ascii_isupper(c) && !prefix.empty()) prefix += '_';
    prefix += absl::ascii_toupper(c);
  }
  prefix += '_';
  absl::string_view name = value.name();
  absl::ConsumePrefix(&name, prefix);
  return absl::AsciiStrToLower(name);
}

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string MessageJsonValue(const Message& message);

// One value of `field` (element `index` when repeated).
std::string FieldJsonValue(const Message& message, const FieldDescriptor* field,
                           int index) {
  const Reflection* r = message.GetReflection();
  const bool rep = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(message, field, index)
                              : r->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(message, field, index)
                              : r->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(message, field, index)
                              : r->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(message, field, index)
                              : r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const double v = field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE
                           ? (rep ? r->GetRepeatedDouble(message, field, index)
                                  : r->GetDouble(message, field))
                           : (rep ? r->GetRepeatedFloat(message, field, index)
                                  : r->GetFloat(message, field));
      return std::isfinite(v) ? absl::StrFormat("%.17g", v) : "null";
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(message, field, index)
                  : r->GetBool(message, field))
                 ? "true"
                 : "false";
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* value =
          rep ? r->GetRepeatedEnum(message, field, index)
              : r->GetEnum(message, field);
      return JsonString(EnumWord(*value));
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string value =
          rep ? r->GetRepeatedString(message, field, index)
              : r->GetString(message, field);
      return JsonString(field->type() == FieldDescriptor::TYPE_BYTES
                            ? absl::Base64Escape(value)
                            : value);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageJsonValue(rep ? r->GetRepeatedMessage(message, field, index)
                                  : r->GetMessage(message, field));
  }
  return "null";
}

std::string MessageJsonValue(const Message& message) {
  const google::protobuf::Descriptor* type = message.GetDescriptor();
  if (type->full_name() == v1::Address::descriptor()->full_name()) {
    v1::Address address;
    address.CopyFrom(message);
    return JsonString(FormatAddress(address));
  }
  if (type->full_name() == "google.protobuf.Timestamp") {
    google::protobuf::Timestamp t;
    t.CopyFrom(message);
    return JsonString(absl::FormatTime(
        "%Y-%m-%dT%H:%M:%E*SZ",
        absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()),
        absl::UTCTimeZone()));
  }
  const Reflection* r = message.GetReflection();
  std::string out = "{";
  bool first = true;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    const bool is_message =
        field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (!field->is_repeated() &&
        (field->containing_oneof() != nullptr || is_message) &&
        !r->HasField(message, field)) {
      continue;
    }
    std::string key = field->name();
    std::string value;
    if (is_message && !field->is_repeated() &&
        field->message_type()->full_name() == "google.protobuf.Duration") {
      google::protobuf::Duration d;
      d.CopyFrom(r->GetMessage(message, field));
      absl::StrAppend(&key, "_s");
      value = DurationSeconds(FromProtoDuration(d));
    } else if (field->is_repeated()) {
      value = "[";
      for (int k = 0; k < r->FieldSize(message, field); ++k) {
        if (k > 0) value += ",";
        value += FieldJsonValue(message, field, k);
      }
      value += "]";
    } else {
      value = FieldJsonValue(message, field, 0);
    }
    if (!first) out += ",";
    first = false;
    absl::StrAppend(&out, JsonString(key), ":", value);
  }
  out += "}";
  return out;
}

}  // namespace

std::string MessageJson(const google::protobuf::Message& message) {
  return MessageJsonValue(message);
}

}  // namespace vocab
}  // namespace sockagent
