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
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/cli/fault_flags.h"
#include "client/cli/proxy_control.h"
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
  std::string control;
  FaultFlagText faults;
};

// `sockctl proxy-faults`.
struct ProxyFaultsFlags {
  std::string control;
  std::string direction = "both";
  bool clear = false;
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
    "flags (with an optional --direction), or `clear`; with --control PATH, "
    "`sockctl proxy-faults --control PATH ...` does the same from another "
    "process. With --json, one "
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
      object.AddRaw("error", ErrorObjectJson(c.result.status()));
    }
    PrintLine(object.Build());
    return;
  }
  // A udp proxy's one relay has no client address of its own.
  const std::string who =
      c.client.has_inet() || c.client.has_unix()
          ? absl::StrCat("connection ", c.id, " ", FormatAddress(c.client))
          : std::string("datagram relay");
  if (c.result.ok()) {
    PrintLine(absl::StrCat(
        who, " ended ", TrafficEndName(c.result->end()), ": to upstream ",
        DirectionText(c.result->relay().to_peer()), "; to client ",
        DirectionText(c.result->relay().from_peer())));
  } else {
    PrintLine(absl::StrCat(
        who, " ended: ", DescribeError("relay", c.result.status())));
  }
}

// The running proxy's faults, changed line by line from stdin and from
// --control requests alike (ParseFaultChange). Thread-safe.
class FaultControl {
 public:
  FaultControl(Proxy* proxy, v1::Faults up, v1::Faults down, bool json)
      : proxy_(proxy),
        up_(std::move(up)),
        down_(std::move(down)),
        json_(json) {}

  // Applies one change line, prints the outcome as the proxy's event, and
  // returns the "faults" event as JSON (the answer to a --control request).
  std::string Apply(absl::string_view line) {
    absl::Status status;
    v1::Faults up, down;
    {
      std::lock_guard<std::mutex> lock(mu_);
      absl::StatusOr<FaultChange> change = ParseFaultChange(line);
      up = up_;
      down = down_;
      if (!change.ok()) {
        status = change.status();
      } else if (proxy_ == nullptr) {
        status = absl::UnavailableError("the proxy is stopping");
      } else {
        ApplyFaultChange(*change, &up, &down);
        status = proxy_->SetFaults(up, down);
        if (status.ok()) {
          up_ = up;
          down_ = down;
        }
      }
    }
    JsonObject event;
    event.AddString("event", "faults");
    if (status.ok()) {
      event.AddRaw("to_upstream", MessageJson(up))
          .AddRaw("to_client", MessageJson(down));
    } else {
      event.AddRaw("error", ErrorObjectJson(status));
    }
    const std::string answer = event.Build();
    if (json_) {
      PrintLine(answer);
    } else if (status.ok()) {
      PrintLine("faults set");
    } else {
      std::lock_guard<std::mutex> lock(OutputMutex());
      std::cerr << "sockctl: proxy faults: " << status.message() << std::endl;
    }
    return answer;
  }

  // Later changes are refused (the proxy is stopping).
  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    proxy_ = nullptr;
  }

 private:
  std::mutex mu_;
  Proxy* proxy_;
  v1::Faults up_;
  v1::Faults down_;
  const bool json_;
};

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
  if (flags.direction != "both" && flags.direction != "upstream" &&
      flags.direction != "downstream") {
    return usage(absl::InvalidArgumentError(
        absl::StrCat("--direction: \"", flags.direction,
                     "\" is not one of both, upstream, downstream")));
  }
  FaultChange initial;
  initial.direction = flags.direction;
  initial.faults = *faults;
  ApplyFaultChange(initial, &options.to_upstream, &options.to_client);

  // The control socket comes first: a path another proxy holds is refused
  // before anything is opened on the agent.
  std::unique_ptr<ControlSocket> control_socket;
  if (!flags.control.empty()) {
    absl::StatusOr<std::unique_ptr<ControlSocket>> listening =
        ControlSocket::Listen(flags.control);
    if (!listening.ok()) return fail("proxy", listening.status());
    control_socket = *std::move(listening);
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

  // Fault changes from stdin, one line at a time, until EOF, and from the
  // control socket. The stdin thread is left blocked in read at exit; it
  // only touches `control`, which lives as long as the process.
  static FaultControl* control = nullptr;
  control = new FaultControl(proxy->get(), options.to_upstream,
                             options.to_client, json);
  std::thread stdin_reader([] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      control->Apply(line);
    }
  });
  stdin_reader.detach();
  if (control_socket != nullptr) {
    control_socket->Serve(
        [](absl::string_view line) { return control->Apply(line); });
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  control->Detach();
  control_socket.reset();  // stops serving and removes the socket file
  (*proxy)->Stop();
  return kExitOk;
}

// How long proxy-faults waits for the proxy's answer.
constexpr absl::Duration kControlTimeout = absl::Seconds(30);

// The status an answer's "error" ({"code": ..., "message": ...}, as
// ErrorObjectJson writes it) carries.
absl::Status AnswerError(const nlohmann::json& error) {
  if (!error.is_object()) return absl::UnknownError(error.dump());
  const std::string code = error.value("code", "UNKNOWN");
  const std::string message = error.value("message", "");
  for (int c = 0; c <= static_cast<int>(absl::StatusCode::kUnauthenticated);
       ++c) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == code) {
      return absl::Status(static_cast<absl::StatusCode>(c), message);
    }
  }
  return absl::UnknownError(message);
}

int ProxyFaults(const Cli& cli, const ProxyFaultsFlags& flags) {
  if (flags.control.empty()) {
    return cli.Usage(absl::InvalidArgumentError(
        "--control: give the PATH the proxy was started with (sockctl "
        "proxy --control PATH)"));
  }
  if (flags.clear == flags.faults.any()) {
    return cli.Usage(absl::InvalidArgumentError(
        flags.clear ? "--clear takes no other fault flag"
                    : "give at least one fault flag, or --clear"));
  }
  // The line the proxy's stdin would take; checked here first, so a
  // malformed flag is a usage error that never reaches the proxy.
  std::vector<std::string> words = FaultFlagWords(flags.faults);
  if (flags.clear) words.push_back("--clear");
  words.push_back("--direction");
  words.push_back(flags.direction);
  const std::string line = absl::StrJoin(words, " ");
  if (absl::StatusOr<FaultChange> change = ParseFaultChange(line);
      !change.ok()) {
    return cli.Usage(change.status());
  }
  absl::StatusOr<std::string> answer =
      SendControlLine(flags.control, line, kControlTimeout);
  if (!answer.ok()) return cli.Fail("proxy-faults", answer.status());
  nlohmann::json event = nlohmann::json::parse(*answer, nullptr, false);
  if (event.is_discarded() || !event.is_object()) {
    return cli.Fail("proxy-faults", absl::InternalError(absl::StrCat(
                                        "--control ", flags.control,
                                        ": not a proxy's answer: ", *answer)));
  }
  if (event.contains("error")) {
    const absl::Status status = AnswerError(event["error"]);
    if (cli.json()) {
      std::cout << *answer << std::endl;
      return ExitCodeFor(status);
    }
    return cli.Fail("proxy faults", status);
  }
  if (cli.json()) {
    std::cout << *answer << std::endl;
  } else {
    std::cout << "faults set" << std::endl;
  }
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
  proxy->add_option("--control", flags.control,
                    "PATH of a Unix socket on this host where `sockctl "
                    "proxy-faults --control PATH` changes the faults (mode "
                    "0600, removed at exit)");
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

  ProxyFaultsFlags& change = cli.Own<ProxyFaultsFlags>();
  CLI::App* proxy_faults = cli.AddCommand(
      "proxy-faults",
      "Change the faults of a running `sockctl proxy --control PATH` from "
      "another process: replaces the faults of --direction (both, "
      "upstream = toward the upstream, downstream = back to the client) "
      "with the fault flags (those of `sockctl proxy`), or removes them "
      "with --clear. Prints the proxy's answer: `faults set`, or with "
      "--json its faults event ({\"event\":\"faults\",\"to_upstream\":..., "
      "\"to_client\":...}); a fault the proxy's sockets cannot obey is "
      "the proxy's error, named, with a non-zero exit.\n\nExample:\n  "
      "sockctl proxy --listen 127.0.0.1:0 --upstream 127.0.0.1:5432 "
      "--control /tmp/db.proxy &\n  sockctl proxy-faults --control "
      "/tmp/db.proxy --blackhole        # partition\n  sockctl proxy-faults "
      "--control /tmp/db.proxy --clear            # heal\n  sockctl "
      "proxy-faults --control /tmp/db.proxy --latency 100ms --direction "
      "upstream");
  proxy_faults
      ->add_option("--control", change.control,
                   "PATH given to `sockctl proxy --control`")
      ->required();
  proxy_faults->add_option("--direction", change.direction,
                           "which faults change: both (default), upstream, "
                           "downstream");
  proxy_faults->add_flag("--clear", change.clear,
                         "remove the direction's faults");
  AddFaultFlags(proxy_faults, &change.faults);
  cli.OnRun(proxy_faults, [&cli, &change] { return ProxyFaults(cli, change); });
}

}  // namespace cli
}  // namespace sockagent
