// sockctl getsockname, getpeername, setsockopt, getsockopt, settimeout,
// gettimeout: a socket's names and options.

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/socket.h"
#include "client/vocab/json.h"
#include "client/vocab/quantities.h"
#include "client/vocab/socket_options.h"

namespace sockagent {
namespace cli {

using ::sockagent::vocab::DurationSeconds;
using ::sockagent::vocab::DurationText;
using ::sockagent::vocab::FormatOptionValue;
using ::sockagent::vocab::JsonObject;
using ::sockagent::vocab::OptionNames;
using ::sockagent::vocab::OptionSpec;
using ::sockagent::vocab::ParseOptionName;
using ::sockagent::vocab::ParseOptionValue;
using ::sockagent::vocab::ParseTimeout;

namespace {

int SockName(const Cli& cli, const std::string& handle, bool peer) {
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<v1::Address> address =
        peer ? socket.GetPeerName() : socket.GetSockName();
    if (!address.ok()) {
      return cli.Fail(peer ? "getpeername" : "getsockname", address.status());
    }
    return cli.PrintAddress(*address);
  });
}

int SetSockOpt(const Cli& cli, const std::string& handle,
               const std::string& name, const std::string& value_text) {
  absl::StatusOr<OptionSpec> spec = ParseOptionName(name);
  if (!spec.ok()) return cli.Usage(spec.status());
  if (!spec->settable) {
    return cli.Usage(absl::InvalidArgumentError(
        absl::StrCat("option ", name, " is read-only")));
  }
  absl::StatusOr<v1::OptionValue> value =
      ParseOptionValue(spec->kind, value_text);
  if (!value.ok()) return cli.Usage(value.status());
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.SetSockOpt(spec->option, *value);
    if (!status.ok()) return cli.Fail("setsockopt", status);
    if (cli.json()) cli.PrintJson(JsonObject());
    return kExitOk;
  });
}

int GetSockOpt(const Cli& cli, const std::string& handle,
               const std::string& name) {
  absl::StatusOr<OptionSpec> spec = ParseOptionName(name);
  if (!spec.ok()) return cli.Usage(spec.status());
  if (!spec->gettable) {
    return cli.Usage(absl::InvalidArgumentError(
        absl::StrCat("option ", name, " is write-only")));
  }
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<v1::OptionValue> value = socket.GetSockOpt(spec->option);
    if (!value.ok()) return cli.Fail("getsockopt", value.status());
    if (cli.json()) {
      cli.PrintJson(JsonObject().AddString("value", FormatOptionValue(*value)));
    } else {
      std::cout << FormatOptionValue(*value) << std::endl;
    }
    return kExitOk;
  });
}

int SetTimeout(const Cli& cli, const std::string& handle,
               const std::string& text) {
  absl::StatusOr<std::optional<absl::Duration>> timeout = ParseTimeout(text);
  if (!timeout.ok()) return cli.Usage(timeout.status());
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.SetTimeout(*timeout);
    if (!status.ok()) return cli.Fail("settimeout", status);
    if (cli.json()) cli.PrintJson(JsonObject());
    return kExitOk;
  });
}

int GetTimeout(const Cli& cli, const std::string& handle) {
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<std::optional<absl::Duration>> timeout = socket.GetTimeout();
    if (!timeout.ok()) return cli.Fail("gettimeout", timeout.status());
    if (cli.json()) {
      cli.PrintJson(JsonObject().AddRaw(
          "timeout_s",
          timeout->has_value() ? DurationSeconds(**timeout) : "null"));
    } else {
      std::cout << (timeout->has_value() ? DurationText(**timeout) : "none")
                << std::endl;
    }
    return kExitOk;
  });
}

}  // namespace

void RegisterOptionsCommands(Cli& cli) {
  std::string& handle = cli.Own<std::string>();
  std::string& name = cli.Own<std::string>();
  std::string& value = cli.Own<std::string>();
  CLI::App* getsockname = cli.AddCommand(
      "getsockname",
      "Print a socket's local address.\n\nExample:\n  sockctl getsockname $H");
  AddHandle(getsockname, &handle);
  cli.OnRun(getsockname, [&] { return SockName(cli, handle, false); });

  CLI::App* getpeername = cli.AddCommand(
      "getpeername",
      "Print a connected socket's peer address.\n\nExample:\n  sockctl "
      "getpeername $H");
  AddHandle(getpeername, &handle);
  cli.OnRun(getpeername, [&] { return SockName(cli, handle, true); });

  const std::string option_names = absl::StrJoin(OptionNames(), " ");
  CLI::App* setsockopt = cli.AddCommand(
      "setsockopt",
      absl::StrCat("Set a socket option. Values: on/off (bool), an integer, "
                   "on:SECONDS or off (SO_LINGER), GROUP[@IFACE] "
                   "(memberships). Names: ",
                   option_names,
                   "\n\nExample:\n  sockctl setsockopt $H SO_REUSEADDR on; "
                   "sockctl setsockopt $H SO_LINGER on:5"));
  AddHandle(setsockopt, &handle);
  setsockopt->add_option("NAME", name, "option name")->required();
  setsockopt->add_option("VALUE", value, "option value")->required();
  cli.OnRun(setsockopt, [&] { return SetSockOpt(cli, handle, name, value); });

  CLI::App* getsockopt = cli.AddCommand(
      "getsockopt",
      absl::StrCat("Print a socket option's value. Names: ", option_names,
                   "\n\nExample:\n  sockctl getsockopt $H SO_RCVBUF"));
  AddHandle(getsockopt, &handle);
  getsockopt->add_option("NAME", name, "option name")->required();
  cli.OnRun(getsockopt, [&] { return GetSockOpt(cli, handle, name); });

  CLI::App* settimeout = cli.AddCommand(
      "settimeout",
      "Python's settimeout: none = blocking, 0 = non-blocking (EAGAIN), a "
      "duration = waits fail with DEADLINE_EXCEEDED after it.\n\nExample:\n"
      "  sockctl settimeout $H 2.5s");
  AddHandle(settimeout, &handle);
  std::string& timeout_value = cli.Own<std::string>();
  settimeout->add_option("TIMEOUT", timeout_value, "none | 0 | 2.5s")
      ->required();
  cli.OnRun(settimeout, [&] { return SetTimeout(cli, handle, timeout_value); });

  CLI::App* gettimeout = cli.AddCommand(
      "gettimeout",
      "Print a socket's timeout (none = blocking).\n\nExample:\n  sockctl "
      "gettimeout $H");
  AddHandle(gettimeout, &handle);
  cli.OnRun(gettimeout, [&] { return GetTimeout(cli, handle); });
}

}  // namespace cli
}  // namespace sockagent
