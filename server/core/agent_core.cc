#include "server/core/agent_core.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/errno_status.h"
#include "server/core/address.h"
#include "server/core/destination.h"
#include "server/core/socket_options.h"
#include "server/core/traffic.h"
#include "spdlog/spdlog.h"

namespace sockagent {
namespace {

constexpr PolicyEngine::Direction kSendBytes = PolicyEngine::Direction::kSend;

constexpr char kDraining[] =
    "the agent is shutting down (draining): it closed every session and "
    "socket; retry against a running agent";

// Why a session ended, for the calls still waiting on it.
absl::Status SessionEndStatus(const char* reason) {
  const absl::string_view why = reason;
  if (why == "agent_drain") return absl::UnavailableError(kDraining);
  if (why == "connection_closed") {
    return absl::CancelledError(
        "session: ended because its bound connection closed");
  }
  if (why == "admin_closed") {
    return absl::AbortedError(
        "session: closed by an admin (CloseSession) while this call waited");
  }
  if (why == "session_closed") {
    return absl::AbortedError(
        "session: closed (CloseSession) while this call waited");
  }
  return absl::AbortedError(absl::StrCat("session: ended (", why, ")"));
}
constexpr PolicyEngine::Direction kRecvBytes = PolicyEngine::Direction::kRecv;

constexpr int kSendFlags =
    MSG_OOB | MSG_DONTROUTE | MSG_DONTWAIT | MSG_EOR | MSG_MORE | MSG_NOSIGNAL;
constexpr int kRecvFlags =
    MSG_PEEK | MSG_WAITALL | MSG_OOB | MSG_DONTWAIT | MSG_TRUNC;

absl::Status CheckFlags(int flags, int allowed) {
  if ((flags & ~allowed) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("flags: unsupported bits 0x",
                     absl::Hex(static_cast<unsigned>(flags & ~allowed))));
  }
  return absl::OkStatus();
}

absl::Status CheckSize(size_t size, size_t limit, const char* field,
                       const char* limit_name) {
  if (size > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", size, " bytes exceeds the limit of ", limit,
                     " (limits.", limit_name, ")"));
  }
  return absl::OkStatus();
}

// The checks every Send/SendTo shares: flags, then payload size.
absl::Status CheckSendArgs(int flags, size_t size, size_t limit) {
  if (absl::Status s = CheckFlags(flags, kSendFlags); !s.ok()) return s;
  return CheckSize(size, limit, "data", "max_send_bytes");
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

// The canonical address from getsockname / getpeername.
absl::StatusOr<v1::Address> NameOf(SocketOps& ops, int fd, bool peer) {
  SockAddr address;
  address.length = sizeof(address.storage);
  SysCallInt rc =
      peer ? ops.GetPeerName(fd, address.mutable_get(), &address.length)
           : ops.GetSockName(fd, address.mutable_get(), &address.length);
  if (!rc.ok()) return OsError(rc.error, peer ? "getpeername" : "getsockname");
  return ToWireAddress(address.get(), address.length);
}

absl::Status ClosedHandle() {
  return OsErrorWithCode(absl::StatusCode::kFailedPrecondition, EBADF, "",
                         "handle: the socket is closed");
}

// Whether `status` is ClosedHandle()'s.
bool IsClosedHandle(const absl::Status& status) {
  if (!absl::IsFailedPrecondition(status)) return false;
  std::optional<ErrnoInfo> info = GetErrno(status);
  return info.has_value() && info->number == EBADF && info->syscall.empty();
}

// Runs `fn(fd)` on an open socket, or reports it closed.
template <typename T, typename Fn>
absl::StatusOr<T> OnFd(ManagedSocket& socket, Fn fn) {
  absl::StatusOr<T> result = ClosedHandle();
  socket.io()->WithFd([&](int fd) { result = fn(fd); });
  return result;
}

// MSG_DONTWAIT as Python applies it: a socket with a timeout first waits up
// to the timeout for readiness (then the call cannot block), so only a
// socket without one (blocking mode) returns EAGAIN at once.
bool DontWait(int flags, const ManagedSocket& socket) {
  return (flags & MSG_DONTWAIT) != 0 && !socket.timeout().has_value();
}

// Where the kernel sends `requested` from `socket` (destination.h): the
// address that is checked is the address that is used.
SockAddr Effective(SocketOps& ops, ManagedSocket& socket,
                   const SockAddr& requested) {
  SockAddr out = requested;
  socket.io()->WithFd(
      [&](int fd) { out = KernelDestination(ops, fd, requested); });
  return out;
}

bool SameEndpoint(const SockAddr& a, const SockAddr& b) {
  const Endpoint x = Endpoint::FromSockAddr(a.get(), a.length);
  const Endpoint y = Endpoint::FromSockAddr(b.get(), b.length);
  return x.family == y.family && x.port == y.port &&
         std::memcmp(x.bytes, y.bytes, sizeof(x.bytes)) == 0;
}

class AcceptOp final : public IoOp {
 public:
  struct Accepted {
    ScopedFd fd;
    v1::Address peer;
  };
  // A connection whose peer `filter` refuses is closed, and the wait goes on
  // for the next one.
  // While `admit` refuses, the wait ends with its status and the
  // connection stays in the backlog.
  AcceptOp(SocketOps& ops,
           absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter,
           absl::AnyInvocable<absl::Status()> admit,
           absl::AnyInvocable<void(absl::StatusOr<Accepted>)> done)
      : ops_(ops),
        filter_(std::move(filter)),
        admit_(std::move(admit)),
        done_(std::move(done)) {}

  std::optional<absl::Status> Attempt(int fd) override {
    for (;;) {
      if (absl::Status admitted = admit_(); !admitted.ok()) return admitted;
      SockAddr peer;
      peer.length = sizeof(peer.storage);
      SysCallInt rc = ops_.Accept(fd, peer.mutable_get(), &peer.length);
      if (rc.would_block()) return std::nullopt;
      if (!rc.ok()) return OsError(rc.error, "accept");
      ScopedFd accepted(rc.value);
      if (filter_ && !filter_(peer.get(), peer.length)) continue;
      accepted_.fd = std::move(accepted);
      accepted_.peer = ToWireAddress(peer.get(), peer.length);
      return absl::OkStatus();
    }
  }
  void Complete(absl::Status status) override {
    if (!status.ok()) return done_(std::move(status));
    done_(std::move(accepted_));
  }
  const char* name() const override { return "accept"; }

 private:
  SocketOps& ops_;
  absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter_;
  absl::AnyInvocable<absl::Status()> admit_;
  Accepted accepted_;
  absl::AnyInvocable<void(absl::StatusOr<Accepted>)> done_;
};

class ConnectOp final : public IoOp {
 public:
  // `check_peer` judges the connected peer when it differs from `address`
  // (what was allowed); a refusal ends the call with its status.
  ConnectOp(SocketOps& ops, std::shared_ptr<ManagedSocket> socket,
            SockAddr address,
            absl::AnyInvocable<absl::Status(const SockAddr&)> check_peer,
            Callback<v1::ConnectResponse> done)
      : ops_(ops),
        socket_(std::move(socket)),
        address_(address),
        check_peer_(std::move(check_peer)),
        done_(std::move(done)) {}

  // The outcome of a non-blocking connect is read by calling connect()
  // again (0/EISCONN: connected, EALREADY: still going, else the error)
  // rather than through SO_ERROR: only this path resets the socket so that
  // a later Connect behaves as after a blocking connect (a retry after
  // ECONNREFUSED gets ECONNREFUSED again, not ECONNABORTED).
  std::optional<absl::Status> Attempt(int fd) override {
    const bool retry = started_;
    started_ = true;
    SysCallInt rc = ops_.Connect(fd, address_.get(), address_.length);
    if (rc.ok() || (retry && rc.error == EISCONN)) return Connected(fd);
    if (rc.error == EINPROGRESS || (retry && rc.error == EALREADY)) {
      socket_->set_state(v1::SOCKET_STATE_CONNECTING);
      return std::nullopt;
    }
    if (retry) socket_->set_state(v1::SOCKET_STATE_OPEN);
    return OsError(rc.error, "connect");
  }
  void Complete(absl::Status status) override {
    if (!status.ok()) return done_(std::move(status));
    done_(std::move(response_));
  }
  const char* name() const override { return "connect"; }
  int would_block_errno() const override { return EINPROGRESS; }

 private:
  absl::Status Connected(int fd) {
    SockAddr peer;
    peer.length = sizeof(peer.storage);
    if (ops_.GetPeerName(fd, peer.mutable_get(), &peer.length).ok() &&
        !SameEndpoint(peer, address_)) {
      if (absl::Status allowed = check_peer_(peer); !allowed.ok()) {
        return allowed;
      }
    }
    socket_->set_state(v1::SOCKET_STATE_CONNECTED);
    absl::StatusOr<v1::Address> local = NameOf(ops_, fd, /*peer=*/false);
    if (local.ok()) *response_.mutable_local() = *std::move(local);
    return absl::OkStatus();
  }

  SocketOps& ops_;
  std::shared_ptr<ManagedSocket> socket_;
  SockAddr address_;
  absl::AnyInvocable<absl::Status(const SockAddr&)> check_peer_;
  bool started_ = false;
  v1::ConnectResponse response_;
  Callback<v1::ConnectResponse> done_;
};

// send() or sendto(), once or (send_all) until every byte is out.
class SendOp final : public IoOp {
 public:
  SendOp(SocketOps& ops, std::shared_ptr<ManagedSocket> socket,
         absl::string_view data, int flags, bool send_all,
         std::optional<SockAddr> to, Callback<uint64_t> done)
      : ops_(ops),
        socket_(std::move(socket)),
        data_(data),
        flags_(flags & ~MSG_DONTWAIT),
        send_all_(send_all),
        to_(to),
        done_(std::move(done)) {}

  std::optional<absl::Status> Attempt(int fd) override {
    for (;;) {
      const char* begin = data_.data() + sent_;
      const size_t left = data_.size() - sent_;
      SysCallSize rc = to_.has_value() ? ops_.SendTo(fd, begin, left, flags_,
                                                     to_->get(), to_->length)
                                       : ops_.Send(fd, begin, left, flags_);
      if (rc.would_block()) {
        if (sent_ > 0 && !send_all_) return absl::OkStatus();
        return std::nullopt;
      }
      if (!rc.ok()) {
        if (sent_ > 0 && !send_all_) return absl::OkStatus();
        return OsError(rc.error, name());
      }
      sent_ += static_cast<size_t>(rc.value);
      if (!send_all_ || sent_ >= data_.size()) return absl::OkStatus();
    }
  }
  void Complete(absl::Status status) override {
    socket_->bytes_sent += sent_;
    if (!status.ok()) return done_(std::move(status));
    done_(static_cast<uint64_t>(sent_));
  }
  const char* name() const override {
    return to_.has_value() ? "sendto" : "send";
  }

 private:
  SocketOps& ops_;
  std::shared_ptr<ManagedSocket> socket_;
  absl::string_view data_;
  const int flags_;
  const bool send_all_;
  const std::optional<SockAddr> to_;
  size_t sent_ = 0;
  Callback<uint64_t> done_;
};

// The largest receive that goes through the per-thread scratch buffer.
constexpr size_t kScratchBytes = 256 * 1024;

// A per-thread buffer of kScratchBytes for one recv() at a time.
char* ScratchBuffer() {
  thread_local std::unique_ptr<char[]> buffer(new char[kScratchBytes]);
  return buffer.get();
}

// recv() or recvfrom(); MSG_WAITALL is emulated (the socket is non-blocking)
// by waiting until `max_bytes` arrived or EOF.
class RecvOp final : public IoOp {
 public:
  struct Received {
    std::string data;
    v1::Address from;
  };
  // A datagram whose source `filter` (may be empty) refuses is dropped, and
  // the wait goes on for the next one.
  RecvOp(SocketOps& ops, std::shared_ptr<ManagedSocket> socket,
         size_t max_bytes, int flags, bool want_source, Callback<Received> done,
         absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter = {})
      : ops_(ops),
        socket_(std::move(socket)),
        max_bytes_(max_bytes),
        flags_(flags & ~(MSG_WAITALL | MSG_DONTWAIT)),
        wait_all_((flags & MSG_WAITALL) != 0 &&
                  socket_->io()->type() == SOCK_STREAM),
        peek_((flags & MSG_PEEK) != 0),
        truncated_report_((flags & MSG_TRUNC) != 0 &&
                          socket_->io()->type() != SOCK_STREAM),
        want_source_(want_source),
        filter_(std::move(filter)),
        done_(std::move(done)) {}

  std::optional<absl::Status> Attempt(int fd) override {
    // Receives of up to kScratchBytes land in a per-thread scratch buffer
    // and are copied out at their real length, so a Recv(65536) that gets
    // 64 bytes, or waits, never allocates and zero-fills 64 KiB (that cost
    // ~64 KiB of heap per waiting Recv). Larger ones read in place.
    const bool scratch = max_bytes_ <= kScratchBytes;
    if (!scratch && buffer_.size() != max_bytes_) buffer_.resize(max_bytes_);
    for (;;) {
      char* const target = scratch ? ScratchBuffer() : buffer_.data() + got_;
      SockAddr from;
      from.length = sizeof(from.storage);
      SysCallSize rc =
          want_source_ || filter_
              ? ops_.RecvFrom(fd, target, max_bytes_ - got_, flags_,
                              from.mutable_get(), &from.length)
              : ops_.Recv(fd, target, max_bytes_ - got_, flags_);
      if (rc.would_block()) {
        // Waiting holds no buffer: 10,000 idle receives cost no memory.
        if (got_ == 0) buffer_ = std::string();
        return std::nullopt;
      }
      if (!rc.ok()) {
        if (got_ > 0) return absl::OkStatus();
        return OsError(rc.error, name());
      }
      if (filter_ && from.length > 0 && !filter_(from.get(), from.length)) {
        // Dropped; a peeked datagram is consumed so the next one surfaces.
        if (peek_) ops_.Recv(fd, target, 1, flags_ & ~MSG_PEEK);
        continue;
      }
      if (want_source_) {
        result_.from = ToWireAddress(from.get(), from.length);
      }
      const size_t real = static_cast<size_t>(rc.value);
      const size_t n = std::min(real, max_bytes_ - got_);
      // MSG_TRUNC on a datagram socket returns the datagram's real length;
      // Python then gives a bytes of that length, zero past what was read.
      if (truncated_report_) truncated_ = real - n;
      if (peek_) {
        // A peek never consumes: wait until all of it is there at once.
        if (wait_all_ && n > 0 && n < max_bytes_) return std::nullopt;
        if (scratch) buffer_.assign(target, n);
        got_ = n;
        return absl::OkStatus();
      }
      if (scratch) buffer_.append(target, n);
      got_ += n;
      if (n == 0 || !wait_all_ || got_ == max_bytes_) return absl::OkStatus();
    }
  }
  void Complete(absl::Status status) override {
    if (!peek_) socket_->bytes_received += got_;
    // A MSG_WAITALL receive whose wait ends early (timeout, cancel, close,
    // drain) returns what it already took from the socket, as recv(2) does:
    // those bytes are gone from the kernel and must not be lost.
    if (!status.ok() && got_ > 0 && !peek_ &&
        (absl::IsDeadlineExceeded(status) || absl::IsCancelled(status) ||
         absl::IsAborted(status) || absl::IsUnavailable(status))) {
      status = absl::OkStatus();
    }
    if (!status.ok()) return done_(std::move(status));
    buffer_.resize(got_);
    buffer_.append(truncated_, '\0');
    result_.data = std::move(buffer_);
    done_(std::move(result_));
  }
  const char* name() const override {
    return want_source_ ? "recvfrom" : "recv";
  }

 private:
  SocketOps& ops_;
  std::shared_ptr<ManagedSocket> socket_;
  const size_t max_bytes_;
  const int flags_;
  const bool wait_all_;
  const bool peek_;
  const bool truncated_report_;
  const bool want_source_;
  absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter_;
  std::string buffer_;
  size_t got_ = 0;
  // Bytes of the datagram past max_bytes, reported as zeros (MSG_TRUNC).
  size_t truncated_ = 0;
  Received result_;
  Callback<Received> done_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AgentCore>> AgentCore::Create(Options options) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create();
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<AgentCore>(new AgentCore(options, *std::move(engine)));
}

AgentCore::AgentCore(Options options, std::unique_ptr<Engine> engine)
    : options_(options),
      ops_(options.ops != nullptr ? *options.ops : PosixSocketOps::Get()),
      own_policy_(options.policy == nullptr ? std::make_unique<PolicyEngine>()
                                            : nullptr),
      policy_(options.policy != nullptr ? *options.policy : *own_policy_),
      ids_(options.incarnation, options.agent_key),
      engine_(std::move(engine)),
      sessions_(options.sessions, &ids_) {
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
  if (drained_.exchange(true)) return;
  engine_->Shutdown();
  for (const std::shared_ptr<Session>& session : sessions_.TakeAll()) {
    CloseSockets(*session, "agent_drain");
  }
}

void AgentCore::ReapLoop() {
  while (!stop_reaper_.WaitForNotificationWithTimeout(options_.reap_interval)) {
    for (const std::shared_ptr<Session>& session :
         sessions_.TakeExpired(absl::Now())) {
      spdlog::info("session {} ({}) expired; closing {} socket(s)",
                   session->id(), session->label(), session->size());
      CloseSockets(*session, "session_expired");
    }
  }
}

void AgentCore::CloseSockets(Session& session, const char* reason) {
  const std::string owner = OwnerOf(session.id());
  size_t closed = 0;
  for (const std::shared_ptr<ManagedSocket>& socket : session.Close()) {
    AuditClose(owner, session.id(), *socket, reason);
    engine_->Close(*socket->io());
    ++closed;
  }
  ReleaseSockets(owner, closed);
  {
    absl::MutexLock lock(&usage_mu_);
    if (session_owner_.erase(session.id()) > 0) {
      auto it = usage_.find(owner);
      if (it != usage_.end() && it->second.sessions > 0) --it->second.sessions;
    }
  }
  // Streams and HoldSession calls still waiting on the session end now.
  for (SessionEndCallback& on_end : session.TakeEndCallbacks()) {
    on_end(SessionEndStatus(reason));
  }
}

absl::Status AgentCore::CheckOpenSocketCap() const {
  const size_t cap = options_.max_open_sockets;
  if (cap == 0 || open_sockets_.load() < cap) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "max_open_sockets: the agent holds ", open_sockets_.load(),
      " sockets, its cap (RLIMIT_NOFILE less --fd-reserve descriptors kept "
      "for connections and health checks); close sockets or sessions"));
}

std::string AgentCore::OwnerOf(const std::string& session_id) {
  absl::MutexLock lock(&usage_mu_);
  auto it = session_owner_.find(session_id);
  return it == session_owner_.end() ? "anonymous" : it->second.identity;
}

absl::Status AgentCore::ReserveSocket(const std::string& identity,
                                      size_t quota) {
  absl::MutexLock lock(&usage_mu_);
  if (absl::Status capped = CheckOpenSocketCap(); !capped.ok()) return capped;
  Usage& usage = usage_[identity];
  if (quota != 0 && usage.sockets >= quota) {
    return absl::ResourceExhaustedError(
        absl::StrCat("quota max_sockets: identity '", identity, "' holds ",
                     usage.sockets, " sockets, the policy allows ", quota));
  }
  ++usage.sockets;
  ++open_sockets_;
  return absl::OkStatus();
}

void AgentCore::ReleaseSockets(const std::string& identity, size_t count) {
  if (count == 0) return;
  absl::MutexLock lock(&usage_mu_);
  open_sockets_ -= std::min(count, open_sockets_.load());
  auto it = usage_.find(identity);
  if (it == usage_.end()) return;
  it->second.sockets -= std::min(count, it->second.sockets);
}

absl::Status AgentCore::Decide(const CallContext& ctx, const char* method,
                               const PolicyDecision& decision,
                               const ManagedSocket* socket,
                               const std::string& remote, bool audit_allowed,
                               int family, int type) {
  if (!decision.allowed || decision.would_deny) {
    absl::MutexLock lock(&denials_mu_);
    ++denials_[{decision.rule, decision.allowed ? "would_deny" : "deny"}];
  }
  if (options_.audit != nullptr &&
      (audit_allowed || !decision.allowed || decision.would_deny)) {
    AuditEvent event;
    event.event = "decision";
    event.identity = ctx.identity;
    event.peer = ctx.peer;
    event.session = ctx.session_id;
    event.method = method;
    event.family = family;
    event.type = type;
    if (socket != nullptr) {
      event.handle = socket->handle();
      event.family = socket->io()->family();
      event.type = socket->io()->type();
    }
    event.remote = remote;
    event.decision = !decision.allowed     ? "deny"
                     : decision.would_deny ? "would_deny"
                                           : "allow";
    event.rule = decision.rule;
    event.status =
        decision.allowed ? "OK" : absl::StatusCodeToString(decision.code);
    options_.audit->Record(event);
  }
  if (decision.would_deny) {
    spdlog::warn("report-only: would deny {} by {}: {} (rule {})", method,
                 ctx.identity, decision.reason, decision.rule);
  }
  return decision.ToStatus();
}

void AgentCore::AuditClose(const std::string& identity,
                           const std::string& session,
                           const ManagedSocket& socket, const char* reason) {
  if (options_.audit == nullptr) return;
  AuditEvent event;
  event.event = "close";
  event.identity = identity;
  event.session = session;
  event.handle = socket.handle();
  event.family = socket.io()->family();
  event.type = socket.io()->type();
  event.bytes_in = socket.bytes_received.load();
  event.bytes_out = socket.bytes_sent.load();
  event.close_reason = reason;
  options_.audit->Record(event);
}

absl::Status AgentCore::AcquireStream(const CallContext& ctx) {
  const uint32_t quota = policy_.Quotas(ctx.identity).max_concurrent_streams();
  absl::MutexLock lock(&usage_mu_);
  Usage& usage = usage_[ctx.identity];
  if (quota != 0 && usage.streams >= quota) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "quota max_concurrent_streams: identity '", ctx.identity, "' has ",
        usage.streams, " streams open, the policy allows ", quota));
  }
  ++usage.streams;
  return absl::OkStatus();
}

void AgentCore::ReleaseStream(const CallContext& ctx) {
  absl::MutexLock lock(&usage_mu_);
  auto it = usage_.find(ctx.identity);
  if (it != usage_.end() && it->second.streams > 0) --it->second.streams;
}

size_t AgentCore::RevokeForbidden() {
  if (!policy_.configured() || policy_.report_only()) return 0;
  size_t revoked = 0;
  for (const std::shared_ptr<Session>& session : sessions_.List()) {
    const std::string owner = OwnerOf(session->id());
    for (const std::shared_ptr<ManagedSocket>& socket : session->List()) {
      const IoSocket& io = *socket->io();
      bool forbidden =
          !policy_.CheckSocket(owner, io.family(), io.type()).allowed;
      if (!forbidden && socket->state() == v1::SOCKET_STATE_CONNECTED) {
        SockAddr peer;
        peer.length = sizeof(peer.storage);
        absl::StatusOr<bool> got =
            OnFd<bool>(*socket, [&](int fd) -> absl::StatusOr<bool> {
              return ops_.GetPeerName(fd, peer.mutable_get(), &peer.length)
                  .ok();
            });
        // An accepted peer is judged by the accept filters, a connected one
        // by the connect rules.
        forbidden = got.ok() && *got &&
                    !(socket->accepted()
                          ? policy_.CheckSource(owner, "Accept", peer.get(),
                                                peer.length)
                          : policy_.CheckDestination(owner, "connect",
                                                     peer.get(), peer.length))
                         .allowed;
      }
      if (!forbidden || session->Remove(socket->handle()) == nullptr) {
        continue;
      }
      AuditClose(owner, session->id(), *socket, "policy_revoked");
      ReleaseSockets(owner, 1);
      engine_->Close(*socket->io());
      ++revoked;
    }
  }
  if (revoked > 0) {
    spdlog::info("policy change: closed {} socket(s) it no longer allows",
                 revoked);
  }
  return revoked;
}

absl::Status AgentCore::CheckByteRate(const CallContext& ctx,
                                      const char* method,
                                      const ManagedSocket& socket,
                                      PolicyEngine::Direction direction) {
  return Decide(ctx, method, policy_.CheckBytes(ctx.identity, direction),
                &socket, "", /*audit_allowed=*/false);
}

AgentCore::SourceFilter AgentCore::SourceFilterFor(
    const CallContext& ctx, const char* method,
    const std::shared_ptr<ManagedSocket>& socket) {
  if (!policy_.HasSourceFilter(ctx.identity)) return {};
  CallContext audited;
  audited.identity = ctx.identity;
  audited.peer = ctx.peer;
  audited.session_id = ctx.session_id;
  return [this, audited = std::move(audited), method, socket](
             const sockaddr* address, socklen_t length) {
    const PolicyDecision decision =
        policy_.CheckSource(audited.identity, method, address, length);
    if (decision.allowed && !decision.would_deny) return true;
    // Audited only; the refusal shows as a dropped source, not a status.
    Decide(audited, method, decision, socket.get(),
           Endpoint::FromSockAddr(address, length).ToString())
        .IgnoreError();
    if (decision.allowed) return true;
    ++refused_sources_;
    return false;
  };
}

absl::Status AgentCore::Authorize(const CallContext& ctx, const char* method) {
  if (drained_) return absl::UnavailableError(kDraining);
  return Decide(ctx, method, policy_.CheckRpc(ctx.identity, method), nullptr,
                "", /*audit_allowed=*/false);
}

absl::StatusOr<std::shared_ptr<Session>> AgentCore::SessionFor(
    const CallContext& ctx) {
  if (ctx.session_id.empty()) {
    return absl::FailedPreconditionError(
        "session: missing; call CreateSession and send its id as the "
        "'sockagent-session' request metadata");
  }
  // After Drain the table is empty: say why instead of "unknown session".
  if (drained_) return absl::UnavailableError(kDraining);
  absl::StatusOr<std::shared_ptr<Session>> session =
      sessions_.Renew(ctx.session_id, absl::Now(), ctx.renew_lease);
  if (session.ok() && OwnerOf(ctx.session_id) != ctx.identity) {
    // Another identity's session looks exactly like an unknown one.
    return absl::NotFoundError(absl::StrCat(
        "session: unknown session '", ctx.session_id, "' for this caller"));
  }
  return session;
}

absl::StatusOr<std::shared_ptr<ManagedSocket>> AgentCore::SocketFor(
    const CallContext& ctx, const std::string& handle) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  if (absl::Status valid = ids_.Check(handle, "handle"); !valid.ok()) {
    return valid;
  }
  std::shared_ptr<ManagedSocket> socket = (*session)->Find(handle);
  if (socket == nullptr) {
    // A closed socket is EBADF, as Python's OSError on a closed socket.
    if ((*session)->WasClosed(handle)) return ClosedHandle();
    return absl::NotFoundError(
        absl::StrCat("handle: unknown handle '", handle, "' in this session"));
  }
  return socket;
}

template <typename T>
Callback<T> AgentCore::WhileWaiting(const CallContext& ctx, Callback<T> done) {
  std::shared_ptr<Session> session = sessions_.Find(ctx.session_id);
  if (session == nullptr) return done;
  absl::StatusOr<uint64_t> call = session->BeginCall(absl::Now());
  if (!call.ok()) return done;
  return [hold = SessionHold(std::move(session), *call),
          done = std::move(done)](absl::StatusOr<T> result) mutable {
    hold.Reset();  // the lease restarts before the client hears back
    done(std::move(result));
  };
}

absl::StatusOr<SessionHold> AgentCore::HoldSession(const CallContext& ctx,
                                                   SessionEndCallback on_end) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  absl::StatusOr<uint64_t> call =
      (*session)->BeginCall(absl::Now(), std::move(on_end));
  if (!call.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "session: unknown session '", ctx.session_id,
        "' (closed, expired, or never created): call CreateSession"));
  }
  return SessionHold(*std::move(session), *call);
}

absl::StatusOr<SessionHold> AgentCore::BindSession(const CallContext& ctx,
                                                   SessionEndCallback on_end) {
  absl::StatusOr<SessionHold> hold = HoldSession(ctx, std::move(on_end));
  if (!hold.ok()) return hold.status();
  if (absl::Status bound = hold->session()->Bind(hold->id()); !bound.ok()) {
    return bound;  // the hold ends here; its on_end never runs
  }
  spdlog::debug("session {} bound to the connection of {}", ctx.session_id,
                ctx.peer);
  return hold;
}

void AgentCore::UnbindSession(SessionHold hold) {
  if (!hold) return;
  if (hold.session()->Unbind(hold.id())) {
    spdlog::debug("session {} released from its connection; lease-only now",
                  hold.session()->id());
  }
  hold.Reset();
}

void AgentCore::EndBoundSession(SessionHold hold) {
  if (!hold) return;
  std::shared_ptr<Session> session = hold.session();
  if (!session->BoundTo(hold.id()) || !sessions_.RemoveIf(session)) return;
  spdlog::info("session {} ({}) lost its connection; closing {} socket(s)",
               session->id(), session->label(), session->size());
  CloseSockets(*session, "connection_closed");
}

absl::StatusOr<std::shared_ptr<ManagedSocket>> AgentCore::Adopt(
    Session& session, const std::string& owner, ScopedFd fd, int family,
    int type, int protocol) {
  const v1::PolicyQuotas quotas = policy_.Quotas(owner);
  size_t per_session = options_.max_sockets_per_session;
  if (quotas.max_sockets_per_session() != 0) {
    per_session =
        std::min<size_t>(per_session, quotas.max_sockets_per_session());
  }
  if (absl::Status reserved = ReserveSocket(owner, quotas.max_sockets());
      !reserved.ok()) {
    return reserved;
  }
  absl::StatusOr<std::shared_ptr<IoSocket>> io =
      engine_->Register(std::move(fd), family, type, protocol);
  if (!io.ok()) {
    ReleaseSockets(owner, 1);
    return io.status();
  }
  auto socket = std::make_shared<ManagedSocket>(ids_.Next(), *std::move(io));
  if (absl::Status added = session.Add(socket, per_session); !added.ok()) {
    ReleaseSockets(owner, 1);
    engine_->Close(*socket->io());
    return added;
  }
  return socket;
}

WaitOptions AgentCore::WaitFor(const CallContext& ctx,
                               const ManagedSocket& socket) const {
  WaitOptions wait;
  wait.deadline = ctx.deadline;
  wait.cancel = ctx.cancel;
  if (std::optional<absl::Duration> timeout = socket.timeout()) {
    if (*timeout == absl::ZeroDuration()) {
      wait.nonblocking = true;
    } else {
      wait.deadline = std::min(wait.deadline, absl::Now() + *timeout);
    }
  }
  return wait;
}

absl::StatusOr<v1::CreateSessionResponse> AgentCore::CreateSession(
    const v1::CreateSessionRequest& request) {
  return CreateSession(CallContext(), request);
}

absl::StatusOr<v1::CreateSessionResponse> AgentCore::CreateSession(
    const CallContext& ctx, const v1::CreateSessionRequest& request) {
  if (drained_) return absl::UnavailableError("the agent is shutting down");
  absl::Duration ttl = absl::ZeroDuration();
  if (request.has_ttl()) {
    ttl = FromProto(request.ttl());
    if (ttl <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("ttl: must be positive when set");
    }
  }
  const uint32_t max_sessions = policy_.Quotas(ctx.identity).max_sessions();
  {
    absl::MutexLock lock(&usage_mu_);
    Usage& usage = usage_[ctx.identity];
    if (max_sessions != 0 && usage.sessions >= max_sessions) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "quota max_sessions: identity '", ctx.identity, "' holds ",
          usage.sessions, " sessions, the policy allows ", max_sessions));
    }
    ++usage.sessions;  // reserved; released below if creation fails
  }
  absl::StatusOr<std::shared_ptr<Session>> session = sessions_.Create(
      ttl, request.label(), absl::Now(), request.bind_to_connection());
  {
    absl::MutexLock lock(&usage_mu_);
    if (session.ok()) {
      session_owner_[(*session)->id()] = Origin{ctx.identity, ctx.peer};
    } else {
      --usage_[ctx.identity].sessions;
    }
  }
  if (!session.ok()) return session.status();
  v1::CreateSessionResponse response;
  response.set_session_id((*session)->id());
  ToProto((*session)->ttl(), response.mutable_ttl());
  response.set_incarnation(ids_.incarnation());
  return response;
}

absl::StatusOr<v1::KeepAliveResponse> AgentCore::KeepAlive(
    const CallContext& ctx) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  v1::KeepAliveResponse response;
  ToProto((*session)->ttl(), response.mutable_ttl());
  return response;
}

absl::StatusOr<v1::CloseSessionResponse> AgentCore::CloseSession(
    const CallContext& ctx) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  sessions_.Remove((*session)->id());
  v1::CloseSessionResponse response;
  response.set_sockets_closed(static_cast<uint32_t>((*session)->size()));
  CloseSockets(**session, "session_closed");
  return response;
}

absl::StatusOr<v1::CloseSessionResponse> AgentCore::CloseSession(
    const CallContext& ctx, const v1::CloseSessionRequest& request) {
  if (request.session_id().empty()) return CloseSession(ctx);
  const std::string& id = request.session_id();
  if (absl::Status valid = ids_.Check(id, "session_id"); !valid.ok()) {
    return valid;
  }
  bool own = false;
  {
    absl::MutexLock lock(&usage_mu_);
    auto it = session_owner_.find(id);
    own = it != session_owner_.end() && it->second.identity == ctx.identity;
  }
  if (!own) {
    // Decided before the lookup: a non-admin learns nothing about which
    // sessions of others exist.
    if (absl::Status allowed = Decide(
            ctx, "CloseSession", policy_.CheckAdmin(ctx.identity), nullptr, "");
        !allowed.ok()) {
      return allowed;
    }
  }
  std::shared_ptr<Session> session = sessions_.Remove(id);
  if (session == nullptr) {
    return absl::NotFoundError(absl::StrCat("session_id: unknown session '", id,
                                            "' (closed, expired, or never "
                                            "created)"));
  }
  v1::CloseSessionResponse response;
  response.set_sockets_closed(static_cast<uint32_t>(session->size()));
  const std::string owner = OwnerOf(id);
  if (owner != ctx.identity) {
    spdlog::info("session {} of {} closed by admin {}", id, owner,
                 ctx.identity);
  }
  CloseSockets(*session,
               owner == ctx.identity ? "session_closed" : "admin_closed");
  return response;
}

absl::StatusOr<v1::ListSessionsResponse> AgentCore::ListSessions(
    const CallContext& ctx) {
  const bool admin = policy_.CheckAdmin(ctx.identity).allowed;
  v1::ListSessionsResponse response;
  for (const std::shared_ptr<Session>& session : sessions_.List()) {
    Origin origin;
    {
      absl::MutexLock lock(&usage_mu_);
      auto it = session_owner_.find(session->id());
      if (it == session_owner_.end()) continue;  // closing meanwhile
      origin = it->second;
    }
    if (!admin && origin.identity != ctx.identity) continue;
    v1::SessionInfo* info = response.add_sessions();
    info->set_session_id(session->id());
    info->set_identity(origin.identity);
    info->set_peer(origin.peer);
    info->set_label(session->label());
    auto to_timestamp = [](absl::Time t, google::protobuf::Timestamp* out) {
      const timespec ts = absl::ToTimespec(t);
      out->set_seconds(ts.tv_sec);
      out->set_nanos(static_cast<int32_t>(ts.tv_nsec));
    };
    to_timestamp(session->created(), info->mutable_created());
    const absl::Time now = absl::Now();
    const size_t waiting = session->waiting_calls();
    to_timestamp(waiting > 0 ? std::max(session->expiry(), now + session->ttl())
                             : session->expiry(),
                 info->mutable_lease_expiry());
    info->set_waiting_calls(static_cast<uint32_t>(waiting));
    info->set_bind_to_connection(session->bind_to_connection());
    info->set_bound(session->bound());
    info->set_socket_count(static_cast<uint32_t>(session->size()));
    info->set_bytes_sent(session->BytesSent());
    info->set_bytes_received(session->BytesReceived());
  }
  std::sort(response.mutable_sessions()->begin(),
            response.mutable_sessions()->end(),
            [](const v1::SessionInfo& a, const v1::SessionInfo& b) {
              return a.session_id() < b.session_id();
            });
  return response;
}

absl::StatusOr<v1::SocketResponse> AgentCore::Socket(
    const CallContext& ctx, const v1::SocketRequest& request) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  const int family = static_cast<int>(request.family());
  // Python accepts SOCK_NONBLOCK / SOCK_CLOEXEC OR-ed into the type and
  // reports the type without them. Every agent socket is close-on-exec and
  // non-blocking underneath; SOCK_NONBLOCK sets the socket's timeout to 0.
  const int type_flags =
      static_cast<int>(request.type()) & (SOCK_NONBLOCK | SOCK_CLOEXEC);
  const int type = static_cast<int>(request.type()) & ~type_flags;
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) {
    return OsErrorWithCode(
        absl::StatusCode::kInvalidArgument, EAFNOSUPPORT, "socket",
        absl::StrCat("family: address family ", family,
                     " is not supported (EAFNOSUPPORT); use FAMILY_INET, "
                     "FAMILY_INET6 or FAMILY_UNIX"));
  }
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return OsErrorWithCode(
        absl::StatusCode::kInvalidArgument, ESOCKTNOSUPPORT, "socket",
        absl::StrCat("type: socket type ", type,
                     " is not supported (ESOCKTNOSUPPORT); use "
                     "SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM or "
                     "SOCKET_TYPE_SEQPACKET, optionally with SOCK_NONBLOCK "
                     "or SOCK_CLOEXEC"));
  }
  if (request.protocol() < 0 || request.protocol() > 255) {
    return absl::InvalidArgumentError(absl::StrCat(
        "protocol: ", request.protocol(), " is not a protocol number"));
  }
  if (absl::Status allowed =
          Decide(ctx, "Socket", policy_.CheckSocket(ctx.identity, family, type),
                 nullptr, "", /*audit_allowed=*/true, family, type);
      !allowed.ok()) {
    return allowed;
  }
  // Refused before a descriptor exists (Adopt checks again, atomically).
  if (absl::Status capped = CheckOpenSocketCap(); !capped.ok()) return capped;
  SysCallInt rc = ops_.Socket(family, type, request.protocol());
  if (!rc.ok()) return OsError(rc.error, "socket");
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      Adopt(**session, ctx.identity, ScopedFd(rc.value), family, type,
            request.protocol());
  if (!socket.ok()) return socket.status();
  if ((type_flags & SOCK_NONBLOCK) != 0) {
    (*socket)->set_timeout(absl::ZeroDuration());
  }
  v1::SocketResponse response;
  response.set_handle((*socket)->handle());
  return response;
}

absl::StatusOr<v1::BindResponse> AgentCore::Bind(
    const CallContext& ctx, const v1::BindRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  const IoSocket& io = *(*socket)->io();
  absl::StatusOr<SockAddr> address =
      ResolveAddress(request.address(), io.family(), io.type(), "address");
  if (!address.ok()) return address.status();
  if (absl::Status allowed = Decide(
          ctx, "Bind",
          policy_.CheckBind(ctx.identity, address->get(), address->length),
          socket->get(),
          Endpoint::FromSockAddr(address->get(), address->length).ToString());
      !allowed.ok()) {
    return allowed;
  }
  absl::StatusOr<v1::BindResponse> response = OnFd<v1::BindResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::BindResponse> {
        SysCallInt rc = ops_.Bind(fd, address->get(), address->length);
        if (!rc.ok()) return OsError(rc.error, "bind");
        absl::StatusOr<v1::Address> bound = NameOf(ops_, fd, false);
        if (!bound.ok()) return bound.status();
        v1::BindResponse result;
        *result.mutable_address() = *std::move(bound);
        return result;
      });
  if (response.ok()) (*socket)->set_state(v1::SOCKET_STATE_BOUND);
  return response;
}

absl::StatusOr<v1::ListenResponse> AgentCore::Listen(
    const CallContext& ctx, const v1::ListenRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  // Python: listen() uses min(SOMAXCONN, 128); a negative backlog is 0.
  const int backlog = request.has_backlog() ? std::max(0, request.backlog())
                                            : std::min(SOMAXCONN, 128);
  if (absl::Status allowed =
          Decide(ctx, "Listen", policy_.CheckListen(ctx.identity, backlog),
                 socket->get(), "");
      !allowed.ok()) {
    return allowed;
  }
  absl::StatusOr<v1::ListenResponse> response = OnFd<v1::ListenResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::ListenResponse> {
        SysCallInt rc = ops_.Listen(fd, backlog);
        if (!rc.ok()) return OsError(rc.error, "listen");
        return v1::ListenResponse();
      });
  if (response.ok()) (*socket)->set_state(v1::SOCKET_STATE_LISTENING);
  return response;
}

absl::StatusOr<v1::ShutdownResponse> AgentCore::Shutdown(
    const CallContext& ctx, const v1::ShutdownRequest& request) {
  int how;
  switch (request.how()) {
    case v1::SHUTDOWN_HOW_READ:
      how = SHUT_RD;
      break;
    case v1::SHUTDOWN_HOW_WRITE:
      how = SHUT_WR;
      break;
    case v1::SHUTDOWN_HOW_BOTH:
      how = SHUT_RDWR;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("how: must be SHUTDOWN_HOW_READ, SHUTDOWN_HOW_WRITE or "
                       "SHUTDOWN_HOW_BOTH, not ",
                       static_cast<int>(request.how())));
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  absl::StatusOr<v1::ShutdownResponse> response = OnFd<v1::ShutdownResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::ShutdownResponse> {
        SysCallInt rc = ops_.Shutdown(fd, how);
        if (!rc.ok()) return OsError(rc.error, "shutdown");
        return v1::ShutdownResponse();
      });
  if (response.ok()) (*socket)->set_state(v1::SOCKET_STATE_SHUT_DOWN);
  return response;
}

absl::StatusOr<v1::CloseResponse> AgentCore::Close(
    const CallContext& ctx, const v1::CloseRequest& request) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  if (absl::Status valid = ids_.Check(request.handle(), "handle");
      !valid.ok()) {
    return valid;
  }
  if (absl::Status closed = CloseHandle(**session, ctx.identity,
                                        request.handle(), false, "close");
      !closed.ok()) {
    // Closing a closed socket is OK, as Python's close().
    if (absl::IsNotFound(closed) && (*session)->WasClosed(request.handle())) {
      return v1::CloseResponse();
    }
    return closed;
  }
  return v1::CloseResponse();
}

absl::Status AgentCore::CloseHandle(Session& session, const std::string& owner,
                                    const std::string& handle, bool reset,
                                    const char* reason) {
  std::shared_ptr<ManagedSocket> socket = session.Remove(handle);
  if (socket == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("handle: unknown handle '", handle, "' in this session"));
  }
  if (reset) {
    // SO_LINGER {on, 0}: close(2) then sends RST and drops unsent data.
    socket->io()->WithFd([&](int fd) {
      const linger abortive{1, 0};
      SysCallInt rc = ops_.SetSockOpt(fd, SOL_SOCKET, SO_LINGER, &abortive,
                                      sizeof(abortive));
      if (!rc.ok()) {
        spdlog::warn(
            "{}: setsockopt(SO_LINGER) failed with errno {}; closing "
            "without RST",
            handle, rc.error);
      }
    });
  }
  AuditClose(owner, session.id(), *socket, reason);
  ReleaseSockets(owner, 1);
  engine_->Close(*socket->io());
  return absl::OkStatus();
}

absl::StatusOr<v1::AbortResponse> AgentCore::Abort(
    const CallContext& ctx, const v1::AbortRequest& request) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  if (absl::Status valid = ids_.Check(request.handle(), "handle");
      !valid.ok()) {
    return valid;
  }
  if (absl::Status closed =
          CloseHandle(**session, ctx.identity, request.handle(), true, "abort");
      !closed.ok()) {
    if (absl::IsNotFound(closed) && (*session)->WasClosed(request.handle())) {
      return ClosedHandle();
    }
    return closed;
  }
  return v1::AbortResponse();
}

absl::StatusOr<v1::SetFaultsResponse> AgentCore::SetFaults(
    const CallContext& ctx, const v1::SetFaultsRequest& request) {
  if (absl::Status valid = ValidateFaults(request.faults()); !valid.ok()) {
    return valid;
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  (*socket)->set_faults(request.faults());
  return v1::SetFaultsResponse();
}

void AgentCore::Traffic(const CallContext& ctx,
                        const v1::TrafficRequest& request,
                        Callback<v1::TrafficResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = WhileWaiting(ctx, std::move(done));
  if (absl::Status valid = ValidateTrafficRequest(request); !valid.ok()) {
    return done(valid);
  }
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return done(session.status());
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return done(socket.status());
  // Byte-rate quotas: admitted unless a bucket is in debt; the bytes moved
  // are charged when the traffic ends, so a long traffic overdraws once
  // and the identity's next calls wait for the average to recover.
  for (const PolicyEngine::Direction direction : {kSendBytes, kRecvBytes}) {
    if (absl::Status rate = CheckByteRate(ctx, "Traffic", **socket, direction);
        !rate.ok()) {
      return done(rate);
    }
  }
  const IoSocket& io = *(*socket)->io();
  TrafficOptions options;
  if (request.has_source() && request.source().has_destination()) {
    if (io.type() == SOCK_STREAM) {
      return done(absl::InvalidArgumentError(
          "source.destination: only for datagram sockets (connect a stream "
          "socket first)"));
    }
    absl::StatusOr<SockAddr> address =
        ResolveAddress(request.source().destination(), io.family(), io.type(),
                       "source.destination");
    if (!address.ok()) return done(address.status());
    *address = Effective(ops_, **socket, *address);
    // Audited once here; every datagram is checked again (hooks below).
    if (absl::Status allowed = Decide(
            ctx, "Traffic",
            policy_.CheckDestination(ctx.identity, "sendto", address->get(),
                                     address->length),
            socket->get(),
            Endpoint::FromSockAddr(address->get(), address->length).ToString());
        !allowed.ok()) {
      return done(allowed);
    }
    options.destination = *address;
  }
  options.request = request;
  options.deadline = ctx.deadline;
  options.cancel = ctx.cancel;
  CallContext audit_ctx = ctx;
  audit_ctx.cancel = nullptr;
  TrafficHooks hooks;
  hooks.check_sendto = [this, audit_ctx,
                        socket = *socket](const SockAddr& to) -> absl::Status {
    PolicyDecision decision = policy_.CheckDestination(
        audit_ctx.identity, "sendto", to.get(), to.length);
    if (decision.allowed && !decision.would_deny) return absl::OkStatus();
    return Decide(audit_ctx, "Traffic", decision, socket.get(),
                  Endpoint::FromSockAddr(to.get(), to.length).ToString(),
                  /*audit_allowed=*/false);
  };
  hooks.fault_close = [this, session = *session, owner = ctx.identity,
                       handle = request.handle()](bool reset) {
    CloseHandle(*session, owner, handle, reset, "fault_close_after_bytes")
        .IgnoreError();  // already closed: nothing left to do
  };
  // Datagrams from sources the policy's accept filters refuse are dropped
  // (audited, counted), as RecvFrom drops them.
  hooks.accept_source = SourceFilterFor(ctx, "Traffic", *socket);
  StartTraffic(
      ops_, *engine_, *std::move(socket), std::move(options), std::move(hooks),
      [this, identity = ctx.identity, done = std::move(done)](
          absl::StatusOr<v1::TrafficResponse> result) mutable {
        if (result.ok()) {
          policy_.ChargeBytes(identity, kSendBytes, result->bytes_sent());
          policy_.ChargeBytes(identity, kRecvBytes, result->bytes_received());
        }
        done(std::move(result));
      });
}

// GetSockName and GetPeerName differ only in the name asked for.
template <typename Response>
absl::StatusOr<Response> AgentCore::Name(const CallContext& ctx,
                                         const std::string& handle, bool peer) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, handle);
  if (!socket.ok()) return socket.status();
  absl::StatusOr<v1::Address> address = OnFd<v1::Address>(
      **socket, [&](int fd) { return NameOf(ops_, fd, peer); });
  if (!address.ok()) return address.status();
  Response response;
  *response.mutable_address() = *std::move(address);
  return response;
}

absl::StatusOr<v1::GetSockNameResponse> AgentCore::GetSockName(
    const CallContext& ctx, const v1::GetSockNameRequest& request) {
  return Name<v1::GetSockNameResponse>(ctx, request.handle(), /*peer=*/false);
}

absl::StatusOr<v1::GetPeerNameResponse> AgentCore::GetPeerName(
    const CallContext& ctx, const v1::GetPeerNameRequest& request) {
  return Name<v1::GetPeerNameResponse>(ctx, request.handle(), /*peer=*/true);
}

absl::StatusOr<v1::SetSockOptResponse> AgentCore::SetSockOpt(
    const CallContext& ctx, const v1::SetSockOptRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  if (absl::Status allowed =
          Decide(ctx, "SetSockOpt", policy_.CheckSockOpt(ctx.identity, request),
                 socket->get(), "");
      !allowed.ok()) {
    return allowed;
  }
  return OnFd<v1::SetSockOptResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::SetSockOptResponse> {
        absl::Status set = SetSocketOption(ops_, fd, request);
        if (!set.ok()) return set;
        return v1::SetSockOptResponse();
      });
}

absl::StatusOr<v1::GetSockOptResponse> AgentCore::GetSockOpt(
    const CallContext& ctx, const v1::GetSockOptRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  return OnFd<v1::GetSockOptResponse>(
      **socket, [&](int fd) -> absl::StatusOr<v1::GetSockOptResponse> {
        absl::StatusOr<v1::OptionValue> value =
            GetSocketOption(ops_, fd, request);
        if (!value.ok()) return value.status();
        v1::GetSockOptResponse response;
        *response.mutable_value() = *std::move(value);
        return response;
      });
}

absl::StatusOr<v1::SetTimeoutResponse> AgentCore::SetTimeout(
    const CallContext& ctx, const v1::SetTimeoutRequest& request) {
  std::optional<absl::Duration> timeout;
  if (request.has_timeout()) {
    const auto& proto = request.timeout();
    if (proto.seconds() < 0 || proto.nanos() < 0 ||
        proto.nanos() >= 1000000000) {
      return absl::InvalidArgumentError(
          "timeout: must be a non-negative duration (unset for blocking)");
    }
    timeout = FromProto(proto);
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  (*socket)->set_timeout(timeout);
  return v1::SetTimeoutResponse();
}

absl::StatusOr<v1::GetTimeoutResponse> AgentCore::GetTimeout(
    const CallContext& ctx, const v1::GetTimeoutRequest& request) {
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return socket.status();
  v1::GetTimeoutResponse response;
  if (std::optional<absl::Duration> timeout = (*socket)->timeout()) {
    ToProto(*timeout, response.mutable_timeout());
  }
  return response;
}

absl::StatusOr<v1::GetHostnameResponse> AgentCore::GetHostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) {
    return OsError(errno, "gethostname");
  }
  v1::GetHostnameResponse response;
  response.set_hostname(name);
  return response;
}

absl::StatusOr<v1::GetAddrInfoResponse> AgentCore::GetAddrInfo(
    const v1::GetAddrInfoRequest& request) {
  absl::StatusOr<std::vector<v1::AddrInfo>> results =
      sockagent::GetAddrInfo(request);
  if (!results.ok()) return results.status();
  v1::GetAddrInfoResponse response;
  for (v1::AddrInfo& info : *results) *response.add_results() = std::move(info);
  return response;
}

absl::StatusOr<v1::ListSocketsResponse> AgentCore::ListSockets(
    const CallContext& ctx) {
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return session.status();
  v1::ListSocketsResponse response;
  for (const std::shared_ptr<ManagedSocket>& socket : (*session)->List()) {
    v1::SocketInfo* info = response.add_sockets();
    info->set_handle(socket->handle());
    info->set_family(static_cast<v1::Family>(socket->io()->family()));
    info->set_type(static_cast<v1::SocketType>(socket->io()->type()));
    info->set_protocol(socket->io()->protocol());
    info->set_state(socket->state());
    info->set_bytes_sent(socket->bytes_sent);
    info->set_bytes_received(socket->bytes_received);
    if (std::optional<absl::Duration> timeout = socket->timeout()) {
      ToProto(*timeout, info->mutable_timeout());
    }
    socket->io()->WithFd([&](int fd) {
      if (auto local = NameOf(ops_, fd, false); local.ok()) {
        *info->mutable_local() = *std::move(local);
      }
      if (auto peer = NameOf(ops_, fd, true); peer.ok()) {
        *info->mutable_peer() = *std::move(peer);
      }
    });
  }
  std::sort(response.mutable_sockets()->begin(),
            response.mutable_sockets()->end(),
            [](const v1::SocketInfo& a, const v1::SocketInfo& b) {
              return a.handle() < b.handle();
            });
  return response;
}

std::vector<AgentCore::SocketKindCount> AgentCore::CountSocketsByKind() const {
  absl::flat_hash_map<std::tuple<int, int, int>, uint64_t> counts;
  for (const std::shared_ptr<Session>& session : sessions_.List()) {
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
  absl::MutexLock lock(&denials_mu_);
  return denials_;
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
  ToProto(options_.sessions.default_ttl, limits->mutable_default_session_ttl());
  ToProto(options_.sessions.max_ttl, limits->mutable_max_session_ttl());
  limits->set_max_open_sockets(options_.max_open_sockets);
  response.set_incarnation(ids_.incarnation());
  v1::AgentStats* stats = response.mutable_stats();
  stats->set_sessions(static_cast<uint32_t>(sessions_.size()));
  stats->set_open_sockets(sessions_.socket_count());
  stats->set_waiting_operations(engine_->waiting_ops());
  stats->set_refused_sources(refused_sources_.load());
  stats->set_policy_reloads_rejected(policy_.rejected_loads());
  if (auto hostname = GetHostname(); hostname.ok()) {
    response.set_hostname(hostname->hostname());
  }
  return response;
}

void AgentCore::Accept(const CallContext& ctx, const v1::AcceptRequest& request,
                       Callback<v1::AcceptResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = WhileWaiting(ctx, std::move(done));
  absl::StatusOr<std::shared_ptr<Session>> session = SessionFor(ctx);
  if (!session.ok()) return done(session.status());
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return done(socket.status());
  std::shared_ptr<IoSocket> io = (*socket)->io();
  auto op = std::make_unique<AcceptOp>(
      ops_, SourceFilterFor(ctx, "Accept", *socket),
      [this] { return CheckOpenSocketCap(); },
      [this, session = *session, io, owner = ctx.identity,
       done = std::move(done)](
          absl::StatusOr<AcceptOp::Accepted> accepted) mutable {
        if (!accepted.ok()) return done(accepted.status());
        absl::StatusOr<std::shared_ptr<ManagedSocket>> peer =
            Adopt(*session, owner, std::move(accepted->fd), io->family(),
                  io->type(), io->protocol());
        if (!peer.ok()) return done(peer.status());
        (*peer)->set_state(v1::SOCKET_STATE_CONNECTED);
        (*peer)->set_accepted();
        v1::AcceptResponse response;
        response.set_handle((*peer)->handle());
        *response.mutable_peer() = std::move(accepted->peer);
        done(std::move(response));
      });
  engine_->Submit(io, Interest::kRead, std::move(op), WaitFor(ctx, **socket));
}

void AgentCore::Connect(const CallContext& ctx,
                        const v1::ConnectRequest& request,
                        Callback<v1::ConnectResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = WhileWaiting(ctx, std::move(done));
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return done(socket.status());
  const IoSocket& io = *(*socket)->io();
  absl::StatusOr<SockAddr> address =
      ResolveAddress(request.address(), io.family(), io.type(), "address");
  if (!address.ok()) return done(address.status());
  *address = Effective(ops_, **socket, *address);
  // The resolved address is checked and connected to: no second lookup.
  if (absl::Status allowed = Decide(
          ctx, "Connect",
          policy_.CheckDestination(ctx.identity, "connect", address->get(),
                                   address->length),
          socket->get(),
          Endpoint::FromSockAddr(address->get(), address->length).ToString());
      !allowed.ok()) {
    return done(allowed);
  }
  // Belt and braces: a peer other than the address allowed is judged by
  // the same rules, and a refused one closes the socket (reset).
  CallContext audited;
  audited.identity = ctx.identity;
  audited.peer = ctx.peer;
  audited.session_id = ctx.session_id;
  auto refused = std::make_shared<bool>(false);
  auto check_peer = [this, audited, socket = *socket,
                     refused](const SockAddr& peer) -> absl::Status {
    absl::Status allowed =
        Decide(audited, "Connect",
               policy_.CheckDestination(audited.identity, "connect", peer.get(),
                                        peer.length),
               socket.get(),
               Endpoint::FromSockAddr(peer.get(), peer.length).ToString());
    if (!allowed.ok()) *refused = true;
    return allowed;
  };
  auto finish = [this, refused, audited, handle = request.handle(),
                 done = std::move(done)](
                    absl::StatusOr<v1::ConnectResponse> result) mutable {
    if (*refused) {
      if (absl::StatusOr<std::shared_ptr<Session>> session =
              SessionFor(audited);
          session.ok()) {
        CloseHandle(**session, audited.identity, handle, /*reset=*/true,
                    "policy_peer_mismatch")
            .IgnoreError();  // already closed: nothing left to do
      }
    }
    done(std::move(result));
  };
  engine_->Submit(
      (*socket)->io(), Interest::kWrite,
      std::make_unique<ConnectOp>(ops_, *socket, *address,
                                  std::move(check_peer), std::move(finish)),
      WaitFor(ctx, **socket));
}

void AgentCore::Send(const CallContext& ctx, const v1::SendRequest& request,
                     Callback<v1::SendResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = WhileWaiting(ctx, std::move(done));
  if (absl::Status s = CheckSendArgs(request.flags(), request.data().size(),
                                     options_.max_send_bytes);
      !s.ok()) {
    return done(s);
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return done(socket.status());
  if (absl::Status rate = CheckByteRate(ctx, "Send", **socket, kSendBytes);
      !rate.ok()) {
    return done(rate);
  }
  WaitOptions wait = WaitFor(ctx, **socket);
  if (DontWait(request.flags(), **socket)) wait.nonblocking = true;
  engine_->Submit((*socket)->io(), Interest::kWrite,
                  std::make_unique<SendOp>(
                      ops_, *socket, request.data(), request.flags(),
                      request.send_all(), std::nullopt,
                      [this, identity = ctx.identity, done = std::move(done)](
                          absl::StatusOr<uint64_t> sent) mutable {
                        if (!sent.ok()) return done(sent.status());
                        policy_.ChargeBytes(identity, kSendBytes, *sent);
                        v1::SendResponse response;
                        response.set_bytes_sent(*sent);
                        done(std::move(response));
                      }),
                  wait);
}

// Recv and RecvFrom differ only in the response: RecvFrom's also names the
// source.
template <typename Response>
void AgentCore::Receive(const CallContext& ctx, const char* method,
                        const std::string& handle, uint32_t max_bytes,
                        int32_t flags, Callback<Response> done) {
  constexpr bool kWantSource = std::is_same_v<Response, v1::RecvFromResponse>;
  // A waiting call keeps its session alive, however long it waits.
  done = WhileWaiting(ctx, std::move(done));
  if (absl::Status s = CheckFlags(flags, kRecvFlags); !s.ok()) return done(s);
  // Like a kernel receive into a smaller buffer: at most the agent's limit.
  const size_t want = std::min<size_t>(max_bytes, options_.max_recv_bytes);
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, handle);
  if constexpr (!kWantSource) {
    // Python's recv(0) returns b'' at once without receiving: it neither
    // waits nor consumes a datagram, and even a closed socket answers b''.
    // (recvfrom(0) does receive: below.)
    if (want == 0 && (socket.ok() || IsClosedHandle(socket.status()))) {
      return done(Response());
    }
  }
  if (!socket.ok()) return done(socket.status());
  WaitOptions wait = WaitFor(ctx, **socket);
  if (DontWait(flags, **socket)) wait.nonblocking = true;
  if (absl::Status rate = CheckByteRate(ctx, method, **socket, kRecvBytes);
      !rate.ok()) {
    return done(rate);
  }
  SourceFilter filter;
  if ((*socket)->io()->type() == SOCK_DGRAM) {
    filter = SourceFilterFor(ctx, method, *socket);
  }
  engine_->Submit(
      (*socket)->io(), Interest::kRead,
      std::make_unique<RecvOp>(
          ops_, *socket, want, flags, kWantSource,
          [this, identity = ctx.identity, done = std::move(done)](
              absl::StatusOr<RecvOp::Received> received) mutable {
            if (!received.ok()) return done(received.status());
            policy_.ChargeBytes(identity, kRecvBytes, received->data.size());
            Response response;
            response.set_data(std::move(received->data));
            if constexpr (kWantSource) {
              *response.mutable_address() = std::move(received->from);
            }
            done(std::move(response));
          },
          std::move(filter)),
      wait);
}

void AgentCore::Recv(const CallContext& ctx, const v1::RecvRequest& request,
                     Callback<v1::RecvResponse> done) {
  Receive(ctx, "Recv", request.handle(), request.max_bytes(), request.flags(),
          std::move(done));
}

void AgentCore::SendTo(const CallContext& ctx, const v1::SendToRequest& request,
                       Callback<v1::SendToResponse> done) {
  // A waiting call keeps its session alive, however long it waits.
  done = WhileWaiting(ctx, std::move(done));
  if (absl::Status s = CheckSendArgs(request.flags(), request.data().size(),
                                     options_.max_send_bytes);
      !s.ok()) {
    return done(s);
  }
  absl::StatusOr<std::shared_ptr<ManagedSocket>> socket =
      SocketFor(ctx, request.handle());
  if (!socket.ok()) return done(socket.status());
  const IoSocket& io = *(*socket)->io();
  absl::StatusOr<SockAddr> address =
      ResolveAddress(request.address(), io.family(), io.type(), "address");
  if (!address.ok()) return done(address.status());
  *address = Effective(ops_, **socket, *address);
  // Checked per datagram, before anything reaches the wire. Allowed
  // datagrams are not audited one by one (denials are).
  if (absl::Status allowed = Decide(
          ctx, "SendTo",
          policy_.CheckDestination(ctx.identity, "sendto", address->get(),
                                   address->length),
          socket->get(),
          Endpoint::FromSockAddr(address->get(), address->length).ToString(),
          /*audit_allowed=*/false);
      !allowed.ok()) {
    return done(allowed);
  }
  if (absl::Status rate = CheckByteRate(ctx, "SendTo", **socket, kSendBytes);
      !rate.ok()) {
    return done(rate);
  }
  WaitOptions wait = WaitFor(ctx, **socket);
  if (DontWait(request.flags(), **socket)) wait.nonblocking = true;
  engine_->Submit((*socket)->io(), Interest::kWrite,
                  std::make_unique<SendOp>(
                      ops_, *socket, request.data(), request.flags(),
                      /*send_all=*/false, *address,
                      [this, identity = ctx.identity, done = std::move(done)](
                          absl::StatusOr<uint64_t> sent) mutable {
                        if (!sent.ok()) return done(sent.status());
                        policy_.ChargeBytes(identity, kSendBytes, *sent);
                        v1::SendToResponse response;
                        response.set_bytes_sent(*sent);
                        done(std::move(response));
                      }),
                  wait);
}

void AgentCore::RecvFrom(const CallContext& ctx,
                         const v1::RecvFromRequest& request,
                         Callback<v1::RecvFromResponse> done) {
  Receive(ctx, "RecvFrom", request.handle(), request.max_bytes(),
          request.flags(), std::move(done));
}

}  // namespace sockagent
