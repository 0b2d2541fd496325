#include "server/service/agent_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <fstream>

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace sockagent {
namespace {

// The host part of "host:port", "[v6]:port" or "ipv4:host:port".
std::string HostOf(absl::string_view address) {
  if (!absl::ConsumePrefix(&address, "ipv4:")) {
    absl::ConsumePrefix(&address, "ipv6:");
  }
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) return std::string(address);
    return std::string(address.substr(1, close - 1));
  }
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return std::string(address);
  return std::string(address.substr(0, colon));
}

int ClampMs(absl::Duration d) {
  return static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, INT_MAX));
}

// Stays the same when the agent restarts with the same configuration on the
// same host; differs between hosts and listen addresses (see IdIssuer).
std::string AgentKey(const std::string& listen_address) {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::string machine_id;
  std::ifstream("/etc/machine-id") >> machine_id;
  return absl::StrCat(host, "\n", machine_id, "\n", listen_address);
}

// Sockets callers may hold: RLIMIT_NOFILE less the reserve (0 = no cap when
// the limit is infinite or unknown).
size_t SocketCap(const ServerOptions& options) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 ||
      limit.rlim_cur == RLIM_INFINITY) {
    return 0;
  }
  const int64_t nofile = static_cast<int64_t>(limit.rlim_cur);
  int64_t reserve = options.fd_reserve;
  if (reserve < 0) {
    reserve = std::min<int64_t>(static_cast<int64_t>(options.max_connections) +
                                    options.health_headroom + 64,
                                nofile / 2);
  }
  return static_cast<size_t>(std::max<int64_t>(nofile - reserve, 1));
}

bool Readable(const std::string& path) {
  return ::access(path.c_str(), R_OK) == 0;
}

// TLS credentials over a file-watcher provider, or plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> CredentialsFor(
    const ServerOptions::Tls& tls) {
  if (tls.cert_file.empty()) {
    if (tls.require_client_cert || !tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls: a client CA or required client certificate needs a server "
          "certificate and key (--tls-cert, --tls-key)");
    }
    return grpc::InsecureServerCredentials();
  }
  for (const std::string* file :
       {&tls.cert_file, &tls.key_file, &tls.client_ca_file}) {
    if (file == &tls.client_ca_file && file->empty()) continue;
    if (file->empty() || !Readable(*file)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls: cannot read '", *file,
                       "' (server certificate, key and client CA must be "
                       "readable files)"));
    }
  }
  if (tls.require_client_cert && tls.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "tls: --require-client-cert needs --tls-client-ca");
  }
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          tls.key_file, tls.cert_file, tls.client_ca_file,
          static_cast<unsigned int>(tls.refresh_interval_seconds));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(
        tls.require_client_cert
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

bool IsLoopbackListenAddress(const std::string& address) {
  const std::string host = HostOf(address);
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Start(
    ServerOptions options) {
  std::unique_ptr<AgentServer> agent(new AgentServer());
  agent->options_ = options;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      CredentialsFor(options.tls);
  if (!credentials.ok()) return credentials.status();
  Authenticator::Options auth;
  auth.token_file = options.token_file;
  auth.require_authentication =
      options.tls.require_client_cert || !options.token_file.empty();
  absl::StatusOr<std::unique_ptr<Authenticator>> authenticator =
      Authenticator::Create(auth);
  if (!authenticator.ok()) return authenticator.status();
  agent->authenticator_ = *std::move(authenticator);
  if (options.core.agent_key.empty()) {
    options.core.agent_key = AgentKey(options.listen_address);
  }
  if (options.core.max_open_sockets == 0) {
    options.core.max_open_sockets = SocketCap(options);
  }
  if (options.core.max_open_sockets != 0) {
    spdlog::info(
        "callers may hold {} sockets at once (RLIMIT_NOFILE less the "
        "descriptors kept for connections and the agent itself)",
        options.core.max_open_sockets);
  }
  agent->options_ = options;
  absl::StatusOr<std::unique_ptr<AgentCore>> core =
      AgentCore::Create(options.core);
  if (!core.ok()) return core.status();
  agent->core_ = *std::move(core);
  agent->service_ = std::make_unique<SocketAgentService>(
      agent->core_.get(), agent->authenticator_.get());
  // The agent accepts the connections itself, to cap them.
  ConnectionLimiter::Options limits;
  limits.max_connections = options.max_connections;
  limits.health_headroom = options.health_headroom;
  // Keepalive cannot find a stopped client whose TCP buffers are full (the
  // ping is never written); the kernel can.
  limits.tcp_user_timeout = options.keepalive_time + options.keepalive_timeout;
  absl::StatusOr<std::unique_ptr<ConnectionLimiter>> limiter =
      ConnectionLimiter::Listen(options.listen_address, limits);
  if (!limiter.ok()) return limiter.status();
  agent->limiter_ = *std::move(limiter);
  agent->service_->set_connection_limiter(agent->limiter_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC shares a busy port silently unless told otherwise.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Keepalive finds hung clients: a stopped process answers no ping. Pings
  // must not wait for data frames (a stream blocked by a stopped reader
  // sends none), hence no cap on pings without data.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             ClampMs(options.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             ClampMs(options.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS,
      ClampMs(options.keepalive_time));
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10 * 1000);
  // A client pinging more often than allowed is cut off after 2 strikes.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_concurrent_streams);
  if (options.max_connection_idle > absl::ZeroDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_IDLE_MS,
        static_cast<int>(std::min<int64_t>(
            absl::ToInt64Milliseconds(options.max_connection_idle), INT_MAX)));
  }
  if (options.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_MS,
        static_cast<int>(std::min<int64_t>(
            absl::ToInt64Milliseconds(options.max_connection_age), INT_MAX)));
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
        static_cast<int>(std::min<int64_t>(
            absl::ToInt64Milliseconds(options.max_connection_age_grace),
            INT_MAX)));
  }
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE,
                             options.max_metadata_bytes);
  // The transport admits requests well above the payload limit so that an
  // oversized payload reaches the core and gets INVALID_ARGUMENT naming the
  // field; only a message beyond 4x the limit is refused by gRPC itself
  // (RESOURCE_EXHAUSTED).
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(options.core.max_send_bytes) * 4 + 64 * 1024);
  builder.SetMaxSendMessageSize(static_cast<int>(options.core.max_recv_bytes) +
                                64 * 1024);
  std::shared_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor =
      builder.experimental().AddExternalConnectionAcceptor(
          grpc::ServerBuilder::experimental_type::ExternalConnectionType::
              FROM_FD,
          *credentials);
  agent->port_ = agent->limiter_->port();
  builder.RegisterService(agent->service_.get());
  // Reflection in both versions: v1alpha from gRPC's plugin, v1 here.
  agent->reflection_v1_ =
      std::make_unique<ReflectionV1Service>(std::vector<std::string>{
          "sockagent.v1.SocketAgent", "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection"});
  builder.RegisterService(agent->reflection_v1_.get());
  if (options.interceptors) {
    builder.experimental().SetInterceptorCreators(options.interceptors());
  }
  agent->server_ = builder.BuildAndStart();
  if (agent->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve on ", options.listen_address,
                     ": the gRPC server did not start"));
  }
  agent->limiter_->Start(std::move(acceptor));
  std::vector<uint16_t> protected_ports = options.protected_ports;
  protected_ports.push_back(static_cast<uint16_t>(agent->port_));
  if (!options.health_listen.empty()) {
    // Only the default health service: no API, no reflection.
    grpc::ServerBuilder health_builder;
    health_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health_builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                                      10 * 1000);
    health_builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                                      60 * 1000);
    health_builder.SetMaxReceiveMessageSize(4 * 1024);
    health_builder.AddListeningPort(options.health_listen,
                                    grpc::InsecureServerCredentials(),
                                    &agent->health_port_);
    agent->health_server_ = health_builder.BuildAndStart();
    if (agent->health_server_ == nullptr || agent->health_port_ == 0) {
      // ~AgentServer drains the API server that did start.
      return absl::UnavailableError(
          absl::StrCat("cannot serve health on ", options.health_listen,
                       ": the address is in use or not local to this host"));
    }
    protected_ports.push_back(static_cast<uint16_t>(agent->health_port_));
  }
  agent->core_->policy().SetProtectedPorts(std::move(protected_ports));
  if (absl::Status nat64 =
          agent->core_->policy().SetNat64Prefixes(options.nat64_prefixes);
      !nat64.ok()) {
    return nat64;  // ~AgentServer drains what did start
  }
  agent->SetServing(true);
  return agent;
}

AgentServer::~AgentServer() { Drain(); }

void AgentServer::Drain() {
  {
    absl::MutexLock lock(&drain_mu_);
    if (drained_ || server_ == nullptr) return;
    drained_ = true;
  }
  spdlog::info("draining: health NOT_SERVING, ending waiting calls");
  SetServing(false);
  limiter_->Stop();
  core_->Drain();
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoSeconds(options_.drain_timeout));
  server_->Wait();
  if (health_server_ != nullptr) {
    health_server_->Shutdown(std::chrono::system_clock::now());
    health_server_->Wait();
  }
  spdlog::info("server stopped");
}

void AgentServer::Wait() { server_->Wait(); }

void AgentServer::SetServing(bool serving) {
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    if (server == nullptr) continue;
    grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
    health->SetServingStatus(serving);
    health->SetServingStatus("sockagent.v1.SocketAgent", serving);
  }
}

}  // namespace sockagent
