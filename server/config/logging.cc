#include "server/config/logging.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace sockagent {
namespace {

// %j: the message as the body of a JSON string.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : msg.payload) {
      const auto u = static_cast<unsigned char>(c);
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        default:
          if (u < 0x20) {
            const char escaped[] = {'\\', 'u',          '0',
                                    '0',  kHex[u >> 4], kHex[u & 0xf]};
            dest.append(escaped, escaped + sizeof(escaped));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

bool IsLogLevel(const std::string& level) {
  for (const char* known : {"trace", "debug", "info", "warn", "error"}) {
    if (level == known) return true;
  }
  return false;
}

absl::Status SetLogLevel(const std::string& level) {
  if (IsLogLevel(level)) {
    spdlog::set_level(spdlog::level::from_str(level));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "log_level: '", level, "' is not one of trace|debug|info|warn|error"));
}

absl::Status SetUpLogging(const std::string& format, const std::string& level) {
  std::unique_ptr<spdlog::formatter> formatter;
  if (format == "text") {
    formatter = std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  } else if (format == "json") {
    auto json = std::make_unique<spdlog::pattern_formatter>();
    json->add_flag<JsonMessageFlag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","msg":"%j"})");
    formatter = std::move(json);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log_format: '", format, "' is not one of text|json"));
  }
  auto logger = spdlog::get("sockagentd");
  if (logger == nullptr) logger = spdlog::stderr_color_mt("sockagentd");
  logger->set_formatter(std::move(formatter));
  spdlog::set_default_logger(logger);
  return SetLogLevel(level);
}

}  // namespace sockagent
