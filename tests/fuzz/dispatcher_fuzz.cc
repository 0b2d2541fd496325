// libFuzzer target: the request dispatcher. The input is a serialized
// sockagent.fuzz.Program (tests/fuzz/dispatcher_fuzz.proto): a sequence of
// AgentCore calls, each authorized first as the gRPC service does, applied
// to a fresh AgentCore over the fake socket layer (FakeSocketOps, which can
// also inject errno). The process runs in a private network namespace and
// the socket layer refuses Unix socket paths, so no input reaches anything
// outside this process: no network, no file.
//
// Invariants: no crash, no sanitizer report, no leak (of memory or of a file
// descriptor: after the core is destroyed the process holds exactly the
// descriptors it held before the input); every status is one of
// the documented codes and an INVALID_ARGUMENT names a field; every call
// that may wait runs its callback exactly once, at the latest when the core
// is destroyed (an unfinished call would hang the gRPC server's shutdown).

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dispatcher_fuzz.pb.h"
#include "server/core/address.h"
#include "server/core/agent_core.h"
#include "server/io/cancel_token.h"
#include "server/policy/audit_log.h"
#include "server/policy/policy_engine.h"
#include "spdlog/spdlog.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/server/fake_socket_ops.h"

namespace sockagent {
namespace {

constexpr size_t kMaxCalls = 64;
constexpr uint32_t kMaxDeadlineMs = 100;
constexpr uint32_t kMaxWaitMs = 20;
constexpr absl::Duration kMaxWaitPerInput = absl::Milliseconds(60);
constexpr size_t kMaxIdentity = 64;

// FakeSocketOps, plus a guard: a Unix socket path (a file, outside the
// private network namespace) is never bound, connected or sent to.
class GuardedSocketOps final : public SocketOps {
 public:
  FakeSocketOps& fake() { return fake_; }

  SysCallInt Socket(int family, int type, int protocol) override {
    return fake_.Socket(family, type, protocol);
  }
  SysCallInt Bind(int fd, const sockaddr* address, socklen_t len) override {
    if (IsUnixPath(address, len)) return {-1, EACCES};
    return fake_.Bind(fd, address, len);
  }
  SysCallInt Listen(int fd, int backlog) override {
    return fake_.Listen(fd, backlog);
  }
  SysCallInt Accept(int fd, sockaddr* address, socklen_t* len) override {
    return fake_.Accept(fd, address, len);
  }
  SysCallInt Connect(int fd, const sockaddr* address, socklen_t len) override {
    if (IsUnixPath(address, len)) return {-1, EACCES};
    return fake_.Connect(fd, address, len);
  }
  SysCallSize Send(int fd, const void* data, size_t len, int flags) override {
    return fake_.Send(fd, data, len, flags);
  }
  SysCallSize SendTo(int fd, const void* data, size_t len, int flags,
                     const sockaddr* address, socklen_t address_len) override {
    if (IsUnixPath(address, address_len)) return {-1, EACCES};
    return fake_.SendTo(fd, data, len, flags, address, address_len);
  }
  SysCallSize Recv(int fd, void* data, size_t len, int flags) override {
    return fake_.Recv(fd, data, len, flags);
  }
  SysCallSize RecvFrom(int fd, void* data, size_t len, int flags,
                       sockaddr* address, socklen_t* address_len) override {
    return fake_.RecvFrom(fd, data, len, flags, address, address_len);
  }
  SysCallInt Shutdown(int fd, int how) override {
    return fake_.Shutdown(fd, how);
  }
  SysCallInt SetSockOpt(int fd, int level, int name, const void* value,
                        socklen_t len) override {
    return fake_.SetSockOpt(fd, level, name, value, len);
  }
  SysCallInt GetSockOpt(int fd, int level, int name, void* value,
                        socklen_t* len) override {
    return fake_.GetSockOpt(fd, level, name, value, len);
  }
  SysCallInt GetSockName(int fd, sockaddr* address, socklen_t* len) override {
    return fake_.GetSockName(fd, address, len);
  }
  SysCallInt GetPeerName(int fd, sockaddr* address, socklen_t* len) override {
    return fake_.GetPeerName(fd, address, len);
  }

 private:
  // A named (non-abstract, non-empty) AF_UNIX address.
  static bool IsUnixPath(const sockaddr* address, socklen_t len) {
    if (address == nullptr || len <= offsetof(sockaddr_un, sun_path)) {
      return false;
    }
    if (address->sa_family != AF_UNIX) return false;
    return reinterpret_cast<const sockaddr_un*>(address)->sun_path[0] != '\0';
  }

  FakeSocketOps fake_;
};

// Calls that may wait: how many started and finished, and whether any
// callback ran twice. Shared with the callbacks, which may outlive nothing
// but still must not touch a dead object.
struct Pending {
  absl::Mutex mu;
  int started ABSL_GUARDED_BY(mu) = 0;
  int finished ABSL_GUARDED_BY(mu) = 0;
  bool repeated ABSL_GUARDED_BY(mu) = false;
  std::vector<std::string> accepted ABSL_GUARDED_BY(mu);
};

// SOCKAGENT_FUZZ_VERBOSE=1 prints every call and its outcome (for checking
// what a seed does).
bool Verbose() {
  static const bool verbose = std::getenv("SOCKAGENT_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

// An errno a kernel could return: `value` modulo 134, 0 giving EPERM.
int RealErrno(int32_t value) {
  const int error = static_cast<int>(static_cast<uint32_t>(value) % 134);
  return error == 0 ? EPERM : error;
}

// Called with p->mu held (absl::Condition).
bool AllFinished(Pending* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return p->started == p->finished;
}

// Statuses AgentCore may return. An INVALID_ARGUMENT names a field
// ("<field>: <what>").
void CheckStatus(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    FUZZ_CHECK(status.message().find(':') != absl::string_view::npos);
  }
  if (status.code() == absl::StatusCode::kInternal) {
    std::fprintf(stderr, "INTERNAL: %s\n", status.ToString().c_str());
  }
  FUZZ_CHECK(status.code() != absl::StatusCode::kInternal);
  FUZZ_CHECK(status.code() != absl::StatusCode::kUnknown ||
             !status.message().empty());
}

class Runner {
 public:
  Runner(GuardedSocketOps& ops, AuditLog& audit) : ops_(ops), audit_(audit) {}

  void Run(const fuzz::Program& program) {
    ops_.fake().ClearFailures();
    PolicyEngine policy;
    std::vector<uint16_t> ports;
    for (uint32_t port : program.protected_ports()) {
      if (ports.size() < 4) ports.push_back(static_cast<uint16_t>(port));
    }
    if (!ports.empty()) policy.SetProtectedPorts(ports);
    AgentCore::Options options;
    options.ops = &ops_;
    options.incarnation = 1;
    options.policy = &policy;
    options.audit = &audit_;
    options.reap_interval = absl::Milliseconds(5);
    options.max_open_sockets =
        std::min<uint32_t>(program.max_open_sockets(), 64);
    absl::StatusOr<std::unique_ptr<AgentCore>> created =
        AgentCore::Create(options);
    FUZZ_CHECK(created.ok());
    core_ = std::move(*created);
    pending_ = std::make_shared<Pending>();
    waited_ = absl::ZeroDuration();

    CallContext first;
    absl::StatusOr<v1::CreateSessionResponse> session =
        core_->CreateSession(first, v1::CreateSessionRequest());
    FUZZ_CHECK(session.ok());
    sessions_.push_back(session->session_id());

    const size_t calls = std::min<size_t>(program.calls_size(), kMaxCalls);
    for (size_t i = 0; i < calls; ++i)
      Apply(program.calls(static_cast<int>(i)));

    // The calls holding sessions end first, as a server's calls end before
    // it is destroyed. Destroying the core ends every waiting call; each
    // callback must have run exactly once by then.
    holds_.clear();
    core_.reset();
    {
      absl::MutexLock lock(&pending_->mu);
      FUZZ_CHECK(!pending_->repeated);
      FUZZ_CHECK(pending_->started == pending_->finished);
    }
    ops_.fake().ClearFailures();
  }

 private:
  // A callback for a call that may wait: counts it, checks the status, and
  // records accepted handles.
  template <typename T>
  Callback<T> Done() {
    auto pending = pending_;
    const std::string name = current_;
    {
      absl::MutexLock lock(&pending->mu);
      ++pending->started;
    }
    auto ran = std::make_shared<std::atomic<bool>>(false);
    return [pending, ran, name](absl::StatusOr<T> result) {
      if (Verbose()) {
        std::fprintf(stderr, "  %s done: %s\n", name.c_str(),
                     result.ok() ? result->ShortDebugString().c_str()
                                 : result.status().ToString().c_str());
      }
      if (!result.ok()) CheckStatus(result.status());
      absl::MutexLock lock(&pending->mu);
      if (ran->exchange(true)) {
        pending->repeated = true;
        return;
      }
      ++pending->finished;
      if constexpr (std::is_same_v<T, v1::AcceptResponse>) {
        if (result.ok()) pending->accepted.push_back(result->handle());
      }
    };
  }

  void CollectAccepted() {
    absl::MutexLock lock(&pending_->mu);
    for (std::string& handle : pending_->accepted) {
      handles_.push_back(std::move(handle));
    }
    pending_->accepted.clear();
  }

  // Waits (bounded) until every started call finished.
  void Wait(uint32_t ms) {
    const absl::Duration budget =
        std::min(absl::Milliseconds(std::min(ms, kMaxWaitMs)),
                 kMaxWaitPerInput - waited_);
    if (budget <= absl::ZeroDuration()) return;
    const absl::Time start = absl::Now();
    {
      absl::MutexLock lock(&pending_->mu);
      pending_->mu.AwaitWithTimeout(
          absl::Condition(&AllFinished, pending_.get()), budget);
    }
    waited_ += absl::Now() - start;
  }

  template <typename Request>
  const Request& WithHandle(const fuzz::Call& call, const Request& request) {
    if (!request.handle().empty() || handles_.empty()) return request;
    auto* copy = new Request(request);
    owned_requests_.emplace_back(copy);
    copy->set_handle(handles_[call.socket() % handles_.size()]);
    return *copy;
  }

  template <typename T>
  void Record(const absl::StatusOr<T>& result) {
    if (Verbose()) {
      std::fprintf(stderr, "  %s: %s\n", current_.c_str(),
                   result.ok() ? result->ShortDebugString().c_str()
                               : result.status().ToString().c_str());
    }
    if (!result.ok()) CheckStatus(result.status());
  }

  void Apply(const fuzz::Call& call) {
    CollectAccepted();
    const auto* field =
        fuzz::Call::descriptor()->FindFieldByNumber(call.request_case());
    current_ = field == nullptr ? "none" : field->name();
    CallContext& ctx = contexts_.emplace_back();
    if (!call.session_id().empty()) {
      ctx.session_id = call.session_id();
    } else {
      ctx.session_id = sessions_[call.session() % sessions_.size()];
    }
    if (!call.identity().empty()) {
      ctx.identity = call.identity().substr(0, kMaxIdentity);
    }
    ctx.peer = "ipv4:127.0.0.1:1";
    if (call.deadline_ms() != 0) {
      ctx.deadline = absl::Now() + absl::Milliseconds(std::min(
                                       call.deadline_ms(), kMaxDeadlineMs));
    }
    CancelToken& token = tokens_.emplace_back();
    ctx.cancel = &token;
    ctx.renew_lease = !call.no_renew();

    // Authorized first, as the gRPC service does for every call.
    auto authorized = [&](const char* method) {
      absl::Status status = core_->Authorize(ctx, method);
      if (!status.ok()) Record(absl::StatusOr<v1::KeepAliveResponse>(status));
      return status.ok();
    };

    switch (call.request_case()) {
      case fuzz::Call::kCreateSession:
        if (authorized("CreateSession")) {
          absl::StatusOr<v1::CreateSessionResponse> created =
              core_->CreateSession(ctx, call.create_session());
          Record(created);
          if (created.ok()) sessions_.push_back(created->session_id());
        }
        break;
      case fuzz::Call::kKeepAlive:
        if (authorized("KeepAlive")) Record(core_->KeepAlive(ctx));
        break;
      case fuzz::Call::kCloseSession:
        if (authorized("CloseSession")) {
          Record(core_->CloseSession(ctx, call.close_session()));
        }
        break;
      case fuzz::Call::kListSessions:
        if (authorized("ListSessions")) Record(core_->ListSessions(ctx));
        break;
      case fuzz::Call::kSocketRequest:
        if (authorized("Socket")) {
          absl::StatusOr<v1::SocketResponse> socket =
              core_->Socket(ctx, call.socket_request());
          Record(socket);
          if (socket.ok()) handles_.push_back(socket->handle());
        }
        break;
      case fuzz::Call::kBind:
        if (authorized("Bind")) {
          Record(core_->Bind(ctx, WithHandle(call, call.bind())));
        }
        break;
      case fuzz::Call::kListen:
        if (authorized("Listen")) {
          Record(core_->Listen(ctx, WithHandle(call, call.listen())));
        }
        break;
      case fuzz::Call::kAccept:
        if (authorized("Accept")) {
          core_->Accept(ctx, WithHandle(call, call.accept()),
                        Done<v1::AcceptResponse>());
        }
        break;
      case fuzz::Call::kConnect:
        if (authorized("Connect")) {
          core_->Connect(ctx, WithHandle(call, call.connect()),
                         Done<v1::ConnectResponse>());
        }
        break;
      case fuzz::Call::kSend:
        if (authorized("Send")) {
          core_->Send(ctx, WithHandle(call, call.send()),
                      Done<v1::SendResponse>());
        }
        break;
      case fuzz::Call::kRecv:
        if (authorized("Recv")) {
          core_->Recv(ctx, WithHandle(call, call.recv()),
                      Done<v1::RecvResponse>());
        }
        break;
      case fuzz::Call::kSendTo:
        if (authorized("SendTo")) {
          core_->SendTo(ctx, WithHandle(call, call.send_to()),
                        Done<v1::SendToResponse>());
        }
        break;
      case fuzz::Call::kRecvFrom:
        if (authorized("RecvFrom")) {
          core_->RecvFrom(ctx, WithHandle(call, call.recv_from()),
                          Done<v1::RecvFromResponse>());
        }
        break;
      case fuzz::Call::kShutdown:
        if (authorized("Shutdown")) {
          Record(core_->Shutdown(ctx, WithHandle(call, call.shutdown())));
        }
        break;
      case fuzz::Call::kClose:
        if (authorized("Close")) {
          Record(core_->Close(ctx, WithHandle(call, call.close())));
        }
        break;
      case fuzz::Call::kGetSockName:
        if (authorized("GetSockName")) {
          Record(
              core_->GetSockName(ctx, WithHandle(call, call.get_sock_name())));
        }
        break;
      case fuzz::Call::kGetPeerName:
        if (authorized("GetPeerName")) {
          Record(
              core_->GetPeerName(ctx, WithHandle(call, call.get_peer_name())));
        }
        break;
      case fuzz::Call::kSetSockOpt:
        if (authorized("SetSockOpt")) {
          Record(core_->SetSockOpt(ctx, WithHandle(call, call.set_sock_opt())));
        }
        break;
      case fuzz::Call::kGetSockOpt:
        if (authorized("GetSockOpt")) {
          Record(core_->GetSockOpt(ctx, WithHandle(call, call.get_sock_opt())));
        }
        break;
      case fuzz::Call::kSetTimeout:
        if (authorized("SetTimeout")) {
          Record(core_->SetTimeout(ctx, WithHandle(call, call.set_timeout())));
        }
        break;
      case fuzz::Call::kGetTimeout:
        if (authorized("GetTimeout")) {
          Record(core_->GetTimeout(ctx, WithHandle(call, call.get_timeout())));
        }
        break;
      case fuzz::Call::kTraffic:
        if (authorized("Traffic")) {
          core_->Traffic(ctx, WithHandle(call, call.traffic()),
                         Done<v1::TrafficResponse>());
        }
        break;
      case fuzz::Call::kAbort:
        if (authorized("Abort")) {
          Record(core_->Abort(ctx, WithHandle(call, call.abort())));
        }
        break;
      case fuzz::Call::kSetFaults:
        if (authorized("SetFaults")) {
          Record(core_->SetFaults(ctx, WithHandle(call, call.set_faults())));
        }
        break;
      case fuzz::Call::kGetHostname:
        if (authorized("GetHostname")) Record(core_->GetHostname());
        break;
      case fuzz::Call::kGetAddrInfo:
        if (authorized("GetAddrInfo")) {
          Record(core_->GetAddrInfo(call.get_addr_info()));
        }
        break;
      case fuzz::Call::kListSockets:
        if (authorized("ListSockets")) Record(core_->ListSockets(ctx));
        break;
      case fuzz::Call::kGetAgentInfo:
        if (authorized("GetAgentInfo")) core_->GetAgentInfo();
        break;
      case fuzz::Call::kLoadPolicy:
        if (core_->policy().Load(call.load_policy()).ok()) {
          core_->RevokeForbidden();
        }
        break;
      case fuzz::Call::kFailNext:
        ops_.fake().FailNext(
            static_cast<FakeSocketOps::Call>(call.fail_next().call() %
                                             FakeSocketOps::kCallCount),
            RealErrno(call.fail_next().error()),
            static_cast<int>(std::min<uint32_t>(call.fail_next().times(), 8)));
        break;
      case fuzz::Call::kWait:
        Wait(call.wait().ms());
        break;
      case fuzz::Call::kReportNextPeer: {
        const v1::Address& peer = call.report_next_peer();
        const int family = peer.has_unix() ? AF_UNIX
                           : peer.inet().host().find(':') != std::string::npos
                               ? AF_INET6
                               : AF_INET;
        absl::StatusOr<SockAddr> address =
            ResolveAddress(peer, family, SOCK_STREAM, "report_next_peer");
        if (address.ok()) {
          ops_.fake().ReportNextPeerAs(address->get(), address->length);
        }
        break;
      }
      case fuzz::Call::kHoldSession: {
        auto pending = pending_;
        auto ran = std::make_shared<std::atomic<bool>>(false);
        SessionEndCallback on_end = [pending, ran](absl::Status status) {
          if (!status.ok()) CheckStatus(status);
          if (ran->exchange(true)) {
            absl::MutexLock lock(&pending->mu);
            pending->repeated = true;
          }
        };
        absl::StatusOr<SessionHold> hold =
            call.hold_session().bind()
                ? core_->BindSession(ctx, std::move(on_end))
                : core_->HoldSession(ctx, std::move(on_end));
        Record(
            hold.ok()
                ? absl::StatusOr<v1::KeepAliveResponse>(v1::KeepAliveResponse())
                : absl::StatusOr<v1::KeepAliveResponse>(hold.status()));
        if (hold.ok()) holds_.push_back(*std::move(hold));
        break;
      }
      case fuzz::Call::kReleaseHold: {
        if (holds_.empty()) break;
        const size_t index = call.release_hold().index() % holds_.size();
        SessionHold hold = std::move(holds_[index]);
        holds_.erase(holds_.begin() + static_cast<std::ptrdiff_t>(index));
        switch (call.release_hold().how()) {
          case fuzz::ReleaseHold::UNBIND:
            core_->UnbindSession(std::move(hold));
            break;
          case fuzz::ReleaseHold::END:
            core_->EndBoundSession(std::move(hold));
            break;
          default:
            hold.Reset();
            break;
        }
        break;
      }
      case fuzz::Call::kDrain:
        core_->Drain();
        break;
      case fuzz::Call::REQUEST_NOT_SET:
        break;
    }
    if (call.cancel()) token.Cancel();
  }

  GuardedSocketOps& ops_;
  AuditLog& audit_;
  std::unique_ptr<AgentCore> core_;
  std::string current_;  // the call being applied, for verbose output
  std::shared_ptr<Pending> pending_;
  absl::Duration waited_;
  std::vector<std::string> sessions_;
  std::vector<SessionHold> holds_;
  std::vector<std::string> handles_;
  // Requests with a substituted handle, contexts and tokens outlive the
  // calls that use them (until the core is gone).
  std::deque<std::unique_ptr<google::protobuf::Message>> owned_requests_;
  std::deque<CallContext> contexts_;
  std::deque<CancelToken> tokens_;
};

}  // namespace
}  // namespace sockagent

namespace sockagent {
namespace {

// The process's open descriptors, as "fd -> target" lines.
std::vector<std::string> OpenFds() {
  std::vector<std::string> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  FUZZ_CHECK(dir != nullptr);
  const int own = ::dirfd(dir);
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.' || std::atoi(entry->d_name) == own) continue;
    char target[256] = {};
    const std::string path = std::string("/proc/self/fd/") + entry->d_name;
    if (::readlink(path.c_str(), target, sizeof(target) - 1) < 0) target[0] = 0;
    fds.push_back(std::string(entry->d_name) + " -> " + target);
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

}  // namespace
}  // namespace sockagent

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  spdlog::set_level(spdlog::level::off);
  sockagent::fuzz::IsolateNetworkOrDie();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* ops = new sockagent::GuardedSocketOps();
  static auto* audit =
      new sockagent::AuditLog(std::fopen("/dev/null", "w"), /*owned=*/true,
                              /*max_lines_per_second=*/1000000);
  sockagent::fuzz::Program program;
  if (!program.ParseFromArray(data, static_cast<int>(size))) return 0;
  const std::vector<std::string> before = sockagent::OpenFds();
  {
    sockagent::Runner runner(*ops, *audit);
    runner.Run(program);
  }
  const std::vector<std::string> after = sockagent::OpenFds();
  if (after != before) {
    std::fprintf(stderr, "descriptors before the input:\n");
    for (const std::string& fd : before)
      std::fprintf(stderr, "  %s\n", fd.c_str());
    std::fprintf(stderr, "descriptors after:\n");
    for (const std::string& fd : after)
      std::fprintf(stderr, "  %s\n", fd.c_str());
    FUZZ_CHECK(after == before);
  }
  return 0;
}
