// sockctl: the sockagent command line. One subcommand per RPC of
// sockagent.v1.SocketAgent, plus `nc`, a remote netcat. See kMainHelp.

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/cli/cli_util.h"
#include "client/credentials.h"
#include "client/scenario/scenario.h"
#include "client/socket.h"
#include "proto/duration_codec.h"
#include "proto/edit_distance.h"
#include "proto/status_codec.h"
#ifdef SOCKAGENT_HAVE_HEALTH_PROTO
#include "grpc/health/v1/health.grpc.pb.h"
#endif

namespace sockagent {
namespace cli {
namespace {

constexpr char kMainHelp[] =
    R"help(sockctl drives the sockets of a remote host through its sockagentd agent.
Every subcommand is one call of the sockagent.v1 API, performed by the agent
with its own kernel sockets. Sockets live in a session: open one once, export
its id, and every later sockctl invocation (which renews the lease) can use
the handles printed by earlier ones. `sockctl session close` closes them all.

Example:
  export SOCKAGENT_SESSION=$(sockctl session open --ttl 10m)
  L=$(sockctl socket); sockctl bind $L 127.0.0.1:0; sockctl listen $L
  C=$(sockctl socket); sockctl connect $C $(sockctl getsockname $L)
  A=$(sockctl accept $L | cut -d' ' -f1)
  sockctl send $C hello; sockctl recv $A        # prints hello
  sockctl session close

Output is human-readable by default; --json prints one JSON object on stdout
(on failure {"error":{"code","message","errno","errno_name","syscall"}}).

Exit codes:
  0  success
  1  a negative answer: `health` got a status other than SERVING; `run`:
     some step failed
  2  usage error: a bad command line or a malformed argument value (checked
     before any call: 127.0.0.1:abc, 300.1.1.1:80, --agent host:0), or a
     scenario file error
  3  the call failed without an errno: agent unreachable (a refused
     connection reports at once), unknown handle or session (NOT_FOUND),
     deadline, permission, ...
  4  the socket call failed with an errno; stderr says e.g.
     "sockctl: connect: Connection refused (ECONNREFUSED)"
  5  a name did not resolve on the agent (getaddrinfo EAI_*); stderr says
     "sockctl: name resolution failed on the agent: ... (EAI_NONAME)"
  130/143  `run` interrupted by SIGINT/SIGTERM (cleanup ran)
--agent HOST without a port means HOST:7700.)help";

// Options shared by every subcommand.
struct Globals {
  std::string agent = "127.0.0.1:7700";
  std::string session;
  std::string timeout;
  bool json = false;
  bool verbose = false;
  // Channel security (flags or SOCKAGENT_TLS_CA, SOCKAGENT_TLS_CERT,
  // SOCKAGENT_TLS_KEY, SOCKAGENT_TOKEN).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  std::string token;

  // Derived from `timeout` before a subcommand runs.
  absl::Duration call_timeout = absl::InfiniteDuration();
  absl::Time deadline = absl::InfiniteFuture();
};

Globals g;

// TLS when a CA or a client certificate is given; the token in any case.
absl::Status Secure(AgentOptions* options) {
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

// Prints `status` as sockctl's error (stderr, or the JSON error object on
// stdout) and returns its exit code.
int Fail(absl::string_view context, const absl::Status& status) {
  if (g.json) {
    std::cout << ErrorJson(status) << std::endl;
  } else {
    std::cerr << "sockctl: " << DescribeError(context, status) << std::endl;
  }
  return ExitCodeFor(status);
}

// A bad argument value: exit code 2.
int Usage(const absl::Status& status) {
  if (g.json) {
    std::cout << ErrorJson(status) << std::endl;
  } else {
    std::cerr << "sockctl: " << status.message() << std::endl;
  }
  return kExitUsage;
}

void PrintJson(const JsonObject& object) {
  std::cout << object.Build() << std::endl;
}

// Connects to the agent. With `need_session` the session must come from
// --session / SOCKAGENT_SESSION; the session is attached, never created or
// closed, and renewed by the call itself.
absl::StatusOr<std::unique_ptr<Agent>> ConnectAgent(bool need_session) {
  if (need_session && g.session.empty()) {
    return absl::FailedPreconditionError(
        "no session: pass --session or set SOCKAGENT_SESSION "
        "(export SOCKAGENT_SESSION=$(sockctl session open))");
  }
  AgentOptions options;
  options.target = g.agent;
  if (absl::Status secured = Secure(&options); !secured.ok()) return secured;
  options.session_id = g.session;
  options.open_session = false;
  options.keepalive = false;
  options.call_timeout = g.call_timeout;
  options.connect_timeout = g.call_timeout == absl::InfiniteDuration()
                                ? absl::Seconds(10)
                                : g.call_timeout;
  options.fail_fast = true;
  return Agent::Connect(options);
}

bool WriteStdout(absl::string_view data) {
  if (data.empty()) return true;
  if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) {
    return false;
  }
  return std::fflush(stdout) == 0;
}

absl::StatusOr<std::string> ReadAll(int fd) {
  std::string out;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "read");
    if (n == 0) return out;
    out.append(buffer, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  if (path == "-") return ReadAll(STDIN_FILENO);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  absl::StatusOr<std::string> data = ReadAll(fd);
  ::close(fd);
  return data;
}

// A socket command: attaches the session, then runs `body` on the handle.
int WithSocket(const std::string& handle,
               const std::function<int(Agent&, Socket&)>& body) {
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(true);
  if (!agent.ok()) return Fail("agent", agent.status());
  Socket socket = (*agent)->AttachSocket(handle);
  return body(**agent, socket);
}

// Prints an address: plain text, or {"address":..., "port":...}.
int PrintAddress(const v1::Address& address) {
  if (g.json) {
    JsonObject object;
    object.AddString("address", FormatAddress(address));
    if (address.has_inet()) object.AddInt("port", address.inet().port());
    PrintJson(object);
  } else {
    std::cout << FormatAddress(address) << std::endl;
  }
  return kExitOk;
}

// An address argument, parsed and checked as far as sockctl can check it
// before any call (a malformed one is a usage error).
absl::StatusOr<v1::Address> ParseAddressArg(const std::string& text) {
  absl::StatusOr<v1::Address> address = ParseAddress(text);
  if (!address.ok()) return address.status();
  if (absl::Status checked = CheckAddressArg(*address, text); !checked.ok()) {
    return checked;
  }
  return address;
}

// Adds the required positional HANDLE.
void AddHandle(CLI::App* sub, std::string* handle) {
  sub->add_option("HANDLE", *handle, "socket handle (from `sockctl socket`)")
      ->required();
}

// ---------------------------------------------------------------- sessions

int SessionOpen(const std::string& ttl_text, const std::string& label) {
  AgentOptions options;
  options.target = g.agent;
  if (absl::Status secured = Secure(&options); !secured.ok()) {
    return Usage(secured);
  }
  options.keepalive = false;
  // Shared by the many processes that attach to it: lease-only.
  options.bind_to_connection = false;
  options.fail_fast = true;
  options.session_label = label;
  options.call_timeout = g.call_timeout;
  if (!ttl_text.empty()) {
    absl::StatusOr<absl::Duration> ttl = ParseDurationArg(ttl_text);
    if (!ttl.ok()) return Usage(ttl.status());
    options.session_ttl = *ttl;
  }
  absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
  if (!agent.ok()) return Fail("session open", agent.status());
  std::string id = (*agent)->DetachSession();
  if (g.json) {
    PrintJson(JsonObject()
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
int SessionClose(const std::string& id) {
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(id.empty());
  if (!agent.ok()) return Fail("session close", agent.status());
  absl::StatusOr<uint32_t> closed =
      id.empty() ? (*agent)->CloseSession() : (*agent)->CloseSession(id);
  if (!closed.ok()) return Fail("session close", closed.status());
  if (g.json) {
    PrintJson(JsonObject().AddInt("sockets_closed", *closed));
  } else if (g.verbose) {
    std::cerr << "closed " << *closed << " socket(s)" << std::endl;
  }
  return kExitOk;
}

std::string TimestampText(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

int SessionList() {
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(false);
  if (!agent.ok()) return Fail("session list", agent.status());
  absl::StatusOr<std::vector<v1::SessionInfo>> sessions =
      (*agent)->ListSessions();
  if (!sessions.ok()) return Fail("session list", sessions.status());
  if (g.json) {
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

int SessionKeepAlive() {
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(true);
  if (!agent.ok()) return Fail("session keepalive", agent.status());
  absl::StatusOr<absl::Duration> ttl = (*agent)->KeepAlive();
  if (!ttl.ok()) return Fail("session keepalive", ttl.status());
  if (g.json) {
    PrintJson(JsonObject().AddRaw("ttl_s", DurationSeconds(*ttl)));
  } else {
    std::cout << DurationText(*ttl) << std::endl;
  }
  return kExitOk;
}

// ----------------------------------------------------------------- sockets

int CreateSocket(const std::string& family_text, const std::string& type_text,
                 int protocol) {
  absl::StatusOr<v1::Family> family = ParseFamily(family_text);
  if (!family.ok()) return Usage(family.status());
  absl::StatusOr<v1::SocketType> type = ParseSocketType(type_text);
  if (!type.ok()) return Usage(type.status());
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(true);
  if (!agent.ok()) return Fail("socket", agent.status());
  absl::StatusOr<Socket> socket =
      (*agent)->CreateSocket(*family, *type, protocol);
  if (!socket.ok()) return Fail("socket", socket.status());
  std::string handle = socket->Release();
  if (g.json) {
    PrintJson(JsonObject().AddString("handle", handle));
  } else {
    std::cout << handle << std::endl;
  }
  return kExitOk;
}

int Bind(const std::string& handle, const std::string& address_text) {
  absl::StatusOr<v1::Address> address = ParseAddressArg(address_text);
  if (!address.ok()) return Usage(address.status());
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<v1::Address> bound = socket.Bind(*address);
    if (!bound.ok()) return Fail("bind", bound.status());
    return PrintAddress(*bound);
  });
}

int Listen(const std::string& handle, int backlog) {
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.Listen(backlog);
    if (!status.ok()) return Fail("listen", status);
    if (g.json) PrintJson(JsonObject());
    return kExitOk;
  });
}

int Accept(const std::string& handle) {
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<AcceptResult> accepted = socket.Accept(g.deadline);
    if (!accepted.ok()) return Fail("accept", accepted.status());
    std::string new_handle = accepted->socket.Release();
    if (g.json) {
      PrintJson(JsonObject()
                    .AddString("handle", new_handle)
                    .AddString("peer", FormatAddress(accepted->peer)));
    } else {
      std::cout << new_handle << " " << FormatAddress(accepted->peer)
                << std::endl;
    }
    return kExitOk;
  });
}

int Connect(const std::string& handle, const std::string& address_text) {
  absl::StatusOr<v1::Address> address = ParseAddressArg(address_text);
  if (!address.ok()) return Usage(address.status());
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<v1::Address> local = socket.Connect(*address, g.deadline);
    if (!local.ok()) return Fail("connect", local.status());
    return PrintAddress(*local);
  });
}

// The bytes to send: DATA, --file F, or stdin ("-" or nothing).
absl::StatusOr<std::string> SendData(const CLI::Option* data_option,
                                     const std::string& data,
                                     const std::string& file) {
  if (!file.empty()) return ReadFile(file);
  if (data_option->count() > 0 && data != "-") return data;
  return ReadAll(STDIN_FILENO);
}

int Send(const std::string& handle, const CLI::Option* data_option,
         const std::string& data_arg, const std::string& file, bool all) {
  if (data_option->count() > 0 && !file.empty()) {
    return Usage(absl::InvalidArgumentError("give DATA or --file, not both"));
  }
  absl::StatusOr<std::string> data = SendData(data_option, data_arg, file);
  if (!data.ok()) return Usage(data.status());
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    size_t sent = data->size();
    if (all) {
      absl::Status status = socket.SendAll(*data, 0, g.deadline);
      if (!status.ok()) return Fail("send", status);
    } else {
      absl::StatusOr<size_t> n = socket.Send(*data, 0, g.deadline);
      if (!n.ok()) return Fail("send", n.status());
      sent = *n;
    }
    if (g.json) {
      PrintJson(JsonObject().AddInt("bytes_sent", static_cast<int64_t>(sent)));
    } else if (g.verbose || sent != data->size()) {
      std::cerr << "sent " << sent << " of " << data->size() << " bytes"
                << std::endl;
    }
    return kExitOk;
  });
}

int Recv(const std::string& handle, uint32_t max, bool peek, bool waitall) {
  if (max == 0) {
    return Usage(absl::InvalidArgumentError("--max must be at least 1"));
  }
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    int flags = (peek ? MSG_PEEK : 0) | (waitall ? MSG_WAITALL : 0);
    absl::StatusOr<std::string> data = socket.Recv(max, flags, g.deadline);
    if (!data.ok()) return Fail("recv", data.status());
    if (g.json) {
      PrintJson(JsonObject()
                    .AddInt("bytes", static_cast<int64_t>(data->size()))
                    .AddBool("eof", data->empty())
                    .AddData(*data));
    } else {
      WriteStdout(*data);
    }
    return kExitOk;
  });
}

int RecvStream(const std::string& handle, uint64_t limit, uint32_t chunk) {
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    std::string collected;
    uint64_t total = 0;
    bool stdout_ok = true;
    absl::Status status = socket.RecvStream(
        [&](absl::string_view data) {
          total += data.size();
          if (g.json) {
            collected.append(data.data(), data.size());
            return true;
          }
          stdout_ok = WriteStdout(data);
          return stdout_ok;
        },
        limit, chunk, g.deadline);
    if (!status.ok()) return Fail("recvstream", status);
    if (g.json) {
      PrintJson(JsonObject()
                    .AddInt("bytes", static_cast<int64_t>(total))
                    .AddData(collected));
    }
    return stdout_ok ? kExitOk : kExitRpc;
  });
}

int SendTo(const std::string& handle, const std::string& address_text,
           const std::string& data_arg) {
  absl::StatusOr<v1::Address> address = ParseAddressArg(address_text);
  if (!address.ok()) return Usage(address.status());
  absl::StatusOr<std::string> data =
      data_arg == "-" ? ReadAll(STDIN_FILENO)
                      : absl::StatusOr<std::string>(data_arg);
  if (!data.ok()) return Usage(data.status());
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<size_t> sent = socket.SendTo(*data, *address, 0, g.deadline);
    if (!sent.ok()) return Fail("sendto", sent.status());
    if (g.json) {
      PrintJson(JsonObject().AddInt("bytes_sent", static_cast<int64_t>(*sent)));
    } else if (g.verbose) {
      std::cerr << "sent " << *sent << " bytes" << std::endl;
    }
    return kExitOk;
  });
}

int RecvFrom(const std::string& handle, uint32_t max) {
  if (max == 0) {
    return Usage(absl::InvalidArgumentError("--max must be at least 1"));
  }
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<Datagram> datagram = socket.RecvFrom(max, 0, g.deadline);
    if (!datagram.ok()) return Fail("recvfrom", datagram.status());
    if (g.json) {
      PrintJson(
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

int Shutdown(const std::string& handle, const std::string& how_text) {
  absl::StatusOr<v1::ShutdownHow> how = ParseShutdownHow(how_text);
  if (!how.ok()) return Usage(how.status());
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.Shutdown(*how);
    if (!status.ok()) return Fail("shutdown", status);
    if (g.json) PrintJson(JsonObject());
    return kExitOk;
  });
}

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

int PrintTraffic(const char* context,
                 const absl::StatusOr<v1::TrafficResponse>& result) {
  if (!result.ok()) return Fail(context, result.status());
  if (g.json) {
    std::cout << TrafficJson(*result) << std::endl;
  } else {
    std::cout << FormatTraffic(*result) << std::endl;
  }
  return kExitOk;
}

// kind: "echo", "sink" or "source".
int Traffic(const std::string& kind, const std::string& handle,
            const TrafficFlags& flags) {
  v1::TrafficRequest request;
  if (!flags.duration.empty()) {
    absl::StatusOr<absl::Duration> duration = ParseDurationArg(flags.duration);
    if (!duration.ok()) return Usage(duration.status());
    if (*duration <= absl::ZeroDuration()) {
      return Usage(absl::InvalidArgumentError("--duration must be positive"));
    }
    SetProtoDuration(*duration, request.mutable_duration());
  }
  if (kind == "echo" || kind == "sink") {
    absl::StatusOr<uint64_t> max_bytes =
        ParseByteCount(flags.max_bytes, "--max-bytes");
    if (!max_bytes.ok()) return Usage(max_bytes.status());
    if (kind == "echo") {
      request.mutable_echo()->set_max_bytes(*max_bytes);
    } else {
      request.mutable_sink()->set_max_bytes(*max_bytes);
    }
  } else {
    v1::SourceTraffic* source = request.mutable_source();
    absl::StatusOr<uint64_t> bytes = ParseByteCount(flags.bytes, "--bytes");
    if (!bytes.ok()) return Usage(bytes.status());
    absl::StatusOr<uint64_t> rate = ParseByteCount(flags.rate, "--rate");
    if (!rate.ok()) return Usage(rate.status());
    absl::StatusOr<uint64_t> datagram =
        ParseByteCount(flags.datagram_bytes, "--datagram-bytes");
    if (!datagram.ok()) return Usage(datagram.status());
    if (*datagram > UINT32_MAX) {
      return Usage(absl::InvalidArgumentError("--datagram-bytes is too large"));
    }
    absl::StatusOr<v1::TrafficPattern> pattern =
        ParseTrafficPattern(flags.pattern);
    if (!pattern.ok()) return Usage(pattern.status());
    if (*bytes == 0 && flags.duration.empty()) {
      return Usage(absl::InvalidArgumentError(
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
      if (!to.ok()) return Usage(to.status());
      *source->mutable_destination() = *std::move(to);
    }
  }
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    return PrintTraffic("traffic", socket.Traffic(request, g.deadline));
  });
}

int Abort(const std::string& handle) {
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.Abort();
    if (!status.ok()) return Fail("abort", status);
    if (g.json) PrintJson(JsonObject());
    return kExitOk;
  });
}

struct FaultFlags {
  std::string send_delay;
  std::string rate;
  std::string slice_bytes;
  std::string slice_delay;
  std::string close_after_bytes;
  bool reset = false;
  bool stop_reading = false;
  bool clear = false;
};

int Faults(const std::string& handle, const FaultFlags& flags) {
  const bool any = !flags.send_delay.empty() || !flags.rate.empty() ||
                   !flags.slice_bytes.empty() || !flags.slice_delay.empty() ||
                   !flags.close_after_bytes.empty() || flags.reset ||
                   flags.stop_reading;
  if (flags.clear == any) {
    return Usage(absl::InvalidArgumentError(
        flags.clear ? "--clear takes no other fault flag"
                    : "give at least one fault flag, or --clear"));
  }
  v1::Faults faults;
  for (const auto& [text, field] :
       {std::pair{&flags.send_delay, faults.mutable_send_delay()},
        std::pair{&flags.slice_delay, faults.mutable_slice_delay()}}) {
    if (text->empty()) continue;
    absl::StatusOr<absl::Duration> d = ParseDurationArg(*text);
    if (!d.ok()) return Usage(d.status());
    SetProtoDuration(*d, field);
  }
  if (!flags.rate.empty()) {
    absl::StatusOr<uint64_t> rate = ParseByteCount(flags.rate, "--rate");
    if (!rate.ok()) return Usage(rate.status());
    faults.set_send_rate_bytes_per_second(*rate);
  }
  if (!flags.slice_bytes.empty()) {
    absl::StatusOr<uint64_t> slice =
        ParseByteCount(flags.slice_bytes, "--slice-bytes");
    if (!slice.ok()) return Usage(slice.status());
    if (*slice > UINT32_MAX) {
      return Usage(absl::InvalidArgumentError("--slice-bytes is too large"));
    }
    faults.set_slice_bytes(static_cast<uint32_t>(*slice));
  }
  if (!flags.close_after_bytes.empty()) {
    absl::StatusOr<uint64_t> after =
        ParseByteCount(flags.close_after_bytes, "--close-after-bytes");
    if (!after.ok()) return Usage(after.status());
    faults.set_close_after_bytes(*after);
  }
  if (flags.reset && faults.close_after_bytes() == 0) {
    return Usage(absl::InvalidArgumentError(
        "--reset goes with --close-after-bytes (for an RST now, use "
        "`sockctl abort`)"));
  }
  faults.set_close_with_reset(flags.reset);
  faults.set_stop_reading(flags.stop_reading);
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.SetFaults(faults);
    if (!status.ok()) return Fail("faults", status);
    if (g.json) PrintJson(JsonObject());
    return kExitOk;
  });
}

int Close(const std::string& handle) {
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.Close();
    if (!status.ok()) return Fail("close", status);
    if (g.json) PrintJson(JsonObject());
    return kExitOk;
  });
}

int SockName(const std::string& handle, bool peer) {
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<v1::Address> address =
        peer ? socket.GetPeerName() : socket.GetSockName();
    if (!address.ok()) {
      return Fail(peer ? "getpeername" : "getsockname", address.status());
    }
    return PrintAddress(*address);
  });
}

int SetSockOpt(const std::string& handle, const std::string& name,
               const std::string& value_text) {
  absl::StatusOr<OptionSpec> spec = ParseOptionName(name);
  if (!spec.ok()) return Usage(spec.status());
  if (!spec->settable) {
    return Usage(absl::InvalidArgumentError(
        absl::StrCat("option ", name, " is read-only")));
  }
  absl::StatusOr<v1::OptionValue> value =
      ParseOptionValue(spec->kind, value_text);
  if (!value.ok()) return Usage(value.status());
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.SetSockOpt(spec->option, *value);
    if (!status.ok()) return Fail("setsockopt", status);
    if (g.json) PrintJson(JsonObject());
    return kExitOk;
  });
}

int GetSockOpt(const std::string& handle, const std::string& name) {
  absl::StatusOr<OptionSpec> spec = ParseOptionName(name);
  if (!spec.ok()) return Usage(spec.status());
  if (!spec->gettable) {
    return Usage(absl::InvalidArgumentError(
        absl::StrCat("option ", name, " is write-only")));
  }
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<v1::OptionValue> value = socket.GetSockOpt(spec->option);
    if (!value.ok()) return Fail("getsockopt", value.status());
    if (g.json) {
      PrintJson(JsonObject().AddString("value", FormatOptionValue(*value)));
    } else {
      std::cout << FormatOptionValue(*value) << std::endl;
    }
    return kExitOk;
  });
}

int SetTimeout(const std::string& handle, const std::string& text) {
  absl::StatusOr<std::optional<absl::Duration>> timeout = ParseTimeout(text);
  if (!timeout.ok()) return Usage(timeout.status());
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::Status status = socket.SetTimeout(*timeout);
    if (!status.ok()) return Fail("settimeout", status);
    if (g.json) PrintJson(JsonObject());
    return kExitOk;
  });
}

int GetTimeout(const std::string& handle) {
  return WithSocket(handle, [&](Agent&, Socket& socket) {
    absl::StatusOr<std::optional<absl::Duration>> timeout = socket.GetTimeout();
    if (!timeout.ok()) return Fail("gettimeout", timeout.status());
    if (g.json) {
      PrintJson(JsonObject().AddRaw(
          "timeout_s",
          timeout->has_value() ? DurationSeconds(**timeout) : "null"));
    } else {
      std::cout << (timeout->has_value() ? DurationText(**timeout) : "none")
                << std::endl;
    }
    return kExitOk;
  });
}

// -------------------------------------------------------------------- host

int GetHostname() {
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(false);
  if (!agent.ok()) return Fail("gethostname", agent.status());
  absl::StatusOr<std::string> name = (*agent)->GetHostname();
  if (!name.ok()) return Fail("gethostname", name.status());
  if (g.json) {
    PrintJson(JsonObject().AddString("hostname", *name));
  } else {
    std::cout << *name << std::endl;
  }
  return kExitOk;
}

int GetAddrInfo(const std::string& host, const std::string& port,
                const std::string& family_text, const std::string& type_text,
                bool passive) {
  v1::Family family = v1::FAMILY_UNSPECIFIED;
  v1::SocketType type = v1::SOCKET_TYPE_UNSPECIFIED;
  if (!family_text.empty()) {
    absl::StatusOr<v1::Family> f = ParseFamily(family_text);
    if (!f.ok()) return Usage(f.status());
    family = *f;
  }
  if (!type_text.empty()) {
    absl::StatusOr<v1::SocketType> t = ParseSocketType(type_text);
    if (!t.ok()) return Usage(t.status());
    type = *t;
  }
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(false);
  if (!agent.ok()) return Fail("getaddrinfo", agent.status());
  absl::StatusOr<std::vector<v1::AddrInfo>> results = (*agent)->GetAddrInfo(
      host, port, family, type, 0, passive ? AI_PASSIVE : 0);
  if (!results.ok()) return Fail("getaddrinfo", results.status());
  if (g.json) {
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

int ListSockets() {
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(true);
  if (!agent.ok()) return Fail("ls", agent.status());
  absl::StatusOr<std::vector<v1::SocketInfo>> sockets = (*agent)->ListSockets();
  if (!sockets.ok()) return Fail("ls", sockets.status());
  if (g.json) {
    v1::ListSocketsResponse response;
    for (const v1::SocketInfo& info : *sockets) *response.add_sockets() = info;
    std::cout << MessageJson(response) << std::endl;
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"HANDLE", "FAMILY", "TYPE", "STATE", "LOCAL", "PEER", "SENT", "RECEIVED",
       "TIMEOUT"}};
  for (const v1::SocketInfo& info : *sockets) {
    rows.push_back(
        {info.handle(), FamilyName(info.family()), SocketTypeName(info.type()),
         SocketStateName(info.state()),
         info.has_local() ? FormatAddress(info.local()) : "-",
         info.has_peer() ? FormatAddress(info.peer()) : "-",
         absl::StrCat(info.bytes_sent()), absl::StrCat(info.bytes_received()),
         info.has_timeout() ? DurationText(FromProtoDuration(info.timeout()))
                            : "none"});
  }
  std::cout << FormatTable(rows);
  return kExitOk;
}

int Info() {
  absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(false);
  if (!agent.ok()) return Fail("info", agent.status());
  absl::StatusOr<v1::GetAgentInfoResponse> info = (*agent)->GetAgentInfo();
  if (!info.ok()) return Fail("info", info.status());
  if (g.json) {
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

int Health(const std::string& service) {
  std::string state;
#ifdef SOCKAGENT_HAVE_HEALTH_PROTO
  AgentOptions security;
  if (absl::Status secured = Secure(&security); !secured.ok()) {
    return Usage(secured);
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
          g.agent,
          security.credentials != nullptr ? security.credentials
                                          : grpc::InsecureChannelCredentials(),
          args, std::move(interceptors));
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  absl::Duration timeout = g.call_timeout == absl::InfiniteDuration()
                               ? absl::Seconds(5)
                               : g.call_timeout;
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
    return Fail("health", status);
  } else if (status.code() == absl::StatusCode::kNotFound) {
    state = "SERVICE_UNKNOWN";
  }
#endif
  if (state.empty()) {
    // No health service: an answered GetAgentInfo counts as SERVING.
    absl::StatusOr<std::unique_ptr<Agent>> agent = ConnectAgent(false);
    if (!agent.ok()) return Fail("health", agent.status());
    absl::Status status = (*agent)->GetAgentInfo().status();
    if (!status.ok()) return Fail("health", status);
    state = "SERVING";
  }
  if (g.json) {
    PrintJson(JsonObject().AddString("status", state));
  } else {
    std::cout << state << std::endl;
  }
  return state == "SERVING" ? kExitOk : kExitFalse;
}

// ---------------------------------------------------------------------- nc

struct NcOptions {
  bool listen = false;
  bool udp = false;
  bool ipv6 = false;
  std::string host;  // "" = any address (with -l)
  std::string port;
  std::string quit_after;  // -q
  std::string ttl = "30s";
};

void Verbose(absl::string_view line) {
  if (g.verbose) std::cerr << "sockctl nc: " << line << std::endl;
}

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
int NcStream(Socket& socket, std::optional<absl::Duration> quit_after) {
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
    Verbose("stdin EOF: shutting down the write side");
    absl::Status status = socket.Shutdown(v1::SHUTDOWN_HOW_WRITE);
    if (!status.ok()) rc = Fail("shutdown", status);
    if (quit_after.has_value() &&
        !remote_done.WaitForNotificationWithTimeout(*quit_after)) {
      reader->Cancel();
    }
  } else if (!absl::IsCancelled(send_status)) {
    if (!remote_done.HasBeenNotified()) rc = Fail("send", send_status);
    reader->Cancel();
  }
  receiver.join();
  if (rc == kExitOk && !recv_status.ok() && !absl::IsCancelled(recv_status)) {
    rc = Fail("recv", recv_status);
  }
  return rc;
}

// UDP: stdin chunks -> datagrams, datagrams -> stdout. Ends at stdin EOF
// (after `quit_after`). With `peer` set, sends with SendTo and prints only
// datagrams from it.
int NcDatagram(Socket& socket, const std::optional<v1::Address>& peer,
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
    rc = Fail("send", send_status);
  }
  if (send_status.ok() && quit_after.has_value()) {
    receiver_done.WaitForNotificationWithTimeout(*quit_after);
  }
  reader->Cancel();
  receiver.join();
  if (rc == kExitOk && !recv_status.ok() && !absl::IsCancelled(recv_status)) {
    rc = Fail("recv", recv_status);
  }
  return rc;
}

int Nc(const NcOptions& nc) {
  const std::string& host = nc.host;
  const std::string& port = nc.port;
  const bool bracketed = host.size() >= 2 && host.front() == '[';
  absl::StatusOr<v1::Address> address = ParseAddressArg(
      absl::StrCat(bracketed || host.find(':') == std::string::npos
                       ? host
                       : absl::StrCat("[", host, "]"),
                   ":", port));
  if (!address.ok()) return Usage(address.status());
  std::optional<absl::Duration> quit_after;
  if (!nc.quit_after.empty()) {
    absl::StatusOr<absl::Duration> q = ParseDurationArg(nc.quit_after);
    if (!q.ok()) return Usage(q.status());
    quit_after = *q;
  } else if (nc.udp) {
    quit_after = absl::ZeroDuration();
  }
  absl::StatusOr<absl::Duration> ttl = ParseDurationArg(nc.ttl);
  if (!ttl.ok()) return Usage(ttl.status());

  AgentOptions options;
  options.target = g.agent;
  if (absl::Status secured = Secure(&options); !secured.ok()) {
    return Usage(secured);
  }
  options.session_ttl = *ttl;
  options.session_label = "sockctl nc";
  options.fail_fast = true;
  options.call_timeout = g.call_timeout;
  absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Connect(options);
  if (!agent.ok()) return Fail("nc", agent.status());
  const v1::Family family = nc.ipv6 ? v1::FAMILY_INET6 : v1::FAMILY_INET;
  const v1::SocketType type =
      nc.udp ? v1::SOCKET_TYPE_DGRAM : v1::SOCKET_TYPE_STREAM;
  absl::StatusOr<Socket> socket = (*agent)->CreateSocket(family, type);
  if (!socket.ok()) return Fail("socket", socket.status());

  if (!nc.listen) {
    absl::StatusOr<v1::Address> local = socket->Connect(*address, g.deadline);
    if (!local.ok()) return Fail("connect", local.status());
    Verbose(absl::StrCat("connected to ", FormatAddress(*address), " from ",
                         FormatAddress(*local)));
    return nc.udp ? NcDatagram(*socket, std::nullopt, quit_after)
                  : NcStream(*socket, quit_after);
  }

  if (absl::Status s = socket->SetSockOpt(v1::OPT_SO_REUSEADDR, true);
      !s.ok()) {
    return Fail("setsockopt", s);
  }
  absl::StatusOr<v1::Address> bound = socket->Bind(*address);
  if (!bound.ok()) return Fail("bind", bound.status());
  if (nc.udp) {
    Verbose(absl::StrCat("listening on udp ", FormatAddress(*bound)));
    absl::StatusOr<Datagram> first = socket->RecvFrom(65536, 0, g.deadline);
    if (!first.ok()) return Fail("recvfrom", first.status());
    Verbose(
        absl::StrCat("first datagram from ", FormatAddress(first->address)));
    WriteStdout(first->data);
    return NcDatagram(*socket, first->address, quit_after);
  }
  if (absl::Status s = socket->Listen(1); !s.ok()) return Fail("listen", s);
  Verbose(absl::StrCat("listening on ", FormatAddress(*bound)));
  absl::StatusOr<AcceptResult> accepted = socket->Accept(g.deadline);
  if (!accepted.ok()) return Fail("accept", accepted.status());
  Verbose(absl::StrCat("connection from ", FormatAddress(accepted->peer)));
  socket->Close().IgnoreError();
  return NcStream(accepted->socket, quit_after);
}

// --------------------------------------------------------------------- run

struct RunArgs {
  std::vector<std::string> files;
  std::string junit;
  bool check = false;  // parse only
};

// Blocks SIGINT and SIGTERM in the calling thread (and every thread it
// starts later) and turns them into `interrupt` from a sigwait thread, so a
// signal stops a scenario and its cleanup still runs. Stop() ends the thread.
class InterruptWatcher {
 public:
  InterruptWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      const timespec tick{0, 100 * 1000 * 1000};
      while (!done_.load()) {
        int sig = ::sigtimedwait(&set_, nullptr, &tick);
        if (sig != SIGINT && sig != SIGTERM) continue;
        const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
        if (interrupt_.HasBeenNotified()) {
          // A second signal: the user does not want to wait for cleanup.
          // The agents close what is left when the sessions' leases lapse.
          std::cerr << "sockctl run: " << name
                    << " again: exiting without cleanup" << std::endl;
          std::_Exit(128 + sig);
        }
        signal_.store(sig);
        std::cerr << "sockctl run: " << name
                  << ": stopping, cleaning up (again to exit at once)"
                  << std::endl;
        interrupt_.Notify();
      }
    });
  }
  ~InterruptWatcher() { Stop(); }
  void Stop() {
    done_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  const absl::Notification* interrupt() const { return &interrupt_; }
  // The signal received, or 0.
  int signal() const { return signal_.load(); }

 private:
  sigset_t set_;
  std::atomic<bool> done_{false};
  std::atomic<int> signal_{0};
  absl::Notification interrupt_;
  std::thread thread_;
};

int RunScenarios(const RunArgs& args, const std::vector<std::string>& extras) {
  RunOptions options;
  for (const std::string& extra : extras) {
    // --agent-NAME=HOST:PORT
    absl::string_view text = extra;
    if (!absl::ConsumePrefix(&text, "--agent-") ||
        text.find('=') == absl::string_view::npos || text.find('=') == 0) {
      return Usage(absl::InvalidArgumentError(absl::StrCat(
          "run: unexpected argument \"", extra,
          "\" (files, --junit FILE, --json, --agent-NAME=HOST:PORT)")));
    }
    size_t name_end = text.find('=');
    absl::StatusOr<std::string> target = AgentTarget(text.substr(name_end + 1));
    if (!target.ok()) {
      return Usage(absl::InvalidArgumentError(absl::StrCat(
          "run: --agent-", text.substr(0, name_end),
          absl::StripPrefix(target.status().message(), "--agent"))));
    }
    options.agent_targets[std::string(text.substr(0, name_end))] = *target;
  }
  if (g.call_timeout != absl::InfiniteDuration()) {
    options.connect_timeout = g.call_timeout;
  }
  options.fail_fast = true;
  options.default_security.tls_ca = g.tls_ca;
  options.default_security.tls_cert = g.tls_cert;
  options.default_security.tls_key = g.tls_key;
  options.default_security.tls_server_name = g.tls_server_name;
  options.default_security.token = g.token;

  // Every file is checked before anything runs; each error goes to stderr,
  // and with --json the first one also to stdout.
  std::vector<Scenario> scenarios;
  absl::Status first_error;
  auto report = [&first_error](const absl::Status& status) {
    std::cerr << "sockctl: " << status.message() << std::endl;
    if (first_error.ok()) first_error = status;
  };
  for (const std::string& file : args.files) {
    absl::StatusOr<Scenario> scenario = Scenario::ParseFile(file);
    if (!scenario.ok()) {
      report(scenario.status());
      continue;
    }
    for (const auto& [name, target] : options.agent_targets) {
      std::vector<std::string> names = scenario->agent_names();
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        report(absl::InvalidArgumentError(absl::StrCat(
            file, ": --agent-", name, ": no agent of that name (agents: ",
            absl::StrJoin(names, ", "), ")")));
      }
    }
    scenarios.push_back(*std::move(scenario));
  }
  if (!first_error.ok()) {
    if (g.json) std::cout << ErrorJson(first_error) << std::endl;
    return kExitUsage;
  }
  if (args.check) {
    for (const Scenario& scenario : scenarios) {
      std::cout << scenario.file() << ": " << scenario.name() << ", "
                << scenario.step_count() << " steps, agents "
                << absl::StrJoin(scenario.agent_names(), ", ") << std::endl;
    }
    return kExitOk;
  }

  InterruptWatcher watcher;
  options.interrupt = watcher.interrupt();
  options.on_step = [](const StepResult& step) {
    std::cerr << ProgressLine(step) << std::endl;
  };
  std::vector<ScenarioResult> results;
  for (const Scenario& scenario : scenarios) {
    if (watcher.interrupt()->HasBeenNotified()) break;
    std::cerr << "== " << scenario.name()
              << (scenario.file().empty() ? "" : " (" + scenario.file() + ")")
              << ": " << scenario.step_count() << " steps" << std::endl;
    results.push_back(scenario.Run(options));
    std::ostream& table = g.json ? std::cerr : std::cout;
    table << SummaryTable(results.back()) << std::flush;
  }
  watcher.Stop();
  (g.json ? std::cerr : std::cout)
      << TotalLine(results, static_cast<int>(scenarios.size() - results.size()))
      << std::endl;

  int rc = kExitOk;
  if (!args.junit.empty()) {
    std::ofstream out(args.junit, std::ios::trunc);
    out << JUnitXml(results);
    out.close();
    if (!out) {
      std::cerr << "sockctl: cannot write " << args.junit << std::endl;
      rc = kExitFalse;
    }
  }
  if (g.json) std::cout << ResultsJson(results) << std::endl;
  bool step_failed = false;
  bool agent_failed = false;
  for (const ScenarioResult& result : results) {
    for (const StepResult& step : result.steps) {
      if (step.status == StepStatus::kPassed ||
          step.status == StepStatus::kSkipped) {
        continue;
      }
      (step.kind == "session" ? agent_failed : step_failed) = true;
    }
    if (!result.ok() && !agent_failed) step_failed = true;
  }
  if (watcher.signal() != 0) return 128 + watcher.signal();
  if (step_failed) return kExitFalse;
  if (agent_failed) return kExitRpc;
  return rc;
}

// ------------------------------------------------------------------- main

// `text` with prose lines wrapped at 78 columns; lines starting with a space
// (examples) are kept as they are.
std::string Wrap(absl::string_view text) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line.front() == ' ') {
      absl::StrAppend(&out, line, "\n");
      continue;
    }
    size_t column = 0;
    for (absl::string_view word :
         absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      if (column > 0 && column + 1 + word.size() > 78) {
        out += "\n";
        column = 0;
      } else if (column > 0) {
        out += " ";
        ++column;
      }
      absl::StrAppend(&out, word);
      column += word.size();
    }
    out += "\n";
  }
  return out;
}

// CLI11 reports a word that names no subcommand as "A subcommand is
// required", which hides the cause. Walks `args` down the subcommands they
// name, stepping over options and their values, and returns a message naming
// the first unknown word (with the closest names), or "" when there is none.
std::string UnknownSubcommand(const CLI::App& app,
                              const std::vector<char*>& args) {
  const CLI::App* current = &app;
  for (size_t i = 1; i < args.size(); ++i) {
    const absl::string_view word = args[i];
    if (absl::StartsWith(word, "-")) {
      if (absl::StrContains(word, "=")) continue;
      const CLI::Option* option = nullptr;
      for (const CLI::App* a = current; a != nullptr && option == nullptr;
           a = a->get_parent()) {
        option = a->get_option_no_throw(std::string(word));
      }
      if (option != nullptr && option->get_type_size_max() > 0) ++i;
      continue;
    }
    const std::vector<const CLI::App*> subcommands =
        current->get_subcommands({});
    if (subcommands.empty()) return "";  // a leaf's positional argument
    const CLI::App* next = nullptr;
    std::vector<std::string> close;
    for (const CLI::App* sub : subcommands) {
      const std::string& name = sub->get_name();
      if (name == word) next = sub;
      const bool contains =
          word.size() >= 3 && name.size() >= 3 &&
          (absl::StrContains(name, word) || absl::StrContains(word, name));
      if ((contains || EditDistance(name, word) <= 2) && close.size() < 4) {
        close.push_back(name);
      }
    }
    if (next != nullptr) {
      current = next;
      continue;
    }
    std::string message = absl::StrCat("unknown subcommand '", word, "'");
    if (current != &app) absl::StrAppend(&message, " of ", current->get_name());
    if (!close.empty()) {
      absl::StrAppend(&message, " (did you mean ", absl::StrJoin(close, ", "),
                      "?)");
    }
    absl::StrAppend(&message, "; `sockctl ",
                    current == &app ? "" : current->get_name() + " ",
                    "--help` lists them");
    return message;
  }
  return "";
}

// A subcommand whose one-line summary is the first sentence of `help`; the
// whole text (description and example) ends its --help.
CLI::App* AddCommand(CLI::App* parent, const std::string& name,
                     const std::string& help) {
  size_t end = help.size();
  int depth = 0;
  for (size_t i = 0; i < help.size() && end == help.size(); ++i) {
    const char c = help[i];
    if (c == '(') ++depth;
    if (c == ')' && depth > 0) --depth;
    if (c == '\n' ||
        (depth == 0 && c == '.' &&
         (i + 1 == help.size() || help[i + 1] == ' ' || help[i + 1] == '\n'))) {
      end = i;
    }
  }
  CLI::App* sub = parent->add_subcommand(name, help.substr(0, end));
  sub->footer("\n" + Wrap(help));
  return sub;
}

int Main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app(kMainHelp, "sockctl");
  app.get_formatter()->column_width(34);
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--agent", g.agent, "agent address (host:port)")
      ->envname("SOCKAGENT_AGENT")
      ->capture_default_str();
  app.add_option("--session", g.session,
                 "session id from `sockctl session open`")
      ->envname("SOCKAGENT_SESSION");
  app.add_option("--timeout", g.timeout,
                 "deadline of each call, e.g. 5s (default: none)");
  app.add_flag("--json", g.json, "print one JSON object on stdout");
  app.add_option("--tls-ca", g.tls_ca,
                 "verify the agent's TLS certificate against this CA (PEM)")
      ->envname("SOCKAGENT_TLS_CA");
  app.add_option("--tls-cert", g.tls_cert,
                 "client certificate for mutual TLS (PEM)")
      ->envname("SOCKAGENT_TLS_CERT");
  app.add_option("--tls-key", g.tls_key, "client private key (PEM)")
      ->envname("SOCKAGENT_TLS_KEY");
  app.add_option("--tls-server-name", g.tls_server_name,
                 "name the agent's certificate must carry, when not the "
                 "--agent host");
  app.add_option("--token", g.token,
                 "bearer token (prefer SOCKAGENT_TOKEN: flags show in ps)")
      ->envname("SOCKAGENT_TOKEN");
  app.add_flag("-v,--verbose", g.verbose, "diagnostics on stderr");

  std::function<int()> action;
  // Registers `sub` to run `body` once parsing succeeded.
  auto on_run = [&action](CLI::App* sub, std::function<int()> body) {
    sub->callback([&action, body] { action = body; });
  };

  // session
  CLI::App* session = AddCommand(
      &app, "session",
      "Open, renew or close a session.\n\nEvery socket belongs to a session; "
      "when its lease lapses or it is closed, the agent closes all of its "
      "sockets.\n\nExample:\n  export SOCKAGENT_SESSION=$(sockctl session "
      "open --ttl 10m --label mytest)\n  sockctl session keepalive\n  sockctl "
      "session close");
  session->require_subcommand(1);
  // A script's session spans many separate sockctl processes, so it gets a
  // lease that outlasts the pauses between them, not the agent's short
  // default meant for clients with a keepalive thread.
  std::string ttl = "10m", label;
  CLI::App* open = AddCommand(
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
  on_run(open, [&] { return SessionOpen(ttl, label); });
  std::string close_id;
  CLI::App* close_session = AddCommand(
      session, "close",
      "Close the session and every socket in it. --id closes that session "
      "instead (one of your identity's, or any session for an admin "
      "identity).\n\nExample:\n  sockctl session close --session "
      "$SOCKAGENT_SESSION\n  sockctl session close --id ID   # admin");
  close_session->add_option("--id", close_id,
                            "close this session instead of --session");
  on_run(close_session, [&] { return SessionClose(close_id); });
  const char* kListHelp =
      "List sessions: id, identity, peer, label, created, lease expiry, "
      "sockets, bytes. An admin identity sees every session, others only "
      "their own (needs no session).\n\nExample:\n  sockctl session list";
  CLI::App* list_sessions = AddCommand(session, "list", kListHelp);
  on_run(list_sessions, [] { return SessionList(); });
  CLI::App* keepalive = AddCommand(
      session, "keepalive",
      "Renew the session's lease and print its length.\n\nExample:\n  "
      "sockctl session keepalive   # prints e.g. 10m");
  on_run(keepalive, [] { return SessionKeepAlive(); });

  // sessions list: the same as session list.
  CLI::App* sessions = AddCommand(&app, "sessions",
                                  "Sessions on the agent (as `session list`).");
  sessions->require_subcommand(1);
  CLI::App* sessions_list = AddCommand(sessions, "list", kListHelp);
  on_run(sessions_list, [] { return SessionList(); });

  // socket
  std::string family = "inet", type = "stream";
  int protocol = 0;
  CLI::App* socket_cmd = AddCommand(
      &app, "socket",
      "Create a socket on the agent and print its handle.\n\nExample:\n  "
      "H=$(sockctl socket --family inet6 --type dgram)");
  socket_cmd->add_option("--family", family, "inet | inet6 | unix")
      ->capture_default_str();
  socket_cmd->add_option("--type", type, "stream | dgram | seqpacket")
      ->capture_default_str();
  socket_cmd->add_option("--protocol", protocol,
                         "protocol number (0: default)");
  on_run(socket_cmd, [&] { return CreateSocket(family, type, protocol); });

  std::string handle, address, data, file, how, name, value;

  constexpr char kAddressForms[] =
      "address: host:port, [v6]:port, host:service, unix:/path, "
      "abstract:name";

  CLI::App* bind = AddCommand(
      &app, "bind",
      "Bind a socket and print the bound address (port 0 becomes the "
      "kernel's choice).\n\nExample:\n  sockctl bind $H 127.0.0.1:0   # "
      "prints e.g. 127.0.0.1:41234");
  AddHandle(bind, &handle);
  bind->add_option("ADDRESS", address, kAddressForms)->required();
  on_run(bind, [&] { return Bind(handle, address); });

  int backlog = 128;
  CLI::App* listen = AddCommand(
      &app, "listen",
      "Mark a stream socket as listening.\n\nExample:\n  sockctl listen $H "
      "--backlog 16");
  AddHandle(listen, &handle);
  listen->add_option("--backlog", backlog, "queue length")
      ->capture_default_str();
  on_run(listen, [&] { return Listen(handle, backlog); });

  CLI::App* accept = AddCommand(
      &app, "accept",
      "Wait for a connection and print \"NEW_HANDLE PEER\".\n\nExample:\n  "
      "read A PEER < <(sockctl accept $L)");
  AddHandle(accept, &handle);
  on_run(accept, [&] { return Accept(handle); });

  CLI::App* connect = AddCommand(
      &app, "connect",
      "Connect a socket (as seen from the agent) and print the local "
      "address.\n\nExample:\n  sockctl connect $H 127.0.0.1:8080");
  AddHandle(connect, &handle);
  connect->add_option("ADDRESS", address, kAddressForms)->required();
  on_run(connect, [&] { return Connect(handle, address); });

  bool all = false;
  CLI::App* send = AddCommand(
      &app, "send",
      "Send DATA, the contents of --file, or stdin (DATA \"-\" or none). "
      "Without --all this is one send(2), which may send less; the count "
      "is reported on stderr when short.\n\nExample:\n  sockctl send $H "
      "'GET / HTTP/1.0\\r\\n\\r\\n' ; printf 'x' | sockctl send $H - --all");
  AddHandle(send, &handle);
  CLI::Option* data_option =
      send->add_option("DATA", data, "bytes to send; - for stdin");
  send->add_option("--file", file, "send this file's contents");
  send->add_flag("--all", all, "like sendall: send every byte");
  on_run(send, [&] { return Send(handle, data_option, data, file, all); });

  uint32_t max = 65536;
  bool peek = false, waitall = false;
  CLI::App* recv = AddCommand(
      &app, "recv",
      "Receive once and write the raw bytes to stdout. At EOF nothing is "
      "written and the exit code is 0 (--json says \"eof\":true).\n\n"
      "Example:\n  sockctl recv $H --max 4096 > chunk.bin");
  AddHandle(recv, &handle);
  recv->add_option("--max", max, "most bytes to receive")
      ->capture_default_str();
  recv->add_flag("--peek", peek, "MSG_PEEK: leave the data queued");
  recv->add_flag("--waitall", waitall, "MSG_WAITALL: wait for --max bytes");
  on_run(recv, [&] { return Recv(handle, max, peek, waitall); });

  uint64_t limit = 0;
  uint32_t chunk = 0;
  CLI::App* recvstream = AddCommand(
      &app, "recvstream",
      "Stream everything received to stdout until EOF or --limit bytes.\n\n"
      "Example:\n  sockctl recvstream $H > download.bin");
  AddHandle(recvstream, &handle);
  recvstream->add_option("--limit", limit, "stop after N bytes (0: EOF)");
  recvstream->add_option("--chunk", chunk, "largest message (0: agent's)");
  on_run(recvstream, [&] { return RecvStream(handle, limit, chunk); });

  CLI::App* sendto = AddCommand(
      &app, "sendto",
      "Send one datagram to an address.\n\nExample:\n  sockctl sendto $U "
      "127.0.0.1:5353 ping");
  AddHandle(sendto, &handle);
  sendto->add_option("ADDRESS", address, kAddressForms)->required();
  sendto->add_option("DATA", data, "datagram payload; - for stdin")->required();
  on_run(sendto, [&] { return SendTo(handle, address, data); });

  CLI::App* recvfrom = AddCommand(
      &app, "recvfrom",
      "Receive one datagram: the payload goes to stdout, \"from ADDRESS\" "
      "to stderr (--json gives both in one object).\n\nExample:\n  sockctl "
      "--json recvfrom $U --max 1500");
  AddHandle(recvfrom, &handle);
  recvfrom->add_option("--max", max, "largest datagram")->capture_default_str();
  on_run(recvfrom, [&] { return RecvFrom(handle, max); });

  CLI::App* shutdown = AddCommand(
      &app, "shutdown",
      "Shut down one or both directions (wr sends EOF to the peer).\n\n"
      "Example:\n  sockctl shutdown $H wr");
  AddHandle(shutdown, &handle);
  shutdown->add_option("HOW", how, "rd | wr | rdwr")->required();
  on_run(shutdown, [&] { return Shutdown(handle, how); });

  CLI::App* close = AddCommand(
      &app, "close", "Close a socket.\n\nExample:\n  sockctl close $H");
  AddHandle(close, &handle);
  on_run(close, [&] { return Close(handle); });

  // Agent-side traffic and faults.
  CLI::App* traffic = AddCommand(
      &app, "traffic",
      "Run an echo, sink or source inside the agent; the bytes never cross "
      "the control channel. Waits until it ends, then prints what it did: "
      "why it ended (eof, bytes, duration, fault), bytes and datagrams each "
      "way, elapsed, throughput and the FNV-1a 64 checksum of the bytes "
      "received (echo, sink) or sent (source). A source and a sink of the "
      "same transfer print the same checksum. Sizes: 64K = 64KiB = 65536, "
      "1MB = 1000000 (docs/cli.md).\n\nExample:\n  sockctl traffic sink $A &\n "
      " sockctl "
      "traffic source $C --bytes 10M --pattern random --seed 7 "
      "--shutdown-write\n  wait   # both lines show the same checksum");
  traffic->require_subcommand(1);
  TrafficFlags traffic_flags;
  std::string traffic_kind;
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
    CLI::App* sub = AddCommand(traffic, kind, help);
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
    on_run(sub,
           [&, kind = kind] { return Traffic(kind, handle, traffic_flags); });
  }

  CLI::App* abort = AddCommand(
      &app, "abort",
      "Abortive close: SO_LINGER 0 then close, so a TCP peer gets RST "
      "(ECONNRESET) instead of EOF; unsent data is dropped. The handle is "
      "gone afterwards, as after close.\n\nExample:\n  sockctl abort $A");
  AddHandle(abort, &handle);
  on_run(abort, [&] { return Abort(handle); });

  FaultFlags fault_flags;
  CLI::App* faults = AddCommand(
      &app, "faults",
      "Set the socket's fault profile (Toxiproxy's vocabulary), replacing "
      "the previous one; --clear removes it. It shapes `sockctl traffic` on "
      "that socket, also traffic already running: --send-delay waits before "
      "each send (latency), --rate caps bytes per second (bandwidth), "
      "--slice-bytes/--slice-delay cut sends into pieces (slicer), "
      "--close-after-bytes closes the socket after that many bytes sent "
      "plus received (limit_data; with --reset by RST), --stop-reading "
      "stops reading so the peer's window fills. Half-close is `sockctl "
      "shutdown`.\n\nExample:\n  sockctl faults $A --send-delay 50ms "
      "--rate 64K\n  sockctl faults $A --close-after-bytes 1M --reset\n  "
      "sockctl faults $A --clear");
  AddHandle(faults, &handle);
  faults->add_option("--send-delay", fault_flags.send_delay,
                     "wait before each send, e.g. 50ms");
  faults->add_option("--rate", fault_flags.rate, "most bytes per second sent");
  faults->add_option("--slice-bytes", fault_flags.slice_bytes,
                     "each send at most this many bytes");
  faults->add_option("--slice-delay", fault_flags.slice_delay,
                     "pause between slices");
  faults->add_option("--close-after-bytes", fault_flags.close_after_bytes,
                     "close after this many bytes sent plus received");
  faults->add_flag("--reset", fault_flags.reset,
                   "--close-after-bytes closes with RST");
  faults->add_flag("--stop-reading", fault_flags.stop_reading,
                   "stop reading until cleared");
  faults->add_flag("--clear", fault_flags.clear, "remove every fault");
  on_run(faults, [&] { return Faults(handle, fault_flags); });

  CLI::App* getsockname = AddCommand(
      &app, "getsockname",
      "Print a socket's local address.\n\nExample:\n  sockctl getsockname $H");
  AddHandle(getsockname, &handle);
  on_run(getsockname, [&] { return SockName(handle, false); });

  CLI::App* getpeername = AddCommand(
      &app, "getpeername",
      "Print a connected socket's peer address.\n\nExample:\n  sockctl "
      "getpeername $H");
  AddHandle(getpeername, &handle);
  on_run(getpeername, [&] { return SockName(handle, true); });

  const std::string option_names = absl::StrJoin(OptionNames(), " ");
  CLI::App* setsockopt = AddCommand(
      &app, "setsockopt",
      absl::StrCat("Set a socket option. Values: on/off (bool), an integer, "
                   "on:SECONDS or off (SO_LINGER), GROUP[@IFACE] "
                   "(memberships). Names: ",
                   option_names,
                   "\n\nExample:\n  sockctl setsockopt $H SO_REUSEADDR on; "
                   "sockctl setsockopt $H SO_LINGER on:5"));
  AddHandle(setsockopt, &handle);
  setsockopt->add_option("NAME", name, "option name")->required();
  setsockopt->add_option("VALUE", value, "option value")->required();
  on_run(setsockopt, [&] { return SetSockOpt(handle, name, value); });

  CLI::App* getsockopt = AddCommand(
      &app, "getsockopt",
      absl::StrCat("Print a socket option's value. Names: ", option_names,
                   "\n\nExample:\n  sockctl getsockopt $H SO_RCVBUF"));
  AddHandle(getsockopt, &handle);
  getsockopt->add_option("NAME", name, "option name")->required();
  on_run(getsockopt, [&] { return GetSockOpt(handle, name); });

  CLI::App* settimeout = AddCommand(
      &app, "settimeout",
      "Python's settimeout: none = blocking, 0 = non-blocking (EAGAIN), a "
      "duration = waits fail with DEADLINE_EXCEEDED after it.\n\nExample:\n"
      "  sockctl settimeout $H 2.5s");
  AddHandle(settimeout, &handle);
  std::string timeout_value;
  settimeout->add_option("TIMEOUT", timeout_value, "none | 0 | 2.5s")
      ->required();
  on_run(settimeout, [&] { return SetTimeout(handle, timeout_value); });

  CLI::App* gettimeout = AddCommand(
      &app, "gettimeout",
      "Print a socket's timeout (none = blocking).\n\nExample:\n  sockctl "
      "gettimeout $H");
  AddHandle(gettimeout, &handle);
  on_run(gettimeout, [&] { return GetTimeout(handle); });

  CLI::App* gethostname = AddCommand(
      &app, "gethostname",
      "Print the agent host's name (needs no session).\n\nExample:\n  "
      "sockctl --agent node1:7700 gethostname");
  on_run(gethostname, [] { return GetHostname(); });

  std::string host, port, ai_family, ai_type;
  bool passive = false;
  CLI::App* getaddrinfo = AddCommand(
      &app, "getaddrinfo",
      "Resolve a name on the agent host (needs no session).\n\nExample:\n  "
      "sockctl getaddrinfo localhost http --type stream");
  getaddrinfo->add_option("HOST", host, "host name or literal")->required();
  getaddrinfo->add_option("PORT", port, "port number or service name");
  getaddrinfo->add_option("--family", ai_family, "inet | inet6 | unix");
  getaddrinfo->add_option("--type", ai_type, "stream | dgram | seqpacket");
  getaddrinfo->add_flag("--passive", passive, "AI_PASSIVE");
  on_run(getaddrinfo,
         [&] { return GetAddrInfo(host, port, ai_family, ai_type, passive); });

  CLI::App* ls = AddCommand(
      &app, "ls",
      "List the session's sockets: handle, family, type, state, addresses, "
      "byte counts, timeout.\n\nExample:\n  sockctl ls");
  on_run(ls, [] { return ListSockets(); });

  CLI::App* info = AddCommand(
      &app, "info",
      "Print the agent's version, features, limits and incarnation (needs no "
      "session).\n\nExample:\n  sockctl --json info");
  on_run(info, [] { return Info(); });

  std::string health_service;
  CLI::App* health = AddCommand(
      &app, "health",
      "Ask the agent's grpc.health.v1 service and print the status: exit 0 "
      "when SERVING, 1 when it answers anything else (NOT_SERVING while "
      "draining, SERVICE_UNKNOWN), 3 when the agent does not answer (a "
      "refused connection reports at once).\n\nExample:\n  until sockctl "
      "--timeout 1s health; do sleep 0.2; done");
  health->add_option("--service", health_service, "service name (\"\": all)");
  on_run(health, [&] { return Health(health_service); });

  NcOptions nc;
  CLI::App* nc_cmd = AddCommand(
      &app, "nc",
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
  on_run(nc_cmd, [&] { return Nc(nc); });

  RunArgs run_args;
  // `run`'s --agent-NAME=HOST:PORT options have free names, which CLI11
  // cannot declare: they are taken out of argv before parsing.
  std::vector<std::string> agent_overrides;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (i > 0 && absl::StartsWith(arg, "--agent-")) {
      // --agent-NAME=HOST:PORT or, like the global --agent, --agent-NAME
      // HOST:PORT.
      if (!absl::StrContains(arg, '=') && i + 1 < argc) {
        agent_overrides.push_back(absl::StrCat(arg, "=", argv[++i]));
      } else {
        agent_overrides.push_back(std::string(arg));
      }
    } else {
      args.push_back(argv[i]);
    }
  }
  CLI::App* run_cmd = AddCommand(
      &app, "run",
      "Run scenario files, declarative distributed tests of named agents, "
      "steps that map onto the RPCs and their expectations (the README's "
      "Scenarios section has the file format). Progress goes to stderr, a "
      "summary table to stdout (with "
      "--json: one JSON report on stdout, the table on stderr), --junit "
      "writes JUnit XML. Agents come from the file's address, "
      "SOCKAGENT_AGENT_<NAME>, or --agent-NAME=HOST:PORT (strongest). "
      "SIGINT/SIGTERM stops the run; cleanup (close every handle and "
      "session) always runs. Exit 0 only when every expectation held.\n\n"
      "Example:\n  sockctl run examples/scenarios/*.yaml --junit "
      "report.xml --agent-b=127.0.0.1:7701");
  run_cmd->add_option("FILE", run_args.files, "scenario files (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  run_cmd->add_option("--junit", run_args.junit, "write JUnit XML here");
  run_cmd->add_flag("--check", run_args.check,
                    "only parse the files (exit 0, or 2 naming the error)");
  on_run(run_cmd, [&] { return RunScenarios(run_args, agent_overrides); });

  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    if (const std::string unknown = UnknownSubcommand(app, args);
        !unknown.empty() && e.get_exit_code() != 0) {
      std::cerr << "sockctl: " << unknown << "\n";
      return kExitUsage;
    }
    if (e.get_exit_code() == 0) {  // --help
      app.exit(e);
      return kExitOk;
    }
    // The subcommand path the error belongs to, e.g. "session open".
    std::string path;
    for (const CLI::App* current = &app;;) {
      std::vector<const CLI::App*> parsed;
      for (const CLI::App* sub : current->get_subcommands({})) {
        if (sub->parsed()) parsed.push_back(sub);
      }
      if (parsed.empty()) break;
      current = parsed.front();
      absl::StrAppend(&path, path.empty() ? "" : " ", current->get_name());
    }
    std::cerr << "sockctl: " << (path.empty() ? "" : path + ": ") << e.what()
              << " (`sockctl " << (path.empty() ? "" : path + " ")
              << "--help` shows the usage)" << std::endl;
    return kExitUsage;
  }
  if (absl::StatusOr<std::string> target = AgentTarget(g.agent); !target.ok()) {
    return Usage(target.status());
  } else {
    g.agent = *target;
  }
  if (!g.timeout.empty()) {
    absl::StatusOr<absl::Duration> timeout = ParseDurationArg(g.timeout);
    if (!timeout.ok()) return Usage(timeout.status());
    if (*timeout <= absl::ZeroDuration()) {
      return Usage(absl::InvalidArgumentError("--timeout must be positive"));
    }
    g.call_timeout = *timeout;
    g.deadline = absl::Now() + *timeout;
  }
  if (!action) return kExitUsage;
  if (!agent_overrides.empty() && !run_cmd->parsed()) {
    return Usage(absl::InvalidArgumentError(absl::StrCat(
        "unknown option ", agent_overrides.front(),
        " (--agent-NAME=HOST:PORT is an option of `sockctl run`)")));
  }
  return action();
}

}  // namespace
}  // namespace cli
}  // namespace sockagent

int main(int argc, char** argv) { return sockagent::cli::Main(argc, argv); }
