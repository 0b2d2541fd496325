// client/fleet: agent sources (inventory files, lists, the environment,
// DNS), selectors, and ProbeAll against real sockagentd child processes on
// 127.0.0.1 that carry labels (--label and the config file's `label`).

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/fleet/agents_report.h"
#include "client/fleet/heat_map.h"
#include "client/fleet/inventory.h"
#include "client/fleet/probe.h"
#include "client/fleet/selector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/agent_process.h"

namespace sockagent::fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

std::vector<std::string> Names(const std::vector<AgentEndpoint>& agents) {
  std::vector<std::string> names;
  for (const AgentEndpoint& agent : agents) names.push_back(agent.name);
  return names;
}

TEST(InventoryTest, AgentsGetTheDefaultsTheirOwnSettingsAndThePort) {
  absl::StatusOr<std::vector<AgentEndpoint>> agents = ParseInventory(
      R"(defaults:
  port: 7700
  tls: {ca: ca.pem, cert: h.pem, key: h.key, server_name: agent.test}
  labels: {cluster: lab, zone: a}
agents:
  w1:
    address: 10.0.0.1
    labels: {node: worker-1, zone: b}
  w2: 10.0.0.2:7800
  w3: {address: "[fd00::3]", tls: false, token_file: /etc/token}
)",
      "inv.yaml", "/srv/fleet");
  ASSERT_TRUE(agents.ok()) << agents.status();
  ASSERT_THAT(Names(*agents), ElementsAre("w1", "w2", "w3"));
  const AgentEndpoint& w1 = (*agents)[0];
  EXPECT_EQ(w1.address, "10.0.0.1:7700");
  EXPECT_TRUE(w1.tls);
  EXPECT_EQ(w1.tls_ca, "/srv/fleet/ca.pem");
  EXPECT_EQ(w1.tls_cert, "/srv/fleet/h.pem");
  EXPECT_EQ(w1.tls_server_name, "agent.test");
  EXPECT_THAT(w1.labels,
              ElementsAre(Pair("cluster", "lab"), Pair("node", "worker-1"),
                          Pair("zone", "b")));
  EXPECT_EQ((*agents)[1].address, "10.0.0.2:7800");
  EXPECT_TRUE((*agents)[1].tls);
  EXPECT_EQ((*agents)[2].address, "[fd00::3]:7700");
  EXPECT_FALSE((*agents)[2].tls);
  EXPECT_EQ((*agents)[2].token_file, "/etc/token");
}

TEST(InventoryTest, MistakesNameTheFileTheLineAndTheKey) {
  struct Case {
    const char* yaml;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {"agents:\n  a:\n    adress: 1.2.3.4:1\n",
            "inv.yaml:3:5: adress: unknown key (did you mean address?)"},
           {"agents:\n  a: 1.2.3.4:1\n  a: 1.2.3.5:1\n",
            "inv.yaml:3:3: a: agent named twice (first at line 2)"},
           {"agents:\n  a: 1.2.3.4\n", "a: address '1.2.3.4' is not HOST:PORT"},
           {"agents:\n  a: {address: 1.2.3.4:1, labels: {'b c': x}}\n",
            "labels: key 'b c' may hold only"},
           {"agents:\n  a: {address: 1.2.3.4:1, tls: {cert: c.pem}}\n",
            "tls: cert and key go together"},
           {"defaults: {port: 99999}\nagents: {a: 1.2.3.4}\n",
            "inv.yaml:1:18: port: expected a port"},
           {"agents: []\n", "agents: expected a mapping"},
           {"agents: {a: [\n", "inv.yaml:"},
       }) {
    absl::StatusOr<std::vector<AgentEndpoint>> agents =
        ParseInventory(c.yaml, "inv.yaml", "");
    EXPECT_EQ(agents.status().code(), absl::StatusCode::kInvalidArgument)
        << c.yaml;
    EXPECT_THAT(agents.status().message(), HasSubstr(c.error)) << c.yaml;
  }
}

TEST(InventoryTest, AFileIsReadRelativeToItsDirectory) {
  char dir[] = "/tmp/fleet-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = absl::StrCat(dir, "/inventory.yaml");
  std::ofstream(path) << "defaults: {tls: {ca: ca.pem}}\nagents: {a: h:1}\n";
  for (const std::string& source : {path, absl::StrCat("file:", path)}) {
    absl::StatusOr<std::vector<AgentEndpoint>> agents = LoadAgents(source);
    ASSERT_TRUE(agents.ok()) << agents.status();
    ASSERT_EQ(agents->size(), 1u);
    EXPECT_EQ((*agents)[0].tls_ca, absl::StrCat(dir, "/ca.pem"));
  }
  ::unlink(path.c_str());
  ::rmdir(dir);
  EXPECT_EQ(LoadAgents(path).status().code(), absl::StatusCode::kNotFound);
}

TEST(SourceTest, AListNamesEachAgent) {
  absl::StatusOr<std::vector<AgentEndpoint>> agents =
      LoadAgents("a=127.0.0.1:7700, b=[::1]:7701");
  ASSERT_TRUE(agents.ok()) << agents.status();
  ASSERT_THAT(Names(*agents), ElementsAre("a", "b"));
  EXPECT_EQ((*agents)[1].address, "[::1]:7701");
  EXPECT_THAT(LoadAgents("a=127.0.0.1").status().message(),
              HasSubstr("'a=127.0.0.1' is not NAME=HOST:PORT"));
  EXPECT_THAT(LoadAgents("a=h:1,a=h:2").status().message(),
              HasSubstr("agent 'a' named twice"));
}

TEST(SourceTest, AnEnvironmentVariableHoldsASource) {
  ::setenv("FLEET_TEST_AGENTS", "x=127.0.0.1:1,y=127.0.0.1:2", 1);
  absl::StatusOr<std::vector<AgentEndpoint>> agents =
      LoadAgents("env:FLEET_TEST_AGENTS");
  ASSERT_TRUE(agents.ok()) << agents.status();
  EXPECT_THAT(Names(*agents), ElementsAre("x", "y"));
  ::setenv("FLEET_TEST_AGENTS", "env:FLEET_TEST_AGENTS", 1);
  EXPECT_THAT(LoadAgents("env:FLEET_TEST_AGENTS").status().message(),
              HasSubstr("names env: again"));
  ::unsetenv("FLEET_TEST_AGENTS");
  EXPECT_EQ(LoadAgents("env:FLEET_TEST_AGENTS").status().code(),
            absl::StatusCode::kNotFound);

  ::unsetenv(kAgentsEnvVar);
  EXPECT_THAT(LoadAgentsOrEnv("").status().message(),
              HasSubstr("set SOCKAGENT_AGENTS"));
  ::setenv(kAgentsEnvVar, "z=127.0.0.1:3", 1);
  agents = LoadAgentsOrEnv("");
  ASSERT_TRUE(agents.ok()) << agents.status();
  EXPECT_THAT(Names(*agents), ElementsAre("z"));
  ::unsetenv(kAgentsEnvVar);
}

TEST(SourceTest, DnsGivesOneAgentPerAddress) {
  absl::StatusOr<std::vector<AgentEndpoint>> agents =
      LoadAgents("dns:127.0.0.1:7700");
  ASSERT_TRUE(agents.ok()) << agents.status();
  ASSERT_THAT(Names(*agents), ElementsAre("127.0.0.1"));
  EXPECT_EQ((*agents)[0].address, "127.0.0.1:7700");
  agents = LoadAgents("dns:[::1]:7700");
  ASSERT_TRUE(agents.ok()) << agents.status();
  EXPECT_EQ((*agents)[0].address, "[::1]:7700");
  // localhost has at least one record (127.0.0.1, often ::1 as well); no
  // address twice.
  agents = LoadAgents("dns:localhost:7700");
  ASSERT_TRUE(agents.ok()) << agents.status();
  EXPECT_GE(agents->size(), 1u);
  EXPECT_EQ(LoadAgents("dns:localhost").status().code(),
            absl::StatusCode::kInvalidArgument);
  // (A name without records is not tried here: resolving it would ask the
  // machine's DNS servers, off loopback. fleet.sh resolves names from a
  // hosts file inside its own namespace.)
}

TEST(SourceTest, SecurityDefaultsFillOnlyAgentsWithoutTheirOwn) {
  std::vector<AgentEndpoint> agents(2);
  agents[1].token_file = "/own/token";
  AgentEndpoint defaults;
  defaults.tls = true;
  defaults.tls_ca = "ca.pem";
  ApplyDefaults(defaults, &agents);
  EXPECT_TRUE(agents[0].tls);
  EXPECT_EQ(agents[0].tls_ca, "ca.pem");
  EXPECT_FALSE(agents[1].tls);
  EXPECT_EQ(OptionsFor(agents[1]).status().code(), absl::StatusCode::kNotFound);
}

TEST(SelectorTest, SelectsByNameByLabelAndByAbsentLabel) {
  const std::map<std::string, std::string> labels = {{"node", "worker-3"},
                                                     {"zone", "a"}};
  auto matches = [&](const char* text, const char* name) {
    absl::StatusOr<Selector> selector = Selector::Parse(text);
    EXPECT_TRUE(selector.ok()) << selector.status();
    return selector.ok() && selector->Matches(name, labels);
  };
  EXPECT_TRUE(matches("", "w3"));
  EXPECT_TRUE(matches("*", "w3"));
  EXPECT_TRUE(matches("w3", "w3"));
  EXPECT_FALSE(matches("w4", "w3"));
  EXPECT_TRUE(matches("name=w3", "w3"));
  EXPECT_TRUE(matches("node=worker-3", "w3"));
  EXPECT_FALSE(matches("node=worker-4", "w3"));
  EXPECT_TRUE(matches("node=worker-3, zone=a", "w3"));
  EXPECT_FALSE(matches("node=worker-3,zone=b", "w3"));
  EXPECT_TRUE(matches("zone!=b", "w3"));
  EXPECT_FALSE(matches("zone!=a", "w3"));
  EXPECT_TRUE(matches("rack!=r1", "w3"));
  EXPECT_FALSE(matches("rack=r1", "w3"));
  EXPECT_THAT(Selector::Parse("=x").status().message(),
              HasSubstr("term '=x': empty key"));
  EXPECT_THAT(Selector::Parse("a b=c").status().message(),
              HasSubstr("may hold only"));
}

// A listener that never accepts: TCP connects, the gRPC handshake never
// completes, so a probe of it can only end by its timeout.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
        ::listen(fd_, 64) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(ProbeTest, ReportsLabelsOfLiveAgentsAndUnreachableOnesInParallel) {
  testing::AgentProcess labelled;
  ASSERT_TRUE(labelled.Start(SOCKAGENTD_PATH,
                             {"--label", "node=worker-1", "--label", "zone=b"}))
      << labelled.Log();
  // The config file's labels; a --label on the command line would replace
  // them.
  char dir[] = "/tmp/fleet-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string config = absl::StrCat(dir, "/agent.textproto");
  std::ofstream(config) << "label: \"node=worker-2\"\nlabel: \"pod=p-2\"\n";
  testing::AgentProcess configured;
  ASSERT_TRUE(configured.Start(SOCKAGENTD_PATH, {"--config", config}))
      << configured.Log();
  ::unlink(config.c_str());
  ::rmdir(dir);

  std::vector<AgentEndpoint> agents(2);
  agents[0].name = "one";
  agents[0].address = labelled.target();
  agents[0].labels = {{"zone", "from-inventory"}, {"rack", "r1"}};
  agents[1].name = "two";
  agents[1].address = configured.target();
  // Eight agents that never answer, and one with nothing listening.
  std::vector<std::unique_ptr<SilentListener>> silent;
  for (int i = 0; i < 8; ++i) {
    silent.push_back(std::make_unique<SilentListener>());
    ASSERT_NE(silent.back()->port(), 0);
    AgentEndpoint agent;
    agent.name = absl::StrCat("silent-", i);
    agent.address = absl::StrCat("127.0.0.1:", silent.back()->port());
    agents.push_back(agent);
  }
  AgentEndpoint refused;  // a port that was bound, then closed
  refused.name = "refused";
  {
    SilentListener gone;
    refused.address = absl::StrCat("127.0.0.1:", gone.port());
  }
  agents.push_back(refused);

  ProbeOptions options;
  options.timeout = absl::Seconds(1);
  const absl::Time start = absl::Now();
  std::vector<AgentProbe> probes = ProbeAll(agents, options);
  const absl::Duration wall = absl::Now() - start;

  ASSERT_EQ(probes.size(), agents.size());
  ASSERT_TRUE(probes[0].status.ok()) << probes[0].status;
  EXPECT_STREQ(HealthOf(probes[0]), "ok");
  EXPECT_THAT(probes[0].info.labels(),
              ::testing::UnorderedElementsAre(Pair("node", "worker-1"),
                                              Pair("zone", "b")));
  // The agent's own labels win over the inventory's.
  EXPECT_THAT(probes[0].labels,
              ElementsAre(Pair("node", "worker-1"), Pair("rack", "r1"),
                          Pair("zone", "b")));
  EXPECT_FALSE(probes[0].info.incarnation().empty());
  ASSERT_TRUE(probes[1].status.ok()) << probes[1].status;
  EXPECT_THAT(probes[1].labels,
              ElementsAre(Pair("node", "worker-2"), Pair("pod", "p-2")));
  for (size_t i = 2; i < probes.size(); ++i) {
    EXPECT_FALSE(probes[i].status.ok()) << probes[i].endpoint.name;
    EXPECT_STREQ(HealthOf(probes[i]), "unreachable")
        << probes[i].endpoint.name << ": " << probes[i].status;
  }
  // Nine unreachable agents with a 1 s timeout each: one after the other
  // would take 8 s and more; in parallel about 1 s. (A wide bound: it tells
  // parallel from serial, it does not time anything.)
  EXPECT_LT(wall, absl::Seconds(6));
}

TEST(AgentsReportTest, TableAndJsonShowEveryAgentAndWhyOneDidNotAnswer) {
  std::vector<AgentProbe> probes(2);
  probes[0].endpoint.name = "w1";
  probes[0].endpoint.address = "10.0.0.1:7700";
  probes[0].labels = {{"node", "worker-1"}, {"zone", "a"}};
  probes[0].info.set_agent_version("0.1.0");
  probes[0].info.set_incarnation("inc-1");
  probes[0].latency = absl::Milliseconds(2);
  probes[1].endpoint.name = "w2";
  probes[1].endpoint.address = "10.0.0.2:7700";
  probes[1].status = absl::UnavailableError("cannot reach the agent");
  const std::string table = AgentsTable(probes);
  EXPECT_THAT(table, HasSubstr("NAME"));
  EXPECT_THAT(table, HasSubstr("node=worker-1,zone=a"));
  EXPECT_THAT(table, HasSubstr("unreachable"));
  EXPECT_THAT(table, HasSubstr("cannot reach the agent"));
  EXPECT_EQ(AgentsJsonLines(probes),
            "{\"name\":\"w1\",\"address\":\"10.0.0.1:7700\",\"health\":\"ok\","
            "\"labels\":{\"node\":\"worker-1\",\"zone\":\"a\"},"
            "\"latency_s\":0.002,\"version\":\"0.1.0\",\"incarnation\":"
            "\"inc-1\",\"hostname\":\"\",\"sessions\":0,\"open_sockets\":0}\n"
            "{\"name\":\"w2\",\"address\":\"10.0.0.2:7700\",\"health\":"
            "\"unreachable\",\"labels\":{},\"latency_s\":0.0,\"error\":{"
            "\"code\":\"UNAVAILABLE\",\"message\":\"cannot reach the "
            "agent\"}}\n");
}

TEST(HeatMapTest, WritesAPngWithOneCellPerPair) {
  char dir[] = "/tmp/fleet-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = absl::StrCat(dir, "/m.png");
  std::vector<MatrixCell> cells(3 * 2);
  cells[1].state = MatrixCell::State::kPassed;
  cells[1].latency = absl::Milliseconds(3);
  cells[2].state = MatrixCell::State::kFailed;
  ASSERT_TRUE(WriteHeatMapPng(path, 3, 2, cells).ok());
  std::ifstream in(path, std::ios::binary);
  std::string png((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
  ASSERT_GT(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<uint8_t>(png[at])) << 24) |
           (static_cast<uint32_t>(static_cast<uint8_t>(png[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>(png[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<uint8_t>(png[at + 3]));
  };
  // IHDR: 16-pixel cells with a 1-pixel grid: 2 columns, 3 rows.
  EXPECT_EQ(be32(16), 2u * 17 + 1);
  EXPECT_EQ(be32(20), 3u * 17 + 1);
  EXPECT_EQ(WriteHeatMapPng(path, 3, 3, cells).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      WriteHeatMapPng(absl::StrCat(dir, "/no/such/dir.png"), 3, 2, cells).ok());
  ::unlink(path.c_str());
  ::rmdir(dir);
}

// The agent rejects a malformed --label at start with exit 2, naming it.
TEST(AgentLabelsTest, AMalformedLabelStopsTheAgentNamingIt) {
  for (const char* label : {"novalue", "bad key=x", "=x"}) {
    // Bounded: an agent that accepted the label would serve until killed.
    const std::string command =
        absl::StrCat("timeout 20 ", SOCKAGENTD_PATH,
                     " --listen 127.0.0.1:0 --label '", label, "' 2>&1");
    FILE* out = ::popen(command.c_str(), "r");
    ASSERT_NE(out, nullptr);
    std::string text;
    char buffer[512];
    while (size_t n = ::fread(buffer, 1, sizeof(buffer), out)) {
      text.append(buffer, n);
    }
    const int status = ::pclose(out);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2)
        << label << ": " << text;
    EXPECT_THAT(text, HasSubstr("--label")) << label;
    EXPECT_THAT(text, HasSubstr(label)) << label;
  }
}

}  // namespace
}  // namespace sockagent::fleet
