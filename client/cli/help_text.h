#ifndef SOCKAGENT_CLIENT_CLI_HELP_TEXT_H_
#define SOCKAGENT_CLIENT_CLI_HELP_TEXT_H_

// How a command's help text becomes its --help: a one-line summary and the
// wrapped full text. Pure functions; thread-safe.

#include <string>

#include "absl/strings/string_view.h"

namespace sockagent {
namespace cli {

// The first sentence of `help`: up to the first newline or the first '.'
// outside parentheses that ends the text or precedes a space or newline.
absl::string_view Summary(absl::string_view help);

// `text` with prose lines wrapped at 78 columns; lines starting with a space
// (examples) and empty lines are kept as they are.
std::string Wrap(absl::string_view text);

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_HELP_TEXT_H_
