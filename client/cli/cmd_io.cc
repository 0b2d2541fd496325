// sockctl send, recv, recvstream, sendto, recvfrom, shutdown, close: data
// through a socket, and its end.

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/cli/cli.h"
#include "client/cli/commands.h"
#include "client/cli/errors.h"
#include "client/cli/stdio.h"
#include "client/socket.h"
#include "client/vocab/json.h"
#include "client/vocab/words.h"

namespace sockagent {
namespace cli {

using ::sockagent::vocab::JsonObject;
using ::sockagent::vocab::ParseShutdownHow;

namespace {

// The bytes to send: DATA, --file F, or stdin ("-" or nothing).
absl::StatusOr<std::string> SendData(const CLI::Option* data_option,
                                     const std::string& data,
                                     const std::string& file) {
  if (!file.empty()) return ReadFile(file);
  if (data_option->count() > 0 && data != "-") return data;
  return ReadAll(STDIN_FILENO);
}

int Send(const Cli& cli, const std::string& handle,
         const CLI::Option* data_option, const std::string& data_arg,
         const std::string& file, bool all) {
  if (data_option->count() > 0 && !file.empty()) {
    return cli.Usage(
        absl::InvalidArgumentError("give DATA or --file, not both"));
  }
  absl::StatusOr<std::string> data = SendData(data_option, data_arg, file);
  if (!data.ok()) return cli.Usage(data.status());
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    size_t sent = data->size();
    if (all) {
      absl::Status status = socket.SendAll(*data, 0, cli.deadline());
      if (!status.ok()) return cli.Fail("send", status);
    } else {
      absl::StatusOr<size_t> n = socket.Send(*data, 0, cli.deadline());
      if (!n.ok()) return cli.Fail("send", n.status());
      sent = *n;
    }
    if (cli.json()) {
      cli.PrintJson(
          JsonObject().AddInt("bytes_sent", static_cast<int64_t>(sent)));
    } else if (cli.verbose() || sent != data->size()) {
      std::cerr << "sent " << sent << " of " << data->size() << " bytes"
                << std::endl;
    }
    return kExitOk;
  });
}

int Recv(const Cli& cli, const std::string& handle, uint32_t max, bool peek,
         bool waitall) {
  if (max == 0) {
    return cli.Usage(absl::InvalidArgumentError("--max must be at least 1"));
  }
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    int flags = (peek ? MSG_PEEK : 0) | (waitall ? MSG_WAITALL : 0);
    absl::StatusOr<std::string> data = socket.Recv(max, flags, cli.deadline());
    if (!data.ok()) return cli.Fail("recv", data.status());
    if (cli.json()) {
      cli.PrintJson(JsonObject()
                        .AddInt("bytes", static_cast<int64_t>(data->size()))
                        .AddBool("eof", data->empty())
                        .AddData(*data));
    } else {
      WriteStdout(*data);
    }
    return kExitOk;
  });
}

int RecvStream(const Cli& cli, const std::string& handle, uint64_t limit,
               uint32_t chunk) {
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    std::string collected;
    uint64_t total = 0;
    bool stdout_ok = true;
    absl::Status status = socket.RecvStream(
        [&](absl::string_view data) {
          total += data.size();
          if (cli.json()) {
            collected.append(data.data(), data.size());
            return true;
          }
          stdout_ok = WriteStdout(data);
          return stdout_ok;
        },
        limit, chunk, cli.deadline());
    if (!status.ok()) return cli.Fail("recvstream", status);
    if (cli.json()) {
      cli.PrintJson(JsonObject()
                        .AddInt("bytes", static_cast<int64_t>(total))
                        .AddData(collected));
    }
    return stdout_ok ? kExitOk : kExitRpc;
  });
}

int SendTo(const Cli& cli, const std::string& handle,
           const std::string& address_text, const std::string& data_arg) {
  absl::StatusOr<v1::Address> address = ParseAddressArg(address_text);
  if (!address.ok()) return cli.Usage(address.status());
  absl::StatusOr<std::string> data =
      data_arg == "-" ? ReadAll(STDIN_FILENO)
                      : absl::StatusOr<std::string>(data_arg);
  if (!data.ok()) return cli.Usage(data.status());
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<size_t> sent =
        socket.SendTo(*data, *address, 0, cli.deadline());
    if (!sent.ok()) return cli.Fail("sendto", sent.status());
    if (cli.json()) {
      cli.PrintJson(
          JsonObject().AddInt("bytes_sent", static_cast<int64_t>(*sent)));
    } else if (cli.verbose()) {
      std::cerr << "sent " << *sent << " bytes" << std::endl;
    }
    return kExitOk;
  });
}

int RecvFrom(const Cli& cli, const std::string& handle, uint32_t max) {
  if (max == 0) {
    return cli.Usage(absl::InvalidArgumentError("--max must be at least 1"));
  }
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<Datagram> datagram = socket.RecvFrom(max, 0, cli.deadline());
    if (!datagram.ok()) return cli.Fail("recvfrom", datagram.status());
    if (cli.json()) {
      cli.PrintJson(
          JsonObject()
              .AddString("address", FormatAddress(datagram->address))
              .AddInt("bytes", static_cast<int64_t>(datagram->data.size()))
              .AddData(datagram->data));
    } else {
      std::cerr << "from " << FormatAddress(datagram->address) << std::endl;
      WriteStdout(datagram->data);
    }
    return kExitOk;
  });
}

int Shutdown(const Cli& cli, const std::string& handle,
             const std::string& how_text) {
  absl::StatusOr<v1::ShutdownHow> how = ParseShutdownHow(how_text);
  if (!how.ok()) return cli.Usage(how.status());
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.Shutdown(*how);
    if (!status.ok()) return cli.Fail("shutdown", status);
    if (cli.json()) cli.PrintJson(JsonObject());
    return kExitOk;
  });
}

int Close(const Cli& cli, const std::string& handle) {
  return cli.WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.Close();
    if (!status.ok()) return cli.Fail("close", status);
    if (cli.json()) cli.PrintJson(JsonObject());
    return kExitOk;
  });
}

}  // namespace

void RegisterIoCommands(Cli& cli) {
  std::string& handle = cli.Own<std::string>();
  std::string& address = cli.Own<std::string>();
  std::string& data = cli.Own<std::string>();
  std::string& file = cli.Own<std::string>();
  std::string& how = cli.Own<std::string>();
  bool& all = cli.Own<bool>();
  CLI::App* send = cli.AddCommand(
      "send",
      "Send DATA, the contents of --file, or stdin (DATA \"-\" or none). "
      "Without --all this is one send(2), which may send less; the count "
      "is reported on stderr when short.\n\nExample:\n  sockctl send $H "
      "'GET / HTTP/1.0\\r\\n\\r\\n' ; printf 'x' | sockctl send $H - --all");
  AddHandle(send, &handle);
  CLI::Option* data_option =
      send->add_option("DATA", data, "bytes to send; - for stdin");
  send->add_option("--file", file, "send this file's contents");
  send->add_flag("--all", all, "like sendall: send every byte");
  cli.OnRun(send, [&cli, &handle, data_option, &data, &file, &all] {
    return Send(cli, handle, data_option, data, file, all);
  });

  uint32_t& max = cli.Own<uint32_t>();
  max = 65536;
  bool& peek = cli.Own<bool>();
  bool& waitall = cli.Own<bool>();
  CLI::App* recv = cli.AddCommand(
      "recv",
      "Receive once and write the raw bytes to stdout. At EOF nothing is "
      "written and the exit code is 0 (--json says \"eof\":true).\n\n"
      "Example:\n  sockctl recv $H --max 4096 > chunk.bin");
  AddHandle(recv, &handle);
  recv->add_option("--max", max, "most bytes to receive")
      ->capture_default_str();
  recv->add_flag("--peek", peek, "MSG_PEEK: leave the data queued");
  recv->add_flag("--waitall", waitall, "MSG_WAITALL: wait for --max bytes");
  cli.OnRun(recv, [&] { return Recv(cli, handle, max, peek, waitall); });

  uint64_t& limit = cli.Own<uint64_t>();
  uint32_t& chunk = cli.Own<uint32_t>();
  CLI::App* recvstream = cli.AddCommand(
      "recvstream",
      "Stream everything received to stdout until EOF or --limit bytes.\n\n"
      "Example:\n  sockctl recvstream $H > download.bin");
  AddHandle(recvstream, &handle);
  recvstream->add_option("--limit", limit, "stop after N bytes (0: EOF)");
  recvstream->add_option("--chunk", chunk, "largest message (0: agent's)");
  cli.OnRun(recvstream, [&] { return RecvStream(cli, handle, limit, chunk); });

  CLI::App* sendto = cli.AddCommand(
      "sendto",
      "Send one datagram to an address.\n\nExample:\n  sockctl sendto $U "
      "127.0.0.1:5353 ping");
  AddHandle(sendto, &handle);
  sendto->add_option("ADDRESS", address, kAddressForms)->required();
  sendto->add_option("DATA", data, "datagram payload; - for stdin")->required();
  cli.OnRun(sendto, [&] { return SendTo(cli, handle, address, data); });

  CLI::App* recvfrom = cli.AddCommand(
      "recvfrom",
      "Receive one datagram: the payload goes to stdout, \"from ADDRESS\" "
      "to stderr (--json gives both in one object).\n\nExample:\n  sockctl "
      "--json recvfrom $U --max 1500");
  AddHandle(recvfrom, &handle);
  recvfrom->add_option("--max", max, "largest datagram")->capture_default_str();
  cli.OnRun(recvfrom, [&] { return RecvFrom(cli, handle, max); });

  CLI::App* shutdown = cli.AddCommand(
      "shutdown",
      "Shut down one or both directions (wr sends EOF to the peer).\n\n"
      "Example:\n  sockctl shutdown $H wr");
  AddHandle(shutdown, &handle);
  shutdown->add_option("HOW", how, "rd | wr | rdwr")->required();
  cli.OnRun(shutdown, [&] { return Shutdown(cli, handle, how); });

  CLI::App* close = cli.AddCommand(
      "close", "Close a socket.\n\nExample:\n  sockctl close $H");
  AddHandle(close, &handle);
  cli.OnRun(close, [&] { return Close(cli, handle); });
}

}  // namespace cli
}  // namespace sockagent
