#ifndef SOCKAGENT_CLIENT_CLI_DID_YOU_MEAN_H_
#define SOCKAGENT_CLIENT_CLI_DID_YOU_MEAN_H_

// "unknown subcommand 'sokcet' (did you mean socket?)": CLI11 reports a word
// that names no subcommand as "A subcommand is required", which hides the
// cause. Pure function of the app's declared commands; thread-safe.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace sockagent {
namespace cli {

// Walks `args` (argv, args[0] the program) down the subcommands of `app` they
// name, stepping over options and their values, and returns a message naming
// the first word that names no subcommand, with up to four close names (edit
// distance <= 2, or one containing the other when both have 3+ letters), or
// "" when every word is known or the command reached takes positionals.
std::string UnknownSubcommand(const CLI::App& app,
                              const std::vector<char*>& args);

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_DID_YOU_MEAN_H_
