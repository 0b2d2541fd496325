// libFuzzer target: sockagentd's configuration file parser
// (server/config/config_file.cc), text format and JSON.
//
// Invariants: no crash; a config that parses turns into flags (ConfigAsFlags)
// whose names are fields of AgentConfig; CLI11's formatter accepts exactly
// what ParseAgentConfig accepts; a parsed config printed in text format and
// parsed again is the same message.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include "server/config/config_file.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sockagent::v1::AgentConfig> config =
      sockagent::ParseAgentConfig(text, "fuzz.textproto");

  // The CLI11 bridge must agree with the parser: items for a valid file, a
  // CLI::ConfigError (and nothing else) for an invalid one.
  sockagent::ProtoConfigFormatter formatter;
  std::istringstream input(text);
  bool formatter_ok = false;
  try {
    formatter.from_config(input);
    formatter_ok = true;
  } catch (const CLI::ConfigError&) {
  }
  FUZZ_CHECK(formatter_ok == config.ok());
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }

  const auto* descriptor = sockagent::v1::AgentConfig::descriptor();
  for (const auto& [name, value] : sockagent::ConfigAsFlags(*config)) {
    std::string field = name;
    for (char& c : field) {
      if (c == '-') c = '_';
    }
    FUZZ_CHECK(descriptor->FindFieldByName(field) != nullptr);
  }

  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*config, &printed));
  absl::StatusOr<sockagent::v1::AgentConfig> again =
      sockagent::ParseAgentConfig(printed, "printed");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(
      google::protobuf::util::MessageDifferencer::Equals(*config, *again));
  return 0;
}
