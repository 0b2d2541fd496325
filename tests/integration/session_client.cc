// A client process for the session-lifetime tests: connects with the C++
// client library, opens one socket, prints what the test needs, then waits
// in one call until it ends. The test kills (SIGKILL) or stops (SIGSTOP)
// this process and watches the agent.
//
//   session_client TARGET TTL_SECONDS bound|lease recvfrom
//       a UDP socket bound to 127.0.0.1:0, then a RecvFrom with no timeout
//   session_client TARGET TTL_SECONDS bound|lease recvstream PORT
//       a TCP socket connected to 127.0.0.1:PORT, then a RecvStream whose
//       messages are taken as they come
//
// Prints "session <id>" and, for recvfrom, "port <n>" once waiting starts;
// then "data <bytes>" or "error <status>" when the call ends. Exit 0 when
// the call returned data/EOF, 1 otherwise.

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "client/agent.h"
#include "client/socket.h"

namespace {

int Fail(const char* what, const absl::Status& status) {
  std::printf("error %s: %s\n", what, status.ToString().c_str());
  std::fflush(stdout);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: %s TARGET TTL_SECONDS bound|lease recvfrom|"
                 "recvstream [PORT]\n",
                 argv[0]);
    return 2;
  }
  int ttl = 0;
  if (!absl::SimpleAtoi(argv[2], &ttl) || ttl <= 0) return 2;
  const std::string binding = argv[3];
  const std::string mode = argv[4];

  sockagent::AgentOptions options;
  options.target = argv[1];
  options.session_ttl = absl::Seconds(ttl);
  options.session_label = "session_client " + mode;
  options.bind_to_connection = binding == "bound";
  // Nothing renews the lease but the calls themselves.
  options.keepalive = false;
  absl::StatusOr<std::unique_ptr<sockagent::Agent>> agent =
      sockagent::Agent::Connect(options);
  if (!agent.ok()) return Fail("connect", agent.status());

  if (mode == "recvfrom") {
    absl::StatusOr<sockagent::Socket> socket = (*agent)->CreateSocket(
        sockagent::v1::FAMILY_INET, sockagent::v1::SOCKET_TYPE_DGRAM);
    if (!socket.ok()) return Fail("socket", socket.status());
    sockagent::v1::Address local;
    local.mutable_inet()->set_host("127.0.0.1");
    absl::StatusOr<sockagent::v1::Address> bound = socket->Bind(local);
    if (!bound.ok()) return Fail("bind", bound.status());
    std::printf("session %s\nport %u\n", (*agent)->session_id().c_str(),
                bound->inet().port());
    std::fflush(stdout);
    absl::StatusOr<sockagent::Datagram> got = socket->RecvFrom(1024);
    if (!got.ok()) return Fail("recvfrom", got.status());
    std::printf("data %s\n", got->data.c_str());
    std::fflush(stdout);
    return 0;
  }
  if (mode == "recvstream" && argc > 5) {
    int port = 0;
    if (!absl::SimpleAtoi(argv[5], &port)) return 2;
    absl::StatusOr<sockagent::Socket> socket = (*agent)->CreateSocket(
        sockagent::v1::FAMILY_INET, sockagent::v1::SOCKET_TYPE_STREAM);
    if (!socket.ok()) return Fail("socket", socket.status());
    sockagent::v1::Address peer;
    peer.mutable_inet()->set_host("127.0.0.1");
    peer.mutable_inet()->set_port(static_cast<uint32_t>(port));
    absl::StatusOr<sockagent::v1::Address> connected = socket->Connect(peer);
    if (!connected.ok()) return Fail("connect", connected.status());
    std::printf("session %s\n", (*agent)->session_id().c_str());
    std::fflush(stdout);
    uint64_t total = 0;
    absl::Status status = socket->RecvStream(
        [&](absl::string_view data) {
          total += data.size();
          return true;
        },
        0, 4096);
    if (!status.ok()) return Fail("recvstream", status);
    std::printf("data %llu bytes\n", static_cast<unsigned long long>(total));
    std::fflush(stdout);
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
