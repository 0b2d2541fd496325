#include "client/cli/cli.h"

#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/address.h"
#include "client/cli/errors.h"
#include "client/cli/help_text.h"
#include "client/credentials.h"
#include "client/vocab/addresses.h"
#include "proto/units.h"

namespace sockagent {
namespace cli {

Cli::Cli(CLI::App* app, std::vector<std::string> agent_overrides)
    : app_(app), agent_overrides_(std::move(agent_overrides)) {
  GlobalOptions& g = options_;
  app->add_option("--agent", g.agent, "agent address (host:port)")
      ->envname("SOCKAGENT_AGENT")
      ->capture_default_str();
  app->add_option("--session", g.session,
                  "session id from `sockctl session open`")
      ->envname("SOCKAGENT_SESSION");
  app->add_option("--timeout", g.timeout,
                  "deadline of each call, e.g. 5s (default: none)");
  app->add_flag("--json", g.json, "print one JSON object on stdout");
  app->add_option("--tls-ca", g.tls_ca,
                  "verify the agent's TLS certificate against this CA (PEM)")
      ->envname("SOCKAGENT_TLS_CA");
  app->add_option("--tls-cert", g.tls_cert,
                  "client certificate for mutual TLS (PEM)")
      ->envname("SOCKAGENT_TLS_CERT");
  app->add_option("--tls-key", g.tls_key, "client private key (PEM)")
      ->envname("SOCKAGENT_TLS_KEY");
  app->add_option("--tls-server-name", g.tls_server_name,
                  "name the agent's certificate must carry, when not the "
                  "--agent host");
  app->add_option("--token", g.token,
                  "bearer token (prefer SOCKAGENT_TOKEN: flags show in ps)")
      ->envname("SOCKAGENT_TOKEN");
  app->add_flag("-v,--verbose", g.verbose, "diagnostics on stderr");
}

CLI::App* Cli::AddCommand(CLI::App* parent, const std::string& name,
                          const std::string& help) {
  CLI::App* sub = parent->add_subcommand(name, std::string(Summary(help)));
  sub->footer("\n" + Wrap(help));
  return sub;
}

void Cli::OnRun(CLI::App* sub, std::function<int()> body) {
  sub->callback([this, body = std::move(body)] { action_ = body; });
}

int Cli::Run() {
  if (absl::StatusOr<std::string> target = vocab::AgentTarget(options_.agent);
      !target.ok()) {
    return Usage(target.status());
  } else {
    options_.agent = *target;
  }
  if (!options_.timeout.empty()) {
    absl::StatusOr<absl::Duration> timeout =
        ParseDurationText(options_.timeout);
    if (!timeout.ok()) return Usage(timeout.status());
    if (*timeout <= absl::ZeroDuration()) {
      return Usage(absl::InvalidArgumentError("--timeout must be positive"));
    }
    call_timeout_ = *timeout;
    deadline_ = absl::Now() + *timeout;
  }
  if (!action_) return kExitUsage;
  if (!agent_overrides_.empty() &&
      (overrides_command_ == nullptr || !overrides_command_->parsed())) {
    return Usage(absl::InvalidArgumentError(absl::StrCat(
        "unknown option ", agent_overrides_.front(),
        " (--agent-NAME=HOST:PORT is an option of `sockctl run`)")));
  }
  return action_();
}

absl::Status Cli::Secure(AgentOptions* options) const {
  const GlobalOptions& g = options_;
  options->token = g.token;
  options->tls_server_name = g.tls_server_name;
  if (g.tls_ca.empty() && g.tls_cert.empty() && g.tls_key.empty()) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      TlsCredentialsFromFiles(g.tls_ca, g.tls_cert, g.tls_key);
  if (!credentials.ok()) return credentials.status();
  options->credentials = *std::move(credentials);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Agent>> Cli::ConnectAgent(
    bool need_session) const {
  if (need_session && options_.session.empty()) {
    return absl::FailedPreconditionError(
        "no session: pass --session or set SOCKAGENT_SESSION "
        "(export SOCKAGENT_SESSION=$(sockctl session open))");
  }
  AgentOptions options;
  options.target = options_.agent;
  if (absl::Status secured = Secure(&options); !secured.ok()) return secured;
  options.session_id = options_.session;
  options.open_session = false;
  options.keepalive = false;
  options.call_timeout = call_timeout_;
  options.connect_timeout = call_timeout_ == absl::InfiniteDuration()
                                ? absl::Seconds(10)
                                : call_timeout_;
  options.fail_fast = true;
  return Agent::Connect(options);
}

int Cli::WithSocket(const std::string& handle,
                    const std::function<int(Agent&, Socket&)>& body) const {
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(true);
  if (!agent.ok()) return Fail("agent", agent.status());
  Socket socket = (*agent)->AttachSocket(handle);
  return body(**agent, socket);
}

int Cli::Fail(absl::string_view context, const absl::Status& status) const {
  if (options_.json) {
    std::cout << ErrorJson(status) << std::endl;
  } else {
    std::cerr << "sockctl: " << DescribeError(context, status) << std::endl;
  }
  return ExitCodeFor(status);
}

int Cli::Usage(const absl::Status& status) const {
  if (options_.json) {
    std::cout << ErrorJson(status) << std::endl;
  } else {
    std::cerr << "sockctl: " << status.message() << std::endl;
  }
  return kExitUsage;
}

void Cli::PrintJson(const vocab::JsonObject& object) const {
  std::cout << object.Build() << std::endl;
}

int Cli::PrintAddress(const v1::Address& address) const {
  if (options_.json) {
    vocab::JsonObject object;
    object.AddString("address", FormatAddress(address));
    if (address.has_inet()) object.AddInt("port", address.inet().port());
    PrintJson(object);
  } else {
    std::cout << FormatAddress(address) << std::endl;
  }
  return kExitOk;
}

void Cli::Verbose(absl::string_view who, absl::string_view line) const {
  if (options_.verbose) {
    std::cerr << "sockctl " << who << ": " << line << std::endl;
  }
}

void AddHandle(CLI::App* sub, std::string* handle) {
  sub->add_option("HANDLE", *handle, "socket handle (from `sockctl socket`)")
      ->required();
}

absl::StatusOr<v1::Address> ParseAddressArg(const std::string& text) {
  absl::StatusOr<v1::Address> address = ParseAddress(text);
  if (!address.ok()) return address.status();
  if (absl::Status checked = vocab::CheckAddressArg(*address, text);
      !checked.ok()) {
    return checked;
  }
  return address;
}

}  // namespace cli
}  // namespace sockagent
