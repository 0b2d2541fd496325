#include "server/core/agent_core.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/duration_codec.h"
#include "server/core/core_status.h"
#include "spdlog/spdlog.h"

namespace sockagent {
namespace {

SessionRegistry::Options RegistryOptions(const AgentCore::Options& options) {
  SessionRegistry::Options out;
  out.sessions = options.sessions;
  out.max_sockets_per_session = options.max_sockets_per_session;
  out.max_open_sockets = options.max_open_sockets;
  out.incarnation = options.incarnation;
  out.agent_key = options.agent_key;
  return out;
}

WaitingCalls::Limits WaitingLimits(const AgentCore::Options& options) {
  WaitingCalls::Limits out;
  out.max_send_bytes = options.max_send_bytes;
  out.max_recv_bytes = options.max_recv_bytes;
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AgentCore>> AgentCore::Create(Options options) {
  if (options.io_threads < 1 || options.io_threads > Engine::kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("io_threads: ", options.io_threads,
                     " is not between 1 and ", Engine::kMaxShards));
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Create(options.io_threads);
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<AgentCore>(new AgentCore(options, *std::move(engine)));
}

AgentCore::AgentCore(Options options, std::unique_ptr<Engine> engine)
    : options_(options),
      ops_(options.ops != nullptr ? *options.ops : PosixSocketOps::Get()),
      own_policy_(options.policy == nullptr ? std::make_unique<PolicyEngine>()
                                            : nullptr),
      policy_(options.policy != nullptr ? *options.policy : *own_policy_),
      engine_(std::move(engine)),
      gate_(policy_, options.audit),
      sessions_(RegistryOptions(options), *engine_, ops_, gate_),
      netns_(options.allow_network_namespaces
                 ? std::make_unique<NetnsResolver>(options.netns)
                 : nullptr),
      socket_calls_(ops_, sessions_, gate_, netns_.get()),
      waiting_calls_(WaitingLimits(options), ops_, *engine_, sessions_, gate_),
      traffic_calls_(ops_, *engine_, sessions_, gate_) {
  reaper_ = std::thread([this] { ReapLoop(); });
  policy_.SetLoadHook([this] { RevokeForbidden(); });
}

AgentCore::~AgentCore() {
  policy_.SetLoadHook(nullptr);
  Drain();
  stop_reaper_.Notify();
  reaper_.join();
}

void AgentCore::Drain() {
  if (!sessions_.MarkDrained()) return;
  engine_->Shutdown();
  sessions_.CloseAll("agent_drain");
}

void AgentCore::ReapLoop() {
  while (!stop_reaper_.WaitForNotificationWithTimeout(options_.reap_interval)) {
    sessions_.ReapExpired(absl::Now());
  }
}

absl::Status AgentCore::Authorize(const CallContext& ctx, const char* method) {
  if (drained()) return DrainingError();
  return gate_.Authorize(ctx, method);
}

size_t AgentCore::RevokeForbidden() {
  const size_t revoked = sessions_.CloseWhere(
      [this](const std::string& owner, ManagedSocket& socket) {
        return gate_.Forbids(owner, socket, ops_);
      },
      "policy_revoked");
  if (revoked > 0) {
    spdlog::info("policy change: closed {} socket(s) it no longer allows",
                 revoked);
  }
  return revoked;
}

absl::Status AgentCore::AcquireStream(const CallContext& ctx) {
  return sessions_.AcquireStream(ctx);
}

void AgentCore::ReleaseStream(const CallContext& ctx) {
  sessions_.ReleaseStream(ctx);
}

// Sessions.

absl::StatusOr<v1::CreateSessionResponse> AgentCore::CreateSession(
    const v1::CreateSessionRequest& request) {
  return CreateSession(CallContext(), request);
}

absl::StatusOr<v1::CreateSessionResponse> AgentCore::CreateSession(
    const CallContext& ctx, const v1::CreateSessionRequest& request) {
  return sessions_.CreateSession(ctx, request);
}

absl::StatusOr<v1::KeepAliveResponse> AgentCore::KeepAlive(
    const CallContext& ctx) {
  return sessions_.KeepAlive(ctx);
}

absl::StatusOr<v1::CloseSessionResponse> AgentCore::CloseSession(
    const CallContext& ctx) {
  return sessions_.CloseSession(ctx);
}

absl::StatusOr<v1::CloseSessionResponse> AgentCore::CloseSession(
    const CallContext& ctx, const v1::CloseSessionRequest& request) {
  return sessions_.CloseSession(ctx, request);
}

absl::StatusOr<v1::ListSessionsResponse> AgentCore::ListSessions(
    const CallContext& ctx) {
  return sessions_.ListSessions(ctx);
}

absl::StatusOr<SessionHold> AgentCore::HoldSession(const CallContext& ctx,
                                                   SessionEndCallback on_end) {
  return sessions_.HoldSession(ctx, std::move(on_end));
}

absl::StatusOr<SessionHold> AgentCore::BindSession(const CallContext& ctx,
                                                   SessionEndCallback on_end) {
  return sessions_.BindSession(ctx, std::move(on_end));
}

void AgentCore::UnbindSession(SessionHold hold) {
  sessions_.UnbindSession(std::move(hold));
}

void AgentCore::EndBoundSession(SessionHold hold) {
  sessions_.EndBoundSession(std::move(hold));
}

// Operations that finish at once.

absl::StatusOr<v1::SocketResponse> AgentCore::Socket(
    const CallContext& ctx, const v1::SocketRequest& request) {
  return socket_calls_.Socket(ctx, request);
}

absl::StatusOr<v1::BindResponse> AgentCore::Bind(
    const CallContext& ctx, const v1::BindRequest& request) {
  return socket_calls_.Bind(ctx, request);
}

absl::StatusOr<v1::ListenResponse> AgentCore::Listen(
    const CallContext& ctx, const v1::ListenRequest& request) {
  return socket_calls_.Listen(ctx, request);
}

absl::StatusOr<v1::ShutdownResponse> AgentCore::Shutdown(
    const CallContext& ctx, const v1::ShutdownRequest& request) {
  return socket_calls_.Shutdown(ctx, request);
}

absl::StatusOr<v1::CloseResponse> AgentCore::Close(
    const CallContext& ctx, const v1::CloseRequest& request) {
  return socket_calls_.Close(ctx, request);
}

absl::StatusOr<v1::AbortResponse> AgentCore::Abort(
    const CallContext& ctx, const v1::AbortRequest& request) {
  return socket_calls_.Abort(ctx, request);
}

absl::StatusOr<v1::GetSockNameResponse> AgentCore::GetSockName(
    const CallContext& ctx, const v1::GetSockNameRequest& request) {
  return socket_calls_.GetSockName(ctx, request);
}

absl::StatusOr<v1::GetPeerNameResponse> AgentCore::GetPeerName(
    const CallContext& ctx, const v1::GetPeerNameRequest& request) {
  return socket_calls_.GetPeerName(ctx, request);
}

absl::StatusOr<v1::SetSockOptResponse> AgentCore::SetSockOpt(
    const CallContext& ctx, const v1::SetSockOptRequest& request) {
  return socket_calls_.SetSockOpt(ctx, request);
}

absl::StatusOr<v1::GetSockOptResponse> AgentCore::GetSockOpt(
    const CallContext& ctx, const v1::GetSockOptRequest& request) {
  return socket_calls_.GetSockOpt(ctx, request);
}

absl::StatusOr<v1::SetTimeoutResponse> AgentCore::SetTimeout(
    const CallContext& ctx, const v1::SetTimeoutRequest& request) {
  return socket_calls_.SetTimeout(ctx, request);
}

absl::StatusOr<v1::GetTimeoutResponse> AgentCore::GetTimeout(
    const CallContext& ctx, const v1::GetTimeoutRequest& request) {
  return socket_calls_.GetTimeout(ctx, request);
}

absl::StatusOr<v1::GetHostnameResponse> AgentCore::GetHostname() {
  return SocketCalls::GetHostname();
}

absl::StatusOr<v1::GetAddrInfoResponse> AgentCore::GetAddrInfo(
    const v1::GetAddrInfoRequest& request) {
  return SocketCalls::GetAddrInfo(request);
}

absl::StatusOr<v1::ListSocketsResponse> AgentCore::ListSockets(
    const CallContext& ctx) {
  return socket_calls_.ListSockets(ctx);
}

// Operations that may wait.

void AgentCore::Accept(const CallContext& ctx, const v1::AcceptRequest& request,
                       Callback<v1::AcceptResponse> done) {
  waiting_calls_.Accept(ctx, request, std::move(done));
}

void AgentCore::Connect(const CallContext& ctx,
                        const v1::ConnectRequest& request,
                        Callback<v1::ConnectResponse> done) {
  waiting_calls_.Connect(ctx, request, std::move(done));
}

void AgentCore::Send(const CallContext& ctx, const v1::SendRequest& request,
                     Callback<v1::SendResponse> done) {
  waiting_calls_.Send(ctx, request, std::move(done));
}

void AgentCore::Recv(const CallContext& ctx, const v1::RecvRequest& request,
                     Callback<v1::RecvResponse> done) {
  waiting_calls_.Recv(ctx, request, std::move(done));
}

void AgentCore::SendTo(const CallContext& ctx, const v1::SendToRequest& request,
                       Callback<v1::SendToResponse> done) {
  waiting_calls_.SendTo(ctx, request, std::move(done));
}

void AgentCore::RecvFrom(const CallContext& ctx,
                         const v1::RecvFromRequest& request,
                         Callback<v1::RecvFromResponse> done) {
  waiting_calls_.RecvFrom(ctx, request, std::move(done));
}

// Streams.

absl::StatusOr<std::shared_ptr<RecvPump>> AgentCore::OpenRecvPump(
    const CallContext& ctx, const std::string& handle,
    RecvPump::Options options, RecvPump::OnChunk on_chunk) {
  absl::StatusOr<ResolvedSocket> call = sessions_.Resolve(ctx, handle);
  if (!call.ok()) return call.status();
  return std::make_shared<RecvPump>(ops_, *engine_, sessions_, gate_,
                                    *std::move(call), options,
                                    std::move(on_chunk));
}

absl::StatusOr<std::shared_ptr<SendPump>> AgentCore::OpenSendPump(
    const CallContext& ctx, const std::string& handle,
    SendPump::OnSent on_sent) {
  absl::StatusOr<ResolvedSocket> call = sessions_.Resolve(ctx, handle);
  if (!call.ok()) return call.status();
  return std::make_shared<SendPump>(ops_, *engine_, sessions_, gate_,
                                    *std::move(call), options_.max_send_bytes,
                                    std::move(on_sent));
}

// Traffic and faults.

void AgentCore::Traffic(const CallContext& ctx,
                        const v1::TrafficRequest& request,
                        Callback<v1::TrafficResponse> done) {
  traffic_calls_.Traffic(ctx, request, std::move(done));
}

absl::StatusOr<v1::SetFaultsResponse> AgentCore::SetFaults(
    const CallContext& ctx, const v1::SetFaultsRequest& request) {
  return traffic_calls_.SetFaults(ctx, request);
}

// Introspection.

std::vector<AgentCore::SocketKindCount> AgentCore::CountSocketsByKind() const {
  absl::flat_hash_map<std::tuple<int, int, int>, uint64_t> counts;
  for (const std::shared_ptr<Session>& session : sessions_.table().List()) {
    for (const std::shared_ptr<ManagedSocket>& socket : session->List()) {
      ++counts[{socket->io()->family(), socket->io()->type(),
                static_cast<int>(socket->state())}];
    }
  }
  std::vector<SocketKindCount> result;
  result.reserve(counts.size());
  for (const auto& [kind, count] : counts) {
    result.push_back({std::get<0>(kind), std::get<1>(kind),
                      static_cast<v1::SocketState>(std::get<2>(kind)), count});
  }
  std::sort(result.begin(), result.end(),
            [](const SocketKindCount& a, const SocketKindCount& b) {
              return std::tie(a.family, a.type, a.state) <
                     std::tie(b.family, b.type, b.state);
            });
  return result;
}

absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t>
AgentCore::DenialCounts() const {
  return gate_.DenialCounts();
}

v1::GetAgentInfoResponse AgentCore::GetAgentInfo() {
  v1::GetAgentInfoResponse response;
  response.set_agent_version(kAgentVersion);
  response.set_api_version(kApiVersion);
  for (const char* feature :
       {"inet", "inet6", "unix", "unix-abstract", "stream", "dgram",
        "seqpacket", "sessions", "recv-stream", "send-stream",
        "recvfrom-stream", "timeouts", "sockopt-raw", "traffic", "faults",
        "hold-session"}) {
    response.add_features(feature);
  }
  v1::Limits* limits = response.mutable_limits();
  limits->set_max_sessions(
      static_cast<uint32_t>(options_.sessions.max_sessions));
  limits->set_max_sockets_per_session(
      static_cast<uint32_t>(options_.max_sockets_per_session));
  limits->set_max_send_bytes(static_cast<uint32_t>(options_.max_send_bytes));
  limits->set_max_recv_bytes(static_cast<uint32_t>(options_.max_recv_bytes));
  SetProtoDuration(options_.sessions.default_ttl,
                   limits->mutable_default_session_ttl());
  SetProtoDuration(options_.sessions.max_ttl,
                   limits->mutable_max_session_ttl());
  limits->set_max_open_sockets(options_.max_open_sockets);
  response.set_incarnation(sessions_.ids().incarnation());
  v1::AgentStats* stats = response.mutable_stats();
  stats->set_sessions(static_cast<uint32_t>(sessions_.size()));
  stats->set_open_sockets(sessions_.table().socket_count());
  stats->set_waiting_operations(engine_->waiting_ops());
  stats->set_io_threads(static_cast<uint32_t>(engine_->shards()));
  stats->set_refused_sources(gate_.refused_sources());
  stats->set_policy_reloads_rejected(policy_.rejected_loads());
  if (auto hostname = GetHostname(); hostname.ok()) {
    response.set_hostname(hostname->hostname());
  }
  response.mutable_labels()->insert(options_.labels.begin(),
                                    options_.labels.end());
  return response;
}

}  // namespace sockagent
