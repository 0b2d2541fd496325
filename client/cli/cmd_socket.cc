// sockctl socket, bind, listen, accept, connect: creating and connecting
// sockets.

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/socket.h"
#include "client/vocab/json.h"
#include "client/vocab/words.h"

namespace sockagent {
namespace cli {

using ::sockagent::vocab::JsonObject;
using ::sockagent::vocab::ParseFamily;
using ::sockagent::vocab::ParseSocketType;

namespace {

// --netns: NAME (under /var/run/netns), pid:N or pod:UID.
absl::StatusOr<v1::NetworkNamespace> ParseNetworkNamespace(
    const std::string& text) {
  v1::NetworkNamespace netns;
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "pid:")) {
    uint32_t pid = 0;
    if (!absl::SimpleAtoi(rest, &pid) || pid == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--netns: '", text, "': pid:N needs a process id"));
    }
    netns.set_pid(pid);
  } else if (absl::ConsumePrefix(&rest, "pod:")) {
    netns.set_pod_uid(std::string(rest));
  } else if (!text.empty()) {
    netns.set_name(text);
  }
  return netns;
}

int CreateSocket(const Cli& cli, const std::string& family_text,
                 const std::string& type_text, int protocol,
                 const std::string& netns_text) {
  absl::StatusOr<v1::Family> family = ParseFamily(family_text);
  if (!family.ok()) return cli.Usage(family.status());
  absl::StatusOr<v1::SocketType> type = ParseSocketType(type_text);
  if (!type.ok()) return cli.Usage(type.status());
  std::optional<v1::NetworkNamespace> netns;
  if (!netns_text.empty()) {
    absl::StatusOr<v1::NetworkNamespace> parsed =
        ParseNetworkNamespace(netns_text);
    if (!parsed.ok()) return cli.Usage(parsed.status());
    netns = *parsed;
  }
  absl::StatusOr<std::unique_ptr<Agent>> agent = cli.ConnectAgent(true);
  if (!agent.ok()) return cli.Fail("socket", agent.status());
  absl::StatusOr<Socket> socket =
      netns.has_value()
          ? (*agent)->CreateSocketIn(*netns, *family, *type, protocol)
          : (*agent)->CreateSocket(*family, *type, protocol);
  if (!socket.ok()) return cli.Fail("socket", socket.status());
  std::string handle = socket->Release();
  if (cli.json()) {
    cli.PrintJson(JsonObject().AddString("handle", handle));
  } else {
    std::cout << handle << std::endl;
  }
  return kExitOk;
}

int Bind(const Cli& cli, const std::string& handle,
         const std::string& address_text) {
  absl::StatusOr<v1::Address> address = ParseAddressArg(address_text);
  if (!address.ok()) return cli.Usage(address.status());
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<v1::Address> bound = socket.Bind(*address);
    if (!bound.ok()) return cli.Fail("bind", bound.status());
    return cli.PrintAddress(*bound);
  });
}

int Listen(const Cli& cli, const std::string& handle, int backlog) {
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.Listen(backlog);
    if (!status.ok()) return cli.Fail("listen", status);
    if (cli.json()) cli.PrintJson(JsonObject());
    return kExitOk;
  });
}

int Accept(const Cli& cli, const std::string& handle) {
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<AcceptResult> accepted = socket.Accept(cli.deadline());
    if (!accepted.ok()) return cli.Fail("accept", accepted.status());
    std::string new_handle = accepted->socket.Release();
    if (cli.json()) {
      cli.PrintJson(JsonObject()
                        .AddString("handle", new_handle)
                        .AddString("peer", FormatAddress(accepted->peer)));
    } else {
      std::cout << new_handle << " " << FormatAddress(accepted->peer)
                << std::endl;
    }
    return kExitOk;
  });
}

int Connect(const Cli& cli, const std::string& handle,
            const std::string& address_text) {
  absl::StatusOr<v1::Address> address = ParseAddressArg(address_text);
  if (!address.ok()) return cli.Usage(address.status());
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<v1::Address> local =
        socket.Connect(*address, cli.deadline());
    if (!local.ok()) return cli.Fail("connect", local.status());
    return cli.PrintAddress(*local);
  });
}

}  // namespace

void RegisterSocketCommands(Cli& cli) {
  std::string& handle = cli.Own<std::string>();
  std::string& address = cli.Own<std::string>();

  std::string& family = cli.Own<std::string>();
  family = "inet";
  std::string& type = cli.Own<std::string>();
  type = "stream";
  int& protocol = cli.Own<int>();
  CLI::App* socket_cmd = cli.AddCommand(
      "socket",
      "Create a socket on the agent and print its handle.\n\nExample:\n  "
      "H=$(sockctl socket --family inet6 --type dgram)");
  socket_cmd->add_option("--family", family, "inet | inet6 | unix")
      ->capture_default_str();
  socket_cmd->add_option("--type", type, "stream | dgram | seqpacket")
      ->capture_default_str();
  socket_cmd->add_option("--protocol", protocol,
                         "protocol number (0: default)");
  std::string& netns = cli.Own<std::string>();
  socket_cmd->add_option(
      "--netns", netns,
      "create it inside this network namespace of the agent's host: NAME "
      "(/var/run/netns/NAME), pid:N or pod:UID (the agent needs "
      "--allow-network-namespaces and a policy granting it)");
  cli.OnRun(socket_cmd,
            [&] { return CreateSocket(cli, family, type, protocol, netns); });

  CLI::App* bind = cli.AddCommand(
      "bind",
      "Bind a socket and print the bound address (port 0 becomes the "
      "kernel's choice).\n\nExample:\n  sockctl bind $H 127.0.0.1:0   # "
      "prints e.g. 127.0.0.1:41234");
  AddHandle(bind, &handle);
  bind->add_option("ADDRESS", address, kAddressForms)->required();
  cli.OnRun(bind, [&] { return Bind(cli, handle, address); });

  int& backlog = cli.Own<int>();
  backlog = 128;
  CLI::App* listen = cli.AddCommand(
      "listen",
      "Mark a stream socket as listening.\n\nExample:\n  sockctl listen $H "
      "--backlog 16");
  AddHandle(listen, &handle);
  listen->add_option("--backlog", backlog, "queue length")
      ->capture_default_str();
  cli.OnRun(listen, [&] { return Listen(cli, handle, backlog); });

  CLI::App* accept = cli.AddCommand(
      "accept",
      "Wait for a connection and print \"NEW_HANDLE PEER\".\n\nExample:\n  "
      "read A PEER < <(sockctl accept $L)");
  AddHandle(accept, &handle);
  cli.OnRun(accept, [&] { return Accept(cli, handle); });

  CLI::App* connect = cli.AddCommand(
      "connect",
      "Connect a socket (as seen from the agent) and print the local "
      "address.\n\nExample:\n  sockctl connect $H 127.0.0.1:8080");
  AddHandle(connect, &handle);
  connect->add_option("ADDRESS", address, kAddressForms)->required();
  cli.OnRun(connect, [&] { return Connect(cli, handle, address); });
}

}  // namespace cli
}  // namespace sockagent
