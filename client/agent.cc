#include "client/agent.h"

#include <utility>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/sync_stream.h>

#include "absl/strings/str_cat.h"
#include "client/credentials.h"
#include "client/internal/connection.h"
#include "proto/duration_codec.h"

namespace sockagent {
namespace {

using internal::CallKind;
using Stub = v1::SocketAgent::StubInterface;

// Bound of the best-effort CloseSession in the destructor.
constexpr absl::Duration kCloseTimeout = absl::Seconds(2);
// Keepalive period when the agent did not report a ttl.
constexpr absl::Duration kFallbackKeepAlivePeriod = absl::Seconds(10);
// The smallest keepalive period, whatever the ttl.
constexpr absl::Duration kMinKeepAlivePeriod = absl::Milliseconds(100);
// Messages carry up to max_recv_bytes; leave room beyond gRPC's 4 MiB.
constexpr int kMaxMessageBytes = 64 << 20;

}  // namespace

// The HoldSession call, read by its own thread until it ends.
struct Agent::HoldCall {
  std::unique_ptr<grpc::ClientContext> context;
  std::thread thread;
  // Notified once: bound (status OK) or failed before binding.
  absl::Notification settled;
  absl::Status bind_status;
  absl::Notification ended;
  absl::Mutex mu;
  std::unique_ptr<grpc::ClientReaderWriterInterface<v1::HoldSessionRequest,
                                                    v1::HoldSessionEvent>>
      stream ABSL_GUARDED_BY(mu);
};

absl::StatusOr<std::unique_ptr<Agent>> Agent::Connect(AgentOptions options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options.credentials != nullptr ? options.credentials
                                     : grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  std::shared_ptr<grpc::Channel> channel;
  if (options.token.empty()) {
    channel = grpc::CreateCustomChannel(options.target, credentials, args);
  } else {
    std::vector<
        std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(BearerTokenInterceptor(options.token));
    channel = grpc::experimental::CreateCustomChannelWithInterceptors(
        options.target, credentials, args, std::move(interceptors));
  }
  const absl::Time connect_deadline = absl::Now() + options.connect_timeout;
  for (grpc_connectivity_state state = channel->GetState(true);
       state != GRPC_CHANNEL_READY; state = channel->GetState(true)) {
    if (options.fail_fast && state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      return absl::UnavailableError(absl::StrCat(
          "cannot reach the agent at ", options.target,
          ": the connection failed (refused, unreachable, or the TLS handshake "
          "failed)"));
    }
    if (!channel->WaitForStateChange(state,
                                     absl::ToChronoTime(connect_deadline))) {
      return absl::UnavailableError(
          absl::StrCat("cannot reach the agent at ", options.target, " within ",
                       absl::FormatDuration(options.connect_timeout)));
    }
  }
  std::unique_ptr<Stub> stub = v1::SocketAgent::NewStub(channel);

  std::string session_id = options.session_id;
  std::string incarnation;
  absl::Duration ttl = absl::ZeroDuration();
  const bool owns_session = session_id.empty() && options.open_session;
  if (owns_session) {
    auto bootstrap = std::make_shared<internal::Connection>(
        channel, v1::SocketAgent::NewStub(channel), "", options.call_timeout);
    v1::CreateSessionRequest request;
    if (options.session_ttl > absl::ZeroDuration()) {
      *request.mutable_ttl() = ToProtoDuration(options.session_ttl);
    }
    request.set_label(options.session_label);
    request.set_bind_to_connection(options.bind_to_connection);
    v1::CreateSessionResponse response;
    absl::Status status =
        bootstrap->Call(&Stub::CreateSession, request, &response);
    if (!status.ok()) return status;
    session_id = response.session_id();
    incarnation = response.incarnation();
    ttl = FromProtoDuration(response.ttl());
  }
  auto connection = std::make_shared<const internal::Connection>(
      channel, std::move(stub), session_id, options.call_timeout);
  if (!owns_session && !session_id.empty() && options.keepalive) {
    v1::KeepAliveRequest request;
    v1::KeepAliveResponse response;
    absl::Status status =
        connection->Call(&Stub::KeepAlive, request, &response);
    if (!status.ok()) return status;
    ttl = FromProtoDuration(response.ttl());
  }
  std::unique_ptr<Agent> agent(new Agent(
      std::move(connection), std::move(incarnation), ttl, owns_session));
  if (owns_session && options.bind_to_connection) {
    absl::Status bound =
        agent->StartHold(absl::Now() + options.connect_timeout);
    // An agent without HoldSession keeps the session by its lease only.
    if (!bound.ok() && !absl::IsUnimplemented(bound)) return bound;
  }
  if (options.keepalive && !session_id.empty()) agent->StartKeepAlive();
  return agent;
}

absl::Status Agent::StartHold(absl::Time deadline) {
  auto hold = std::make_unique<HoldCall>();
  // No deadline: the call lives as long as the binding.
  hold->context = connection_->MakeContext(CallKind::kWaiting);
  HoldCall* call = hold.get();
  hold->thread = std::thread([this, call] {
    auto stream = connection_->stub().HoldSession(call->context.get());
    auto* reader = stream.get();
    {
      absl::MutexLock lock(&call->mu);
      call->stream = std::move(stream);
    }
    v1::HoldSessionEvent event;
    if (reader->Read(&event)) {
      call->settled.Notify();
      while (reader->Read(&event)) {
      }
    }
    const grpc::Status status = reader->Finish();
    if (!call->settled.HasBeenNotified()) {
      call->bind_status = internal::Connection::Convert(status);
      if (call->bind_status.ok()) {
        call->bind_status = absl::UnavailableError(
            "HoldSession ended before binding the session");
      }
      call->settled.Notify();
    }
    call->ended.Notify();
  });
  const bool settled =
      hold->settled.WaitForNotificationWithTimeout(deadline - absl::Now());
  if (!settled) hold->context->TryCancel();
  hold->settled.WaitForNotification();  // promptly, once cancelled
  absl::Status status = hold->bind_status;
  if (!settled) {
    status = absl::DeadlineExceededError(
        "HoldSession: the agent did not bind the session in time");
  }
  if (!status.ok()) {
    hold->thread.join();
    return status;
  }
  absl::MutexLock lock(&mu_);
  hold_ = std::move(hold);
  return absl::OkStatus();
}

void Agent::StopHold(bool release) {
  std::unique_ptr<HoldCall> hold;
  {
    absl::MutexLock lock(&mu_);
    hold = std::move(hold_);
  }
  if (hold == nullptr) return;
  if (release) {
    absl::MutexLock lock(&hold->mu);
    v1::HoldSessionRequest request;
    request.set_release(true);
    if (hold->stream->Write(request)) hold->stream->WritesDone();
  }
  // The agent ends the call after a release or CloseSession; otherwise
  // (or if it does not answer in time) cancelling ends it.
  if (!release || !hold->ended.WaitForNotificationWithTimeout(kCloseTimeout)) {
    hold->context->TryCancel();
  }
  hold->thread.join();
}

bool Agent::bound() const {
  absl::MutexLock lock(&mu_);
  return hold_ != nullptr && !hold_->ended.HasBeenNotified();
}

Agent::Agent(std::shared_ptr<const internal::Connection> connection,
             std::string incarnation, absl::Duration ttl, bool owns_session)
    : connection_(std::move(connection)),
      incarnation_(std::move(incarnation)),
      ttl_(ttl),
      owns_session_(owns_session) {}

Agent::~Agent() {
  StopKeepAlive();
  bool close;
  {
    absl::MutexLock lock(&mu_);
    close = owns_session_ && !session_closed_;
  }
  if (close) {
    v1::CloseSessionRequest request;
    v1::CloseSessionResponse response;
    connection_
        ->Call(&Stub::CloseSession, request, &response, CallKind::kImmediate,
               absl::Now() + kCloseTimeout)
        .IgnoreError();
  }
  // Ended by CloseSession; cancelling it otherwise ends the session too.
  StopHold(/*release=*/!close);
}

const std::string& Agent::session_id() const {
  return connection_->session_id();
}

absl::Duration Agent::session_ttl() const {
  absl::MutexLock lock(&mu_);
  return ttl_;
}

void Agent::StartKeepAlive() {
  keepalive_thread_ = std::thread([this] { KeepAliveLoop(); });
}

void Agent::StopKeepAlive() {
  {
    absl::MutexLock lock(&mu_);
    if (!stop_keepalive_.HasBeenNotified()) stop_keepalive_.Notify();
    if (keepalive_context_ != nullptr) keepalive_context_->TryCancel();
  }
  if (keepalive_thread_.joinable() &&
      keepalive_thread_.get_id() != std::this_thread::get_id()) {
    keepalive_thread_.join();
  }
}

void Agent::KeepAliveLoop() {
  while (true) {
    absl::Duration period;
    {
      absl::MutexLock lock(&mu_);
      period =
          ttl_ > absl::ZeroDuration() ? ttl_ / 3 : kFallbackKeepAlivePeriod;
    }
    period = std::max(period, kMinKeepAlivePeriod);
    if (stop_keepalive_.WaitForNotificationWithTimeout(period)) return;
    std::unique_ptr<grpc::ClientContext> context =
        connection_->MakeContext(CallKind::kImmediate, absl::Now() + period);
    {
      absl::MutexLock lock(&mu_);
      if (stop_keepalive_.HasBeenNotified()) return;
      keepalive_context_ = context.get();
    }
    v1::KeepAliveRequest request;
    v1::KeepAliveResponse response;
    grpc::Status status =
        connection_->stub().KeepAlive(context.get(), request, &response);
    absl::MutexLock lock(&mu_);
    keepalive_context_ = nullptr;
    if (status.ok() && response.has_ttl()) {
      ttl_ = FromProtoDuration(response.ttl());
    }
    // A failed renewal is retried at the next period; a lapsed session
    // surfaces as NOT_FOUND on the caller's next call.
  }
}

absl::StatusOr<uint32_t> Agent::CloseSession() {
  StopKeepAlive();
  v1::CloseSessionRequest request;
  v1::CloseSessionResponse response;
  absl::Status status =
      connection_->Call(&Stub::CloseSession, request, &response);
  {
    absl::MutexLock lock(&mu_);
    session_closed_ = true;
  }
  StopHold(/*release=*/false);
  if (!status.ok()) return status;
  return response.sockets_closed();
}

absl::StatusOr<uint32_t> Agent::CloseSession(const std::string& session_id) {
  v1::CloseSessionRequest request;
  request.set_session_id(session_id);
  v1::CloseSessionResponse response;
  absl::Status status =
      connection_->Call(&Stub::CloseSession, request, &response);
  if (!status.ok()) return status;
  return response.sockets_closed();
}

absl::StatusOr<std::vector<v1::SessionInfo>> Agent::ListSessions() {
  v1::ListSessionsRequest request;
  v1::ListSessionsResponse response;
  absl::Status status =
      connection_->Call(&Stub::ListSessions, request, &response);
  if (!status.ok()) return status;
  return std::vector<v1::SessionInfo>(response.sessions().begin(),
                                      response.sessions().end());
}

std::string Agent::DetachSession() {
  StopKeepAlive();
  StopHold(/*release=*/true);
  absl::MutexLock lock(&mu_);
  owns_session_ = false;
  return connection_->session_id();
}

absl::StatusOr<absl::Duration> Agent::KeepAlive() {
  v1::KeepAliveRequest request;
  v1::KeepAliveResponse response;
  absl::Status status = connection_->Call(&Stub::KeepAlive, request, &response);
  if (!status.ok()) return status;
  absl::Duration ttl = FromProtoDuration(response.ttl());
  absl::MutexLock lock(&mu_);
  ttl_ = ttl;
  return ttl;
}

absl::StatusOr<Socket> Agent::CreateSocket(v1::Family family,
                                           v1::SocketType type, int protocol) {
  v1::SocketRequest request;
  request.set_family(family);
  request.set_type(type);
  request.set_protocol(protocol);
  v1::SocketResponse response;
  absl::Status status = connection_->Call(&Stub::Socket, request, &response);
  if (!status.ok()) return status;
  return Socket(connection_, response.handle(), /*owned=*/true);
}

absl::StatusOr<Socket> Agent::CreateSocketIn(
    const v1::NetworkNamespace& network_namespace, v1::Family family,
    v1::SocketType type, int protocol) {
  v1::SocketRequest request;
  request.set_family(family);
  request.set_type(type);
  request.set_protocol(protocol);
  *request.mutable_network_namespace() = network_namespace;
  v1::SocketResponse response;
  absl::Status status = connection_->Call(&Stub::Socket, request, &response);
  if (!status.ok()) return status;
  return Socket(connection_, response.handle(), /*owned=*/true);
}

Socket Agent::AttachSocket(std::string handle) {
  return Socket(connection_, std::move(handle), /*owned=*/false);
}

absl::StatusOr<Socket> Agent::CreateConnection(
    const v1::Address& address, std::optional<absl::Duration> timeout) {
  std::vector<v1::AddrInfo> candidates;
  if (address.has_unix()) {
    v1::AddrInfo info;
    info.set_family(v1::FAMILY_UNIX);
    info.set_type(v1::SOCKET_TYPE_STREAM);
    *info.mutable_address() = address;
    candidates.push_back(std::move(info));
  } else if (address.has_inet()) {
    const v1::InetAddress& inet = address.inet();
    if (inet.host_kind_case() == v1::InetAddress::kHostInt) {
      v1::AddrInfo info;
      info.set_family(v1::FAMILY_INET);
      info.set_type(v1::SOCKET_TYPE_STREAM);
      *info.mutable_address() = address;
      candidates.push_back(std::move(info));
    } else {
      std::string port = inet.port_kind_case() == v1::InetAddress::kPortName
                             ? inet.port_name()
                             : absl::StrCat(inet.port());
      absl::StatusOr<std::vector<v1::AddrInfo>> resolved = GetAddrInfo(
          inet.host(), port, v1::FAMILY_UNSPECIFIED, v1::SOCKET_TYPE_STREAM);
      if (!resolved.ok()) return resolved.status();
      candidates = *std::move(resolved);
    }
  } else {
    return absl::InvalidArgumentError("address: no kind set");
  }
  absl::Status last =
      absl::NotFoundError("address: getaddrinfo returned no results");
  for (const v1::AddrInfo& candidate : candidates) {
    absl::StatusOr<Socket> socket = CreateSocket(
        candidate.family(), v1::SOCKET_TYPE_STREAM, candidate.protocol());
    if (!socket.ok()) {
      last = socket.status();
      continue;
    }
    if (timeout.has_value()) {
      if (absl::Status s = socket->SetTimeout(timeout); !s.ok()) return s;
    }
    absl::StatusOr<v1::Address> local = socket->Connect(candidate.address());
    if (local.ok()) return socket;
    last = local.status();
  }
  return last;
}

absl::StatusOr<std::string> Agent::GetHostname() {
  v1::GetHostnameRequest request;
  v1::GetHostnameResponse response;
  absl::Status status =
      connection_->Call(&Stub::GetHostname, request, &response);
  if (!status.ok()) return status;
  return std::move(*response.mutable_hostname());
}

absl::StatusOr<v1::GetAgentInfoResponse> Agent::GetAgentInfo() {
  v1::GetAgentInfoRequest request;
  v1::GetAgentInfoResponse response;
  absl::Status status =
      connection_->Call(&Stub::GetAgentInfo, request, &response);
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<std::vector<v1::AddrInfo>> Agent::GetAddrInfo(
    absl::string_view host, absl::string_view port, v1::Family family,
    v1::SocketType type, int protocol, int flags) {
  v1::GetAddrInfoRequest request;
  request.set_host(std::string(host));
  request.set_port(std::string(port));
  request.set_family(family);
  request.set_type(type);
  request.set_protocol(protocol);
  request.set_flags(flags);
  v1::GetAddrInfoResponse response;
  absl::Status status =
      connection_->Call(&Stub::GetAddrInfo, request, &response);
  if (!status.ok()) return status;
  return std::vector<v1::AddrInfo>(response.results().begin(),
                                   response.results().end());
}

absl::StatusOr<std::vector<v1::SocketInfo>> Agent::ListSockets() {
  v1::ListSocketsRequest request;
  v1::ListSocketsResponse response;
  absl::Status status =
      connection_->Call(&Stub::ListSockets, request, &response);
  if (!status.ok()) return status;
  return std::vector<v1::SocketInfo>(response.sockets().begin(),
                                     response.sockets().end());
}

}  // namespace sockagent
