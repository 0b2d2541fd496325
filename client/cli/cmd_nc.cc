// sockctl nc: a netcat whose socket lives on the agent.

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/cli/stdio.h"
#include "client/socket.h"
#include "proto/units.h"

namespace sockagent {
namespace cli {
namespace {

struct NcOptions {
  bool listen = false;
  bool udp = false;
  bool ipv6 = false;
  std::string host;  // "" = any address (with -l)
  std::string port;
  std::string quit_after;  // -q
  std::string ttl = "30s";
};

// Waits until stdin is readable or `stop` is notified. Returns true when
// stdin is readable (or at EOF / error, which the read then reports). After
// `stop`, what stdin already holds is still forwarded: the remote side
// ending its half of a connection must not drop input that was ready (a
// piped `printf data | sockctl nc ...` raced the peer's EOF).
bool WaitForStdin(const absl::Notification& stop) {
  for (;;) {
    const bool stopping = stop.HasBeenNotified();
    pollfd fd{STDIN_FILENO, POLLIN, 0};
    int ready = ::poll(&fd, 1, stopping ? 0 : 100);
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return true;
    if (stopping) return false;
  }
}

// Reads stdin chunks into `send` until stdin EOF (returns OK), `send`
// failing (returns its error), or `stop` (returns CANCELLED).
absl::Status PumpStdin(
    const absl::Notification& stop,
    const std::function<absl::Status(absl::string_view)>& send) {
  char buffer[65536];
  while (WaitForStdin(stop)) {
    ssize_t n = ::read(STDIN_FILENO, buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "read stdin");
    if (n == 0) return absl::OkStatus();
    absl::Status status = send(absl::string_view(buffer, n));
    if (!status.ok()) return status;
  }
  return absl::CancelledError("remote side ended");
}

// TCP: stdin -> socket (half-close at EOF), socket -> stdout until EOF.
int NcStream(const Cli& cli, Socket& socket,
             std::optional<absl::Duration> quit_after) {
  std::unique_ptr<RecvStreamReader> reader = socket.OpenRecvStream();
  absl::Notification remote_done;
  absl::Status recv_status;
  std::thread receiver([&] {
    std::string chunk;
    while (reader->Next(&chunk)) {
      if (!WriteStdout(chunk)) {
        reader->Cancel();
        break;
      }
    }
    recv_status = reader->Finish();
    remote_done.Notify();
  });
  absl::Status send_status = PumpStdin(
      remote_done, [&](absl::string_view d) { return socket.SendAll(d); });
  int rc = kExitOk;
  if (send_status.ok()) {
    cli.Verbose("nc", "stdin EOF: shutting down the write side");
    absl::Status status = socket.Shutdown(v1::SHUTDOWN_HOW_WRITE);
    if (!status.ok()) rc = cli.Fail("shutdown", status);
    if (quit_after.has_value() &&
        !remote_done.WaitForNotificationWithTimeout(*quit_after)) {
      reader->Cancel();
    }
  } else if (!absl::IsCancelled(send_status)) {
    if (!remote_done.HasBeenNotified()) rc = cli.Fail("send", send_status);
    reader->Cancel();
  }
  receiver.join();
  if (rc == kExitOk && !recv_status.ok() && !absl::IsCancelled(recv_status)) {
    rc = cli.Fail("recv", recv_status);
  }
  return rc;
}

// UDP: stdin chunks -> datagrams, datagrams -> stdout. Ends at stdin EOF
// (after `quit_after`). With `peer` set, sends with SendTo and prints only
// datagrams from it.
int NcDatagram(const Cli& cli, Socket& socket,
               const std::optional<v1::Address>& peer,
               std::optional<absl::Duration> quit_after) {
  std::unique_ptr<RecvFromStreamReader> reader = socket.OpenRecvFromStream();
  absl::Notification receiver_done;
  absl::Status recv_status;
  const std::string peer_text = peer.has_value() ? FormatAddress(*peer) : "";
  std::thread receiver([&] {
    Datagram datagram;
    while (reader->Next(&datagram)) {
      if (peer.has_value() && FormatAddress(datagram.address) != peer_text) {
        continue;
      }
      if (!WriteStdout(datagram.data)) {
        reader->Cancel();
        break;
      }
    }
    recv_status = reader->Finish();
    receiver_done.Notify();
  });
  absl::Status send_status =
      PumpStdin(receiver_done, [&](absl::string_view d) -> absl::Status {
        if (peer.has_value()) return socket.SendTo(d, *peer).status();
        return socket.Send(d).status();
      });
  int rc = kExitOk;
  if (!send_status.ok() && !absl::IsCancelled(send_status)) {
    rc = cli.Fail("send", send_status);
  }
  if (send_status.ok() && quit_after.has_value()) {
    receiver_done.WaitForNotificationWithTimeout(*quit_after);
  }
  reader->Cancel();
  receiver.join();
  if (rc == kExitOk && !recv_status.ok() && !absl::IsCancelled(recv_status)) {
    rc = cli.Fail("recv", recv_status);
  }
  return rc;
}

int Nc(const Cli& cli, const NcOptions& nc) {
  const std::string& host = nc.host;
  const std::string& port = nc.port;
  const bool bracketed = host.size() >= 2 && host.front() == '[';
  absl::StatusOr<v1::Address> address = ParseAddressArg(
      absl::StrCat(bracketed || host.find(':') == std::string::npos
                       ? host
                       : absl::StrCat("[", host, "]"),
                   ":", port));
  if (!address.ok()) return cli.Usage(address.status());
  std::optional<absl::Duration> quit_after;
  if (!nc.quit_after.empty()) {
    absl::StatusOr<absl::Duration> q = ParseDurationText(nc.quit_after);
    if (!q.ok()) return cli.Usage(q.status());
    quit_after = *q;
  } else if (nc.udp) {
    quit_after = absl::ZeroDuration();
  }
  absl::StatusOr<absl::Duration> ttl = ParseDurationText(nc.ttl);
  if (!ttl.ok()) return cli.Usage(ttl.status());

  AgentOptions options;
  options.target = cli.agent();
  if (absl::Status secured = cli.Secure(&options); !secured.ok()) {
    return cli.Usage(secured);
  }
  options.session_ttl = *ttl;
  options.session_label = "sockctl nc";
  options.fail_fast = true;
  options.call_timeout = cli.call_timeout();
  absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
  if (!agent.ok()) return cli.Fail("nc", agent.status());
  const v1::Family family = nc.ipv6 ? v1::FAMILY_INET6 : v1::FAMILY_INET;
  const v1::SocketType type =
      nc.udp ? v1::SOCKET_TYPE_DGRAM : v1::SOCKET_TYPE_STREAM;
  absl::StatusOr<Socket> socket = (*agent)->CreateSocket(family, type);
  if (!socket.ok()) return cli.Fail("socket", socket.status());

  if (!nc.listen) {
    absl::StatusOr<v1::Address> local =
        socket->Connect(*address, cli.deadline());
    if (!local.ok()) return cli.Fail("connect", local.status());
    cli.Verbose("nc", absl::StrCat("connected to ", FormatAddress(*address),
                                   " from ", FormatAddress(*local)));
    return nc.udp ? NcDatagram(cli, *socket, std::nullopt, quit_after)
                  : NcStream(cli, *socket, quit_after);
  }

  if (absl::Status s = socket->SetSockOpt(v1::OPT_SO_REUSEADDR, true);
      !s.ok()) {
    return cli.Fail("setsockopt", s);
  }
  absl::StatusOr<v1::Address> bound = socket->Bind(*address);
  if (!bound.ok()) return cli.Fail("bind", bound.status());
  if (nc.udp) {
    cli.Verbose("nc", absl::StrCat("listening on udp ", FormatAddress(*bound)));
    absl::StatusOr<Datagram> first = socket->RecvFrom(65536, 0, cli.deadline());
    if (!first.ok()) return cli.Fail("recvfrom", first.status());
    cli.Verbose("nc", absl::StrCat("first datagram from ",
                                   FormatAddress(first->address)));
    WriteStdout(first->data);
    return NcDatagram(cli, *socket, first->address, quit_after);
  }
  if (absl::Status s = socket->Listen(1); !s.ok()) return cli.Fail("listen", s);
  cli.Verbose("nc", absl::StrCat("listening on ", FormatAddress(*bound)));
  absl::StatusOr<AcceptResult> accepted = socket->Accept(cli.deadline());
  if (!accepted.ok()) return cli.Fail("accept", accepted.status());
  cli.Verbose("nc",
              absl::StrCat("connection from ", FormatAddress(accepted->peer)));
  socket->Close().IgnoreError();
  return NcStream(cli, accepted->socket, quit_after);
}

}  // namespace

void RegisterNcCommands(Cli& cli) {
  NcOptions& nc = cli.Own<NcOptions>();
  CLI::App* nc_cmd = cli.AddCommand(
      "nc",
      "A netcat whose socket lives on the agent. Connects to HOST PORT as "
      "seen from the agent (or with -l listens there and accepts one "
      "connection), then copies stdin to the connection and the connection "
      "to stdout at the same time. At stdin EOF it shuts down the write side "
      "(like ncat) and exits when the remote side reaches EOF. With -u it "
      "sends each stdin chunk as a datagram and prints datagrams received "
      "(with -l: from the first sender only), ending at stdin EOF (plus -q). "
      "It uses its own short-lived session (--ttl, kept alive while "
      "running).\n\nExamples:\n  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
      "sockctl --agent node1:7700 nc example.internal 80\n  sockctl nc -l -v "
      "127.0.0.1 9000 > received.bin");
  nc_cmd->add_flag("-l,--listen", nc.listen, "listen instead of connecting");
  nc_cmd->add_flag("-u,--udp", nc.udp, "UDP instead of TCP");
  nc_cmd->add_flag("-6,--ipv6", nc.ipv6, "IPv6 socket");
  nc_cmd->add_option("-q,--quit-after", nc.quit_after,
                     "after stdin EOF wait at most this long (TCP: for the "
                     "remote EOF; UDP: for more datagrams)");
  nc_cmd->add_option("--ttl", nc.ttl, "session lease")->capture_default_str();
  nc_cmd
      ->add_option("HOST", nc.host,
                   "host to connect to, or with -l the address to listen "
                   "on (\"\" = any)")
      ->required();
  nc_cmd->add_option("PORT", nc.port, "port number or service name")
      ->required();
  cli.OnRun(nc_cmd, [&] { return Nc(cli, nc); });
}

}  // namespace cli
}  // namespace sockagent
