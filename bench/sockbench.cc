// sockbench: the benchmark driver. Measures sockagentd beside the gRPC floor
// (echo_floor_server) on loopback and prints one JSON object per figure:
//   {"case":"small","metric":"agent.gethostname.p50","unit":"us","rep":0,
//    "value":123.4}
// bench/run.sh starts the processes and turns the lines into the report.
//
//   sockbench run --agent=HOST:PORT --agent-pid=PID [--floor=HOST:PORT]
//                 --cases=small,lifecycle,streams,many,storm,slow
//                 [--reps=N] [--smoke] [--chunks=16,64,256]
//                 [--streams=download,upload,relay,recv,send]
//   sockbench peers PORT_FILE   an echo and a source server for the RPyC
//                               peer; writes "ECHO_PORT SOURCE_PORT"; runs
//                               until SIGTERM/SIGINT.
// Every loop is bounded in count and time.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/internal/connection.h"
#include "client/socket.h"
#include "echo.grpc.pb.h"
#include "peers.h"

namespace sockbench {
namespace {

using sockagent::Agent;
using sockagent::AgentOptions;
using sockagent::Socket;
namespace v1 = sockagent::v1;

struct Config {
  std::string agent = "127.0.0.1:7700";
  std::string floor;
  int agent_pid = 0;
  int reps = 3;
  int first_rep = 0;     // numbers the repetitions from here
  int many_sockets = 0;  // 0: the mode's default
  bool smoke = false;
  std::vector<std::string> cases;
  std::vector<uint32_t> chunk_kib = {16, 64, 256};  // streams' chunk sizes
  // Which stream directions to measure: the floor's download/upload and the
  // relay bound and the agent's recv/send (all unless --streams= names some).
  std::vector<std::string> streams = {"download", "upload", "relay", "recv",
                                      "send"};
};

bool Has(const std::vector<std::string>& names, absl::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

void Emit(const std::string& bench_case, const std::string& metric,
          const std::string& unit, int rep, double value) {
  std::printf(
      "{\"case\":\"%s\",\"metric\":\"%s\",\"unit\":\"%s\",\"rep\":%d,"
      "\"value\":%.6g}\n",
      bench_case.c_str(), metric.c_str(), unit.c_str(), rep, value);
  std::fflush(stdout);
}

void Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "sockbench: %s: %s\n", what.c_str(),
               status.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(const std::string& what, absl::StatusOr<T> result) {
  if (!result.ok()) Fail(what, result.status());
  return *std::move(result);
}

void Must(const std::string& what, const absl::Status& status) {
  if (!status.ok()) Fail(what, status);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Calls `op` `count` times (at most `limit` long); returns each latency in
// microseconds.
std::vector<double> Latencies(int count, absl::Duration limit,
                              const std::function<void()>& op) {
  std::vector<double> out;
  out.reserve(count);
  const absl::Time end = absl::Now() + limit;
  for (int i = 0; i < count && absl::Now() < end; ++i) {
    const absl::Time start = absl::Now();
    op();
    out.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  return out;
}

void EmitLatency(const std::string& bench_case, const std::string& prefix,
                 int rep, const std::vector<double>& us) {
  Emit(bench_case, prefix + ".p50", "us", rep, Percentile(us, 0.50));
  Emit(bench_case, prefix + ".p99", "us", rep, Percentile(us, 0.99));
}

// /proc/PID/status field in kB (VmRSS) or count (Threads).
double ProcStatus(int pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      double value = 0;
      std::string rest = line.substr(field.size() + 1);
      rest.erase(0, rest.find_first_not_of(" \t"));
      rest = rest.substr(0, rest.find(' '));
      if (absl::SimpleAtod(rest, &value)) return value;
    }
  }
  return -1;
}

// Threads of `pid` whose name starts with `prefix` (/proc/PID/task/*/comm).
int ThreadsNamed(int pid, const std::string& prefix) {
  const std::string dir_name = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = ::opendir(dir_name.c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat(dir_name, "/", entry->d_name, "/comm"));
    std::string name;
    if (std::getline(in, name) && name.rfind(prefix, 0) == 0) ++n;
  }
  ::closedir(dir);
  return n;
}

int FdCount(int pid) {
  DIR* dir = ::opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (::readdir(dir) != nullptr) ++n;
  ::closedir(dir);
  return n - 2;
}

std::unique_ptr<Agent> ConnectAgent(const Config& config) {
  AgentOptions options;
  options.target = config.agent;
  options.session_ttl = absl::Minutes(5);
  return Must("Agent::Connect", Agent::Connect(options));
}

std::shared_ptr<grpc::Channel> FloorChannel(const Config& config) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(config.floor,
                                   grpc::InsecureChannelCredentials(), args);
}

v1::Address Loopback(int port) {
  return sockagent::InetAddress("127.0.0.1", port);
}

Socket ConnectedSocket(Agent& agent, int port) {
  Socket s = Must("CreateSocket",
                  agent.CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM));
  Must("Connect", s.Connect(Loopback(port)).status());
  return s;
}

// One lifecycle: socket -> connect -> send 64 B -> recv 64 B echo -> close.
absl::Status Lifecycle(Agent& agent, int echo_port) {
  absl::StatusOr<Socket> s =
      agent.CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  if (!s.ok()) return s.status();
  absl::StatusOr<v1::Address> local = s->Connect(Loopback(echo_port));
  if (!local.ok()) return local.status();
  static const std::string kPayload(64, 'p');
  if (absl::Status st = s->SendAll(kPayload); !st.ok()) return st;
  size_t got = 0;
  for (int i = 0; i < 64 && got < kPayload.size(); ++i) {
    absl::StatusOr<std::string> data = s->Recv(kPayload.size() - got);
    if (!data.ok()) return data.status();
    if (data->empty()) return absl::DataLossError("echo closed early");
    got += data->size();
  }
  return s->Close();
}

// ---- small ops ------------------------------------------------------------

void SmallOps(const Config& config, int rep) {
  const int count = config.smoke ? 200 : 3000;
  const absl::Duration limit = absl::Seconds(config.smoke ? 2 : 20);
  const std::string payload(64, 'x');
  if (!config.floor.empty()) {
    auto stub = bench::v1::Echo::NewStub(FloorChannel(config));
    bench::v1::PingRequest request;
    request.set_payload(payload);
    auto ping = [&] {
      grpc::ClientContext ctx;
      bench::v1::PingResponse response;
      grpc::Status st = stub->Ping(&ctx, request, &response);
      if (!st.ok()) Fail("floor Ping", absl::UnknownError(st.error_message()));
    };
    Latencies(100, limit, ping);
    EmitLatency("small", "floor.unary64", rep, Latencies(count, limit, ping));
  }
  std::unique_ptr<Agent> agent = ConnectAgent(config);
  auto hostname = [&] { Must("GetHostname", agent->GetHostname().status()); };
  Latencies(100, limit, hostname);
  EmitLatency("small", "agent.gethostname", rep,
              Latencies(count, limit, hostname));

  PeerServer sink(PeerServer::Mode::kSink);
  Socket to_sink = ConnectedSocket(*agent, sink.port());
  auto send = [&] { Must("Send", to_sink.Send(payload).status()); };
  Latencies(100, limit, send);
  EmitLatency("small", "agent.send64", rep, Latencies(count, limit, send));

  // The source keeps the socket's receive queue full: every Recv is ready.
  PeerServer source(PeerServer::Mode::kSource);
  Socket from_source = ConnectedSocket(*agent, source.port());
  auto recv = [&] {
    std::string data = Must("Recv", from_source.Recv(64));
    if (data.empty()) Fail("Recv", absl::DataLossError("EOF"));
  };
  Latencies(100, limit, recv);
  EmitLatency("small", "agent.recv64", rep, Latencies(count, limit, recv));
}

// ---- lifecycles -------------------------------------------------------------

// Runs `callers` threads of `op` for `duration`; returns completed ops/s.
double Rate(int callers, absl::Duration duration,
            const std::function<std::function<void()>()>& make_op) {
  std::atomic<int64_t> done{0};
  std::vector<std::function<void()>> ops;
  for (int i = 0; i < callers; ++i) ops.push_back(make_op());
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  std::vector<std::thread> threads;
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      while (absl::Now() < end) {
        ops[i]();
        done.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  return done.load() / absl::ToDoubleSeconds(absl::Now() - start);
}

void Lifecycles(const Config& config, int rep) {
  const absl::Duration duration = absl::Seconds(config.smoke ? 0.3 : 3);
  PeerServer echo(PeerServer::Mode::kEcho);
  std::vector<std::unique_ptr<Agent>> agents;
  for (int i = 0; i < 8; ++i) agents.push_back(ConnectAgent(config));
  std::atomic<int> next{0};
  auto make_lifecycle = [&]() -> std::function<void()> {
    Agent* agent = agents[next.fetch_add(1) % agents.size()].get();
    return
        [agent, &echo] { Must("lifecycle", Lifecycle(*agent, echo.port())); };
  };
  Rate(1, absl::Milliseconds(100), make_lifecycle);
  const double one = Rate(1, duration, make_lifecycle);
  next = 0;
  const double eight = Rate(8, duration, make_lifecycle);
  Emit("lifecycle", "agent.lifecycle.rate1", "1/s", rep, one);
  Emit("lifecycle", "agent.lifecycle.rate8", "1/s", rep, eight);
  Emit("lifecycle", "agent.lifecycle.scaling8", "x", rep, eight / one);
  if (config.floor.empty()) return;
  const std::string payload(64, 'x');
  auto make_ping = [&]() -> std::function<void()> {
    std::shared_ptr<bench::v1::Echo::Stub> stub =
        bench::v1::Echo::NewStub(FloorChannel(config));
    return [stub, payload] {
      grpc::ClientContext ctx;
      bench::v1::PingRequest request;
      request.set_payload(payload);
      bench::v1::PingResponse response;
      grpc::Status st = stub->Ping(&ctx, request, &response);
      if (!st.ok()) Fail("floor Ping", absl::UnknownError(st.error_message()));
    };
  };
  Rate(1, absl::Milliseconds(100), make_ping);
  const double f1 = Rate(1, duration, make_ping);
  const double f8 = Rate(8, duration, make_ping);
  Emit("lifecycle", "floor.unary.rate1", "1/s", rep, f1);
  Emit("lifecycle", "floor.unary.rate8", "1/s", rep, f8);
  Emit("lifecycle", "floor.unary.scaling8", "x", rep, f8 / f1);
}

// ---- streams ----------------------------------------------------------------

double MBps(uint64_t bytes, absl::Duration elapsed) {
  return bytes / 1e6 / absl::ToDoubleSeconds(elapsed);
}

// A blocking loopback TCP connection to 127.0.0.1:`port`, with 10 s receive
// and send timeouts so that no loop here can hang.
int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("relay socket", absl::InternalError(strerror(errno)));
  const timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Fail("relay connect", absl::InternalError(strerror(errno)));
  }
  return fd;
}

// The relay bound: the agent's stream path without gRPC. A thread reads up
// to `chunk` bytes at a time from a source peer and writes each completely
// to a second loopback TCP connection, which this thread drains: two TCP
// hops, peer -> relay -> reader, as RecvStream has (peer -> agent ->
// client) and SendStream mirrors. On a machine whose cores are busy with
// the TCP work of both hops, no relay can be faster than this, with or
// without gRPC. Returns MB/s.
double RelayMBps(uint32_t chunk, uint64_t total) {
  PeerServer source(PeerServer::Mode::kSource);
  const int listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listen_fd < 0 ||
      ::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0 ||
      ::listen(listen_fd, 1) != 0 ||
      ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Fail("relay listen", absl::InternalError(strerror(errno)));
  }
  const int reader = ConnectLoopback(ntohs(addr.sin_port));
  const int down = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(listen_fd);
  const int up = ConnectLoopback(source.port());
  if (down < 0) Fail("relay accept", absl::InternalError(strerror(errno)));
  const timeval timeout{10, 0};
  ::setsockopt(down, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));

  const absl::Time start = absl::Now();
  std::thread relay([&] {
    std::string buffer(chunk, '\0');
    uint64_t moved = 0;
    while (moved < total) {
      const ssize_t n = ::recv(up, buffer.data(),
                               std::min<uint64_t>(chunk, total - moved), 0);
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        const ssize_t w =
            ::send(down, buffer.data() + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += w;
      }
      moved += n;
    }
    ::shutdown(down, SHUT_WR);
  });
  std::string buffer(std::max<uint32_t>(chunk, 64 * 1024), '\0');
  uint64_t got = 0;
  for (;;) {
    const ssize_t n = ::recv(reader, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    got += n;
  }
  const absl::Duration elapsed = absl::Now() - start;
  relay.join();
  for (int fd : {reader, down, up}) ::close(fd);
  if (got != total) {
    Fail("relay", absl::DataLossError(
                      absl::StrCat("moved ", got, " of ", total, " bytes")));
  }
  return MBps(got, elapsed);
}

void Streams(const Config& config, int rep) {
  const uint64_t total = config.smoke ? (8u << 20) : (256u << 20);
  std::unique_ptr<Agent> agent = ConnectAgent(config);
  for (uint32_t kib : config.chunk_kib) {
    const uint32_t chunk = kib * 1024;
    const std::string label = absl::StrCat(kib, "k");
    if (!config.floor.empty()) {
      auto stub = bench::v1::Echo::NewStub(FloorChannel(config));
      if (Has(config.streams, "download")) {
        grpc::ClientContext ctx;
        bench::v1::DownloadRequest request;
        request.set_chunk_bytes(chunk);
        request.set_total_bytes(total);
        const absl::Time start = absl::Now();
        auto reader = stub->Download(&ctx, request);
        bench::v1::Chunk c;
        uint64_t got = 0;
        while (reader->Read(&c)) got += c.data().size();
        grpc::Status st = reader->Finish();
        if (!st.ok()) Fail("Download", absl::UnknownError(st.error_message()));
        Emit("streams", "floor.download." + label, "MB/s", rep,
             MBps(got, absl::Now() - start));
      }
      if (Has(config.streams, "upload")) {
        grpc::ClientContext ctx;
        bench::v1::UploadResponse response;
        const absl::Time start = absl::Now();
        auto writer = stub->Upload(&ctx, &response);
        bench::v1::Chunk c;
        c.mutable_data()->assign(chunk, 'u');
        for (uint64_t sent = 0; sent < total; sent += chunk) {
          if (!writer->Write(c)) break;
        }
        writer->WritesDone();
        grpc::Status st = writer->Finish();
        if (!st.ok()) Fail("Upload", absl::UnknownError(st.error_message()));
        Emit("streams", "floor.upload." + label, "MB/s", rep,
             MBps(response.bytes(), absl::Now() - start));
      }
    }
    if (Has(config.streams, "relay")) {
      Emit("streams", "relay." + label, "MB/s", rep, RelayMBps(chunk, total));
    }
    if (Has(config.streams, "recv")) {
      PeerServer source(PeerServer::Mode::kSource);
      Socket s = ConnectedSocket(*agent, source.port());
      uint64_t got = 0;
      const absl::Time start = absl::Now();
      Must("RecvStream", s.RecvStream(
                             [&](absl::string_view data) {
                               got += data.size();
                               return true;
                             },
                             total, chunk));
      Emit("streams", "agent.recvstream." + label, "MB/s", rep,
           MBps(got, absl::Now() - start));
    }
    if (Has(config.streams, "send")) {
      PeerServer sink(PeerServer::Mode::kSink);
      Socket s = ConnectedSocket(*agent, sink.port());
      const std::string data(chunk, 's');
      const absl::Time start = absl::Now();
      std::unique_ptr<sockagent::SendStreamWriter> writer = s.OpenSendStream();
      for (uint64_t sent = 0; sent < total; sent += chunk) {
        if (!writer->Write(data).ok()) break;
      }
      uint64_t sent = Must("SendStream", writer->Finish());
      Emit("streams", "agent.sendstream." + label, "MB/s", rep,
           MBps(sent, absl::Now() - start));
    }
  }
}

// ---- 10,000 sockets with a waiting Recv
// --------------------------------------

void Many(const Config& config, int rep) {
  const int sockets = config.many_sockets != 0 ? config.many_sockets
                      : config.smoke           ? 200
                                               : 10000;
  const absl::Time t0 = absl::Now();
  auto phase = [&](const char* what) {
    std::fprintf(stderr, "many: %s after %.1f s\n", what,
                 absl::ToDoubleSeconds(absl::Now() - t0));
  };
  const int count = config.smoke ? 200 : 2000;
  const absl::Duration limit = absl::Seconds(config.smoke ? 2 : 20);
  PeerServer echo(PeerServer::Mode::kEcho);
  std::unique_ptr<Agent> agent = ConnectAgent(config);
  auto hostname = [&] { Must("GetHostname", agent->GetHostname().status()); };
  Latencies(100, limit, hostname);
  EmitLatency("many", "agent.gethostname.idle", rep,
              Latencies(count, limit, hostname));
  const double rss0 = ProcStatus(config.agent_pid, "VmRSS");
  const double threads0 = ProcStatus(config.agent_pid, "Threads");
  // gRPC's iomgr executor starts with one thread and grows on demand to a
  // fixed cap (2 per core); counted apart so that the report can tell it
  // from threads that would follow the load.
  const int executor0 = ThreadsNamed(config.agent_pid, "default-executo");

  std::vector<Socket> open;
  open.reserve(sockets);
  const absl::Time open_end = absl::Now() + absl::Seconds(120);
  for (int i = 0; i < sockets && absl::Now() < open_end; ++i) {
    open.push_back(ConnectedSocket(*agent, echo.port()));
  }
  const double rss1 = ProcStatus(config.agent_pid, "VmRSS");
  phase("sockets open");

  // One waiting Recv per socket, through the raw callback stub.
  std::shared_ptr<const sockagent::internal::Connection> connection =
      agent->connection();
  struct Pending {
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::RecvRequest request;
    v1::RecvResponse response;
  };
  std::vector<Pending> pending(open.size());
  std::atomic<int> finished{0};
  for (size_t i = 0; i < open.size(); ++i) {
    Pending& p = pending[i];
    p.ctx = connection->MakeContext(sockagent::internal::CallKind::kWaiting);
    p.request.set_handle(open[i].handle());
    p.request.set_max_bytes(64 * 1024);
    connection->stub().async()->Recv(
        p.ctx.get(), &p.request, &p.response,
        [&finished](grpc::Status) { finished.fetch_add(1); });
  }
  // Polls (bounded) on a channel of its own until the agent reports every
  // Recv as waiting.
  auto stats_stub = v1::SocketAgent::NewStub(
      grpc::CreateChannel(config.agent, grpc::InsecureChannelCredentials()));
  uint64_t waiting = 0;
  const absl::Time wait_end = absl::Now() + absl::Seconds(20);
  while (absl::Now() < wait_end) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    v1::GetAgentInfoResponse info;
    if (stats_stub->GetAgentInfo(&ctx, v1::GetAgentInfoRequest(), &info).ok()) {
      waiting = info.stats().waiting_operations();
    }
    if (waiting >= open.size()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  phase("recvs waiting");
  absl::SleepFor(absl::Milliseconds(300));
  const double rss2 = ProcStatus(config.agent_pid, "VmRSS");
  const double threads2 = ProcStatus(config.agent_pid, "Threads");
  const int executor2 = ThreadsNamed(config.agent_pid, "default-executo");
  EmitLatency("many", "agent.gethostname.loaded", rep,
              Latencies(count, limit, hostname));
  const double n = static_cast<double>(open.size());
  Emit("many", "agent.sockets", "count", rep, n);
  Emit("many", "agent.waiting_recvs", "count", rep, waiting);
  Emit("many", "agent.rss.baseline", "MiB", rep, rss0 / 1024);
  Emit("many", "agent.rss.loaded", "MiB", rep, rss2 / 1024);
  Emit("many", "agent.rss_per_socket", "KiB", rep, (rss2 - rss0) / n);
  Emit("many", "agent.rss_per_open_socket", "KiB", rep, (rss1 - rss0) / n);
  Emit("many", "agent.rss_per_waiting_recv", "KiB", rep, (rss2 - rss1) / n);
  Emit("many", "agent.threads.idle", "count", rep, threads0);
  Emit("many", "agent.threads.loaded", "count", rep, threads2);
  Emit("many", "agent.threads.delta", "count", rep, threads2 - threads0);
  Emit("many", "agent.threads.executor_delta", "count", rep,
       executor2 - executor0);

  for (Pending& p : pending) p.ctx->TryCancel();
  for (int i = 0; i < 200 && finished.load() < static_cast<int>(n); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  phase("recvs ended");
  Must("CloseSession", agent->CloseSession().status());
  for (Socket& s : open) s.Release();
  phase("session closed");
}

// ---- 100 clients doing lifecycles for 30 s
// ---------------------------------------------

void Storm(const Config& config, int rep) {
  const int clients = config.smoke ? 10 : 100;
  const absl::Duration duration = absl::Seconds(config.smoke ? 1 : 30);
  PeerServer echo(PeerServer::Mode::kEcho);
  const int fds0 = FdCount(config.agent_pid);
  std::atomic<int64_t> ok{0}, errors{0};
  absl::Mutex mu;
  std::vector<double> latencies;
  {
    std::vector<std::unique_ptr<Agent>> agents;
    for (int i = 0; i < clients; ++i) agents.push_back(ConnectAgent(config));
    const absl::Time end = absl::Now() + duration;
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([&, i] {
        std::vector<double> mine;
        while (absl::Now() < end) {
          const absl::Time start = absl::Now();
          absl::Status st = Lifecycle(*agents[i], echo.port());
          mine.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
          (st.ok() ? ok : errors).fetch_add(1);
          if (!st.ok() && errors.load() < 5) {
            std::fprintf(stderr, "storm: %s\n", st.ToString().c_str());
          }
        }
        absl::MutexLock lock(&mu);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    }
    for (auto& t : threads) t.join();
  }
  // The Agents' destructors closed their sessions; give the last closes a
  // bounded moment to land.
  int fds1 = FdCount(config.agent_pid);
  for (int i = 0; i < 50 && fds1 > fds0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    fds1 = FdCount(config.agent_pid);
  }
  Emit("storm", "agent.storm.clients", "count", rep, clients);
  Emit("storm", "agent.storm.lifecycles", "count", rep, ok.load());
  Emit("storm", "agent.storm.rate", "1/s", rep,
       ok.load() / absl::ToDoubleSeconds(duration));
  Emit("storm", "agent.storm.errors", "count", rep, errors.load());
  Emit("storm", "agent.storm.fd_delta", "count", rep, fds1 - fds0);
  Emit("storm", "agent.storm.p50", "ms", rep,
       Percentile(latencies, 0.50) / 1000);
  Emit("storm", "agent.storm.p99", "ms", rep,
       Percentile(latencies, 0.99) / 1000);
}

// ---- slow consumer
// -------------------------------------------------------------

void Slow(const Config& config, int rep) {
  const uint64_t budget = config.smoke ? (64ull << 20) : (1ull << 30);
  const int messages = config.smoke ? 5 : 15;
  const absl::Duration interval = absl::Milliseconds(config.smoke ? 100 : 1000);
  const uint32_t chunk = 64 * 1024;
  std::unique_ptr<Agent> agent = ConnectAgent(config);
  PeerServer source(PeerServer::Mode::kSource, budget);
  Socket s = ConnectedSocket(*agent, source.port());
  const double rss0 = ProcStatus(config.agent_pid, "VmRSS");
  double rss_max = rss0;
  std::unique_ptr<sockagent::RecvStreamReader> reader =
      s.OpenRecvStream(0, chunk);
  std::string data;
  uint64_t got = 0;
  for (int i = 0; i < messages; ++i) {
    if (!reader->Next(&data)) break;
    got += data.size();
    const absl::Time next = absl::Now() + interval;
    while (absl::Now() < next) {
      rss_max = std::max(rss_max, ProcStatus(config.agent_pid, "VmRSS"));
      absl::SleepFor(interval / 4);
    }
  }
  reader->Cancel();
  reader->Finish().IgnoreError();
  Emit("slow", "agent.slow.peer_sent", "MiB", rep,
       source.bytes_sent() / 1048576.0);
  Emit("slow", "agent.slow.delivered", "MiB", rep, got / 1048576.0);
  Emit("slow", "agent.slow.rss_baseline", "MiB", rep, rss0 / 1024);
  Emit("slow", "agent.slow.rss_growth", "MiB", rep, (rss_max - rss0) / 1024);
}

int Run(const Config& config) {
  const std::map<std::string, std::function<void(const Config&, int)>> cases = {
      {"small", SmallOps}, {"lifecycle", Lifecycles}, {"streams", Streams},
      {"many", Many},      {"storm", Storm},          {"slow", Slow}};
  for (const std::string& name : config.cases) {
    auto it = cases.find(name);
    if (it == cases.end()) {
      std::fprintf(stderr, "sockbench: unknown case %s\n", name.c_str());
      return 2;
    }
    for (int rep = config.first_rep; rep < config.first_rep + config.reps;
         ++rep) {
      it->second(config, rep);
    }
  }
  return 0;
}

int Peers(const std::string& port_file) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  PeerServer echo(PeerServer::Mode::kEcho);
  PeerServer source(PeerServer::Mode::kSource);
  {
    std::ofstream out(port_file + ".tmp");
    out << echo.port() << " " << source.port() << "\n";
  }
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  int signal = 0;
  sigwait(&signals, &signal);
  return 0;
}

}  // namespace
}  // namespace sockbench

int main(int argc, char** argv) {
  // As sockagentd does in release builds: no lock-graph upkeep on every
  // Mutex operation (gRPC's own mutexes are absl::Mutex too).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc >= 3 && std::string(argv[1]) == "peers") {
    return sockbench::Peers(argv[2]);
  }
  if (argc < 2 || std::string(argv[1]) != "run") {
    std::fprintf(stderr, "usage: sockbench run --agent=... | peers FILE\n");
    return 2;
  }
  sockbench::Config config;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& key) -> const char* {
      return arg.rfind(key, 0) == 0 ? argv[i] + key.size() : nullptr;
    };
    if (const char* v = value("--agent=")) {
      config.agent = v;
    } else if (const char* v = value("--floor=")) {
      config.floor = v;
    } else if (const char* v = value("--agent-pid=")) {
      config.agent_pid = std::atoi(v);
    } else if (const char* v = value("--reps=")) {
      config.reps = std::max(1, std::atoi(v));
    } else if (const char* v = value("--first-rep=")) {
      config.first_rep = std::atoi(v);
    } else if (const char* v = value("--many-sockets=")) {
      config.many_sockets = std::atoi(v);
    } else if (const char* v = value("--cases=")) {
      config.cases = absl::StrSplit(v, ',', absl::SkipEmpty());
    } else if (const char* v = value("--chunks=")) {
      config.chunk_kib.clear();
      for (absl::string_view kib : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        uint32_t n = 0;
        if (!absl::SimpleAtoi(kib, &n) || n == 0 || n > 4096) {
          std::fprintf(stderr, "sockbench: --chunks: bad size in KiB: %s\n",
                       std::string(kib).c_str());
          return 2;
        }
        config.chunk_kib.push_back(n);
      }
    } else if (const char* v = value("--streams=")) {
      config.streams = absl::StrSplit(v, ',', absl::SkipEmpty());
      for (const std::string& name : config.streams) {
        if (!sockbench::Has({"download", "upload", "relay", "recv", "send"},
                            name)) {
          std::fprintf(stderr,
                       "sockbench: --streams: unknown stream %s (known: "
                       "download, upload, relay, recv, send)\n",
                       name.c_str());
          return 2;
        }
      }
    } else if (arg == "--smoke") {
      config.smoke = true;
    } else {
      std::fprintf(stderr, "sockbench: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  return sockbench::Run(config);
}
