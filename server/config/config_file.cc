#include "server/config/config_file.h"

#include <fstream>
#include <sstream>
#include <utility>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace sockagent {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

// Keeps the first parse error with its position.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (error_.empty()) {
      error_ = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
    }
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

absl::StatusOr<v1::AgentConfig> ParseAgentConfig(const std::string& text,
                                                 const std::string& source) {
  v1::AgentConfig config;
  const std::string prefix = source.empty() ? "" : source + ": ";
  const absl::string_view body = absl::StripLeadingAsciiWhitespace(text);
  if (!body.empty() && body.front() == '{') {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status =
        google::protobuf::util::JsonStringToMessage(text, &config, options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "invalid JSON config: ", status.ToString()));
    }
    return config;
  }
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "invalid config: ", errors.error()));
  }
  return config;
}

absl::StatusOr<v1::AgentConfig> LoadAgentConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
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
    flags.emplace_back(absl::StrReplaceAll(field->name(), {{"_", "-"}}),
                       std::move(value));
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
    CLI::ConfigItem item;
    item.name = name;
    item.inputs.push_back(value);
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace sockagent
