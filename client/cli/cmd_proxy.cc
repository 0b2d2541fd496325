// sockctl proxy: a Toxiproxy-style proxy on the agent (client/proxy.h), with
// fault flags per direction that change while it runs.

#include <signal.h>

#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/cli/fault_flags.h"
#include "client/proxy.h"
#include "client/vocab/json.h"
#include "client/vocab/quantities.h"
#include "client/vocab/words.h"
#include "proto/duration_codec.h"
#include "proto/units.h"

namespace sockagent {
namespace cli {
namespace {

using ::sockagent::vocab::DurationSeconds;
using ::sockagent::vocab::EnumWord;
using ::sockagent::vocab::JsonObject;
using ::sockagent::vocab::MessageJson;
using ::sockagent::vocab::TrafficEndName;

struct ProxyFlags {
  std::string listen;
  std::string upstream;
  bool udp = false;
  // Which way the fault flags shape: both, upstream (client -> upstream) or
  // downstream (upstream -> client).
  std::string direction = "both";
  bool reset_as_fin = false;
  std::string idle_timeout;
  FaultFlagText faults;
};

constexpr char kProxyHelp[] =
    "Run a Toxiproxy-style proxy on the agent: listen on --listen there, "
    "relay every accepted connection (--udp: every client's datagrams, one "
    "upstream socket per client) to --upstream inside the agent, with the "
    "fault flags shaping what the agent sends (--direction: both, upstream "
    "= toward --upstream, downstream = back to the client). Prints the "
    "bound address, then runs until SIGINT or SIGTERM, which close every "
    "socket. While it runs, each line on stdin replaces the faults: fault "
    "flags (with an optional --direction), or `clear`. With --json, one "
    "object per event: listening, faults, and connection_end with each "
    "connection's figures.\n\nExample:\n  sockctl proxy --listen "
    "127.0.0.1:0 --upstream 127.0.0.1:5432 --latency 100ms --jitter 10ms\n  "
    "sockctl proxy --listen 127.0.0.1:5353 --upstream 10.0.0.2:53 --udp "
    "--loss 5 --seed 7";

std::mutex& OutputMutex() {
  static std::mutex mu;
  return mu;
}

void PrintLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(OutputMutex());
  std::cout << line << std::endl;
}

std::string DirectionText(const v1::RelayDirection& d) {
  return absl::StrCat(
      "bytes=", d.bytes_sent(), " datagrams=", d.datagrams_sent(),
      " lost=", d.datagrams_lost(), " end=",
      EnumWord(
          *v1::RelayDirectionEnd_descriptor()->FindValueByNumber(d.end())));
}

void ReportConnection(const ProxyConnection& c, bool json) {
  if (json) {
    JsonObject object;
    object.AddString("event", "connection_end")
        .AddInt("id", static_cast<int64_t>(c.id));
    if (c.client.has_inet() || c.client.has_unix()) {
      object.AddString("client", FormatAddress(c.client));
    }
    if (c.result.ok()) {
      object.AddString("end", TrafficEndName(c.result->end()))
          .AddRaw("relay", MessageJson(c.result->relay()))
          .AddRaw("elapsed_s",
                  DurationSeconds(FromProtoDuration(c.result->elapsed())));
    } else {
      object.AddRaw("error", ErrorJson(c.result.status()));
    }
    PrintLine(object.Build());
    return;
  }
  if (c.result.ok()) {
    PrintLine(absl::StrCat(
        "connection ", c.id, " ", FormatAddress(c.client), " ended ",
        TrafficEndName(c.result->end()), ": to upstream ",
        DirectionText(c.result->relay().to_peer()), "; to client ",
        DirectionText(c.result->relay().from_peer())));
  } else {
    PrintLine(
        absl::StrCat("connection ", c.id, " ", FormatAddress(c.client),
                     " ended: ", DescribeError("relay", c.result.status())));
  }
}

// Applies `flags` to the faults of the directions it names.
absl::Status ApplyDirection(const std::string& direction,
                            const v1::Faults& faults, v1::Faults* up,
                            v1::Faults* down) {
  if (direction == "both" || direction.empty()) {
    *up = faults;
    *down = faults;
  } else if (direction == "upstream") {
    *up = faults;
  } else if (direction == "downstream") {
    *down = faults;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--direction: \"", direction,
                     "\" is not one of both, upstream, downstream"));
  }
  return absl::OkStatus();
}

int RunProxy(
    const std::function<absl::StatusOr<std::unique_ptr<Agent>>()>& connect,
    const ProxyFlags& flags, bool json) {
  auto usage = [json](const absl::Status& status) {
    if (json) {
      std::cout << ErrorJson(status) << std::endl;
    } else {
      std::cerr << "sockctl: " << status.message() << std::endl;
    }
    return kExitUsage;
  };
  auto fail = [json](absl::string_view context, const absl::Status& status) {
    if (json) {
      std::cout << ErrorJson(status) << std::endl;
    } else {
      std::cerr << "sockctl: " << DescribeError(context, status) << std::endl;
    }
    return ExitCodeFor(status);
  };
  ProxyOptions options;
  absl::StatusOr<v1::Address> listen = ParseAddress(flags.listen);
  if (!listen.ok()) {
    return usage(absl::InvalidArgumentError(
        absl::StrCat("--listen: ", listen.status().message())));
  }
  absl::StatusOr<v1::Address> upstream = ParseAddress(flags.upstream);
  if (!upstream.ok()) {
    return usage(absl::InvalidArgumentError(
        absl::StrCat("--upstream: ", upstream.status().message())));
  }
  options.listen = *listen;
  options.upstream = *upstream;
  options.udp = flags.udp;
  options.reset_as_fin = flags.reset_as_fin;
  if (!flags.idle_timeout.empty()) {
    absl::StatusOr<absl::Duration> idle = ParseDurationText(flags.idle_timeout);
    if (!idle.ok()) {
      return usage(absl::InvalidArgumentError(
          absl::StrCat("--idle-timeout: ", idle.status().message())));
    }
    options.idle_timeout = *idle;
  }
  absl::StatusOr<v1::Faults> faults = FaultsFromFlags(flags.faults);
  if (!faults.ok()) return usage(faults.status());
  if (absl::Status s = ApplyDirection(flags.direction, *faults,
                                      &options.to_upstream, &options.to_client);
      !s.ok()) {
    return usage(s);
  }

  // SIGINT and SIGTERM are taken by sigwait below; every thread started
  // from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<Agent>> agent = connect();
  if (!agent.ok()) return fail("proxy", agent.status());
  absl::StatusOr<std::unique_ptr<Proxy>> proxy = Proxy::Start(
      **agent, options,
      [json](const ProxyConnection& c) { ReportConnection(c, json); });
  if (!proxy.ok()) return fail("proxy", proxy.status());
  if (json) {
    PrintLine(JsonObject()
                  .AddString("event", "listening")
                  .AddString("address", FormatAddress((*proxy)->bound()))
                  .AddString("upstream", FormatAddress(options.upstream))
                  .Build());
  } else {
    PrintLine(FormatAddress((*proxy)->bound()));
  }

  // Fault changes from stdin, one line at a time, until EOF. The thread is
  // left blocked in read at exit.
  v1::Faults up = options.to_upstream;
  v1::Faults down = options.to_client;
  // The proxy the control thread may use; null once it is stopped.
  static std::mutex running_mu;
  static Proxy* running = nullptr;
  {
    std::lock_guard<std::mutex> lock(running_mu);
    running = proxy->get();
  }
  std::thread control([json, up, down]() mutable {
    std::string line;
    while (std::getline(std::cin, line)) {
      std::vector<std::string> words =
          absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (words.empty()) continue;
      ProxyFlags change;
      absl::Status status;
      if (words.size() == 1 && words[0] == "clear") {
        up = v1::Faults();
        down = v1::Faults();
      } else {
        CLI::App parser("faults", "proxy-faults");
        AddFaultFlags(&parser, &change.faults);
        parser.add_option("--direction", change.direction);
        std::vector<std::string> args(words.rbegin(), words.rend());
        try {
          parser.parse(args);
        } catch (const CLI::ParseError& e) {
          status = absl::InvalidArgumentError(e.what());
        }
        absl::StatusOr<v1::Faults> parsed =
            status.ok() ? FaultsFromFlags(change.faults)
                        : absl::StatusOr<v1::Faults>(status);
        if (!parsed.ok()) {
          status = parsed.status();
        } else {
          status = ApplyDirection(change.direction, *parsed, &up, &down);
        }
      }
      if (status.ok()) {
        std::lock_guard<std::mutex> lock(running_mu);
        if (running == nullptr) return;
        status = running->SetFaults(up, down);
      }
      if (json) {
        JsonObject object;
        object.AddString("event", "faults");
        if (status.ok()) {
          object.AddRaw("to_upstream", MessageJson(up))
              .AddRaw("to_client", MessageJson(down));
        } else {
          object.AddRaw("error", ErrorJson(status));
        }
        PrintLine(object.Build());
      } else if (status.ok()) {
        PrintLine("faults set");
      } else {
        std::lock_guard<std::mutex> lock(OutputMutex());
        std::cerr << "sockctl: proxy faults: " << status.message() << std::endl;
      }
    }
  });
  control.detach();

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  {
    std::lock_guard<std::mutex> lock(running_mu);
    running = nullptr;
  }
  (*proxy)->Stop();
  return kExitOk;
}

}  // namespace

void RegisterProxyCommands(Cli& cli) {
  ProxyFlags& flags = cli.Own<ProxyFlags>();
  CLI::App* proxy = cli.AddCommand("proxy", kProxyHelp);
  proxy
      ->add_option("--listen", flags.listen,
                   "HOST:PORT the agent listens on (port 0: any)")
      ->required();
  proxy
      ->add_option("--upstream", flags.upstream,
                   "HOST:PORT every connection is relayed to")
      ->required();
  proxy->add_flag("--udp", flags.udp,
                  "relay datagrams (one upstream socket per client)");
  proxy->add_option("--direction", flags.direction,
                    "which way the faults shape: both (default), upstream, "
                    "downstream");
  proxy->add_flag("--reset-as-fin", flags.reset_as_fin,
                  "pass an RST on as an orderly FIN");
  proxy->add_option("--idle-timeout", flags.idle_timeout,
                    "--udp: close a client's upstream socket after this "
                    "long unused (default 60s)");
  AddFaultFlags(proxy, &flags.faults);
  cli.OnRun(proxy, [&cli, &flags] {
    return RunProxy(
        [&cli]() -> absl::StatusOr<std::unique_ptr<Agent>> {
          // The proxy's sockets live in --session when given (so another
          // sockctl can see them), otherwise in a session of its own bound
          // to this process's connection.
          AgentOptions options;
          options.target = cli.agent();
          if (absl::Status s = cli.Secure(&options); !s.ok()) return s;
          options.session_id = cli.options().session;
          options.open_session = cli.options().session.empty();
          options.keepalive = true;
          options.call_timeout = cli.call_timeout();
          options.connect_timeout =
              cli.call_timeout() == absl::InfiniteDuration()
                  ? absl::Seconds(10)
                  : cli.call_timeout();
          options.fail_fast = true;
          return Agent::Connect(options);
        },
        flags, cli.json());
  });
}

}  // namespace cli
}  // namespace sockagent
