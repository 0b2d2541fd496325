// The hard-deny list against what the kernel does, end to end: a real agent
// (in this process) and canary listeners, all inside a network namespace
// this test makes for itself (unshare at start; needs root, else every test
// skips). The agent's rule allows 0.0.0.0/0 and ::/0 and denies only
// loopback, so only the hard-deny list stands between a caller and the
// canaries; each canary must count 0. A reachable control canary proves
// each path would have reached a listener.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "server/core/address.h"
#include "tests/common/wait.h"
#include "tests/integration/agent_fixture.h"

namespace sockagent {
namespace {

bool g_in_own_namespace = false;

bool Shell(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

bool IsV6(const std::string& ip) { return ip.find(':') != std::string::npos; }

// Bounded wait (at most 5 s) until `probe`, a shell command, succeeds.
bool WaitForShell(const std::string& probe) {
  return static_cast<bool>(
      test::WaitFor([&] { return Shell(probe); }, absl::Seconds(5), probe));
}

// Until `link` has carrier. Asks `ip`, not /sys/class/net, which shows the
// namespace sysfs was mounted in.
bool WaitForCarrier(const std::string& link) {
  return WaitForShell(
      absl::StrCat("ip -o link show ", link, " | grep -q LOWER_UP"));
}

// Adds an IPv6 address and waits for its local route: even with nodad the
// kernel inserts that route from a work queue, after `ip` has returned.
bool AddLocalIpv6(const std::string& ip, const std::string& link) {
  return Shell(absl::StrCat("ip -6 addr add ", ip, "/128 dev ", link,
                            " nodad")) &&
         WaitForShell(
             absl::StrCat("ip -6 route show table local ", ip, " | grep -q ."));
}

SockAddr Sockaddr(const std::string& ip, uint16_t port) {
  SockAddr address;
  if (IsV6(ip)) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(address.mutable_get());
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    ::inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr);
    address.length = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(address.mutable_get());
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &in->sin_addr);
    address.length = sizeof(sockaddr_in);
  }
  return address;
}

// A TCP listener and a UDP socket on one address and port, counting what
// reaches them.
class Canary {
 public:
  Canary(const std::string& ip, uint16_t port) : ip_(ip) {
    const int family = IsV6(ip) ? AF_INET6 : AF_INET;
    tcp_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    udp_ = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6) {
      ::setsockopt(tcp_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
      ::setsockopt(udp_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    SockAddr address = Sockaddr(ip, port);
    ok_ = ::bind(tcp_, address.get(), address.length) == 0 &&
          ::listen(tcp_, 64) == 0;
    address.length = sizeof(address.storage);
    ::getsockname(tcp_, address.mutable_get(), &address.length);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(address.mutable_get())
                      ->sin_port);  // same offset for sockaddr_in6
    ok_ = ok_ && ::bind(udp_, address.get(), address.length) == 0;
    timeval ten_seconds{10, 0};
    ::setsockopt(udp_, SOL_SOCKET, SO_RCVTIMEO, &ten_seconds,
                 sizeof(ten_seconds));
  }
  ~Canary() {
    ::close(tcp_);
    ::close(udp_);
  }
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }

  // Connections and datagrams that reached it so far. Datagrams are read up
  // to a sentinel this process sends last (wildcard canaries get it on
  // loopback).
  int Reached() {
    int reached = 0;
    for (;;) {
      int fd = ::accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) break;
      ::close(fd);
      ++reached;
    }
    const bool any = ip_ == "0.0.0.0" || ip_ == "::";
    const std::string to = !any ? ip_ : (IsV6(ip_) ? "::1" : "127.0.0.1");
    int sender =
        ::socket(IsV6(to) ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    SockAddr address = Sockaddr(to, port_);
    const char kSentinel[] = "sentinel";
    ::sendto(sender, kSentinel, sizeof(kSentinel), 0, address.get(),
             address.length);
    ::close(sender);
    char buffer[2048];
    for (int i = 0; i < 1000; ++i) {
      ssize_t n = ::recv(udp_, buffer, sizeof(buffer), 0);
      if (n < 0) {
        ADD_FAILURE() << "the sentinel never reached " << ip_ << ":" << port_;
        break;
      }
      if (n == sizeof(kSentinel) && std::string(buffer) == kSentinel) break;
      ++reached;
    }
    return reached;
  }

 private:
  std::string ip_;
  int tcp_ = -1;
  int udp_ = -1;
  uint16_t port_ = 0;
  bool ok_ = false;
};

constexpr char kWidePolicy[] = R"pb(
  rules {
    name: "wide"
    identities: "anonymous"
    allow_rpcs: "*"
    families: FAMILY_INET
    families: FAMILY_INET6
    types: SOCKET_TYPE_STREAM
    types: SOCKET_TYPE_DGRAM
    connect_allow { cidr: "0.0.0.0/0" }
    connect_allow { cidr: "::/0" }
    connect_deny { cidr: "127.0.0.0/8" }
    connect_deny { cidr: "::1/128" }
    bind_allow { cidr: "0.0.0.0/0" }
    bind_allow { cidr: "::/0" }
    allow_privileged_bind_ports: true
    allow_wildcard_bind: true
    allow_raw_options: true
  }
)pb";

class HardDenyNetnsTest : public testing::AgentTest {
 protected:
  void SetUp() override {
    if (!g_in_own_namespace) {
      GTEST_SKIP() << "needs root to make its own network namespace";
    }
    // Addresses that stand for cloud endpoints and a NAT64 translator, on a
    // veth of this namespace only (no dummy driver on every kernel).
    Shell("ip link del canary0");
    ASSERT_TRUE(Shell("ip link add canary0 type veth peer name canary1"));
    ASSERT_TRUE(Shell("ip link set canary0 up"));
    ASSERT_TRUE(Shell("ip link set canary1 up"));
    // The kernel installs an address's local route only once the link has
    // carrier, which a veth gains asynchronously after both ends are up; an
    // address added by a test before that would have no route at all.
    ASSERT_TRUE(WaitForCarrier("canary0"));
    for (const char* ip : {"169.254.169.254", "100.100.100.200",
                           "168.63.129.16", "192.0.0.192", "10.200.0.1"}) {
      ASSERT_TRUE(Shell(absl::StrCat("ip addr add ", ip, "/32 dev canary0")));
    }
    for (const char* ip :
         {"fd00:ec2::254", "fd20:ce::254",
          "64:ff9b:1:a9:fe:a9fe::", "64:ff9b::a9fe:a9fe", "fd99::1"}) {
      ASSERT_TRUE(AddLocalIpv6(ip, "canary0")) << ip;
    }
    protected_canary_ = std::make_unique<Canary>("0.0.0.0", 0);
    protected_canary6_ =
        std::make_unique<Canary>("::", protected_canary_->port());
    ASSERT_TRUE(protected_canary_->ok());
    ASSERT_TRUE(protected_canary6_->ok());
    ServerOptions options;
    options.protected_ports = {protected_canary_->port()};
    StartAgent(options);
    v1::Policy policy;
    ASSERT_TRUE(
        google::protobuf::TextFormat::ParseFromString(kWidePolicy, &policy));
    ASSERT_TRUE(server_->core().policy().Load(policy).ok());
  }

  absl::Status ConnectTo(v1::Family family, const v1::Address& to) {
    absl::StatusOr<std::string> socket =
        NewSocket(family, v1::SOCKET_TYPE_STREAM);
    if (!socket.ok()) return socket.status();
    absl::Status status = Connect(*socket, to);
    Close(*socket).IgnoreError();
    return status;
  }

  absl::Status SendTo(v1::Family family, const v1::Address& to) {
    absl::StatusOr<std::string> socket =
        NewSocket(family, v1::SOCKET_TYPE_DGRAM);
    if (!socket.ok()) return socket.status();
    v1::SendToRequest request;
    request.set_handle(*socket);
    request.set_data("canary?");
    *request.mutable_address() = to;
    v1::SendToResponse response;
    absl::Status status =
        FromGrpcStatus(stub_->SendTo(Ctx().get(), request, &response));
    Close(*socket).IgnoreError();
    return status;
  }

  // Connect and sendto `host` on `port` must both be refused by a hard-deny
  // rule, and `canary` must count nothing.
  void ExpectRefused(v1::Family family, const v1::Address& to,
                     const std::string& rule_prefix) {
    SCOPED_TRACE(to.ShortDebugString());
    for (absl::Status status : {ConnectTo(family, to), SendTo(family, to)}) {
      EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
      EXPECT_NE(status.message().find(rule_prefix), absl::string_view::npos)
          << status;
    }
  }

  std::unique_ptr<Canary> protected_canary_;
  std::unique_ptr<Canary> protected_canary6_;
};

v1::Address At(const std::string& host, uint16_t port) {
  return testing::Inet(host, port);
}

TEST_F(HardDenyNetnsTest, CloudMetadataEndpointsAreNeverReached) {
  const char* endpoints[] = {"169.254.169.254", "100.100.100.200",
                             "168.63.129.16",   "192.0.0.192",
                             "fd00:ec2::254",   "fd20:ce::254"};
  for (const char* ip : endpoints) {
    Canary canary(ip, 80);
    ASSERT_TRUE(canary.ok()) << ip;
    const v1::Family family = IsV6(ip) ? v1::FAMILY_INET6 : v1::FAMILY_INET;
    ExpectRefused(family, At(ip, 80), "hard-deny:");
    if (!IsV6(ip)) {
      ExpectRefused(v1::FAMILY_INET6, At(absl::StrCat("::ffff:", ip), 80),
                    "hard-deny:");
    }
    EXPECT_EQ(canary.Reached(), 0) << ip;
  }
  // The control: the same path reaches an allowed address.
  Canary control("10.200.0.1", 80);
  ASSERT_TRUE(control.ok());
  EXPECT_TRUE(ConnectTo(v1::FAMILY_INET, At("10.200.0.1", 80)).ok());
  EXPECT_TRUE(SendTo(v1::FAMILY_INET, At("10.200.0.1", 80)).ok());
  EXPECT_EQ(control.Reached(), 2);
}

TEST_F(HardDenyNetnsTest, Nat64FormsOfMetadataAreNeverReachedInAnyLayout) {
  // The local addresses stand in for a translator that would turn them
  // into 169.254.169.254.
  for (const char* ip : {"64:ff9b:1:a9:fe:a9fe::", "64:ff9b::a9fe:a9fe"}) {
    Canary canary(ip, 80);
    ASSERT_TRUE(canary.ok()) << ip;
    ExpectRefused(v1::FAMILY_INET6, At(ip, 80), "nat64-embedded-ipv4");
    EXPECT_EQ(canary.Reached(), 0) << ip;
  }
  Canary control("fd99::1", 80);
  ASSERT_TRUE(control.ok());
  EXPECT_TRUE(ConnectTo(v1::FAMILY_INET6, At("fd99::1", 80)).ok());
  EXPECT_EQ(control.Reached(), 1);
}

TEST_F(HardDenyNetnsTest, AgentPortsOnAddressesAddedAfterStartAreNotReached) {
  const uint16_t port = protected_canary_->port();
  // Both appear after the agent started: a new address, and an AnyIP route
  // that makes a whole prefix local.
  ASSERT_TRUE(Shell("ip addr add 10.77.0.1/32 dev canary0"));
  ASSERT_TRUE(Shell("ip route add local 10.88.0.0/16 dev lo"));
  ASSERT_TRUE(AddLocalIpv6("fd77::1", "canary0"));
  ExpectRefused(v1::FAMILY_INET, At("10.77.0.1", port), "hard-deny:agent-port");
  ExpectRefused(v1::FAMILY_INET, At("10.88.3.4", port), "hard-deny:agent-port");
  ExpectRefused(v1::FAMILY_INET6, At("fd77::1", port), "hard-deny:agent-port");
  EXPECT_EQ(protected_canary_->Reached(), 0);
  EXPECT_EQ(protected_canary6_->Reached(), 0);
  // The control: another port on the same new address is reachable.
  Canary control("10.77.0.1", 0);
  ASSERT_TRUE(control.ok());
  EXPECT_TRUE(ConnectTo(v1::FAMILY_INET, At("10.77.0.1", control.port())).ok());
  EXPECT_EQ(control.Reached(), 1);
}

TEST_F(HardDenyNetnsTest, WildcardDestinationsAreJudgedAsTheLoopbackTheyReach) {
  Canary v4("127.0.0.1", 0);
  Canary v6("::1", v4.port());
  ASSERT_TRUE(v4.ok());
  ASSERT_TRUE(v6.ok());
  v1::Address host_int;
  host_int.mutable_inet()->set_host_int(0);
  host_int.mutable_inet()->set_port(v4.port());
  ExpectRefused(v1::FAMILY_INET, At("0.0.0.0", v4.port()), "connect_deny");
  ExpectRefused(v1::FAMILY_INET, At("", v4.port()), "connect_deny");
  ExpectRefused(v1::FAMILY_INET, host_int, "connect_deny");
  ExpectRefused(v1::FAMILY_INET6, At("::", v4.port()), "connect_deny");
  ExpectRefused(v1::FAMILY_INET6, At("::ffff:0.0.0.0", v4.port()),
                "connect_deny");
  EXPECT_EQ(v4.Reached(), 0);
  EXPECT_EQ(v6.Reached(), 0);
}

TEST_F(HardDenyNetnsTest, RoutingOptionsAreRefusedThoughRawOptionsAreGranted) {
  absl::StatusOr<std::string> socket =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(socket.ok()) << socket.status();
  auto set_raw = [&](int level, int name, std::string value) {
    v1::SetSockOptRequest request;
    request.set_handle(*socket);
    request.mutable_raw_option()->set_level(level);
    request.mutable_raw_option()->set_name(name);
    request.mutable_value()->set_raw(std::move(value));
    v1::SetSockOptResponse response;
    return FromGrpcStatus(stub_->SetSockOpt(Ctx().get(), request, &response));
  };
  // Loose source route through 10.200.0.1 to a final hop of metadata.
  const std::string lsrr("\x83\x0b\x04\x0a\xc8\x00\x01\xa9\xfe\xa9\xfe\x00",
                         12);
  absl::Status refused = set_raw(IPPROTO_IP, IP_OPTIONS, lsrr);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_NE(refused.message().find("hard-deny:source-route"),
            absl::string_view::npos);
  // A raw option that does not route is still granted by the rule.
  const std::string ttl("\x05\x00\x00\x00", 4);
  EXPECT_TRUE(set_raw(IPPROTO_IP, IP_TTL, ttl).ok());
  absl::StatusOr<std::string> socket6 =
      NewSocket(v1::FAMILY_INET6, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(socket6.ok());
  socket = socket6;
  EXPECT_EQ(set_raw(IPPROTO_IPV6, IPV6_RTHDR, std::string(24, '\0')).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(HardDenyNetnsTest, ATransparentBindCannotImpersonateMetadata) {
  absl::StatusOr<std::string> socket =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(socket.ok()) << socket.status();
  v1::SetSockOptRequest request;
  request.set_handle(*socket);
  request.mutable_raw_option()->set_level(IPPROTO_IP);
  request.mutable_raw_option()->set_name(IP_TRANSPARENT);
  request.mutable_value()->set_raw(std::string("\x01\x00\x00\x00", 4));
  v1::SetSockOptResponse response;
  ASSERT_TRUE(stub_->SetSockOpt(Ctx().get(), request, &response).ok());
  for (const char* ip : {"169.254.169.254", "100.100.100.200"}) {
    absl::StatusOr<v1::Address> bound = Bind(*socket, At(ip, 81));
    EXPECT_EQ(bound.status().code(), absl::StatusCode::kPermissionDenied)
        << ip << ": " << bound.status();
  }
  // The control: a transparent bind elsewhere works.
  EXPECT_TRUE(Bind(*socket, At("10.200.0.9", 81)).ok());
}

}  // namespace
}  // namespace sockagent

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Before any thread exists, so that every thread of the process (gRPC's
  // included) lives in the new namespace.
  if (!GTEST_FLAG_GET(list_tests) && ::geteuid() == 0 &&
      ::unshare(CLONE_NEWNET) == 0) {
    sockagent::g_in_own_namespace = sockagent::Shell("ip link set lo up");
  }
  return RUN_ALL_TESTS();
}
