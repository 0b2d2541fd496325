#include "server/service/socket_agent_service.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/duration_codec.h"
#include "proto/status_codec.h"

namespace sockagent {
namespace {

constexpr uint32_t kDefaultChunkBytes = 64 * 1024;

// Who calls (authenticated once, here), for which session, until when; and
// whether the policy lets that identity call `method` at all. On refusal
// `*refused` gets UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED.
CallContext ContextOf(const grpc::CallbackServerContext& ctx,
                      CancelToken* cancel, const SocketAgentService& service,
                      const char* method, absl::Status* refused) {
  CallContext call;
  call.peer = ctx.peer();
  if (const ConnectionLimiter* limiter = service.connection_limiter();
      limiter != nullptr && limiter->OverCap(call.peer)) {
    *refused = absl::ResourceExhaustedError(absl::StrCat(
        "quota max_connections: the agent already serves ",
        limiter->options().max_connections,
        " connections; this connection may only ask grpc.health.v1 (close "
        "idle channels, or raise --max-connections)"));
    return call;
  }
  if (service.authenticator() != nullptr) {
    absl::StatusOr<std::string> identity =
        service.authenticator()->Identify(ctx);
    if (!identity.ok()) {
      *refused = identity.status();
      return call;
    }
    call.identity = *std::move(identity);
  }
  const auto& metadata = ctx.client_metadata();
  if (auto it = metadata.find(kSessionMetadataKey); it != metadata.end()) {
    call.session_id.assign(it->second.data(), it->second.size());
  }
  // gRPC reports "no deadline" as a far-future time point.
  const auto deadline = ctx.deadline();
  if (deadline <
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 10)) {
    call.deadline = absl::FromChrono(deadline);
  }
  if (auto it = metadata.find(kWaitTimeoutMetadataKey); it != metadata.end()) {
    absl::Duration wait;
    if (!absl::ParseDuration(
            absl::string_view(it->second.data(), it->second.size()), &wait) ||
        wait < absl::ZeroDuration()) {
      *refused = absl::InvalidArgumentError(
          absl::StrCat("metadata ", kWaitTimeoutMetadataKey, ": \"",
                       absl::string_view(it->second.data(), it->second.size()),
                       "\" is not a duration such as 250ms or 2s"));
      return call;
    }
    call.deadline = std::min(call.deadline, absl::Now() + wait);
  }
  call.cancel = cancel;
  *refused = service.core()->Authorize(call, method);
  return call;
}

// Finishes a call whose result is known at once.
template <typename Response>
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx,
                                    Response* response,
                                    absl::StatusOr<Response> result) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (result.ok()) *response = *std::move(result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

// Authenticates and authorizes, then finishes at once with `run(call)`.
template <typename Response, typename Run>
grpc::ServerUnaryReactor* Immediate(const SocketAgentService& service,
                                    const char* method,
                                    grpc::CallbackServerContext* ctx,
                                    Response* response, Run run) {
  absl::Status refused;
  const CallContext call = ContextOf(*ctx, nullptr, service, method, &refused);
  if (!refused.ok()) {
    return FinishNow(ctx, response, absl::StatusOr<Response>(refused));
  }
  return FinishNow(ctx, response, absl::StatusOr<Response>(run(call)));
}

// A reactor whose OnDone and OnCancel run on the thread where gRPC ends or
// cancels the call. Otherwise gRPC 1.51 hands each of them to its executor,
// a pool that grows to 2 threads per core after one burst (10,000 calls
// ending at once) and never shrinks, and adds a thread hop to every call.
// Every reactor here qualifies: OnDone only deletes, and OnCancel only
// signals a token, whose callback holds one socket's lock briefly and then
// finishes the call, never waiting. gRPC calls InternalInlineable() "not
// API"; with a gRPC that drops it, the override stops compiling.
template <typename Reactor>
class Inline : public Reactor {
 public:
  bool InternalInlineable() override { return true; }
};

// A unary call that may wait: cancellation reaches the core through the
// token, and the core's callback finishes the reactor exactly once.
template <typename Response>
class WaitingReactor final : public Inline<grpc::ServerUnaryReactor> {
 public:
  WaitingReactor(const SocketAgentService& service, const char* method,
                 grpc::CallbackServerContext* ctx, Response* response)
      : call_(ContextOf(*ctx, &cancel_, service, method, &refused_)),
        response_(response) {}

  const CallContext& call() const { return call_; }
  // Not OK when the caller may not make this call; then Done() must be
  // called with it.
  const absl::Status& refused() const { return refused_; }

  Callback<Response> Done() {
    return [this](absl::StatusOr<Response> result) {
      if (result.ok()) *response_ = *std::move(result);
      Finish(ToGrpcStatus(result.status()));
    };
  }

  void OnCancel() override { cancel_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  CancelToken cancel_;
  absl::Status refused_;
  const CallContext call_;
  Response* const response_;
};

// What every call that holds a stream carries: who calls, its cancellation,
// its place among limits.max_concurrent_streams, and a hold on its session
// (a stream waiting on a live connection keeps its session alive; the lease
// restarts when it ends). Both are given back when the reactor is deleted
// (in OnDone).
class StreamCall {
 public:
  // `on_end` runs if the session ends while the stream is open (see
  // AgentCore::HoldSession).
  StreamCall(const SocketAgentService& service,
             grpc::CallbackServerContext* ctx, const char* method,
             SessionEndCallback on_end = nullptr)
      : core_(service.core()),
        call_(ContextOf(*ctx, &cancel_, service, method, &refused_)),
        push_call_(PushCall(call_)) {
    if (refused_.ok()) refused_ = core_->AcquireStream(call_);
    holds_stream_ = refused_.ok();
    if (refused_.ok()) {
      absl::StatusOr<SessionHold> hold =
          core_->HoldSession(call_, std::move(on_end));
      if (hold.ok()) {
        hold_ = *std::move(hold);
      } else {
        refused_ = hold.status();
      }
    }
  }
  ~StreamCall() {
    if (holds_stream_) core_->ReleaseStream(call_);
  }
  StreamCall(const StreamCall&) = delete;
  StreamCall& operator=(const StreamCall&) = delete;

  const CallContext& call() const { return call_; }
  // The context of the operations the agent runs to push messages: they do
  // not renew the lease (the client's messages do).
  const CallContext& push_call() const { return push_call_; }
  // Not OK when the call may not run (refused, no stream left, no such
  // session); the reactor finishes with it at once.
  const absl::Status& refused() const { return refused_; }
  void Cancel() { cancel_.Cancel(); }

 private:
  static CallContext PushCall(const CallContext& call) {
    CallContext push = call;
    push.renew_lease = false;
    return push;
  }

  AgentCore* const core_;
  CancelToken cancel_;
  absl::Status refused_;
  bool holds_stream_ = false;
  const CallContext call_;
  const CallContext push_call_;
  SessionHold hold_;
};

// Finishes a reactor exactly once, whichever comes first: the reactor's own
// steps, or its session ending (drain, CloseSession) on another thread. The
// session's end finishes the reactor at once only while no core operation
// of it is in flight (`busy`): such an operation ends by itself then
// (UNAVAILABLE, ABORTED) and may reference the reactor's messages until it
// does. Shared between the reactor and the session's end callback, which
// may outlive the reactor; it touches the reactor only before Finish.
template <typename Reactor>
class FinishOnce {
 public:
  explicit FinishOnce(Reactor* reactor) : reactor_(reactor) {}

  // Finishes unless already finished.
  void Finish(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    reactor_->Finish(std::move(status));
  }
  // The session ended with `status`: finishes now, or when the operation in
  // flight completes (Done).
  void SessionEnded(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (busy_) {
        ended_ = std::move(status);
        return;
      }
      finished_ = true;
    }
    reactor_->Finish(ToGrpcStatus(status));
  }
  // A core operation starts; false (start nothing) once finished.
  bool Begin() {
    absl::MutexLock lock(&mu_);
    if (finished_) return false;
    busy_ = true;
    return true;
  }
  // The operation completed OK: runs `next` (which may start reading or
  // writing) unless the session ended meanwhile, which finishes instead.
  template <typename Next>
  void Done(Next next) {
    absl::Status ended;
    {
      absl::MutexLock lock(&mu_);
      busy_ = false;
      if (finished_) return;
      if (ended_.ok()) {
        next();  // StartRead/StartWrite never run a reaction inline
        return;
      }
      ended = ended_;
      finished_ = true;
    }
    reactor_->Finish(ToGrpcStatus(ended));
  }
  // The operation failed: finishes with `status` (unless already finished).
  void Failed(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      busy_ = false;
      if (finished_) return;
      finished_ = true;
    }
    reactor_->Finish(std::move(status));
  }

 private:
  Reactor* const reactor_;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status ended_ ABSL_GUARDED_BY(mu_);
};

// Agent-side traffic: a unary call that waits until the traffic ends. It
// counts as a stream against max_concurrent_streams while it runs.
class TrafficReactor final : public Inline<grpc::ServerUnaryReactor> {
 public:
  TrafficReactor(const SocketAgentService& service,
                 grpc::CallbackServerContext* ctx,
                 const v1::TrafficRequest& request,
                 v1::TrafficResponse* response)
      : stream_(service, ctx, "Traffic"),
        core_(service.core()),
        response_(response) {
    if (!stream_.refused().ok()) {
      Finish(ToGrpcStatus(stream_.refused()));
      return;
    }
    core_->Traffic(stream_.call(), request,
                   [this](absl::StatusOr<v1::TrafficResponse> result) {
                     if (result.ok()) *response_ = *std::move(result);
                     Finish(ToGrpcStatus(result.status()));
                   });
  }

  void OnCancel() override { stream_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  StreamCall stream_;
  AgentCore* const core_;
  v1::TrafficResponse* const response_;
};

// Pushes what a socket receives until EOF, the byte limit, close, error or
// cancellation. One write in flight; the socket is read only after the
// previous message was sent, so a slow reader stalls the socket and the
// remote sender sees the TCP window close.
class RecvStreamReactor final
    : public Inline<grpc::ServerWriteReactor<v1::RecvStreamResponse>> {
 public:
  RecvStreamReactor(const SocketAgentService& service,
                    grpc::CallbackServerContext* ctx,
                    const v1::RecvStreamRequest& request)
      : stream_(service, ctx, "RecvStream"),
        core_(service.core()),
        limit_(request.limit_bytes()) {
    if (!stream_.refused().ok()) {
      Finish(ToGrpcStatus(stream_.refused()));
      return;
    }
    const uint32_t chunk =
        request.chunk_bytes() == 0 ? kDefaultChunkBytes : request.chunk_bytes();
    if (chunk > core_->options().max_recv_bytes) {
      Finish(ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
          "chunk_bytes: ", chunk, " exceeds the limit of ",
          core_->options().max_recv_bytes, " (limits.max_recv_bytes)"))));
      return;
    }
    chunk_ = chunk;
    absl::StatusOr<std::shared_ptr<RecvPump>> pump = core_->OpenRecvPump(
        stream_.push_call(), request.handle(), RecvPump::Options{"Recv"},
        [this](absl::StatusOr<RecvOp::Received> got) { Received(got); });
    if (!pump.ok()) {
      Finish(ToGrpcStatus(pump.status()));
      return;
    }
    pump_ = *std::move(pump);
    ReadNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                          "the stream was closed by the client"));
      return;
    }
    if (limit_ != 0 && received_ >= limit_) {
      Finish(grpc::Status::OK);
      return;
    }
    ReadNext();
  }
  void OnCancel() override { stream_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  void ReadNext() {
    uint64_t want = chunk_;
    if (limit_ != 0) want = std::min<uint64_t>(want, limit_ - received_);
    pump_->Next(want);
  }
  // The pump's answer to ReadNext: the only step in flight.
  void Received(absl::StatusOr<RecvOp::Received>& got) {
    if (!got.ok()) {
      Finish(ToGrpcStatus(got.status()));
      return;
    }
    if (got->data.empty()) {  // orderly EOF
      Finish(grpc::Status::OK);
      return;
    }
    received_ += got->data.size();
    response_.set_data(std::move(got->data));
    StartWrite(&response_);
  }

  StreamCall stream_;
  AgentCore* const core_;
  const uint64_t limit_;
  uint64_t received_ = 0;
  uint32_t chunk_ = 0;
  std::shared_ptr<RecvPump> pump_;
  v1::RecvStreamResponse response_;
};

// One message per datagram, until the limit, close, error or cancellation.
class RecvFromStreamReactor final
    : public Inline<grpc::ServerWriteReactor<v1::RecvFromStreamResponse>> {
 public:
  RecvFromStreamReactor(const SocketAgentService& service,
                        grpc::CallbackServerContext* ctx,
                        const v1::RecvFromStreamRequest& request)
      : stream_(service, ctx, "RecvFromStream"),
        core_(service.core()),
        limit_(request.limit_datagrams()) {
    if (!stream_.refused().ok()) {
      Finish(ToGrpcStatus(stream_.refused()));
      return;
    }
    // Like a kernel receive into a smaller buffer: at most the limit.
    max_bytes_ = std::min<size_t>(
        request.max_bytes() == 0 ? kDefaultChunkBytes : request.max_bytes(),
        core_->options().max_recv_bytes);
    absl::StatusOr<std::shared_ptr<RecvPump>> pump = core_->OpenRecvPump(
        stream_.push_call(), request.handle(),
        RecvPump::Options{"RecvFrom", /*want_source=*/true},
        [this](absl::StatusOr<RecvOp::Received> got) { Received(got); });
    if (!pump.ok()) {
      Finish(ToGrpcStatus(pump.status()));
      return;
    }
    pump_ = *std::move(pump);
    ReadNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                          "the stream was closed by the client"));
      return;
    }
    if (limit_ != 0 && delivered_ >= limit_) {
      Finish(grpc::Status::OK);
      return;
    }
    ReadNext();
  }
  void OnCancel() override { stream_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  void ReadNext() { pump_->Next(max_bytes_); }
  // The pump's answer to ReadNext: the only step in flight.
  void Received(absl::StatusOr<RecvOp::Received>& got) {
    if (!got.ok()) {
      Finish(ToGrpcStatus(got.status()));
      return;
    }
    ++delivered_;
    response_.set_data(std::move(got->data));
    *response_.mutable_address() = std::move(got->from);
    StartWrite(&response_);
  }

  StreamCall stream_;
  AgentCore* const core_;
  const uint64_t limit_;
  uint64_t delivered_ = 0;
  size_t max_bytes_ = 0;
  std::shared_ptr<RecvPump> pump_;
  v1::RecvFromStreamResponse response_;
};

// Sends every message's data completely, in order; one send in flight, so
// the client's stream is read only as fast as the socket drains. Between
// two messages the stream ends as soon as its session does (UNAVAILABLE
// when the agent drains).
class SendStreamReactor final
    : public Inline<grpc::ServerReadReactor<v1::SendStreamRequest>> {
 public:
  SendStreamReactor(const SocketAgentService& service,
                    grpc::CallbackServerContext* ctx,
                    v1::SendStreamResponse* response)
      : finish_(std::make_shared<FinishOnce<SendStreamReactor>>(this)),
        stream_(service, ctx, "SendStream",
                [finish = finish_](absl::Status status) {
                  finish->SessionEnded(std::move(status));
                }),
        core_(service.core()),
        response_(response) {
    if (!stream_.refused().ok()) {
      finish_->Finish(ToGrpcStatus(stream_.refused()));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed: everything was sent
      response_->set_bytes_sent(sent_);
      finish_->Finish(grpc::Status::OK);
      return;
    }
    if (pump_ == nullptr) {
      if (request_.handle().empty()) {
        finish_->Finish(ToGrpcStatus(absl::InvalidArgumentError(
            "handle: required in the first message")));
        return;
      }
      // Resolved once, with the first message; every message after it goes
      // to the same socket.
      absl::StatusOr<std::shared_ptr<SendPump>> pump = core_->OpenSendPump(
          stream_.call(), request_.handle(),
          [this](absl::StatusOr<uint64_t> sent) { Sent(sent); });
      if (!pump.ok()) {
        finish_->Finish(ToGrpcStatus(pump.status()));
        return;
      }
      pump_ = *std::move(pump);
    } else if (!request_.handle().empty() &&
               request_.handle() != pump_->socket().socket->handle()) {
      finish_->Finish(ToGrpcStatus(absl::InvalidArgumentError(
          "handle: every message must name the first message's handle")));
      return;
    }
    if (!finish_->Begin()) return;
    pump_->Send(request_.mutable_data());
  }
  void OnCancel() override { stream_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  // The pump's answer to Send: the only step in flight.
  void Sent(absl::StatusOr<uint64_t>& sent) {
    if (!sent.ok()) {
      finish_->Failed(ToGrpcStatus(sent.status()));
      return;
    }
    finish_->Done([&] {
      sent_ += *sent;
      StartRead(&request_);
    });
  }

  const std::shared_ptr<FinishOnce<SendStreamReactor>> finish_;
  StreamCall stream_;
  AgentCore* const core_;
  v1::SendStreamResponse* const response_;
  uint64_t sent_ = 0;
  std::shared_ptr<SendPump> pump_;
  v1::SendStreamRequest request_;
};

// Binds the call's session to this call's connection (see the proto's
// HoldSession): one event when bound; a `release` message unbinds it (OK);
// the call ending any other way (connection closed, cancelled, half-close
// without release) ends the session at once. Not Inline: OnCancel may close
// a session's sockets.
class HoldSessionReactor final
    : public grpc::ServerBidiReactor<v1::HoldSessionRequest,
                                     v1::HoldSessionEvent> {
 public:
  HoldSessionReactor(const SocketAgentService& service,
                     grpc::CallbackServerContext* ctx)
      : finish_(std::make_shared<FinishOnce<HoldSessionReactor>>(this)),
        core_(service.core()) {
    // Authorized as CreateSession: holding only shortens a session's life.
    absl::Status refused;
    const CallContext call =
        ContextOf(*ctx, nullptr, service, "CreateSession", &refused);
    if (!refused.ok()) {
      finish_->Finish(ToGrpcStatus(refused));
      return;
    }
    absl::StatusOr<SessionHold> hold =
        core_->BindSession(call, [finish = finish_](absl::Status status) {
          finish->SessionEnded(std::move(status));
        });
    if (!hold.ok()) {
      finish_->Finish(ToGrpcStatus(hold.status()));
      return;
    }
    event_.set_session_id(hold->session()->id());
    SetProtoDuration(hold->session()->ttl(), event_.mutable_ttl());
    {
      absl::MutexLock lock(&mu_);
      hold_ = *std::move(hold);
    }
    if (finish_->Begin()) {
      finish_->Done([this] {
        StartWrite(&event_);
        StartRead(&request_);
      });
    }
  }

  void OnReadDone(bool ok) override {
    if (ok && !request_.release()) {
      StartRead(&request_);  // ignored
      return;
    }
    SessionHold hold = TakeHold();
    if (ok) {  // released: the session stays, lease-only
      core_->UnbindSession(std::move(hold));
      finish_->Finish(grpc::Status::OK);
      return;
    }
    Lost(std::move(hold));
  }
  void OnWriteDone(bool /*ok*/) override {}
  void OnCancel() override { Lost(TakeHold()); }
  void OnDone() override { delete this; }

 private:
  SessionHold TakeHold() {
    absl::MutexLock lock(&mu_);
    return std::move(hold_);
  }
  // The call ended without a release: the session ends with it.
  void Lost(SessionHold hold) {
    core_->EndBoundSession(std::move(hold));
    finish_->Finish(grpc::Status(
        grpc::StatusCode::CANCELLED,
        "HoldSession ended without a release; the session was closed"));
  }

  const std::shared_ptr<FinishOnce<HoldSessionReactor>> finish_;
  AgentCore* const core_;
  absl::Mutex mu_;
  SessionHold hold_ ABSL_GUARDED_BY(mu_);
  v1::HoldSessionRequest request_;
  v1::HoldSessionEvent event_;
};

}  // namespace

grpc::ServerUnaryReactor* SocketAgentService::CreateSession(
    grpc::CallbackServerContext* ctx, const v1::CreateSessionRequest* request,
    v1::CreateSessionResponse* response) {
  return Immediate(*this, "CreateSession", ctx, response,
                   [&](const CallContext& call) {
                     return core_->CreateSession(call, *request);
                   });
}

grpc::ServerUnaryReactor* SocketAgentService::KeepAlive(
    grpc::CallbackServerContext* ctx, const v1::KeepAliveRequest* /*request*/,
    v1::KeepAliveResponse* response) {
  return Immediate(
      *this, "KeepAlive", ctx, response,
      [&](const CallContext& call) { return core_->KeepAlive(call); });
}

grpc::ServerBidiReactor<v1::HoldSessionRequest, v1::HoldSessionEvent>*
SocketAgentService::HoldSession(grpc::CallbackServerContext* ctx) {
  return new HoldSessionReactor(*this, ctx);
}

grpc::ServerUnaryReactor* SocketAgentService::CloseSession(
    grpc::CallbackServerContext* ctx, const v1::CloseSessionRequest* request,
    v1::CloseSessionResponse* response) {
  return Immediate(*this, "CloseSession", ctx, response,
                   [&](const CallContext& call) {
                     return core_->CloseSession(call, *request);
                   });
}

grpc::ServerUnaryReactor* SocketAgentService::ListSessions(
    grpc::CallbackServerContext* ctx,
    const v1::ListSessionsRequest* /*request*/,
    v1::ListSessionsResponse* response) {
  return Immediate(
      *this, "ListSessions", ctx, response,
      [&](const CallContext& call) { return core_->ListSessions(call); });
}

// The calls that finish at once share one shape.
#define SOCKAGENT_IMMEDIATE(Method)                                         \
  grpc::ServerUnaryReactor* SocketAgentService::Method(                     \
      grpc::CallbackServerContext* ctx, const v1::Method##Request* request, \
      v1::Method##Response* response) {                                     \
    return Immediate(*this, #Method, ctx, response,                         \
                     [&](const CallContext& call) {                         \
                       return core_->Method(call, *request);                \
                     });                                                    \
  }

SOCKAGENT_IMMEDIATE(Socket)
SOCKAGENT_IMMEDIATE(Bind)
SOCKAGENT_IMMEDIATE(Listen)
SOCKAGENT_IMMEDIATE(Shutdown)
SOCKAGENT_IMMEDIATE(Close)
SOCKAGENT_IMMEDIATE(GetSockName)
SOCKAGENT_IMMEDIATE(GetPeerName)
SOCKAGENT_IMMEDIATE(SetSockOpt)
SOCKAGENT_IMMEDIATE(GetSockOpt)
SOCKAGENT_IMMEDIATE(SetTimeout)
SOCKAGENT_IMMEDIATE(GetTimeout)
SOCKAGENT_IMMEDIATE(Abort)
SOCKAGENT_IMMEDIATE(SetFaults)
#undef SOCKAGENT_IMMEDIATE

// The calls that may wait share another.
#define SOCKAGENT_WAITING(Method)                                            \
  grpc::ServerUnaryReactor* SocketAgentService::Method(                      \
      grpc::CallbackServerContext* ctx, const v1::Method##Request* request,  \
      v1::Method##Response* response) {                                      \
    auto* reactor = new WaitingReactor<v1::Method##Response>(*this, #Method, \
                                                             ctx, response); \
    if (!reactor->refused().ok()) {                                          \
      reactor->Done()(reactor->refused());                                   \
    } else {                                                                 \
      core_->Method(reactor->call(), *request, reactor->Done());             \
    }                                                                        \
    return reactor;                                                          \
  }

SOCKAGENT_WAITING(Accept)
SOCKAGENT_WAITING(Connect)
SOCKAGENT_WAITING(Send)
SOCKAGENT_WAITING(Recv)
SOCKAGENT_WAITING(SendTo)
SOCKAGENT_WAITING(RecvFrom)
#undef SOCKAGENT_WAITING

grpc::ServerUnaryReactor* SocketAgentService::Traffic(
    grpc::CallbackServerContext* ctx, const v1::TrafficRequest* request,
    v1::TrafficResponse* response) {
  return new TrafficReactor(*this, ctx, *request, response);
}

grpc::ServerReadReactor<v1::SendStreamRequest>* SocketAgentService::SendStream(
    grpc::CallbackServerContext* ctx, v1::SendStreamResponse* response) {
  return new SendStreamReactor(*this, ctx, response);
}

grpc::ServerWriteReactor<v1::RecvStreamResponse>*
SocketAgentService::RecvStream(grpc::CallbackServerContext* ctx,
                               const v1::RecvStreamRequest* request) {
  return new RecvStreamReactor(*this, ctx, *request);
}

grpc::ServerWriteReactor<v1::RecvFromStreamResponse>*
SocketAgentService::RecvFromStream(grpc::CallbackServerContext* ctx,
                                   const v1::RecvFromStreamRequest* request) {
  return new RecvFromStreamReactor(*this, ctx, *request);
}

grpc::ServerUnaryReactor* SocketAgentService::GetHostname(
    grpc::CallbackServerContext* ctx, const v1::GetHostnameRequest* /*request*/,
    v1::GetHostnameResponse* response) {
  return Immediate(*this, "GetHostname", ctx, response,
                   [&](const CallContext&) { return core_->GetHostname(); });
}

grpc::ServerUnaryReactor* SocketAgentService::GetAddrInfo(
    grpc::CallbackServerContext* ctx, const v1::GetAddrInfoRequest* request,
    v1::GetAddrInfoResponse* response) {
  return Immediate(
      *this, "GetAddrInfo", ctx, response,
      [&](const CallContext&) { return core_->GetAddrInfo(*request); });
}

grpc::ServerUnaryReactor* SocketAgentService::ListSockets(
    grpc::CallbackServerContext* ctx, const v1::ListSocketsRequest* /*request*/,
    v1::ListSocketsResponse* response) {
  return Immediate(
      *this, "ListSockets", ctx, response,
      [&](const CallContext& call) { return core_->ListSockets(call); });
}

grpc::ServerUnaryReactor* SocketAgentService::GetAgentInfo(
    grpc::CallbackServerContext* ctx,
    const v1::GetAgentInfoRequest* /*request*/,
    v1::GetAgentInfoResponse* response) {
  return Immediate(
      *this, "GetAgentInfo", ctx, response, [&](const CallContext&) {
        return absl::StatusOr<v1::GetAgentInfoResponse>(core_->GetAgentInfo());
      });
}

}  // namespace sockagent
