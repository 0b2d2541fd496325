#ifndef SOCKAGENT_CLIENT_CLI_CLI_H_
#define SOCKAGENT_CLIENT_CLI_CLI_H_

// What every sockctl command family works with: the global options, the
// CLI11 app its commands are added to, the output conventions (text or
// --json, exit codes) and the connection to the agent. One Cli lives in
// main() for the whole process; command families add their commands in
// Register*Commands (client/cli/commands.h) and keep their flag values in
// storage the Cli owns (Own<T>()). Not thread-safe: used from main's thread,
// plus const methods from the threads a command starts.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/agent.h"
#include "client/socket.h"
#include "client/vocab/json.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace cli {

// The options given before the subcommand (or from the environment).
struct GlobalOptions {
  std::string agent = "127.0.0.1:7700";
  std::string session;
  std::string timeout;
  bool json = false;
  bool verbose = false;
  // Channel security (flags or SOCKAGENT_TLS_CA, SOCKAGENT_TLS_CERT,
  // SOCKAGENT_TLS_KEY, SOCKAGENT_TOKEN).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  std::string token;
};

class Cli {
 public:
  // Adds the global options to `app`, which must outlive the Cli.
  // `agent_overrides` are run's --agent-NAME=HOST:PORT arguments, taken out
  // of argv before parsing.
  Cli(CLI::App* app, std::vector<std::string> agent_overrides);
  Cli(const Cli&) = delete;
  Cli& operator=(const Cli&) = delete;

  // --------------------------------------------- adding commands (families)

  CLI::App& app() { return *app_; }
  // A subcommand of `parent` whose one-line summary is the first sentence of
  // `help`; the whole text (description and example) ends its --help.
  CLI::App* AddCommand(CLI::App* parent, const std::string& name,
                       const std::string& help);
  // The same at the top level.
  CLI::App* AddCommand(const std::string& name, const std::string& help) {
    return AddCommand(app_, name, help);
  }
  // Runs `body` (its result is the exit code) when `sub` is the subcommand
  // parsed.
  void OnRun(CLI::App* sub, std::function<int()> body);
  // Storage for a command's flag values, alive as long as the Cli.
  template <typename T>
  T& Own() {
    auto value = std::make_shared<T>();
    owned_.push_back(value);
    return *value;
  }
  // `sub` takes the --agent-NAME=HOST:PORT arguments (agent_overrides());
  // with any other command they are a usage error.
  void AcceptAgentOverrides(CLI::App* sub) { overrides_command_ = sub; }
  const std::vector<std::string>& agent_overrides() const {
    return agent_overrides_;
  }

  // ------------------------------------------------------------ running

  // After a successful parse: checks --agent and --timeout, then runs the
  // parsed command. Returns the exit code.
  int Run();

  // ------------------------------------------------ for the commands

  const GlobalOptions& options() const { return options_; }
  bool json() const { return options_.json; }
  bool verbose() const { return options_.verbose; }
  // The normalized --agent target (after Run's check).
  const std::string& agent() const { return options_.agent; }
  // --timeout: each call's timeout (infinite without), and the deadline of
  // the command's waiting calls.
  absl::Duration call_timeout() const { return call_timeout_; }
  absl::Time deadline() const { return deadline_; }

  // TLS when a CA or a client certificate is given; the token in any case.
  absl::Status Secure(AgentOptions* options) const;
  // Connects to the agent. With `need_session` the session must come from
  // --session / SOCKAGENT_SESSION; the session is attached, never created or
  // closed, and renewed by the call itself.
  absl::StatusOr<std::unique_ptr<Agent>> ConnectAgent(bool need_session) const;
  // A socket command: attaches the session, then runs `body` on the handle.
  int WithSocket(const std::string& handle,
                 const std::function<int(Agent&, Socket&)>& body) const;

  // Prints `status` as sockctl's error (stderr, or the JSON error object on
  // stdout) and returns its exit code.
  int Fail(absl::string_view context, const absl::Status& status) const;
  // A bad argument value: prints it, returns kExitUsage.
  int Usage(const absl::Status& status) const;
  void PrintJson(const vocab::JsonObject& object) const;
  // Prints an address: plain text, or {"address":..., "port":...}.
  int PrintAddress(const v1::Address& address) const;
  // With --verbose, "sockctl <who>: <line>" on stderr.
  void Verbose(absl::string_view who, absl::string_view line) const;

 private:
  CLI::App* app_;
  GlobalOptions options_;
  std::vector<std::string> agent_overrides_;
  CLI::App* overrides_command_ = nullptr;
  std::function<int()> action_;
  std::vector<std::shared_ptr<void>> owned_;
  absl::Duration call_timeout_ = absl::InfiniteDuration();
  absl::Time deadline_ = absl::InfiniteFuture();
};

// Help text for the address arguments.
inline constexpr char kAddressForms[] =
    "address: host:port, [v6]:port, host:service, unix:/path, abstract:name";

// Adds the required positional HANDLE.
void AddHandle(CLI::App* sub, std::string* handle);

// An address argument, parsed and checked as far as sockctl can check it
// before any call (a malformed one is a usage error).
absl::StatusOr<v1::Address> ParseAddressArg(const std::string& text);

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_CLI_H_
