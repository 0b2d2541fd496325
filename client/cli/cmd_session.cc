// sockctl session open|close|list|keepalive, sessions list.

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/vocab/json.h"
#include "client/vocab/quantities.h"
#include "client/vocab/table.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/units.h"

namespace sockagent {
namespace cli {

using ::sockagent::vocab::DurationSeconds;
using ::sockagent::vocab::DurationText;
using ::sockagent::vocab::FormatTable;
using ::sockagent::vocab::JsonObject;
using ::sockagent::vocab::MessageJson;

namespace {

int SessionOpen(const Cli& cli, const std::string& ttl_text,
                const std::string& label) {
  AgentOptions options;
  options.target = cli.agent();
  if (absl::Status secured = cli.Secure(&options); !secured.ok()) {
    return cli.Usage(secured);
  }
  options.keepalive = false;
  // Shared by the many processes that attach to it: lease-only.
  options.bind_to_connection = false;
  options.fail_fast = true;
  options.session_label = label;
  options.call_timeout = cli.call_timeout();
  if (!ttl_text.empty()) {
    absl::StatusOr<absl::Duration> ttl = ParseDurationText(ttl_text);
    if (!ttl.ok()) return cli.Usage(ttl.status());
    options.session_ttl = *ttl;
  }
  absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
  if (!agent.ok()) return cli.Fail("session open", agent.status());
  std::string id = (*agent)->DetachSession();
  if (cli.json()) {
    cli.PrintJson(JsonObject()
                      .AddString("session_id", id)
                      .AddRaw("ttl_s", DurationSeconds((*agent)->session_ttl()))
                      .AddString("incarnation", (*agent)->incarnation()));
  } else {
    std::cout << id << std::endl;
  }
  return kExitOk;
}

// Without `id`, closes the --session session; with it, that session (one of
// the caller's identity, or any for an admin identity).
int SessionClose(const Cli& cli, const std::string& id) {
  absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(id.empty());
  if (!agent.ok()) return cli.Fail("session close", agent.status());
  absl::StatusOr<uint32_t> closed =
      id.empty() ? (*agent)->CloseSession() : (*agent)->CloseSession(id);
  if (!closed.ok()) return cli.Fail("session close", closed.status());
  if (cli.json()) {
    cli.PrintJson(JsonObject().AddInt("sockets_closed", *closed));
  } else if (cli.verbose()) {
    std::cerr << "closed " << *closed << " socket(s)" << std::endl;
  }
  return kExitOk;
}

std::string TimestampText(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

int SessionList(const Cli& cli) {
  absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(false);
  if (!agent.ok()) return cli.Fail("session list", agent.status());
  absl::StatusOr<std::vector<v1::SessionInfo>> sessions =
      (*agent)->ListSessions();
  if (!sessions.ok()) return cli.Fail("session list", sessions.status());
  if (cli.json()) {
    v1::ListSessionsResponse response;
    for (const v1::SessionInfo& info : *sessions) {
      *response.add_sessions() = info;
    }
    std::cout << MessageJson(response) << std::endl;
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"SESSION", "IDENTITY", "PEER", "LABEL", "CREATED", "LEASE_EXPIRY",
       "WAITING", "BOUND", "SOCKETS", "SENT", "RECEIVED"}};
  for (const v1::SessionInfo& info : *sessions) {
    rows.push_back(
        {info.session_id(), info.identity(), info.peer(),
         info.label().empty() ? "-" : info.label(),
         TimestampText(info.created()), TimestampText(info.lease_expiry()),
         absl::StrCat(info.waiting_calls()), info.bound() ? "yes" : "no",
         absl::StrCat(info.socket_count()), absl::StrCat(info.bytes_sent()),
         absl::StrCat(info.bytes_received())});
  }
  std::cout << FormatTable(rows);
  return kExitOk;
}

int SessionKeepAlive(const Cli& cli) {
  absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(true);
  if (!agent.ok()) return cli.Fail("session keepalive", agent.status());
  absl::StatusOr<absl::Duration> ttl = (*agent)->KeepAlive();
  if (!ttl.ok()) return cli.Fail("session keepalive", ttl.status());
  if (cli.json()) {
    cli.PrintJson(JsonObject().AddRaw("ttl_s", DurationSeconds(*ttl)));
  } else {
    std::cout << DurationText(*ttl) << std::endl;
  }
  return kExitOk;
}

}  // namespace

void RegisterSessionCommands(Cli& cli) {
  // session
  CLI::App* session = cli.AddCommand(
      "session",
      "Open, renew or close a session.\n\nEvery socket belongs to a session; "
      "when its lease lapses or it is closed, the agent closes all of its "
      "sockets.\n\nExample:\n  export SOCKAGENT_SESSION=$(sockctl session "
      "open --ttl 10m --label mytest)\n  sockctl session keepalive\n  sockctl "
      "session close");
  session->require_subcommand(1);
  // A script's session spans many separate sockctl processes, so it gets a
  // lease that outlasts the pauses between them, not the agent's short
  // default meant for clients with a keepalive thread.
  std::string& ttl = cli.Own<std::string>();
  ttl = "10m";
  std::string& label = cli.Own<std::string>();
  CLI::App* open = cli.AddCommand(
      session, "open",
      "Create a session and print its id. The session outlives this "
      "command until its lease (--ttl, renewed by every later call) lapses "
      "or `sockctl session close`.\n\nExample:\n  export "
      "SOCKAGENT_SESSION=$(sockctl session open --ttl 10m)");
  open->add_option("--ttl", ttl,
                   "lease, renewed by every call (capped by the agent's "
                   "--max-session-ttl)")
      ->capture_default_str();
  open->add_option("--label", label, "free text shown by the agent");
  cli.OnRun(open, [&] { return SessionOpen(cli, ttl, label); });
  std::string& close_id = cli.Own<std::string>();
  CLI::App* close_session = cli.AddCommand(
      session, "close",
      "Close the session and every socket in it. --id closes that session "
      "instead (one of your identity's, or any session for an admin "
      "identity).\n\nExample:\n  sockctl session close --session "
      "$SOCKAGENT_SESSION\n  sockctl session close --id ID   # admin");
  close_session->add_option("--id", close_id,
                            "close this session instead of --session");
  cli.OnRun(close_session, [&] { return SessionClose(cli, close_id); });
  const char* kListHelp =
      "List sessions: id, identity, peer, label, created, lease expiry, "
      "sockets, bytes. An admin identity sees every session, others only "
      "their own (needs no session).\n\nExample:\n  sockctl session list";
  CLI::App* list_sessions = cli.AddCommand(session, "list", kListHelp);
  cli.OnRun(list_sessions, [&] { return SessionList(cli); });
  CLI::App* keepalive = cli.AddCommand(
      session, "keepalive",
      "Renew the session's lease and print its length.\n\nExample:\n  "
      "sockctl session keepalive   # prints e.g. 10m");
  cli.OnRun(keepalive, [&] { return SessionKeepAlive(cli); });

  // sessions list: the same as session list.
  CLI::App* sessions =
      cli.AddCommand("sessions", "Sessions on the agent (as `session list`).");
  sessions->require_subcommand(1);
  CLI::App* sessions_list = cli.AddCommand(sessions, "list", kListHelp);
  cli.OnRun(sessions_list, [&] { return SessionList(cli); });
}

}  // namespace cli
}  // namespace sockagent
