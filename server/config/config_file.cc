#include "server/config/config_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proto/edit_distance.h"

namespace sockagent {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

// "unknown field "sesion_ttl" (did you mean "session_ttl"?)".
std::string UnknownField(absl::string_view name) {
  const auto* descriptor = v1::AgentConfig::descriptor();
  std::string best;
  size_t best_distance = 3;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const std::string& candidate = descriptor->field(i)->name();
    const size_t d = EditDistance(name, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  std::string out = absl::StrCat("unknown field \"", name, "\"");
  if (!best.empty()) absl::StrAppend(&out, " (did you mean \"", best, "\"?)");
  absl::StrAppend(&out,
                  "; the fields are those of sockagent.v1.AgentConfig, one "
                  "per flag (--session-ttl is session_ttl)");
  return out;
}

// Keeps the first parse error with its position, as "LINE:COLUMN: what".
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (!error_.empty()) return;
    std::string what = message;
    // TextFormat says: Message type "sockagent.v1.AgentConfig" has no field
    // named "x".
    const std::string no_field = "has no field named \"";
    if (const size_t at = message.find(no_field); at != std::string::npos) {
      const size_t start = at + no_field.size();
      what =
          UnknownField(message.substr(start, message.find('"', start) - start));
    }
    error_ = absl::StrCat(line + 1, ":", column + 1, ": ", what);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

int ConfigFieldLine(const std::string& text, absl::string_view field) {
  int line = 1;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    absl::string_view rest = absl::StripLeadingAsciiWhitespace(l);
    const bool quoted = absl::ConsumePrefix(&rest, "\"");
    if (absl::ConsumePrefix(&rest, field) &&
        (!quoted || absl::ConsumePrefix(&rest, "\""))) {
      rest = absl::StripLeadingAsciiWhitespace(rest);
      if (absl::StartsWith(rest, ":") || absl::StartsWith(rest, "{")) {
        return line;
      }
    }
    ++line;
  }
  return 0;
}

absl::StatusOr<v1::AgentConfig> ParseAgentConfig(const std::string& text,
                                                 const std::string& source) {
  v1::AgentConfig config;
  const std::string name = source.empty() ? "config" : source;
  const absl::string_view body = absl::StripLeadingAsciiWhitespace(text);
  if (!body.empty() && body.front() == '{') {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status =
        google::protobuf::util::JsonStringToMessage(text, &config, options);
    if (!status.ok()) {
      // protobuf's JSON parser names the field but not the line:
      // "sesion_ttl: Cannot find field."
      const std::string message(status.message());
      const size_t colon = message.find(": Cannot find field");
      if (colon != std::string::npos) {
        const std::string field = message.substr(0, colon);
        const int line = ConfigFieldLine(text, field);
        return absl::InvalidArgumentError(
            absl::StrCat(name, line > 0 ? absl::StrCat(":", line) : "", ": ",
                         UnknownField(field)));
      }
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": not a valid AgentConfig in JSON: ", message));
    }
    return config;
  }
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ":", errors.error()));
  }
  return config;
}

absl::StatusOr<v1::AgentConfig> LoadAgentConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot be read: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseAgentConfig(text.str(), path);
}

std::vector<std::pair<std::string, std::string>> ConfigAsFlags(
    const v1::AgentConfig& config) {
  std::vector<std::pair<std::string, std::string>> flags;
  const Reflection* reflection = config.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(config, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string flag = absl::StrReplaceAll(field->name(), {{"_", "-"}});
    if (field->is_repeated()) {
      // AgentConfig's repeated fields are strings: one pair per element.
      for (int i = 0; i < reflection->FieldSize(config, field); ++i) {
        flags.emplace_back(flag,
                           reflection->GetRepeatedString(config, field, i));
      }
      continue;
    }
    std::string value;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        value = reflection->GetString(config, field);
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        value = absl::StrCat(reflection->GetUInt32(config, field));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        value = absl::StrCat(reflection->GetUInt64(config, field));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        value = absl::StrCat(reflection->GetInt32(config, field));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        value = reflection->GetBool(config, field) ? "true" : "false";
        break;
      default:
        continue;  // AgentConfig uses only the types above.
    }
    flags.emplace_back(flag, std::move(value));
  }
  return flags;
}

std::string ProtoConfigFormatter::to_config(const CLI::App* app,
                                            bool default_also,
                                            bool /*write_description*/,
                                            std::string /*prefix*/) const {
  // Text format of the options that map to AgentConfig fields.
  std::string out;
  const auto* descriptor = v1::AgentConfig::descriptor();
  for (const CLI::Option* option : app->get_options()) {
    const std::string name = option->get_single_name();
    const FieldDescriptor* field =
        descriptor->FindFieldByName(absl::StrReplaceAll(name, {{"-", "_"}}));
    if (field == nullptr) continue;
    if (field->is_repeated()) {
      for (const std::string& element : option->results()) {
        absl::StrAppend(&out, field->name(), ": \"", absl::CEscape(element),
                        "\"\n");
      }
      continue;
    }
    std::string value = option->count() > 0 ? option->as<std::string>()
                                            : option->get_default_str();
    if (option->count() == 0 && (!default_also || value.empty())) continue;
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      value = absl::StrCat("\"", absl::CEscape(value), "\"");
    }
    absl::StrAppend(&out, field->name(), ": ", value, "\n");
  }
  return out;
}

std::vector<CLI::ConfigItem> ProtoConfigFormatter::from_config(
    std::istream& input) const {
  std::stringstream text;
  text << input.rdbuf();
  absl::StatusOr<v1::AgentConfig> config = ParseAgentConfig(text.str(), "");
  if (!config.ok()) {
    throw CLI::ConfigError(std::string(config.status().message()));
  }
  std::vector<CLI::ConfigItem> items;
  for (auto& [name, value] : ConfigAsFlags(*config)) {
    // A repeated field's elements are one item with several inputs, as a
    // repeated flag given on the command line.
    if (!items.empty() && items.back().name == name) {
      items.back().inputs.push_back(value);
      continue;
    }
    CLI::ConfigItem item;
    item.name = name;
    item.inputs.push_back(value);
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace sockagent
