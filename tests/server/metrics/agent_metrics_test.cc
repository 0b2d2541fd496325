// AgentMetrics against a real in-process agent on 127.0.0.1:0: every RPC is
// counted by service, method and code through the interceptor, an errno
// failure by method and errno name, and the core's gauges are read at scrape
// time; /metrics is scraped over HTTP on loopback. Start() refuses an
// address that is not HOST:PORT or cannot be bound, naming it.

#include "server/metrics/agent_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/agent_fixture.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

using Labels = std::map<std::string, std::string>;

// GET /metrics from 127.0.0.1:`port`; the body, or "" on failure.
std::string Scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
      0) {
    const std::string request =
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[16384];
      ssize_t n;
      while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        response.append(buffer, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of sample `name` whose labels include `want`, or -1 if none.
double Sample(const std::string& text, const std::string& name,
              const Labels& want) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line.front() == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    absl::string_view series = line.substr(0, space);
    Labels labels;
    const size_t brace = series.find('{');
    if (series.substr(0, brace) != name) continue;
    if (brace != absl::string_view::npos) {
      absl::string_view inside =
          series.substr(brace + 1, series.size() - brace - 2);
      for (absl::string_view pair : absl::StrSplit(inside, "\",")) {
        std::pair<std::string, std::string> kv =
            absl::StrSplit(pair, absl::MaxSplits("=\"", 1));
        if (!kv.second.empty() && kv.second.back() == '"') kv.second.pop_back();
        labels.insert(std::move(kv));
      }
    }
    bool match = true;
    for (const auto& [key, value] : want) {
      auto it = labels.find(key);
      match = match && it != labels.end() && it->second == value;
    }
    double value = 0;
    if (match && absl::SimpleAtod(line.substr(space + 1), &value)) return value;
  }
  return -1;
}

class AgentMetricsTest : public testing::AgentTest {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<AgentMetrics>> metrics =
        AgentMetrics::Start("127.0.0.1:0");
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = *std::move(metrics);
    ASSERT_GT(metrics_->port(), 0);
    ServerOptions options;
    options.interceptors = [m = metrics_.get()] {
      std::vector<std::unique_ptr<
          grpc::experimental::ServerInterceptorFactoryInterface>>
          factories;
      factories.push_back(m->InterceptorFactory());
      return factories;
    };
    StartAgent(options);  // creates one session
    metrics_->AttachCore(&server_->core());
  }

  void TearDown() override {
    metrics_->AttachCore(nullptr);
    stub_.reset();
    server_.reset();  // no interceptor runs past this point
    metrics_.reset();
  }

  std::string Scrape() { return sockagent::Scrape(metrics_->port()); }

  std::unique_ptr<AgentMetrics> metrics_;
};

TEST_F(AgentMetricsTest, EachRpcIsCountedByServiceMethodAndCode) {
  const std::string before = Scrape();
  const Labels create = {{"service", "sockagent.v1.SocketAgent"},
                         {"method", "CreateSession"},
                         {"code", "OK"}};
  EXPECT_EQ(Sample(before, "sockagent_rpcs_total", create), 1) << before;
  NewSession();
  NewSession();
  const std::string after = Scrape();
  EXPECT_EQ(Sample(after, "sockagent_rpcs_total", create), 3) << after;
  EXPECT_EQ(Sample(after, "sockagent_rpc_duration_seconds_count",
                   {{"method", "CreateSession"}}),
            3)
      << after;
}

TEST_F(AgentMetricsTest, AnErrnoFailureIsCountedByMethodAndErrnoName) {
  absl::StatusOr<std::string> first =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  absl::StatusOr<std::string> second =
      NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_STREAM);
  ASSERT_TRUE(first.ok() && second.ok());
  absl::StatusOr<v1::Address> bound =
      Bind(*first, testing::Inet("127.0.0.1", 0));
  ASSERT_TRUE(bound.ok()) << bound.status();
  absl::StatusOr<v1::Address> taken = Bind(*second, *bound);
  ASSERT_FALSE(taken.ok());
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, "sockagent_socket_errors_total",
                   {{"method", "Bind"}, {"errno", "EADDRINUSE"}}),
            1)
      << text;
}

TEST_F(AgentMetricsTest, CoreGaugesAreReadAtScrapeTime) {
  std::string text = Scrape();
  EXPECT_EQ(Sample(text, "sockagent_sessions", {}), 1) << text;
  EXPECT_EQ(Sample(text, "sockagent_open_sockets", {}), 0) << text;
  ASSERT_TRUE(NewSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM).ok());
  NewSession();
  text = Scrape();
  EXPECT_EQ(Sample(text, "sockagent_sessions", {}), 2) << text;
  EXPECT_EQ(Sample(text, "sockagent_open_sockets", {}), 1) << text;
}

TEST(AgentMetricsStartTest, AnAddressWithoutAPortIsInvalidArgumentNamingIt) {
  absl::StatusOr<std::unique_ptr<AgentMetrics>> metrics =
      AgentMetrics::Start("127.0.0.1");
  EXPECT_EQ(metrics.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(metrics.status().message()),
      HasSubstr("cannot serve metrics on 127.0.0.1: expected HOST:PORT"));
}

TEST(AgentMetricsStartTest, ABusyPortIsUnavailableNamingTheAddressAndErrno) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length),
            0);
  const std::string busy = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));
  absl::StatusOr<std::unique_ptr<AgentMetrics>> metrics =
      AgentMetrics::Start(busy);
  ::close(fd);
  EXPECT_EQ(metrics.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(metrics.status().message()),
              HasSubstr("cannot serve metrics on " + busy));
  EXPECT_THAT(std::string(metrics.status().message()), HasSubstr("EADDRINUSE"));
}

}  // namespace
}  // namespace sockagent
