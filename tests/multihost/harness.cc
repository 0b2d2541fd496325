// The harness half of the multi-host test, written against the client library
// the way a user's distributed integration test would be. netns_test.sh runs
// it inside the harness namespace; it drives two agents in two other
// namespaces over mutual TLS:
//
//   multihost_harness --a 10.231.0.1:7700 --b 10.231.0.2:7700
//       --ca ca.pem --cert harness.pem --key harness.key
//       --host-a NAME --host-b NAME
//
// A listens on its own address, B connects to it, 256 KiB go B -> A (A reads
// with RecvStream while B sends), a reply goes A -> B, datagrams go both
// ways, the hostnames are the ones each namespace was given, and at the end
// both sessions hold no socket. Prints one "ok:" line per check; the first
// failed check prints "FAIL: ..." and exits 1.

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/credentials.h"
#include "client/socket.h"

namespace {

using sockagent::Agent;
using sockagent::Socket;
namespace v1 = sockagent::v1;

// Every wait is bounded: a stuck step fails instead of hanging the test.
constexpr absl::Duration kStepTimeout = absl::Seconds(20);

[[noreturn]] void Fail(absl::string_view what) {
  std::cerr << "FAIL: " << what << "\n";
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> value, absl::string_view what) {
  if (!value.ok()) Fail(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

void Check(const absl::Status& status, absl::string_view what) {
  if (!status.ok()) Fail(absl::StrCat(what, ": ", status.ToString()));
}

void ExpectEq(absl::string_view what, absl::string_view expected,
              absl::string_view actual) {
  if (expected != actual) {
    Fail(absl::StrCat(what, ": expected '", expected, "', got '", actual, "'"));
  }
}

void Pass(absl::string_view what) { std::cout << "ok: " << what << "\n"; }

struct Flags {
  std::string a, b, ca, cert, key, host_a, host_b;
};

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    const absl::string_view name = argv[i];
    std::string* field = name == "--a"        ? &flags.a
                         : name == "--b"      ? &flags.b
                         : name == "--ca"     ? &flags.ca
                         : name == "--cert"   ? &flags.cert
                         : name == "--key"    ? &flags.key
                         : name == "--host-a" ? &flags.host_a
                         : name == "--host-b" ? &flags.host_b
                                              : nullptr;
    if (field == nullptr) Fail(absl::StrCat("unknown flag ", name));
    *field = argv[i + 1];
  }
  if (flags.a.empty() || flags.b.empty() || flags.ca.empty() ||
      flags.cert.empty() || flags.key.empty() || flags.host_a.empty() ||
      flags.host_b.empty()) {
    Fail(
        "usage: multihost_harness --a HOST:PORT --b HOST:PORT --ca FILE "
        "--cert FILE --key FILE --host-a NAME --host-b NAME");
  }
  return flags;
}

std::unique_ptr<Agent> ConnectTo(const std::string& target, const Flags& flags,
                                 absl::string_view label) {
  sockagent::AgentOptions options;
  options.target = target;
  options.session_label = std::string(label);
  options.session_ttl = absl::Seconds(60);
  options.call_timeout = kStepTimeout;
  options.credentials =
      Check(sockagent::TlsCredentialsFromFiles(flags.ca, flags.cert, flags.key),
            "client certificate");
  return Check(Agent::Connect(options), absl::StrCat("connect to ", target));
}

// The host part of "10.231.0.1:7700".
std::string HostOf(const std::string& target) {
  return target.substr(0, target.rfind(':'));
}

std::string Pattern(size_t size) {
  std::string data(size, '\0');
  uint32_t x = 2463534242u;  // xorshift32: bytes a shifted copy would not match
  for (char& c : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return data;
}

void Tcp(Agent& a, Agent& b, const std::string& addr_a) {
  Socket listener = Check(
      a.CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM), "A socket");
  const v1::Address bound =
      Check(listener.Bind(sockagent::InetAddress(addr_a, 0)), "A bind");
  Check(listener.Listen(), "A listen");
  Socket client = Check(b.CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM),
                        "B socket");
  const absl::Time deadline = absl::Now() + kStepTimeout;
  const v1::Address client_local =
      Check(client.Connect(bound, deadline), "B connect to A");
  sockagent::AcceptResult accepted =
      Check(listener.Accept(deadline), "A accept");
  ExpectEq("peer seen by A", sockagent::FormatAddress(client_local),
           sockagent::FormatAddress(accepted.peer));
  ExpectEq("B's peer", sockagent::FormatAddress(bound),
           sockagent::FormatAddress(Check(client.GetPeerName(), "B peer")));
  Pass(
      absl::StrCat("B connected to A: ", sockagent::FormatAddress(client_local),
                   " -> ", sockagent::FormatAddress(bound)));

  // More than the socket buffers hold: A must read while B sends.
  const std::string blob = Pattern(256 * 1024);
  std::string received;
  absl::Status recv_status;
  std::thread reader([&] {
    recv_status = accepted.socket.RecvStream(
        [&](absl::string_view chunk) {
          received.append(chunk.data(), chunk.size());
          return true;
        },
        blob.size(), 0, deadline);
  });
  const absl::Status send_status = client.SendAll(blob, 0, deadline);
  reader.join();
  Check(send_status, "B sendall");
  Check(recv_status, "A recvstream");
  if (received != blob) {
    Fail(absl::StrCat("A received ", received.size(),
                      " bytes that differ from "
                      "the ",
                      blob.size(), " B sent"));
  }
  Pass("256 KiB B -> A intact");

  Check(accepted.socket.SendAll("reply from A", 0, deadline), "A send");
  std::string reply;
  while (reply.size() < 12) {
    const std::string part =
        Check(client.Recv(12 - reply.size(), 0, deadline), "B recv");
    if (part.empty()) Fail("B: EOF before A's reply");
    reply += part;
  }
  ExpectEq("A's reply at B", "reply from A", reply);
  Pass("A -> B reply");
  Check(client.Close(), "B close");
  Check(accepted.socket.Close(), "A close accepted");
  Check(listener.Close(), "A close listener");
}

void Udp(Agent& a, Agent& b, const std::string& addr_a,
         const std::string& addr_b) {
  Socket ua =
      Check(a.CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM), "A udp");
  Socket ub =
      Check(b.CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM), "B udp");
  const v1::Address ua_addr =
      Check(ua.Bind(sockagent::InetAddress(addr_a, 0)), "A udp bind");
  const v1::Address ub_addr =
      Check(ub.Bind(sockagent::InetAddress(addr_b, 0)), "B udp bind");
  const absl::Time deadline = absl::Now() + kStepTimeout;
  Check(ub.SendTo("datagram B->A", ua_addr, 0, deadline), "B sendto");
  sockagent::Datagram at_a =
      Check(ua.RecvFrom(1500, 0, deadline), "A recvfrom");
  ExpectEq("A's datagram", "datagram B->A", at_a.data);
  ExpectEq("A's datagram source", sockagent::FormatAddress(ub_addr),
           sockagent::FormatAddress(at_a.address));
  Check(ua.SendTo("datagram A->B", at_a.address, 0, deadline), "A sendto");
  sockagent::Datagram at_b =
      Check(ub.RecvFrom(1500, 0, deadline), "B recvfrom");
  ExpectEq("B's datagram", "datagram A->B", at_b.data);
  ExpectEq("B's datagram source", sockagent::FormatAddress(ua_addr),
           sockagent::FormatAddress(at_b.address));
  Pass(absl::StrCat("UDP both ways: ", sockagent::FormatAddress(ub_addr),
                    " <-> ", sockagent::FormatAddress(ua_addr)));
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  std::unique_ptr<Agent> a = ConnectTo(flags.a, flags, "multihost-harness-a");
  std::unique_ptr<Agent> b = ConnectTo(flags.b, flags, "multihost-harness-b");
  Pass("client library reached both agents over mTLS");

  ExpectEq("hostname of A", flags.host_a, Check(a->GetHostname(), "A name"));
  ExpectEq("hostname of B", flags.host_b, Check(b->GetHostname(), "B name"));
  Pass("each host has its own name");

  Tcp(*a, *b, HostOf(flags.a));
  Udp(*a, *b, HostOf(flags.a), HostOf(flags.b));

  // The UDP sockets were closed by their destructors when Udp() returned.
  for (Agent* agent : {a.get(), b.get()}) {
    const size_t left = Check(agent->ListSockets(), "ListSockets").size();
    if (left != 0) Fail(absl::StrCat(left, " sockets left on an agent"));
  }
  Check(a->CloseSession().status(), "A close session");
  Check(b->CloseSession().status(), "B close session");
  Pass("torn down: no socket left, sessions closed");
  std::cout << "multihost_harness: all checks passed\n";
  return 0;
}
