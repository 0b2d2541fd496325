// sockctl gethostname, getaddrinfo, ls, info, health: the agent host and
// the agent itself.

#include <netdb.h>

#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/credentials.h"
#include "client/vocab/json.h"
#include "client/vocab/quantities.h"
#include "client/vocab/table.h"
#include "client/vocab/words.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/duration_codec.h"
#include "proto/status_codec.h"

namespace sockagent {
namespace cli {

using ::sockagent::vocab::DurationText;
using ::sockagent::vocab::FamilyName;
using ::sockagent::vocab::FormatTable;
using ::sockagent::vocab::JsonObject;
using ::sockagent::vocab::MessageJson;
using ::sockagent::vocab::ParseFamily;
using ::sockagent::vocab::ParseSocketType;
using ::sockagent::vocab::SocketStateName;
using ::sockagent::vocab::SocketTypeName;

namespace {

int GetHostname(const Cli& cli) {
  absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(false);
  if (!agent.ok()) return cli.Fail("gethostname", agent.status());
  absl::StatusOr<std::string> name = (*agent)->GetHostname();
  if (!name.ok()) return cli.Fail("gethostname", name.status());
  if (cli.json()) {
    cli.PrintJson(JsonObject().AddString("hostname", *name));
  } else {
    std::cout << *name << std::endl;
  }
  return kExitOk;
}

int GetAddrInfo(const Cli& cli, const std::string& host,
                const std::string& port, const std::string& family_text,
                const std::string& type_text, bool passive) {
  v1::Family family = v1::FAMILY_UNSPECIFIED;
  v1::SocketType type = v1::SOCKET_TYPE_UNSPECIFIED;
  if (!family_text.empty()) {
    absl::StatusOr<v1::Family> f = ParseFamily(family_text);
    if (!f.ok()) return cli.Usage(f.status());
    family = *f;
  }
  if (!type_text.empty()) {
    absl::StatusOr<v1::SocketType> t = ParseSocketType(type_text);
    if (!t.ok()) return cli.Usage(t.status());
    type = *t;
  }
  absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(false);
  if (!agent.ok()) return cli.Fail("getaddrinfo", agent.status());
  absl::StatusOr<std::vector<v1::AddrInfo>> results = (*agent)->GetAddrInfo(
      host, port, family, type, 0, passive ? AI_PASSIVE : 0);
  if (!results.ok()) return cli.Fail("getaddrinfo", results.status());
  if (cli.json()) {
    v1::GetAddrInfoResponse response;
    for (const v1::AddrInfo& info : *results) *response.add_results() = info;
    std::cout << MessageJson(response) << std::endl;
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"FAMILY", "TYPE", "PROTO", "ADDRESS", "CANONNAME"}};
  for (const v1::AddrInfo& info : *results) {
    rows.push_back({FamilyName(info.family()), SocketTypeName(info.type()),
                    absl::StrCat(info.protocol()),
                    FormatAddress(info.address()), info.canonical_name()});
  }
  std::cout << FormatTable(rows);
  return kExitOk;
}

int ListSockets(const Cli& cli) {
  absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(true);
  if (!agent.ok()) return cli.Fail("ls", agent.status());
  absl::StatusOr<std::vector<v1::SocketInfo>> sockets = (*agent)->ListSockets();
  if (!sockets.ok()) return cli.Fail("ls", sockets.status());
  if (cli.json()) {
    v1::ListSocketsResponse response;
    for (const v1::SocketInfo& info : *sockets) *response.add_sockets() = info;
    std::cout << MessageJson(response) << std::endl;
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"HANDLE", "FAMILY", "TYPE", "STATE", "LOCAL", "PEER", "SENT", "RECEIVED",
       "TIMEOUT", "NETNS"}};
  for (const v1::SocketInfo& info : *sockets) {
    rows.push_back(
        {info.handle(), FamilyName(info.family()), SocketTypeName(info.type()),
         SocketStateName(info.state()),
         info.has_local() ? FormatAddress(info.local()) : "-",
         info.has_peer() ? FormatAddress(info.peer()) : "-",
         absl::StrCat(info.bytes_sent()), absl::StrCat(info.bytes_received()),
         info.has_timeout() ? DurationText(FromProtoDuration(info.timeout()))
                            : "none",
         info.network_namespace().empty() ? "-" : info.network_namespace()});
  }
  std::cout << FormatTable(rows);
  return kExitOk;
}

// "k=v, k=v" in key order, or "none".
std::string LabelsText(
    const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.empty()) return "none";
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  return absl::StrJoin(sorted, ", ", absl::PairFormatter("="));
}

int Info(const Cli& cli) {
  absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(false);
  if (!agent.ok()) return cli.Fail("info", agent.status());
  absl::StatusOr<v1::GetAgentInfoResponse> info = (*agent)->GetAgentInfo();
  if (!info.ok()) return cli.Fail("info", info.status());
  if (cli.json()) {
    std::cout << MessageJson(*info) << std::endl;
    return kExitOk;
  }
  const v1::Limits& limits = info->limits();
  std::cout << "agent_version: " << info->agent_version() << "\n"
            << "api_version:   " << info->api_version() << "\n"
            << "hostname:      " << info->hostname() << "\n"
            << "incarnation:   " << info->incarnation() << "\n"
            << "features:      " << absl::StrJoin(info->features(), ", ")
            << "\n"
            << "labels:        " << LabelsText(info->labels()) << "\n"
            << "limits:        max_sessions=" << limits.max_sessions()
            << " max_sockets_per_session=" << limits.max_sockets_per_session()
            << " max_send_bytes=" << limits.max_send_bytes()
            << " max_recv_bytes=" << limits.max_recv_bytes()
            << " default_session_ttl="
            << DurationText(FromProtoDuration(limits.default_session_ttl()))
            << " max_session_ttl="
            << DurationText(FromProtoDuration(limits.max_session_ttl())) << "\n"
            << "stats:         sessions=" << info->stats().sessions()
            << " open_sockets=" << info->stats().open_sockets()
            << " waiting_operations=" << info->stats().waiting_operations()
            << std::endl;
  return kExitOk;
}

int Health(const Cli& cli, const std::string& service) {
  std::string state;
  AgentOptions security;
  if (absl::Status secured = cli.Secure(&security); !secured.ok()) {
    return cli.Usage(secured);
  }
  grpc::ChannelArguments args;
  if (!security.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(security.tls_server_name);
  }
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  if (!security.token.empty()) {
    interceptors.push_back(BearerTokenInterceptor(security.token));
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::experimental::CreateCustomChannelWithInterceptors(
          cli.agent(),
          security.credentials != nullptr ? security.credentials
                                          : grpc::InsecureChannelCredentials(),
          args, std::move(interceptors));
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  absl::Duration timeout = cli.call_timeout() == absl::InfiniteDuration()
                               ? absl::Seconds(5)
                               : cli.call_timeout();
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  // Not wait_for_ready: a refused connection fails the call at once.
  context.set_wait_for_ready(false);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  absl::Status status =
      FromGrpcStatus(stub->Check(&context, request, &response));
  if (status.ok()) {
    state = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
        response.status());
  } else if (status.code() != absl::StatusCode::kUnimplemented &&
             status.code() != absl::StatusCode::kNotFound) {
    // The agent did not answer: an RPC failure (exit 3), not a status.
    return cli.Fail("health", status);
  } else if (status.code() == absl::StatusCode::kNotFound) {
    state = "SERVICE_UNKNOWN";
  }
  if (state.empty()) {
    // No health service: an answered GetAgentInfo counts as SERVING.
    absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(false);
    if (!agent.ok()) return cli.Fail("health", agent.status());
    absl::Status status = (*agent)->GetAgentInfo().status();
    if (!status.ok()) return cli.Fail("health", status);
    state = "SERVING";
  }
  if (cli.json()) {
    cli.PrintJson(JsonObject().AddString("status", state));
  } else {
    std::cout << state << std::endl;
  }
  return state == "SERVING" ? kExitOk : kExitFalse;
}

}  // namespace

void RegisterHostCommands(Cli& cli) {
  CLI::App* gethostname = cli.AddCommand(
      "gethostname",
      "Print the agent host's name (needs no session).\n\nExample:\n  "
      "sockctl --agent node1:7700 gethostname");
  cli.OnRun(gethostname, [&] { return GetHostname(cli); });

  std::string& host = cli.Own<std::string>();
  std::string& port = cli.Own<std::string>();
  std::string& ai_family = cli.Own<std::string>();
  std::string& ai_type = cli.Own<std::string>();
  bool& passive = cli.Own<bool>();
  CLI::App* getaddrinfo = cli.AddCommand(
      "getaddrinfo",
      "Resolve a name on the agent host (needs no session).\n\nExample:\n  "
      "sockctl getaddrinfo localhost http --type stream");
  getaddrinfo->add_option("HOST", host, "host name or literal")->required();
  getaddrinfo->add_option("PORT", port, "port number or service name");
  getaddrinfo->add_option("--family", ai_family, "inet | inet6 | unix");
  getaddrinfo->add_option("--type", ai_type, "stream | dgram | seqpacket");
  getaddrinfo->add_flag("--passive", passive, "AI_PASSIVE");
  cli.OnRun(getaddrinfo, [&] {
    return GetAddrInfo(cli, host, port, ai_family, ai_type, passive);
  });

  CLI::App* ls = cli.AddCommand(
      "ls",
      "List the session's sockets: handle, family, type, state, addresses, "
      "byte counts, timeout.\n\nExample:\n  sockctl ls");
  cli.OnRun(ls, [&] { return ListSockets(cli); });

  CLI::App* info = cli.AddCommand(
      "info",
      "Print the agent's version, features, limits and incarnation (needs no "
      "session).\n\nExample:\n  sockctl --json info");
  cli.OnRun(info, [&] { return Info(cli); });

  std::string& health_service = cli.Own<std::string>();
  CLI::App* health = cli.AddCommand(
      "health",
      "Ask the agent's grpc.health.v1 service and print the status: exit 0 "
      "when SERVING, 1 when it answers anything else (NOT_SERVING while "
      "draining, SERVICE_UNKNOWN), 3 when the agent does not answer (a "
      "refused connection reports at once).\n\nExample:\n  until sockctl "
      "--timeout 1s health; do sleep 0.2; done");
  health->add_option("--service", health_service, "service name (\"\": all)");
  cli.OnRun(health, [&] { return Health(cli, health_service); });
}

}  // namespace cli
}  // namespace sockagent
