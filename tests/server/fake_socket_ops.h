#ifndef SOCKAGENT_TESTS_SERVER_FAKE_SOCKET_OPS_H_
#define SOCKAGENT_TESTS_SERVER_FAKE_SOCKET_OPS_H_

// A SocketOps for tests: every call goes to the real kernel
// (PosixSocketOps::Get()) unless the test asked for the next call(s) of that
// kind to fail with a chosen errno, which a real kernel will not produce on
// demand (EMFILE, ECONNRESET on a healthy socket). A forced failure does not
// reach the kernel. Thread-safe: the engine thread and the test thread may
// call it at once.

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/io/socket_ops.h"

namespace sockagent {

class FakeSocketOps final : public SocketOps {
 public:
  enum class Call {
    kSocket,
    kBind,
    kListen,
    kAccept,
    kConnect,
    kSend,
    kSendTo,
    kRecv,
    kRecvFrom,
    kShutdown,
    kSetSockOpt,
    kGetSockOpt,
    kGetSockName,
    kGetPeerName,
  };
  static constexpr size_t kCallCount = 14;

  // The next `times` calls of kind `call` fail with `error` (after any
  // failures queued earlier for that kind).
  void FailNext(Call call, int error, int times = 1) {
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < times; ++i) failures_[Index(call)].push_back(error);
  }

  // Forgets every queued failure.
  void ClearFailures() {
    absl::MutexLock lock(&mu_);
    for (auto& queue : failures_) queue.clear();
  }

  // How many calls of kind `call` were made, forced failures included.
  int calls(Call call) const {
    absl::MutexLock lock(&mu_);
    return calls_[Index(call)];
  }

  // Failures queued for `call` and not used yet.
  size_t pending_failures(Call call) const {
    absl::MutexLock lock(&mu_);
    return failures_[Index(call)].size();
  }

  SysCallInt Socket(int family, int type, int protocol) override {
    if (int error = Take(Call::kSocket)) return {-1, error};
    return real().Socket(family, type, protocol);
  }
  SysCallInt Bind(int fd, const sockaddr* address, socklen_t len) override {
    if (int error = Take(Call::kBind)) return {-1, error};
    return real().Bind(fd, address, len);
  }
  SysCallInt Listen(int fd, int backlog) override {
    if (int error = Take(Call::kListen)) return {-1, error};
    return real().Listen(fd, backlog);
  }
  SysCallInt Accept(int fd, sockaddr* address, socklen_t* len) override {
    if (int error = Take(Call::kAccept)) return {-1, error};
    return real().Accept(fd, address, len);
  }
  SysCallInt Connect(int fd, const sockaddr* address, socklen_t len) override {
    if (int error = Take(Call::kConnect)) return {-1, error};
    return real().Connect(fd, address, len);
  }
  SysCallSize Send(int fd, const void* data, size_t len, int flags) override {
    if (int error = Take(Call::kSend)) return {-1, error};
    return real().Send(fd, data, len, flags);
  }
  SysCallSize SendTo(int fd, const void* data, size_t len, int flags,
                     const sockaddr* address, socklen_t address_len) override {
    if (int error = Take(Call::kSendTo)) return {-1, error};
    return real().SendTo(fd, data, len, flags, address, address_len);
  }
  SysCallSize Recv(int fd, void* data, size_t len, int flags) override {
    if (int error = Take(Call::kRecv)) return {-1, error};
    return real().Recv(fd, data, len, flags);
  }
  SysCallSize RecvFrom(int fd, void* data, size_t len, int flags,
                       sockaddr* address, socklen_t* address_len) override {
    if (int error = Take(Call::kRecvFrom)) return {-1, error};
    return real().RecvFrom(fd, data, len, flags, address, address_len);
  }
  SysCallInt Shutdown(int fd, int how) override {
    if (int error = Take(Call::kShutdown)) return {-1, error};
    return real().Shutdown(fd, how);
  }
  SysCallInt SetSockOpt(int fd, int level, int name, const void* value,
                        socklen_t len) override {
    if (int error = Take(Call::kSetSockOpt)) return {-1, error};
    return real().SetSockOpt(fd, level, name, value, len);
  }
  SysCallInt GetSockOpt(int fd, int level, int name, void* value,
                        socklen_t* len) override {
    if (int error = Take(Call::kGetSockOpt)) return {-1, error};
    return real().GetSockOpt(fd, level, name, value, len);
  }
  SysCallInt GetSockName(int fd, sockaddr* address, socklen_t* len) override {
    if (int error = Take(Call::kGetSockName)) return {-1, error};
    return real().GetSockName(fd, address, len);
  }
  SysCallInt GetPeerName(int fd, sockaddr* address, socklen_t* len) override {
    if (int error = Take(Call::kGetPeerName)) return {-1, error};
    SysCallInt rc = real().GetPeerName(fd, address, len);
    absl::MutexLock lock(&mu_);
    if (rc.ok() && next_peer_.has_value()) {
      // What a NAT or a kernel quirk could make of the peer.
      std::memcpy(address, &next_peer_->first,
                  std::min<socklen_t>(*len, next_peer_->second));
      *len = next_peer_->second;
      next_peer_.reset();
    }
    return rc;
  }

  // The next successful GetPeerName reports `address` instead of the real
  // peer.
  void ReportNextPeerAs(const sockaddr* address, socklen_t len) {
    absl::MutexLock lock(&mu_);
    sockaddr_storage storage{};
    std::memcpy(&storage, address, len);
    next_peer_.emplace(storage, len);
  }

 private:
  static size_t Index(Call call) { return static_cast<size_t>(call); }
  static SocketOps& real() { return PosixSocketOps::Get(); }

  // Counts the call; returns the errno to fail it with, or 0 to pass it on.
  int Take(Call call) {
    absl::MutexLock lock(&mu_);
    ++calls_[Index(call)];
    std::deque<int>& queue = failures_[Index(call)];
    if (queue.empty()) return 0;
    const int error = queue.front();
    queue.pop_front();
    return error;
  }

  mutable absl::Mutex mu_;
  std::array<std::deque<int>, kCallCount> failures_ ABSL_GUARDED_BY(mu_);
  std::optional<std::pair<sockaddr_storage, socklen_t>> next_peer_
      ABSL_GUARDED_BY(mu_);
  std::array<int, kCallCount> calls_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace sockagent

#endif  // SOCKAGENT_TESTS_SERVER_FAKE_SOCKET_OPS_H_
