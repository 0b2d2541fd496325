// PolicyEngine and AuditLog alone: CIDR and port matching, the hard-deny
// list (including IPv6 forms that embed 169.254.169.254), evaluation order,
// report-only, quotas, parsing and reload semantics. No sockets are opened.

#include "server/policy/policy_engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "server/core/address.h"
#include "server/policy/audit_log.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

SockAddr Inet(const std::string& host, uint16_t port) {
  SockAddr address;
  if (host.find(':') != std::string::npos) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr), 1) << host;
    address.length = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&address.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET, host.c_str(), &in->sin_addr), 1) << host;
    address.length = sizeof(sockaddr_in);
  }
  return address;
}

v1::Policy ParsePolicy(const std::string& text) {
  v1::Policy policy;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &policy))
      << text;
  return policy;
}

// "harness" may reach anything (0.0.0.0/0 and ::/0) except 10.0.0.0/8 and
// 127.0.0.2:9000-9100.
constexpr char kPolicy[] = R"pb(
  rules {
    name: "harness"
    identities: "spiffe://test/harness"
    identities: "ci-*"
    allow_rpcs: "*"
    families: [ FAMILY_INET, FAMILY_INET6 ]
    types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
    connect_allow { cidr: "0.0.0.0/0" }
    connect_allow { cidr: "::/0" }
    connect_deny { cidr: "10.0.0.0/8" }
    connect_deny { cidr: "127.0.0.2" port_min: 9000 port_max: 9100 }
    bind_allow { cidr: "127.0.0.0/8" port_min: 20000 port_max: 65535 }
    max_listen_backlog: 64
    socket_options: [ OPT_SO_REUSEADDR ]
    quotas { max_sockets: 2 max_ops_per_second: 5 }
  }
  rules {
    name: "readonly"
    identities: "viewer"
    allow_rpcs: [ "GetAgentInfo", "ListSockets" ]
  }
)pb";

class PolicyEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(engine_.Load(ParsePolicy(kPolicy)).ok());
  }

  PolicyDecision Connect(const std::string& identity, const std::string& host,
                         uint16_t port) {
    SockAddr address = Inet(host, port);
    return engine_.CheckDestination(identity, "connect", address.get(),
                                    address.length);
  }

  PolicyEngine engine_;
};

TEST(CidrTest, ParsesAndMatchesPrefixes) {
  absl::StatusOr<Cidr> ten = Cidr::Parse("10.0.0.0/8");
  ASSERT_TRUE(ten.ok());
  const uint8_t inside[4] = {10, 200, 3, 4};
  const uint8_t outside[4] = {11, 0, 0, 1};
  EXPECT_TRUE(ten->Contains(AF_INET, inside));
  EXPECT_FALSE(ten->Contains(AF_INET, outside));
  absl::StatusOr<Cidr> odd = Cidr::Parse("192.168.0.0/23");
  ASSERT_TRUE(odd.ok());
  const uint8_t in23[4] = {192, 168, 1, 255};
  const uint8_t out23[4] = {192, 168, 2, 0};
  EXPECT_TRUE(odd->Contains(AF_INET, in23));
  EXPECT_FALSE(odd->Contains(AF_INET, out23));
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(Cidr::Parse("not-an-ip").ok());
  EXPECT_FALSE(Cidr::Parse("::/129").ok());
  absl::StatusOr<Cidr> any6 = Cidr::Parse("::/0");
  ASSERT_TRUE(any6.ok());
  EXPECT_FALSE(any6->Contains(AF_INET, inside)) << "families never mix";
}

TEST(PolicyEngineDefaultTest,
     WithoutAPolicyEverythingPassesButTheHardDenyList) {
  PolicyEngine engine;
  EXPECT_FALSE(engine.configured());
  EXPECT_TRUE(engine.CheckRpc("anonymous", "Connect").allowed);
  EXPECT_TRUE(engine.CheckSocket("anonymous", AF_INET, SOCK_DGRAM).allowed);
  SockAddr loopback = Inet("127.0.0.1", 80);
  EXPECT_TRUE(engine
                  .CheckDestination("anonymous", "connect", loopback.get(),
                                    loopback.length)
                  .allowed);
  SockAddr metadata = Inet("169.254.169.254", 80);
  PolicyDecision denied = engine.CheckDestination(
      "anonymous", "connect", metadata.get(), metadata.length);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.ToStatus().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.ToStatus().message(), HasSubstr("hard-deny"));
}

TEST_F(PolicyEngineTest, HardDenyWinsEvenWhenTheRuleAllowsEverything) {
  for (const char* host : {
           "169.254.169.254",               // cloud metadata
           "169.254.0.1",                   // IPv4 link-local
           "::ffff:169.254.169.254",        // IPv4-mapped
           "::169.254.169.254",             // IPv4-compatible
           "64:ff9b::169.254.169.254",      // NAT64 well-known prefix
           "64:ff9b:1:a9fe:a9:fe00::",      // NAT64 local-use /48
           "2002:a9fe:a9fe::1",             // 6to4
           "2001:0:a9fe:a9fe::1",           // Teredo server
           "2001:0:102:304:0:0:5601:5601",  // Teredo client (inverted)
           "fe80::1",                       // IPv6 link-local
           "febf::1",                       // still fe80::/10
           "fd00:ec2::254",                 // EC2 IPv6 metadata
       }) {
    PolicyDecision decision = Connect("spiffe://test/harness", host, 80);
    EXPECT_FALSE(decision.allowed) << host;
    EXPECT_THAT(decision.rule, HasSubstr("hard-deny")) << host;
  }
  // Neighbours of the denied ranges are allowed.
  for (const char* host :
       {"169.253.255.255", "169.255.0.1", "fec0::1", "fd00:ec2::253",
        "2002:a9fd:a9fe::1", "64:ff9b::8.8.8.8"}) {
    EXPECT_TRUE(Connect("spiffe://test/harness", host, 80).allowed) << host;
  }
}

TEST_F(PolicyEngineTest, HardDenyHoldsInReportOnlyMode) {
  v1::Policy policy = ParsePolicy(kPolicy);
  policy.set_report_only(true);
  ASSERT_TRUE(engine_.Load(policy).ok());
  EXPECT_FALSE(Connect("spiffe://test/harness", "169.254.169.254", 80).allowed);
  PolicyDecision would = Connect("spiffe://test/harness", "10.1.2.3", 80);
  EXPECT_TRUE(would.allowed);
  EXPECT_TRUE(would.would_deny);
  EXPECT_EQ(would.rule, "harness.connect_deny[0]");
}

TEST_F(PolicyEngineTest, DenyListBeatsAllowListAndNamesTheRule) {
  PolicyDecision decision = Connect("spiffe://test/harness", "10.9.9.9", 443);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.rule, "harness.connect_deny[0]");
  EXPECT_THAT(decision.ToStatus().message(), HasSubstr("harness.connect_deny"));
  // Port ranges: 127.0.0.2:9000-9100 denied, 8999 and 9101 allowed.
  EXPECT_FALSE(Connect("ci-runner-7", "127.0.0.2", 9000).allowed);
  EXPECT_FALSE(Connect("ci-runner-7", "127.0.0.2", 9100).allowed);
  EXPECT_TRUE(Connect("ci-runner-7", "127.0.0.2", 8999).allowed);
  EXPECT_TRUE(Connect("ci-runner-7", "127.0.0.2", 9101).allowed);
  EXPECT_EQ(Connect("ci-runner-7", "127.0.0.1", 1).rule,
            "harness.connect_allow[0]");
}

TEST_F(PolicyEngineTest, UnknownIdentityIsDeniedEverything) {
  for (const char* method : {"CreateSession", "Socket", "GetAgentInfo"}) {
    PolicyDecision decision = engine_.CheckRpc("mallory", method);
    EXPECT_FALSE(decision.allowed);
    EXPECT_EQ(decision.rule, "default-deny");
  }
  EXPECT_FALSE(Connect("mallory", "127.0.0.1", 80).allowed);
  EXPECT_FALSE(engine_.CheckRpc("anonymous", "Socket").allowed);
}

TEST_F(PolicyEngineTest, RuleWithoutAllowListIsDefaultDeny) {
  v1::Policy policy = ParsePolicy(kPolicy);
  policy.mutable_rules(0)->clear_connect_allow();
  ASSERT_TRUE(engine_.Load(policy).ok());
  PolicyDecision decision = Connect("spiffe://test/harness", "127.0.0.1", 80);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.rule, "harness.default-deny");
}

TEST_F(PolicyEngineTest, RpcAllowListPerIdentity) {
  EXPECT_TRUE(engine_.CheckRpc("viewer", "GetAgentInfo").allowed);
  PolicyDecision denied = engine_.CheckRpc("viewer", "Connect");
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.rule, "readonly.allow_rpcs");
}

TEST_F(PolicyEngineTest, OpsPerSecondQuotaIsResourceExhausted) {
  int allowed = 0;
  PolicyDecision last;
  for (int i = 0; i < 20; ++i) {
    last = engine_.CheckRpc("ci-quota", "Recv");
    if (last.allowed) ++allowed;
  }
  EXPECT_LE(allowed, 10);  // 5 per window; the window may roll once
  EXPECT_FALSE(last.allowed);
  EXPECT_EQ(last.ToStatus().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(last.ToStatus().message(), HasSubstr("max_ops_per_second"));
  EXPECT_TRUE(engine_.CheckRpc("ci-other", "Recv").allowed)
      << "another identity has its own budget";
}

TEST_F(PolicyEngineTest, SocketFamiliesAndTypes) {
  EXPECT_TRUE(engine_.CheckSocket("ci-a", AF_INET, SOCK_STREAM).allowed);
  EXPECT_EQ(engine_.CheckSocket("ci-a", AF_UNIX, SOCK_STREAM).rule,
            "harness.families");
  EXPECT_EQ(engine_.CheckSocket("ci-a", AF_INET, SOCK_SEQPACKET).rule,
            "harness.types");
}

TEST_F(PolicyEngineTest, BindNeedsGrantsForPrivilegedPortsAndWildcard) {
  auto bind = [&](const std::string& host, uint16_t port) {
    SockAddr address = Inet(host, port);
    return engine_.CheckBind("ci-a", address.get(), address.length);
  };
  EXPECT_TRUE(bind("127.0.0.1", 0).allowed) << "port 0 = kernel's choice";
  EXPECT_TRUE(bind("127.0.0.1", 30000).allowed);
  EXPECT_EQ(bind("127.0.0.1", 80).rule, "harness.allow_privileged_bind_ports");
  EXPECT_EQ(bind("0.0.0.0", 30000).rule, "harness.allow_wildcard_bind");
  EXPECT_EQ(bind("127.0.0.1", 10000).rule, "harness.default-deny");
}

TEST_F(PolicyEngineTest, ListenBacklogAndSocketOptions) {
  EXPECT_TRUE(engine_.CheckListen("ci-a", 64).allowed);
  EXPECT_EQ(engine_.CheckListen("ci-a", 65).rule, "harness.max_listen_backlog");
  v1::SetSockOptRequest reuse;
  reuse.set_option(v1::OPT_SO_REUSEADDR);
  EXPECT_TRUE(engine_.CheckSockOpt("ci-a", reuse).allowed);
  v1::SetSockOptRequest broadcast;
  broadcast.set_option(v1::OPT_SO_BROADCAST);
  EXPECT_EQ(engine_.CheckSockOpt("ci-a", broadcast).rule,
            "harness.socket_options");
  v1::SetSockOptRequest raw;
  raw.mutable_raw_option()->set_level(1);
  EXPECT_EQ(engine_.CheckSockOpt("ci-a", raw).rule,
            "harness.allow_raw_options");
}

TEST_F(PolicyEngineTest, InvalidPolicyIsRejectedAndThePreviousOneStays) {
  v1::Policy bad = ParsePolicy(kPolicy);
  bad.mutable_rules(0)->mutable_connect_deny(0)->set_cidr("10.0.0.0/99");
  absl::Status loaded = engine_.Load(bad);
  EXPECT_EQ(loaded.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.message(), HasSubstr("harness"));
  EXPECT_THAT(loaded.message(), HasSubstr("connect_deny[0]"));
  EXPECT_FALSE(Connect("ci-a", "10.1.1.1", 80).allowed) << "old policy stays";
  EXPECT_TRUE(Connect("ci-a", "127.0.0.1", 80).allowed);
  EXPECT_EQ(engine_.rejected_loads(), 1u);
  // An unparsable file counts too; a good policy does not.
  EXPECT_FALSE(engine_.LoadFile("/nonexistent/policy.textproto").ok());
  EXPECT_EQ(engine_.rejected_loads(), 2u);
  ASSERT_TRUE(engine_.Load(ParsePolicy(kPolicy)).ok());
  EXPECT_EQ(engine_.rejected_loads(), 2u);
}

TEST_F(PolicyEngineTest, CanonicalizationInputsClassifyLikeTheirCanonicalForm) {
  // Allow only 127.0.0.1:7 for this identity; everything else is denied.
  ASSERT_TRUE(engine_
                  .Load(ParsePolicy(R"pb(
                    rules {
                      name: "one"
                      identities: "one"
                      connect_allow { cidr: "127.0.0.1" port_min: 7 }
                    }
                  )pb"))
                  .ok());
  struct Case {
    int family;
    std::string host;
  };
  for (const Case& c : std::initializer_list<Case>{
           {AF_INET, "127.0.0.1"},
           {AF_INET, "0x7f.1"},
           {AF_INET, "0177.0.0.1"},
           {AF_INET, "2130706433"},
           {AF_INET, "127.1"},
           {AF_INET6, "::ffff:7f00:1"},
           {AF_INET6, "::127.0.0.1"},
       }) {
    v1::Address wire;
    wire.mutable_inet()->set_host(c.host);
    wire.mutable_inet()->set_port(7);
    absl::StatusOr<SockAddr> resolved =
        ResolveAddress(wire, c.family, SOCK_STREAM, "address");
    if (!resolved.ok()) {
      // Refusing an ambiguous form is as safe as canonicalizing it.
      EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument)
          << c.host;
      continue;
    }
    EXPECT_EQ(
        Endpoint::FromSockAddr(resolved->get(), resolved->length).ToString(),
        "127.0.0.1:7")
        << c.host;
    EXPECT_TRUE(engine_
                    .CheckDestination("one", "connect", resolved->get(),
                                      resolved->length)
                    .allowed)
        << c.host;
  }
  SockAddr other = Inet("127.0.0.2", 7);
  EXPECT_FALSE(
      engine_.CheckDestination("one", "connect", other.get(), other.length)
          .allowed);
}

TEST(PolicyEngineProtectedPortsTest, AgentPortsOnThisHostAreHardDenied) {
  PolicyEngine engine;
  engine.SetProtectedPorts({7700});
  for (const char* host :
       {"127.0.0.1", "127.9.9.9", "0.0.0.0", "::1", "::ffff:127.0.0.1"}) {
    SockAddr address = Inet(host, 7700);
    PolicyDecision decision = engine.CheckDestination(
        "anonymous", "connect", address.get(), address.length);
    EXPECT_FALSE(decision.allowed) << host;
    EXPECT_EQ(decision.rule, "hard-deny:agent-port") << host;
  }
  SockAddr other_port = Inet("127.0.0.1", 7701);
  EXPECT_TRUE(engine
                  .CheckDestination("anonymous", "connect", other_port.get(),
                                    other_port.length)
                  .allowed);
}

TEST(PolicyEngineFileTest, ParsesTextFormatAndJson) {
  char text_path[] = "/tmp/sockagent_policy_XXXXXX";
  int fd = ::mkstemp(text_path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(text_path) << kPolicy;
  PolicyEngine engine;
  ASSERT_TRUE(engine.LoadFile(text_path).ok());
  EXPECT_TRUE(engine.configured());
  std::ofstream(text_path)
      << R"({"reportOnly": true, "rules": [{"name": "j", "identities": ["x"],)"
      << R"( "allowRpcs": ["*"]}]})";
  ASSERT_TRUE(engine.LoadFile(text_path).ok());
  EXPECT_TRUE(engine.report_only());
  EXPECT_TRUE(engine.CheckRpc("x", "Socket").allowed);
  std::ofstream(text_path) << "rules { name: ";
  absl::Status bad = engine.LoadFile(text_path);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(engine.CheckRpc("x", "Socket").allowed) << "old policy stays";
  ::unlink(text_path);
  EXPECT_EQ(engine.LoadFile(text_path).code(), absl::StatusCode::kNotFound);
}

TEST(PolicyEngineFileTest, ShippedExamplesLoad) {
  for (const char* name : {"policy.textproto", "policy.json"}) {
    PolicyEngine engine;
    const std::string path =
        std::string(SOCKAGENT_SOURCE_DIR) + "/deploy/examples/" + name;
    absl::Status loaded = engine.LoadFile(path);
    EXPECT_TRUE(loaded.ok()) << path << ": " << loaded;
    EXPECT_TRUE(engine.configured()) << path;
  }
}

TEST(AuditLogTest, OneJsonLinePerEventAndASuppressedCountUnderAFlood) {
  char path[] = "/tmp/sockagent_audit_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(path, 10);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 1000; ++i) {
      AuditEvent event;
      event.event = "decision";
      event.identity = "ci \"quoted\"";
      event.method = "SendTo";
      event.decision = "deny";
      event.rule = "hard-deny:link-local-ipv4";
      (*log)->Record(event);
    }
  }  // destruction flushes the suppressed count
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  int suppressed_lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    ASSERT_EQ(line.front(), '{');
    ASSERT_EQ(line.back(), '}');
    if (line.find("\"suppressed\"") != std::string::npos) {
      ++suppressed_lines;
      EXPECT_THAT(line, HasSubstr("\"suppressed\":990"));
    } else {
      EXPECT_THAT(line, HasSubstr(R"("identity":"ci \"quoted\"")"));
    }
  }
  EXPECT_EQ(lines, 11);
  EXPECT_EQ(suppressed_lines, 1);
  ::unlink(path);
}

}  // namespace
}  // namespace sockagent
