#ifndef SOCKAGENT_SERVER_CONFIG_CONFIG_FILE_H_
#define SOCKAGENT_SERVER_CONFIG_CONFIG_FILE_H_

// sockagentd's configuration file (sockagent.v1.AgentConfig, see
// proto/sockagent/v1/config.proto) in protobuf text format or JSON, and its
// bridge to the command line: ProtoConfigFormatter hands every set field to
// CLI11 as the flag of the same name, so a file value passes the flag's own
// validator and a flag given on the command line wins over the file.
// Thread-compatible: parse once, use from one thread.

#include <istream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sockagent/v1/config.pb.h"

namespace sockagent {

// Parses `text`: JSON when its first non-blank character is '{', protobuf
// text format otherwise. INVALID_ARGUMENT on error, as
// "SOURCE:LINE:COLUMN: what" (text format), "SOURCE:LINE: unknown field ..."
// (JSON, where only an unknown field can be placed); an unknown field gets
// the closest known one ("did you mean"). `source` is the file name ("" =
// "config").
absl::StatusOr<v1::AgentConfig> ParseAgentConfig(const std::string& text,
                                                 const std::string& source);

// The 1-based line of `text` where `field` is set ("field:" in text format,
// "\"field\":" in JSON), or 0 when it is not found.
int ConfigFieldLine(const std::string& text, absl::string_view field);

// Reads and parses `path`. NOT_FOUND when it cannot be read.
absl::StatusOr<v1::AgentConfig> LoadAgentConfig(const std::string& path);

// The set fields of `config` as (flag name without "--", value) pairs, in
// field order: "max-session-ttl", "10s".
std::vector<std::pair<std::string, std::string>> ConfigAsFlags(
    const v1::AgentConfig& config);

// CLI11 config formatter for AgentConfig files. from_config throws
// CLI::ConfigError on a malformed file (CLI11 reports it and exits).
class ProtoConfigFormatter : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also,
                        bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CONFIG_CONFIG_FILE_H_
