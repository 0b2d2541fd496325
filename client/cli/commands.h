#ifndef SOCKAGENT_CLIENT_CLI_COMMANDS_H_
#define SOCKAGENT_CLIENT_CLI_COMMANDS_H_

// sockctl's command families: each cmd_<family>.cc defines
// Register<Family>Commands(Cli&), which adds its commands to the app and
// keeps their flag values in the Cli (Cli::Own).
//
// To add a family: write client/cli/cmd_<family>.cc defining
// `void Register<Family>Commands(Cli& cli)`, list the file in sockctl's
// sources (client/CMakeLists.txt), and add one X(<Family>) line below, in
// the place where its commands should appear in `sockctl --help`.
//
// A family keeps every flag value in cli.Own<T>() storage, which lives as
// long as the Cli, so the actions given to cli.OnRun may refer to it (and to
// `cli`) after Register*Commands has returned; they must not refer to the
// registration's other locals.

#include "client/cli/cli.h"

#define SOCKCTL_COMMAND_FAMILIES(X) \
  X(Session)                        \
  X(Socket)                         \
  X(Io)                             \
  X(Traffic)                        \
  X(Proxy)                          \
  X(Options)                        \
  X(Host)                           \
  X(Agents)                         \
  X(Nc)                             \
  X(Run)

namespace sockagent {
namespace cli {

#define SOCKCTL_DECLARE_FAMILY(Family) \
  void Register##Family##Commands(Cli& cli);
SOCKCTL_COMMAND_FAMILIES(SOCKCTL_DECLARE_FAMILY)
#undef SOCKCTL_DECLARE_FAMILY

// Adds every family's commands, in the order above.
inline void RegisterAllCommands(Cli& cli) {
#define SOCKCTL_REGISTER_FAMILY(Family) Register##Family##Commands(cli);
  SOCKCTL_COMMAND_FAMILIES(SOCKCTL_REGISTER_FAMILY)
#undef SOCKCTL_REGISTER_FAMILY
}

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_COMMANDS_H_
