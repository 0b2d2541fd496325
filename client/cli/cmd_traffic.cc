// sockctl traffic echo|sink|source|relay, abort, faults: agent-side traffic
// and fault injection.

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/cli/fault_flags.h"
#include "client/socket.h"
#include "client/vocab/json.h"
#include "client/vocab/quantities.h"
#include "client/vocab/traffic.h"
#include "client/vocab/words.h"
#include "proto/duration_codec.h"
#include "proto/units.h"

namespace sockagent {
namespace cli {

using ::sockagent::vocab::FormatRelayDirection;
using ::sockagent::vocab::FormatTraffic;
using ::sockagent::vocab::JsonObject;
using ::sockagent::vocab::ParseByteCount;
using ::sockagent::vocab::ParseTrafficPattern;
using ::sockagent::vocab::TrafficJson;

namespace {

// Flags of `sockctl traffic`; strings so that sizes take units (64K, 1MB).
struct TrafficFlags {
  std::string max_bytes = "0";
  std::string bytes = "0";
  std::string duration;
  std::string pattern = "sequence";
  uint64_t seed = 0;
  std::string rate = "0";
  bool shutdown_write = false;
  std::string datagram_bytes = "0";
  std::string to;
};

int PrintTraffic(const Cli& cli, const char* context,
                 const absl::StatusOr<v1::TrafficResponse>& result) {
  if (!result.ok()) return cli.Fail(context, result.status());
  if (cli.json()) {
    std::cout << TrafficJson(*result) << std::endl;
    return kExitOk;
  }
  std::cout << FormatTraffic(*result) << std::endl;
  if (result->has_relay()) {
    const v1::RelayFigures& relay = result->relay();
    std::cout << "to_peer: " << FormatRelayDirection(relay.to_peer()) << "\n"
              << "from_peer: " << FormatRelayDirection(relay.from_peer());
    if (relay.clients() != 0 || relay.refused_datagrams() != 0) {
      std::cout << "\nclients=" << relay.clients()
                << " refused_datagrams=" << relay.refused_datagrams();
    }
    std::cout << std::endl;
  }
  return kExitOk;
}

// kind: "echo", "sink" or "source".
int Traffic(const Cli& cli, const std::string& kind, const std::string& handle,
            const TrafficFlags& flags) {
  v1::TrafficRequest request;
  if (!flags.duration.empty()) {
    absl::StatusOr<absl::Duration> duration = ParseDurationText(flags.duration);
    if (!duration.ok()) return cli.Usage(duration.status());
    if (*duration <= absl::ZeroDuration()) {
      return cli.Usage(
          absl::InvalidArgumentError("--duration must be positive"));
    }
    SetProtoDuration(*duration, request.mutable_duration());
  }
  if (kind == "echo" || kind == "sink") {
    absl::StatusOr<uint64_t> max_bytes =
        ParseByteCount(flags.max_bytes, "--max-bytes");
    if (!max_bytes.ok()) return cli.Usage(max_bytes.status());
    if (kind == "echo") {
      request.mutable_echo()->set_max_bytes(*max_bytes);
    } else {
      request.mutable_sink()->set_max_bytes(*max_bytes);
    }
  } else {
    v1::SourceTraffic* source = request.mutable_source();
    absl::StatusOr<uint64_t> bytes = ParseByteCount(flags.bytes, "--bytes");
    if (!bytes.ok()) return cli.Usage(bytes.status());
    absl::StatusOr<uint64_t> rate = ParseByteCount(flags.rate, "--rate");
    if (!rate.ok()) return cli.Usage(rate.status());
    absl::StatusOr<uint64_t> datagram =
        ParseByteCount(flags.datagram_bytes, "--datagram-bytes");
    if (!datagram.ok()) return cli.Usage(datagram.status());
    if (*datagram > UINT32_MAX) {
      return cli.Usage(
          absl::InvalidArgumentError("--datagram-bytes is too large"));
    }
    absl::StatusOr<v1::TrafficPattern> pattern =
        ParseTrafficPattern(flags.pattern);
    if (!pattern.ok()) return cli.Usage(pattern.status());
    if (*bytes == 0 && flags.duration.empty()) {
      return cli.Usage(absl::InvalidArgumentError(
          "source needs an end: give --bytes or --duration"));
    }
    source->set_bytes(*bytes);
    source->set_pattern(*pattern);
    source->set_seed(flags.seed);
    source->set_rate_bytes_per_second(*rate);
    source->set_shutdown_write_at_end(flags.shutdown_write);
    source->set_datagram_bytes(static_cast<uint32_t>(*datagram));
    if (!flags.to.empty()) {
      absl::StatusOr<v1::Address> to = ParseAddressArg(flags.to);
      if (!to.ok()) return cli.Usage(to.status());
      *source->mutable_destination() = *std::move(to);
    }
  }
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    return PrintTraffic(cli, "traffic",
                        socket.Traffic(request, cli.deadline()));
  });
}

// `sockctl traffic relay A B`.
struct RelayFlags {
  std::string peer;
  bool reset_as_fin = false;
  std::string idle_timeout;
  std::string upstream;
  std::string duration;
};

// Parses an optional positive duration flag.
absl::Status OptionalDuration(const std::string& text, const char* flag,
                              std::optional<absl::Duration>* out) {
  if (text.empty()) return absl::OkStatus();
  absl::StatusOr<absl::Duration> d = ParseDurationText(text);
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", d.status().message()));
  }
  if (*d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " must be positive"));
  }
  *out = *d;
  return absl::OkStatus();
}

int Relay(const Cli& cli, const std::string& handle, const RelayFlags& flags) {
  std::optional<absl::Duration> idle_timeout, duration;
  for (absl::Status s :
       {OptionalDuration(flags.idle_timeout, "--idle-timeout", &idle_timeout),
        OptionalDuration(flags.duration, "--duration", &duration)}) {
    if (!s.ok()) return cli.Usage(s);
  }
  std::optional<v1::Address> upstream;
  if (!flags.upstream.empty()) {
    absl::StatusOr<v1::Address> parsed = ParseAddressArg(flags.upstream);
    if (!parsed.ok()) return cli.Usage(parsed.status());
    upstream = *parsed;
  }
  return cli.WithSocket(handle, [&](Agent& agent, Socket& socket) {
    // The kind of relay follows A's socket type.
    absl::StatusOr<std::vector<v1::SocketInfo>> sockets = agent.ListSockets();
    if (!sockets.ok()) return cli.Fail("traffic relay", sockets.status());
    auto info = std::find_if(
        sockets->begin(), sockets->end(),
        [&](const v1::SocketInfo& s) { return s.handle() == handle; });
    const bool datagram =
        info != sockets->end() && info->type() == v1::SOCKET_TYPE_DGRAM;
    if (!datagram) {
      if (!flags.idle_timeout.empty() || upstream.has_value()) {
        return cli.Usage(absl::InvalidArgumentError(absl::StrCat(
            flags.idle_timeout.empty() ? "--upstream" : "--idle-timeout",
            ": only for datagram relays (A is a stream socket)")));
      }
      return PrintTraffic(cli, "traffic relay",
                          socket.Relay(flags.peer, flags.reset_as_fin, duration,
                                       cli.deadline()));
    }
    if (flags.reset_as_fin) {
      return cli.Usage(absl::InvalidArgumentError(
          "--reset-as-fin: only for stream relays (A is a datagram socket)"));
    }
    if (!upstream.has_value()) {
      // B connected to the upstream names it.
      absl::StatusOr<v1::Address> peer =
          agent.AttachSocket(flags.peer).GetPeerName();
      if (!peer.ok()) {
        return cli.Usage(absl::InvalidArgumentError(absl::StrCat(
            "--upstream: needed for a datagram relay unless B is connected "
            "(getpeername of B: ",
            peer.status().message(), ")")));
      }
      upstream = *peer;
    }
    return PrintTraffic(
        cli, "traffic relay",
        socket.RelayDatagrams(*upstream, flags.peer, idle_timeout, duration,
                              cli.deadline()));
  });
}

int Abort(const Cli& cli, const std::string& handle) {
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.Abort();
    if (!status.ok()) return cli.Fail("abort", status);
    if (cli.json()) cli.PrintJson(JsonObject());
    return kExitOk;
  });
}

// `sockctl faults`: the shared fault flags (fault_flags.h) plus --clear.
struct FaultFlags {
  FaultFlagText faults;
  bool clear = false;
};

int Faults(const Cli& cli, const std::string& handle, const FaultFlags& flags) {
  if (flags.clear == flags.faults.any()) {
    return cli.Usage(absl::InvalidArgumentError(
        flags.clear ? "--clear takes no other fault flag"
                    : "give at least one fault flag, or --clear"));
  }
  absl::StatusOr<v1::Faults> faults = FaultsFromFlags(flags.faults);
  if (!faults.ok()) return cli.Usage(faults.status());
  if (faults->close_with_reset() && faults->close_after_bytes() == 0 &&
      flags.faults.close_after_time.empty()) {
    return cli.Usage(absl::InvalidArgumentError(
        "--reset goes with --close-after-bytes or --close-after-time (for "
        "an RST now, use `sockctl abort`)"));
  }
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    // A fault the socket cannot obey is refused by the agent, by name.
    absl::Status status = socket.SetFaults(*faults);
    if (!status.ok()) return cli.Fail("faults", status);
    if (cli.json()) cli.PrintJson(JsonObject());
    return kExitOk;
  });
}

}  // namespace

void RegisterTrafficCommands(Cli& cli) {
  std::string& handle = cli.Own<std::string>();
  CLI::App* traffic = cli.AddCommand(
      "traffic",
      "Run an echo, sink or source inside the agent, or relay between two "
      "of its sockets; the bytes never cross the control channel. Waits "
      "until it ends, then prints what it did: why it ended (eof, bytes, "
      "duration, fault, relayed), bytes and datagrams each "
      "way, elapsed, throughput and the XXH3-64 checksum of the bytes "
      "received (echo, sink) or sent (source). A source and a sink of the "
      "same transfer print the same checksum. Sizes: 64K = 64KiB = 65536, "
      "1MB = 1000000 (docs/cli.md).\n\nExample:\n  sockctl traffic sink $A &\n "
      " sockctl "
      "traffic source $C --bytes 10M --pattern random --seed 7 "
      "--shutdown-write\n  wait   # both lines show the same checksum");
  traffic->require_subcommand(1);
  TrafficFlags& traffic_flags = cli.Own<TrafficFlags>();
  for (const auto& [kind, help] :
       {std::pair<std::string, std::string>{
            "echo",
            "Send back whatever arrives (TCP: the byte stream; UDP: each "
            "datagram to its sender) until EOF, --max-bytes received or "
            "--duration.\n\nExample:\n  sockctl traffic echo $A --duration "
            "30s"},
        {"sink",
         "Read and discard, counting and checksumming, until EOF, "
         "--max-bytes or --duration.\n\nExample:\n  sockctl --json traffic "
         "sink $A --max-bytes 1M"},
        {"source",
         "Send --bytes generated bytes, or for --duration: a pattern "
         "(sequence = position mod 256, random = seeded so a receiver can "
         "check it, zero), optionally at --rate bytes/s. --shutdown-write "
         "sends EOF after the last byte. A UDP source sends --datagram-bytes "
         "per datagram (default 1024), to --to when the socket is not "
         "connected.\n\nExample:\n  sockctl traffic source $C --bytes 64M "
         "--rate 1M --shutdown-write\n  sockctl traffic source $U --duration "
         "5s --datagram-bytes 512 --to 127.0.0.1:9000"}}) {
    CLI::App* sub = cli.AddCommand(traffic, kind, help);
    AddHandle(sub, &handle);
    sub->add_option("--duration", traffic_flags.duration,
                    "end after this long, e.g. 10s");
    if (kind == "source") {
      sub->add_option("--bytes", traffic_flags.bytes,
                      "bytes to send (0: until --duration)");
      sub->add_option("--pattern", traffic_flags.pattern,
                      "sequence | random | zero")
          ->capture_default_str();
      sub->add_option("--seed", traffic_flags.seed, "seed of --pattern random");
      sub->add_option("--rate", traffic_flags.rate,
                      "at most this many bytes per second (0: no limit)");
      sub->add_flag("--shutdown-write", traffic_flags.shutdown_write,
                    "shutdown(SHUT_WR) after the last byte (stream)");
      sub->add_option("--datagram-bytes", traffic_flags.datagram_bytes,
                      "bytes per datagram (0: 1024)");
      sub->add_option("--to", traffic_flags.to,
                      "destination of an unconnected datagram socket");
    } else {
      sub->add_option("--max-bytes", traffic_flags.max_bytes,
                      "end after this many bytes received (0: no limit)");
    }
    cli.OnRun(sub, [&, kind = kind] {
      return Traffic(cli, kind, handle, traffic_flags);
    });
  }

  RelayFlags& relay_flags = cli.Own<RelayFlags>();
  CLI::App* relay = cli.AddCommand(
      traffic, "relay",
      "Relay between two sockets of the session inside the agent until both "
      "directions end, then print the figures: the line of the other kinds, "
      "then to_peer (A -> B) and from_peer (B -> A) with bytes and datagrams "
      "read and sent, those the faults dropped, duplicated, reordered or "
      "swallowed, and how each direction ended. Each socket's faults shape "
      "what the agent sends on it. Stream sockets (TCP, Unix): A and B are "
      "connected; EOF and half-close pass on in order, an RST as an RST "
      "(--reset-as-fin: as a FIN). Datagram sockets: A is bound and gets "
      "the clients' datagrams, each client gets an upstream socket of its "
      "own (closed after --idle-timeout unused, default 60s) toward "
      "--upstream, or B's peer when B is connected; B's faults shape what "
      "goes upstream. Closing A or B ends the relay with an error."
      "\n\nExample:\n  sockctl traffic relay $A $B\n  sockctl --json "
      "traffic relay $U $V --upstream 127.0.0.1:5353 --idle-timeout 10s");
  AddHandle(relay, &handle);
  relay->add_option("B", relay_flags.peer, "the other socket's handle")
      ->required();
  relay->add_flag("--reset-as-fin", relay_flags.reset_as_fin,
                  "streams: pass an RST on as an orderly FIN");
  relay->add_option("--idle-timeout", relay_flags.idle_timeout,
                    "datagrams: close a client's upstream socket after this "
                    "long unused (default 60s)");
  relay->add_option("--upstream", relay_flags.upstream,
                    "datagrams: where the clients' datagrams go (default: "
                    "B's peer)");
  relay->add_option("--duration", relay_flags.duration,
                    "end after this long, e.g. 10s");
  cli.OnRun(relay, [&] { return Relay(cli, handle, relay_flags); });

  CLI::App* abort = cli.AddCommand(
      "abort",
      "Abortive close: SO_LINGER 0 then close, so a TCP peer gets RST "
      "(ECONNRESET) instead of EOF; unsent data is dropped. The handle is "
      "gone afterwards, as after close.\n\nExample:\n  sockctl abort $A");
  AddHandle(abort, &handle);
  cli.OnRun(abort, [&] { return Abort(cli, handle); });

  FaultFlags& fault_flags = cli.Own<FaultFlags>();
  CLI::App* faults = cli.AddCommand(
      "faults",
      "Set the socket's fault profile (Toxiproxy's vocabulary), replacing "
      "the previous one; --clear removes it. It shapes every send path of "
      "the socket (send, sendto, send-stream, traffic, relays), also calls "
      "already running: --send-delay/--jitter (latency), --rate "
      "(bandwidth), --slice-bytes/--slice-variation/--slice-delay (slicer), "
      "--close-after-bytes (limit_data: bytes sent plus received), "
      "--close-after-time (reset_peer with --reset, timeout with "
      "--blackhole), --close-delay (slow_close), --blackhole, "
      "--stop-reading, and for datagram sockets --loss, --duplicate, "
      "--reorder; --seed makes every random choice replay. A fault the "
      "socket cannot obey is refused, naming it. Half-close is `sockctl "
      "shutdown`.\n\nExample:\n  sockctl faults $A --send-delay 50ms "
      "--rate 64K\n  sockctl faults $A --close-after-bytes 1M --reset\n  "
      "sockctl faults $U --loss 5 --seed 7\n  sockctl faults $A --clear");
  AddHandle(faults, &handle);
  AddFaultFlags(faults, &fault_flags.faults);
  faults->add_flag("--clear", fault_flags.clear, "remove every fault");
  cli.OnRun(faults, [&] { return Faults(cli, handle, fault_flags); });
}

}  // namespace cli
}  // namespace sockagent
