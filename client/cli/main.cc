// sockctl: the command line of sockagent. main() builds the app from the
// command families (client/cli/commands.h), parses argv and runs the one
// command it names.

#include <signal.h>

#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/did_you_mean.h"
#include "client/cli/errors.h"

namespace sockagent {
namespace cli {
namespace {

constexpr char kMainHelp[] =
    R"help(sockctl drives the sockets of a remote host through its sockagentd agent.
Every subcommand is one call of the sockagent.v1 API, performed by the agent
with its own kernel sockets. Sockets live in a session: open one once, export
its id, and every later sockctl invocation (which renews the lease) can use
the handles printed by earlier ones. `sockctl session close` closes them all.

Example:
  export SOCKAGENT_SESSION=$(sockctl session open --ttl 10m)
  L=$(sockctl socket); sockctl bind $L 127.0.0.1:0; sockctl listen $L
  C=$(sockctl socket); sockctl connect $C $(sockctl getsockname $L)
  A=$(sockctl accept $L | cut -d' ' -f1)
  sockctl send $C hello; sockctl recv $A        # prints hello
  sockctl session close

Output is human-readable by default; --json prints one JSON object on stdout
(on failure {"error":{"code","message","errno","errno_name","syscall"}}).

Exit codes:
  0  success
  1  a negative answer: `health` got a status other than SERVING; `run`:
     some step failed
  2  usage error: a bad command line or a malformed argument value (checked
     before any call: 127.0.0.1:abc, 300.1.1.1:80, --agent host:0), or a
     scenario file error
  3  the call failed without an errno: agent unreachable (a refused
     connection reports at once), unknown handle or session (NOT_FOUND),
     deadline, permission, ...
  4  the socket call failed with an errno; stderr says e.g.
     "sockctl: connect: Connection refused (ECONNREFUSED)"
  5  a name did not resolve on the agent (getaddrinfo EAI_*); stderr says
     "sockctl: name resolution failed on the agent: ... (EAI_NONAME)"
  130/143  `run` interrupted by SIGINT/SIGTERM (cleanup ran)
--agent HOST without a port means HOST:7700.)help";

int Main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  // `run`'s --agent-NAME=HOST:PORT options have free names, which CLI11
  // cannot declare: they are taken out of argv before parsing.
  std::vector<std::string> agent_overrides;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (i > 0 && absl::StartsWith(arg, "--agent-")) {
      // --agent-NAME=HOST:PORT or, like the global --agent, --agent-NAME
      // HOST:PORT.
      if (!absl::StrContains(arg, '=') && i + 1 < argc) {
        agent_overrides.push_back(absl::StrCat(arg, "=", argv[++i]));
      } else {
        agent_overrides.push_back(std::string(arg));
      }
    } else {
      args.push_back(argv[i]);
    }
  }
  CLI::App app(kMainHelp, "sockctl");
  app.get_formatter()->column_width(34);
  app.require_subcommand(1);
  app.fallthrough();
  Cli cli(&app, std::move(agent_overrides));
  RegisterAllCommands(cli);

  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    if (const std::string unknown = UnknownSubcommand(app, args);
        !unknown.empty() && e.get_exit_code() != 0) {
      std::cerr << "sockctl: " << unknown << "\n";
      return kExitUsage;
    }
    if (e.get_exit_code() == 0) {  // --help
      app.exit(e);
      return kExitOk;
    }
    // The subcommand path the error belongs to, e.g. "session open".
    std::string path;
    for (const CLI::App* current = &app;;) {
      std::vector<const CLI::App*> parsed;
      for (const CLI::App* sub : current->get_subcommands({})) {
        if (sub->parsed()) parsed.push_back(sub);
      }
      if (parsed.empty()) break;
      current = parsed.front();
      absl::StrAppend(&path, path.empty() ? "" : " ", current->get_name());
    }
    std::cerr << "sockctl: " << (path.empty() ? "" : path + ": ") << e.what()
              << " (`sockctl " << (path.empty() ? "" : path + " ")
              << "--help` shows the usage)" << std::endl;
    return kExitUsage;
  }
  return cli.Run();
}

}  // namespace
}  // namespace cli
}  // namespace sockagent

int main(int argc, char** argv) { return sockagent::cli::Main(argc, argv); }
