// Tests for server/core/policy_gate.h, through AgentCore with a policy: a
// denial is PERMISSION_DENIED naming the rule and no system call is made
// (FakeSocketOps counts them, and any connect/sendto that slipped through would
// fail inside the fake without reaching the kernel); quotas are
// RESOURCE_EXHAUSTED naming the quota; a session belongs to its identity;
// decisions and closes are audited without payload. Traffic goes only to
// loopback canaries this test creates.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "proto/traffic_data.h"
#include "server/core/agent_core.h"
#include "server/policy/audit_log.h"
#include "server/policy/policy_engine.h"
#include "tests/common/wait.h"
#include "tests/server/fake_socket_ops.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

template <typename T>
absl::StatusOr<T> Wait(absl::AnyInvocable<void(Callback<T>)> start) {
  auto done = std::make_shared<absl::Notification>();
  auto result = std::make_shared<absl::StatusOr<T>>(
      absl::UnknownError("test: no result"));
  start([done, result](absl::StatusOr<T> got) {
    *result = std::move(got);
    done->Notify();
  });
  if (!done->WaitForNotificationWithTimeout(absl::Seconds(10))) {
    return absl::DeadlineExceededError("test: callback never ran");
  }
  return *result;
}

// Waits (at most 10 s) until `predicate` holds.
template <typename Predicate>
bool Eventually(Predicate predicate) {
  return static_cast<bool>(test::WaitFor(predicate, absl::Seconds(10)));
}

v1::Address Inet(const std::string& host, uint32_t port) {
  v1::Address address;
  address.mutable_inet()->set_host(host);
  address.mutable_inet()->set_port(port);
  return address;
}

// A UDP socket on 127.0.0.1 that counts what arrives.
class UdpCanary {
 public:
  UdpCanary() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    int big = 8 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  }
  ~UdpCanary() { ::close(fd_); }
  uint16_t port() const { return port_; }
  // Datagrams received so far (drains the socket).
  int Drain() {
    char buffer[2048];
    while (::recv(fd_, buffer, sizeof(buffer), 0) >= 0) ++received_;
    return received_;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  int received_ = 0;
};

class PolicyGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/sockagent_core_audit_XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    audit_path_ = path;
    absl::StatusOr<std::unique_ptr<AuditLog>> audit =
        AuditLog::Open(audit_path_, 100000);
    ASSERT_TRUE(audit.ok());
    audit_ = *std::move(audit);
    AgentCore::Options options;
    options.ops = &fake_;
    options.policy = &policy_;
    options.audit = audit_.get();
    absl::StatusOr<std::unique_ptr<AgentCore>> core =
        AgentCore::Create(options);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = *std::move(core);
  }
  void TearDown() override {
    core_.reset();
    ::unlink(audit_path_.c_str());
  }

  void LoadPolicy(const std::string& text) {
    v1::Policy policy;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &policy));
    ASSERT_TRUE(policy_.Load(policy).ok());
  }

  CallContext Session(const std::string& identity) {
    CallContext ctx;
    ctx.identity = identity;
    absl::StatusOr<v1::CreateSessionResponse> session =
        core_->CreateSession(ctx, v1::CreateSessionRequest());
    EXPECT_TRUE(session.ok()) << session.status();
    if (session.ok()) ctx.session_id = session->session_id();
    return ctx;
  }

  absl::StatusOr<std::string> Socket(const CallContext& ctx, v1::Family family,
                                     v1::SocketType type) {
    v1::SocketRequest request;
    request.set_family(family);
    request.set_type(type);
    absl::StatusOr<v1::SocketResponse> response = core_->Socket(ctx, request);
    if (!response.ok()) return response.status();
    return response->handle();
  }

  absl::Status Connect(const CallContext& ctx, const std::string& handle,
                       const v1::Address& address) {
    v1::ConnectRequest request;
    request.set_handle(handle);
    *request.mutable_address() = address;
    return Wait<v1::ConnectResponse>([&](Callback<v1::ConnectResponse> done) {
             core_->Connect(ctx, request, std::move(done));
           })
        .status();
  }

  absl::Status SendTo(const CallContext& ctx, const std::string& handle,
                      const v1::Address& address, const std::string& data) {
    v1::SendToRequest request;
    request.set_handle(handle);
    *request.mutable_address() = address;
    request.set_data(data);
    return Wait<v1::SendToResponse>([&](Callback<v1::SendToResponse> done) {
             core_->SendTo(ctx, request, std::move(done));
           })
        .status();
  }

  std::string AuditText() {
    std::ifstream in(audit_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  FakeSocketOps fake_;
  PolicyEngine policy_;
  std::string audit_path_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<AgentCore> core_;
};

constexpr char kOpenPolicy[] = R"pb(
  rules {
    name: "harness"
    identities: "harness"
    allow_rpcs: "*"
    families: [ FAMILY_INET, FAMILY_INET6 ]
    types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
    connect_allow { cidr: "0.0.0.0/0" }
    connect_allow { cidr: "::/0" }
    bind_allow { cidr: "127.0.0.0/8" }
    quotas { max_sockets: 3 max_sessions: 2 }
  }
)pb";

TEST_F(PolicyGateTest, MetadataAddressesAreDeniedBeforeAnySyscall) {
  LoadPolicy(kOpenPolicy);
  // Anything that slipped past the policy would fail inside the fake and
  // never reach the kernel; the call counters must stay at zero anyway.
  fake_.FailNext(FakeSocketOps::Call::kConnect, ENETUNREACH, 100);
  fake_.FailNext(FakeSocketOps::Call::kSendTo, ENETUNREACH, 100);
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> tcp4 =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  absl::StatusOr<std::string> udp6 =
      Socket(ctx, v1::FAMILY_INET6, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(tcp4.ok() && udp6.ok());
  absl::Status connect = Connect(ctx, *tcp4, Inet("169.254.169.254", 80));
  EXPECT_EQ(connect.code(), absl::StatusCode::kPermissionDenied) << connect;
  EXPECT_THAT(connect.message(), HasSubstr("hard-deny"));
  for (const char* host : {"::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
                           "2002:a9fe:a9fe::", "fe80::1", "fd00:ec2::254"}) {
    absl::Status sent = SendTo(ctx, *udp6, Inet(host, 53), "payload-secret");
    EXPECT_EQ(sent.code(), absl::StatusCode::kPermissionDenied) << host;
  }
  EXPECT_EQ(fake_.calls(FakeSocketOps::Call::kConnect), 0);
  EXPECT_EQ(fake_.calls(FakeSocketOps::Call::kSendTo), 0);
  const std::string audit = AuditText();
  EXPECT_THAT(audit, HasSubstr("\"decision\":\"deny\""));
  EXPECT_THAT(audit, HasSubstr("\"rule\":\"hard-deny:link-local-ipv4\""));
  EXPECT_THAT(audit, HasSubstr("\"identity\":\"harness\""));
  EXPECT_THAT(audit, Not(HasSubstr("payload-secret")));
}

TEST_F(PolicyGateTest, HardDenyAppliesWithoutAnyConfiguredPolicy) {
  fake_.FailNext(FakeSocketOps::Call::kConnect, ENETUNREACH, 100);
  CallContext ctx = Session("anonymous");
  absl::StatusOr<std::string> tcp =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_EQ(Connect(ctx, *tcp, Inet("169.254.169.254", 80)).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(fake_.calls(FakeSocketOps::Call::kConnect), 0);
}

TEST_F(PolicyGateTest, APeerOtherThanTheOneAllowedIsJudgedAgainAndClosed) {
  // A listener on 127.0.0.1; the policy allows it and denies 127.0.0.2. The
  // fake reports the connected peer as 127.0.0.2 (what a NAT could do).
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t length = sizeof(address);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const uint16_t port = ntohs(address.sin_port);
  LoadPolicy(R"pb(
    rules {
      name: "harness"
      identities: "harness"
      allow_rpcs: "*"
      families: FAMILY_INET
      types: SOCKET_TYPE_STREAM
      connect_allow { cidr: "127.0.0.1" }
      connect_deny { cidr: "127.0.0.2" }
    }
  )pb");
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> tcp =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  sockaddr_in other = address;
  other.sin_addr.s_addr = htonl(0x7f000002);
  fake_.ReportNextPeerAs(reinterpret_cast<sockaddr*>(&other), sizeof(other));
  absl::Status connected = Connect(ctx, *tcp, Inet("127.0.0.1", port));
  EXPECT_EQ(connected.code(), absl::StatusCode::kPermissionDenied) << connected;
  EXPECT_THAT(connected.message(), HasSubstr("harness.connect_deny[0]"));
  // The socket is closed (calls on it are EBADF), and the audit says why.
  v1::GetPeerNameRequest request;
  request.set_handle(*tcp);
  EXPECT_EQ(core_->GetPeerName(ctx, request).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(AuditText(), HasSubstr("policy_peer_mismatch"));
  // Without the rewrite the same connect is allowed.
  absl::StatusOr<std::string> again =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(Connect(ctx, *again, Inet("127.0.0.1", port)).ok());
  ::close(listener);
}

TEST_F(PolicyGateTest,
       AlternatingAllowedAndDeniedDatagramsNeverReachTheCanary) {
  UdpCanary allowed;
  UdpCanary canary;
  LoadPolicy(absl::StrCat(
      R"pb(
        rules { name: "harness" identities: "harness" allow_rpcs: "*"
                families: FAMILY_INET
                types: SOCKET_TYPE_DGRAM
                connect_allow { cidr: "127.0.0.0/8" }
                connect_deny { cidr: "127.0.0.1" port_min:)pb",
      canary.port(), R"pb(}
                          }
  )pb"));
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> udp =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(udp.ok());
  constexpr int kDatagrams = 10000;
  int denied = 0;
  int sent = 0;
  for (int i = 0; i < kDatagrams; ++i) {
    const bool to_canary = i % 2 == 1;
    absl::Status status = SendTo(
        ctx, *udp,
        Inet("127.0.0.1", to_canary ? canary.port() : allowed.port()), "x");
    if (to_canary) {
      if (status.code() == absl::StatusCode::kPermissionDenied) ++denied;
    } else if (status.ok()) {
      ++sent;
    }
    if (i % 500 == 0) allowed.Drain();
  }
  EXPECT_EQ(denied, kDatagrams / 2);
  EXPECT_EQ(sent, kDatagrams / 2);
  EXPECT_EQ(fake_.calls(FakeSocketOps::Call::kSendTo), kDatagrams / 2);
  EXPECT_EQ(canary.Drain(), 0);
  EXPECT_GT(allowed.Drain(), 0);
}

TEST_F(PolicyGateTest, TrafficSourceDestinationPassesTheSendToCheck) {
  UdpCanary allowed;
  UdpCanary canary;
  LoadPolicy(absl::StrCat(
      R"pb(
        rules { name: "harness" identities: "harness" allow_rpcs: "*"
                families: FAMILY_INET
                types: SOCKET_TYPE_DGRAM
                connect_allow { cidr: "127.0.0.0/8" }
                connect_deny { cidr: "127.0.0.1" port_min:)pb",
      canary.port(), R"pb(}
                          }
  )pb"));
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> udp =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(udp.ok());
  auto source_to = [&](uint16_t port) {
    v1::TrafficRequest request;
    request.set_handle(*udp);
    request.mutable_source()->set_bytes(3000);
    request.mutable_source()->set_datagram_bytes(1000);
    *request.mutable_source()->mutable_destination() = Inet("127.0.0.1", port);
    return Wait<v1::TrafficResponse>([&](Callback<v1::TrafficResponse> done) {
      core_->Traffic(ctx, request, std::move(done));
    });
  };
  absl::StatusOr<v1::TrafficResponse> denied = source_to(canary.port());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(fake_.calls(FakeSocketOps::Call::kSendTo), 0);
  EXPECT_EQ(canary.Drain(), 0);
  absl::StatusOr<v1::TrafficResponse> sent = source_to(allowed.port());
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->datagrams_sent(), 3u);
  EXPECT_EQ(fake_.calls(FakeSocketOps::Call::kSendTo), 3);
  EXPECT_EQ(allowed.Drain(), 3);
  EXPECT_THAT(AuditText(), HasSubstr("\"method\":\"Traffic\""));
}

TEST_F(PolicyGateTest, DeniedConnectNamesTheRuleAndReportOnlyLetsItThrough) {
  UdpCanary canary;
  const std::string policy = absl::StrCat(R"pb(
    rules {
      name: "harness"
      identities: "harness"
      allow_rpcs: "*"
      families: FAMILY_INET
      types: SOCKET_TYPE_DGRAM
      connect_allow { cidr: "10.0.0.0/8" }
    }
  )pb");
  LoadPolicy(policy);
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> udp =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(udp.ok());
  absl::Status denied = Connect(ctx, *udp, Inet("127.0.0.1", canary.port()));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.message(), HasSubstr("harness.default-deny"));
  EXPECT_EQ(fake_.calls(FakeSocketOps::Call::kConnect), 0);
  LoadPolicy(absl::StrCat("report_only: true\n", policy));
  EXPECT_TRUE(Connect(ctx, *udp, Inet("127.0.0.1", canary.port())).ok());
  EXPECT_EQ(fake_.calls(FakeSocketOps::Call::kConnect), 1);
  EXPECT_THAT(AuditText(), HasSubstr("\"decision\":\"would_deny\""));
}

TEST_F(PolicyGateTest, UnknownIdentityGetsPermissionDeniedOnEveryRpc) {
  LoadPolicy(kOpenPolicy);
  CallContext ctx;
  ctx.identity = "mallory";
  for (const char* method : {"CreateSession", "Socket", "Connect", "Recv",
                             "RecvStream", "GetAgentInfo"}) {
    EXPECT_EQ(core_->Authorize(ctx, method).code(),
              absl::StatusCode::kPermissionDenied)
        << method;
  }
  ctx.identity = "harness";
  EXPECT_TRUE(core_->Authorize(ctx, "Socket").ok());
}

TEST_F(PolicyGateTest,
       SocketQuotaPerIdentityIsResourceExhaustedOthersUnaffected) {
  LoadPolicy(absl::StrCat(kOpenPolicy, R"pb(
    rules {
      name: "other"
      identities: "other"
      allow_rpcs: "*"
      families: FAMILY_INET
      types: SOCKET_TYPE_STREAM
    }
  )pb"));
  CallContext a = Session("harness");
  CallContext b = Session("harness");
  ASSERT_TRUE(Socket(a, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM).ok());
  ASSERT_TRUE(Socket(b, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM).ok());
  absl::StatusOr<std::string> third =
      Socket(a, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(third.ok());
  absl::StatusOr<std::string> fourth =
      Socket(b, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  EXPECT_EQ(fourth.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(fourth.status().message(), HasSubstr("max_sockets"));
  // Another identity is unaffected.
  CallContext other = Session("other");
  EXPECT_TRUE(Socket(other, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM).ok());
  // Closing one frees one.
  v1::CloseRequest close;
  close.set_handle(*third);
  ASSERT_TRUE(core_->Close(a, close).ok());
  EXPECT_TRUE(Socket(b, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM).ok());
  // Sessions: max 2 for harness.
  CallContext third_session;
  third_session.identity = "harness";
  absl::StatusOr<v1::CreateSessionResponse> refused =
      core_->CreateSession(third_session, v1::CreateSessionRequest());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("max_sessions"));
  // Closing a session frees its sockets and its session slot.
  ASSERT_TRUE(core_->CloseSession(a).ok());
  EXPECT_TRUE(
      core_->CreateSession(third_session, v1::CreateSessionRequest()).ok());
  const std::string audit = AuditText();
  EXPECT_THAT(audit, HasSubstr("\"close_reason\":\"close\""));
  EXPECT_THAT(audit, HasSubstr("\"close_reason\":\"session_closed\""));
}

TEST_F(PolicyGateTest, SocketsANewPolicyForbidsAreClosedAsPolicyRevoked) {
  UdpCanary peer;
  const std::string allow_all = R"pb(
    rules {
      name: "harness"
      identities: "harness"
      allow_rpcs: "*"
      families: [ FAMILY_INET, FAMILY_INET6 ]
      types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
      connect_allow { cidr: "127.0.0.0/8" }
    }
  )pb";
  LoadPolicy(allow_all);
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> connected =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  absl::StatusOr<std::string> unconnected =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  absl::StatusOr<std::string> tcp6 =
      Socket(ctx, v1::FAMILY_INET6, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(connected.ok() && unconnected.ok() && tcp6.ok());
  ASSERT_TRUE(Connect(ctx, *connected, Inet("127.0.0.1", peer.port())).ok());
  // The new policy denies that peer and no longer grants IPv6.
  LoadPolicy(absl::StrCat(
      R"pb(
        rules { name: "harness" identities: "harness" allow_rpcs: "*"
                families: FAMILY_INET
                types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
                connect_allow { cidr: "127.0.0.0/8" }
                connect_deny { cidr: "127.0.0.1" port_min:)pb",
      peer.port(), R"pb(}
                        }
  )pb"));
  absl::StatusOr<v1::ListSocketsResponse> left = core_->ListSockets(ctx);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->sockets_size(), 1);
  EXPECT_EQ(left->sockets(0).handle(), *unconnected);
  const std::string audit = AuditText();
  size_t revoked = 0;
  for (size_t at = audit.find("policy_revoked"); at != std::string::npos;
       at = audit.find("policy_revoked", at + 1)) {
    ++revoked;
  }
  EXPECT_EQ(revoked, 2u);
}

TEST_F(PolicyGateTest, AScriptedRunYieldsExactlyTheExpectedAuditLines) {
  UdpCanary peer;
  CallContext ctx = Session("anonymous");
  absl::StatusOr<std::string> udp =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);  // 1: allow
  ASSERT_TRUE(udp.ok());
  v1::BindRequest bind;
  bind.set_handle(*udp);
  *bind.mutable_address() = Inet("127.0.0.1", 0);
  ASSERT_TRUE(core_->Bind(ctx, bind).ok());  // 2: allow
  // 3: deny. A leak would take the queued failure instead of the kernel.
  fake_.FailNext(FakeSocketOps::Call::kSendTo, ENETUNREACH);
  EXPECT_EQ(SendTo(ctx, *udp, Inet("169.254.169.254", 80), "payload-A").code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(fake_.pending_failures(FakeSocketOps::Call::kSendTo), 1u);
  fake_.ClearFailures();
  // Allowed datagrams are not audited one by one.
  ASSERT_TRUE(
      SendTo(ctx, *udp, Inet("127.0.0.1", peer.port()), "payload-B").ok());
  ASSERT_TRUE(Connect(ctx, *udp, Inet("127.0.0.1", peer.port())).ok());  // 4
  v1::CloseRequest close;
  close.set_handle(*udp);
  ASSERT_TRUE(core_->Close(ctx, close).ok());  // 5: close
  std::vector<std::string> lines;
  std::istringstream text(AuditText());
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u) << AuditText();
  EXPECT_THAT(lines[0], HasSubstr(R"("method":"Socket")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("decision":"allow")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("family":2,"type":2)"));
  EXPECT_THAT(lines[1], HasSubstr(R"("method":"Bind")"));
  EXPECT_THAT(lines[2], HasSubstr(R"("method":"SendTo")"));
  EXPECT_THAT(lines[2], HasSubstr(R"("decision":"deny")"));
  EXPECT_THAT(lines[2], HasSubstr(R"("remote":"169.254.169.254:80")"));
  EXPECT_THAT(lines[2], HasSubstr(R"("status":"PERMISSION_DENIED")"));
  EXPECT_THAT(lines[3], HasSubstr(R"("method":"Connect")"));
  EXPECT_THAT(lines[4], HasSubstr(R"("event":"close")"));
  EXPECT_THAT(lines[4], HasSubstr(R"("bytes_out":9)"));
  EXPECT_THAT(lines[4], HasSubstr(R"("close_reason":"close")"));
  for (size_t i = 1; i < lines.size(); ++i) {  // after the Socket decision
    EXPECT_THAT(lines[i], HasSubstr(absl::StrCat(R"("handle":")", *udp, "\"")));
  }
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr("payload")));
  }
}

TEST_F(PolicyGateTest, ConcurrentStreamQuotaPerIdentity) {
  LoadPolicy(R"pb(
    rules {
      name: "harness"
      identities: "harness"
      allow_rpcs: "*"
      quotas { max_concurrent_streams: 2 }
    }
    rules { name: "other" identities: "other" allow_rpcs: "*" }
  )pb");
  CallContext harness;
  harness.identity = "harness";
  CallContext other;
  other.identity = "other";
  ASSERT_TRUE(core_->AcquireStream(harness).ok());
  ASSERT_TRUE(core_->AcquireStream(harness).ok());
  absl::Status third = core_->AcquireStream(harness);
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.message(), HasSubstr("max_concurrent_streams"));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(core_->AcquireStream(other).ok());
  core_->ReleaseStream(harness);
  EXPECT_TRUE(core_->AcquireStream(harness).ok());
}

TEST_F(PolicyGateTest, AnotherIdentitysSessionIsNotFound) {
  CallContext mine = Session("alice");
  CallContext stolen = mine;
  stolen.identity = "bob";
  EXPECT_EQ(core_->KeepAlive(stolen).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(core_->KeepAlive(mine).ok());
}

constexpr char kAdminPolicy[] = R"pb(
  rules { name: "ops" identities: "ops" admin: true allow_rpcs: "*" }
  rules {
    name: "harness"
    identities: [ "harness", "other" ]
    allow_rpcs: "*"
    families: FAMILY_INET
    types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
  }
)pb";

std::vector<std::string> Ids(const v1::ListSessionsResponse& response) {
  std::vector<std::string> ids;
  for (const v1::SessionInfo& info : response.sessions()) {
    ids.push_back(info.session_id());
  }
  return ids;
}

TEST_F(PolicyGateTest, AdminsListEverySessionOthersOnlyTheirOwn) {
  LoadPolicy(kAdminPolicy);
  CallContext harness = Session("harness");
  harness.peer = "ipv4:127.0.0.1:40000";
  CallContext harness2 = Session("harness");
  CallContext other = Session("other");
  ASSERT_TRUE(Socket(harness, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM).ok());
  CallContext ops;
  ops.identity = "ops";

  absl::StatusOr<v1::ListSessionsResponse> all = core_->ListSessions(ops);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Ids(*all),
              ::testing::UnorderedElementsAre(
                  harness.session_id, harness2.session_id, other.session_id));
  absl::StatusOr<v1::ListSessionsResponse> own = core_->ListSessions(harness);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_THAT(Ids(*own), ::testing::UnorderedElementsAre(harness.session_id,
                                                         harness2.session_id));
  for (const v1::SessionInfo& info : own->sessions()) {
    EXPECT_EQ(info.identity(), "harness");
    EXPECT_LE(info.created().seconds(), info.lease_expiry().seconds());
    EXPECT_GT(info.created().seconds(), 0);
    if (info.session_id() == harness.session_id) {
      EXPECT_EQ(info.socket_count(), 1u);
    }
  }
  CallContext nobody;
  nobody.identity = "nobody";
  absl::StatusOr<v1::ListSessionsResponse> stranger =
      core_->ListSessions(nobody);
  ASSERT_TRUE(stranger.ok());
  EXPECT_EQ(stranger->sessions_size(), 0);
}

TEST_F(PolicyGateTest, OnlyAdminsCloseSessionsOfOtherIdentities) {
  LoadPolicy(kAdminPolicy);
  CallContext harness = Session("harness");
  CallContext harness2 = Session("harness");
  CallContext other = Session("other");
  absl::StatusOr<std::string> handle =
      Socket(other, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(handle.ok()) << handle.status();

  v1::CloseSessionRequest request;
  request.set_session_id(other.session_id);
  absl::StatusOr<v1::CloseSessionResponse> denied =
      core_->CloseSession(harness, request);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(), HasSubstr("harness.admin"));
  // An unknown id gets the same answer: no oracle for others' sessions.
  v1::CloseSessionRequest unknown;
  // (Well formed, of this agent and run, never issued.)
  unknown.set_session_id(
      IdIssuer(std::stoull(core_->incarnation(), nullptr, 16)).Next());
  EXPECT_EQ(core_->CloseSession(harness, unknown).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::CloseSessionRequest malformed;
  malformed.set_session_id("not-a-session");
  absl::Status bad = core_->CloseSession(harness, malformed).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("session_id"));
  EXPECT_EQ(core_->session_count(), 3u) << "nothing was closed";

  // The same identity may close another session of its own.
  v1::CloseSessionRequest own;
  own.set_session_id(harness2.session_id);
  EXPECT_TRUE(core_->CloseSession(harness, own).ok());

  CallContext ops;
  ops.identity = "ops";
  absl::StatusOr<v1::CloseSessionResponse> closed =
      core_->CloseSession(ops, request);
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->sockets_closed(), 1u);
  EXPECT_EQ(core_->CloseSession(ops, request).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(core_->session_count(), 1u);
  absl::StatusOr<v1::ListSessionsResponse> left = core_->ListSessions(ops);
  ASSERT_TRUE(left.ok());
  EXPECT_THAT(Ids(*left), ::testing::ElementsAre(harness.session_id));
  const std::string audit = AuditText();
  EXPECT_THAT(audit, HasSubstr("\"close_reason\":\"admin_closed\""));
  EXPECT_THAT(audit, HasSubstr("\"rule\":\"harness.admin\""));
  EXPECT_THAT(audit, HasSubstr("\"rule\":\"ops.admin\""));
}

constexpr char kSourcePolicy[] = R"pb(
  rules {
    name: "harness"
    identities: "harness"
    allow_rpcs: "*"
    families: FAMILY_INET
    types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
    bind_allow { cidr: "127.0.0.1" }
    accept_allow { cidr: "127.0.0.0/8" }
    accept_deny { cidr: "127.0.0.3" }
  }
)pb";

// A kernel socket of `type` bound to `ip`:0 (a loopback alias).
int BoundSocket(int type, const char* ip) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip, &address.sin_addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0)
      << ip;
  return fd;
}

sockaddr_in Loopback(uint32_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  return address;
}

TEST_F(PolicyGateTest, RefusedDatagramSourcesAreDroppedAndCounted) {
  LoadPolicy(kSourcePolicy);
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> handle =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(handle.ok()) << handle.status();
  v1::BindRequest bind;
  bind.set_handle(*handle);
  *bind.mutable_address() = Inet("127.0.0.1", 0);
  absl::StatusOr<v1::BindResponse> bound = core_->Bind(ctx, bind);
  ASSERT_TRUE(bound.ok()) << bound.status();
  const sockaddr_in agent = Loopback(bound->address().inet().port());

  const int refused = BoundSocket(SOCK_DGRAM, "127.0.0.3");
  const int allowed = BoundSocket(SOCK_DGRAM, "127.0.0.2");
  for (const auto& [fd, data] :
       std::vector<std::pair<int, std::string>>{{refused, "refused-1"},
                                                {allowed, "kept-1"},
                                                {refused, "refused-2"},
                                                {allowed, "kept-2"}}) {
    ASSERT_EQ(
        ::sendto(fd, data.data(), data.size(), 0,
                 reinterpret_cast<const sockaddr*>(&agent), sizeof(agent)),
        static_cast<ssize_t>(data.size()));
  }
  v1::RecvFromRequest recv_from;
  recv_from.set_handle(*handle);
  recv_from.set_max_bytes(64);
  absl::StatusOr<v1::RecvFromResponse> first =
      Wait<v1::RecvFromResponse>([&](Callback<v1::RecvFromResponse> done) {
        core_->RecvFrom(ctx, recv_from, std::move(done));
      });
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->data(), "kept-1");
  EXPECT_EQ(first->address().inet().host(), "127.0.0.2");
  v1::RecvRequest recv;
  recv.set_handle(*handle);
  recv.set_max_bytes(64);
  absl::StatusOr<v1::RecvResponse> second =
      Wait<v1::RecvResponse>([&](Callback<v1::RecvResponse> done) {
        core_->Recv(ctx, recv, std::move(done));
      });
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->data(), "kept-2");
  EXPECT_EQ(core_->GetAgentInfo().stats().refused_sources(), 2u);
  const std::string audit = AuditText();
  EXPECT_THAT(audit, HasSubstr("\"rule\":\"harness.accept_deny[0]\""));
  EXPECT_THAT(audit, HasSubstr("\"remote\":\"127.0.0.3:"));
  EXPECT_THAT(audit, Not(HasSubstr("refused-1")));
  ::close(refused);
  ::close(allowed);
}

// A UDP sink/echo is a receiver like RecvFrom: refused sources are dropped
// before they are counted, checksummed or echoed.
TEST_F(PolicyGateTest, TrafficOnADatagramSocketDropsRefusedSources) {
  LoadPolicy(kSourcePolicy);
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> handle =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(handle.ok()) << handle.status();
  v1::BindRequest bind;
  bind.set_handle(*handle);
  *bind.mutable_address() = Inet("127.0.0.1", 0);
  absl::StatusOr<v1::BindResponse> bound = core_->Bind(ctx, bind);
  ASSERT_TRUE(bound.ok()) << bound.status();
  const sockaddr_in agent = Loopback(bound->address().inet().port());

  const int refused = BoundSocket(SOCK_DGRAM, "127.0.0.3");
  const int allowed = BoundSocket(SOCK_DGRAM, "127.0.0.2");
  for (const auto& [fd, data] :
       std::vector<std::pair<int, std::string>>{{refused, "refused-1"},
                                                {allowed, "kept-1"},
                                                {refused, "refused-2"},
                                                {allowed, "kept-2"}}) {
    ASSERT_EQ(
        ::sendto(fd, data.data(), data.size(), 0,
                 reinterpret_cast<const sockaddr*>(&agent), sizeof(agent)),
        static_cast<ssize_t>(data.size()));
  }
  v1::TrafficRequest request;
  request.set_handle(*handle);
  request.mutable_sink()->set_max_bytes(12);  // "kept-1" + "kept-2"
  absl::StatusOr<v1::TrafficResponse> sunk =
      Wait<v1::TrafficResponse>([&](Callback<v1::TrafficResponse> done) {
        core_->Traffic(ctx, request, std::move(done));
      });
  ASSERT_TRUE(sunk.ok()) << sunk.status();
  EXPECT_EQ(sunk->datagrams_received(), 2u);
  EXPECT_EQ(sunk->bytes_received(), 12u);
  EXPECT_EQ(sunk->checksum(), StreamChecksumHex("kept-1kept-2"));
  EXPECT_EQ(core_->GetAgentInfo().stats().refused_sources(), 2u);
  EXPECT_THAT(AuditText(), HasSubstr("\"rule\":\"harness.accept_deny[0]\""));
  ::close(refused);
  ::close(allowed);
}

TEST_F(PolicyGateTest, AcceptClosesRefusedPeersAndWaitsForTheNext) {
  LoadPolicy(kSourcePolicy);
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> listener =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(listener.ok()) << listener.status();
  v1::BindRequest bind;
  bind.set_handle(*listener);
  *bind.mutable_address() = Inet("127.0.0.1", 0);
  absl::StatusOr<v1::BindResponse> bound = core_->Bind(ctx, bind);
  ASSERT_TRUE(bound.ok()) << bound.status();
  v1::ListenRequest listen;
  listen.set_handle(*listener);
  ASSERT_TRUE(core_->Listen(ctx, listen).ok());
  const sockaddr_in agent = Loopback(bound->address().inet().port());

  const int refused = BoundSocket(SOCK_STREAM, "127.0.0.3");
  ASSERT_EQ(::connect(refused, reinterpret_cast<const sockaddr*>(&agent),
                      sizeof(agent)),
            0);
  const int allowed = BoundSocket(SOCK_STREAM, "127.0.0.2");
  ASSERT_EQ(::connect(allowed, reinterpret_cast<const sockaddr*>(&agent),
                      sizeof(agent)),
            0);
  v1::AcceptRequest accept;
  accept.set_handle(*listener);
  absl::StatusOr<v1::AcceptResponse> accepted =
      Wait<v1::AcceptResponse>([&](Callback<v1::AcceptResponse> done) {
        core_->Accept(ctx, accept, std::move(done));
      });
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->peer().inet().host(), "127.0.0.2");
  // The refused client's connection was closed by the agent.
  timeval timeout{10, 0};
  ::setsockopt(refused, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  char byte;
  const ssize_t got = ::recv(refused, &byte, 1, 0);
  EXPECT_TRUE(got == 0 || (got < 0 && errno == ECONNRESET))
      << got << " errno " << errno;
  EXPECT_EQ(core_->GetAgentInfo().stats().refused_sources(), 1u);
  EXPECT_THAT(AuditText(), HasSubstr("\"rule\":\"harness.accept_deny[0]\""));
  ::close(refused);
  ::close(allowed);
}

// On a policy reload an accepted connection is judged by the accept filters,
// not by the connect rules (which name no loopback destination here).
TEST_F(PolicyGateTest, ReloadRevokesAcceptedPeersByTheAcceptFilters) {
  const std::string base = R"pb(
    rules { name: "harness" identities: "harness" allow_rpcs: "*"
            families: FAMILY_INET
            types: SOCKET_TYPE_STREAM
            connect_allow { cidr: "10.0.0.0/8" }
            bind_allow { cidr: "127.0.0.1" }
            accept_allow { cidr: "127.0.0.0/8" }
  )pb";
  LoadPolicy(base + "}");
  CallContext ctx = Session("harness");
  absl::StatusOr<std::string> listener =
      Socket(ctx, v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(listener.ok()) << listener.status();
  v1::BindRequest bind;
  bind.set_handle(*listener);
  *bind.mutable_address() = Inet("127.0.0.1", 0);
  absl::StatusOr<v1::BindResponse> bound = core_->Bind(ctx, bind);
  ASSERT_TRUE(bound.ok()) << bound.status();
  v1::ListenRequest listen;
  listen.set_handle(*listener);
  ASSERT_TRUE(core_->Listen(ctx, listen).ok());
  const sockaddr_in agent = Loopback(bound->address().inet().port());
  const int client = BoundSocket(SOCK_STREAM, "127.0.0.2");
  ASSERT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&agent),
                      sizeof(agent)),
            0);
  v1::AcceptRequest accept;
  accept.set_handle(*listener);
  absl::StatusOr<v1::AcceptResponse> accepted =
      Wait<v1::AcceptResponse>([&](Callback<v1::AcceptResponse> done) {
        core_->Accept(ctx, accept, std::move(done));
      });
  ASSERT_TRUE(accepted.ok()) << accepted.status();

  LoadPolicy(base + "}");  // unchanged: the accepted socket stays
  v1::GetPeerNameRequest peer;
  peer.set_handle(accepted->handle());
  EXPECT_TRUE(core_->GetPeerName(ctx, peer).ok());

  const std::string deny_peer = R"pb(accept_deny { cidr: "127.0.0.2" })pb";
  LoadPolicy(base + deny_peer + "}");
  // Closed by the agent: calls on the handle are EBADF.
  EXPECT_EQ(core_->GetPeerName(ctx, peer).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(AuditText(), HasSubstr("\"close_reason\":\"policy_revoked\""));
  v1::GetSockNameRequest name;
  name.set_handle(*listener);
  EXPECT_TRUE(core_->GetSockName(ctx, name).ok()) << "the listener stays";
  ::close(client);
}

TEST_F(PolicyGateTest, SourceFiltersWithAnInvalidRangeAreRejected) {
  v1::Policy policy;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(rules {
             name: "r"
             identities: "x"
             accept_deny { cidr: "300.1.1.1" }
           })pb",
      &policy));
  absl::Status loaded = policy_.Load(policy);
  EXPECT_EQ(loaded.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.message(), HasSubstr("accept_deny[0].cidr"));
}

constexpr char kByteRatePolicy[] = R"pb(
  rules {
    name: "harness"
    identities: [ "harness", "other" ]
    allow_rpcs: "*"
    families: FAMILY_INET
    types: SOCKET_TYPE_DGRAM
    connect_allow { cidr: "127.0.0.1" }
    bind_allow { cidr: "127.0.0.1" }
    quotas { max_send_bytes_per_second: 1000 max_recv_bytes_per_second: 1000 }
  }
)pb";

TEST_F(PolicyGateTest, ByteRateQuotasRefuseCallsInDebtPerIdentity) {
  LoadPolicy(kByteRatePolicy);
  UdpCanary canary;
  CallContext harness = Session("harness");
  CallContext other = Session("other");
  absl::StatusOr<std::string> socket =
      Socket(harness, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  absl::StatusOr<std::string> other_socket =
      Socket(other, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(socket.ok() && other_socket.ok());
  const v1::Address to = Inet("127.0.0.1", canary.port());
  // One large datagram overdraws the one-second bucket (1000 -> -4000)...
  EXPECT_TRUE(SendTo(harness, *socket, to, std::string(5000, 'a')).ok());
  // ...so the next call is refused before reaching the wire, for 4 s.
  absl::Status refused = SendTo(harness, *socket, to, "b");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("max_send_bytes_per_second"));
  // Another identity has its own bucket.
  EXPECT_TRUE(SendTo(other, *other_socket, to, "c").ok());
  EXPECT_TRUE(Eventually([&] { return canary.Drain() == 2; }))
      << canary.Drain();

  // Receiving: the bytes received are charged.
  absl::StatusOr<std::string> receiver =
      Socket(harness, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(receiver.ok());
  v1::BindRequest bind;
  bind.set_handle(*receiver);
  *bind.mutable_address() = Inet("127.0.0.1", 0);
  absl::StatusOr<v1::BindResponse> bound = core_->Bind(harness, bind);
  ASSERT_TRUE(bound.ok()) << bound.status();
  const int sender = BoundSocket(SOCK_DGRAM, "127.0.0.1");
  const sockaddr_in agent = Loopback(bound->address().inet().port());
  const std::string big(5000, 'd');
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(
        ::sendto(sender, big.data(), big.size(), 0,
                 reinterpret_cast<const sockaddr*>(&agent), sizeof(agent)),
        static_cast<ssize_t>(big.size()));
  }
  v1::RecvRequest recv;
  recv.set_handle(*receiver);
  recv.set_max_bytes(8192);
  auto receive = [&] {
    return Wait<v1::RecvResponse>([&](Callback<v1::RecvResponse> done) {
      core_->Recv(harness, recv, std::move(done));
    });
  };
  absl::StatusOr<v1::RecvResponse> first = receive();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->data().size(), big.size());
  absl::StatusOr<v1::RecvResponse> second = receive();
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.status().message(),
              HasSubstr("harness.quotas.max_recv_bytes_per_second"));
  ::close(sender);
}

// Agent-side traffic is charged like the data calls: a source that overdraws
// the bucket makes the identity's next Traffic RESOURCE_EXHAUSTED.
TEST_F(PolicyGateTest, ByteRateQuotasChargeAgentSideTraffic) {
  LoadPolicy(kByteRatePolicy);
  UdpCanary canary;
  CallContext harness = Session("harness");
  absl::StatusOr<std::string> socket =
      Socket(harness, v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(socket.ok());
  v1::TrafficRequest request;
  request.set_handle(*socket);
  request.mutable_source()->set_bytes(5000);
  request.mutable_source()->set_datagram_bytes(1000);
  *request.mutable_source()->mutable_destination() =
      Inet("127.0.0.1", canary.port());
  auto traffic = [&] {
    return Wait<v1::TrafficResponse>([&](Callback<v1::TrafficResponse> done) {
      core_->Traffic(harness, request, std::move(done));
    });
  };
  absl::StatusOr<v1::TrafficResponse> first = traffic();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->bytes_sent(), 5000u);
  absl::StatusOr<v1::TrafficResponse> second = traffic();
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.status().message(),
              HasSubstr("max_send_bytes_per_second"));
  EXPECT_TRUE(Eventually([&] { return canary.Drain() == 5; }));
}

}  // namespace
}  // namespace sockagent
