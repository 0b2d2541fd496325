#ifndef SOCKAGENT_SERVER_IO_SOCKET_OPS_H_
#define SOCKAGENT_SERVER_IO_SOCKET_OPS_H_

// The system-call seam. Everything the agent does to a socket goes through a
// SocketOps, so tests can inject an errno that a real kernel will not produce
// on demand (EMFILE, ENOBUFS, EINTR storms). Results carry the raw errno;
// callers turn it into a status (OsError) only where it leaves the I/O layer,
// which keeps the would-block path free of allocations.

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>

namespace sockagent {

// A system call's return value and, when it failed, its errno.
template <typename T>
struct SysCallResult {
  T value;
  int error;  // 0 on success
  bool ok() const { return error == 0; }
  bool would_block() const { return error == EAGAIN || error == EWOULDBLOCK; }
};
using SysCallInt = SysCallResult<int>;
using SysCallSize = SysCallResult<ssize_t>;

// Thread-safe; implementations hold no state of their own. Descriptors are
// created SOCK_NONBLOCK | SOCK_CLOEXEC; sends always add MSG_NOSIGNAL.
class SocketOps {
 public:
  virtual ~SocketOps() = default;

  virtual SysCallInt Socket(int family, int type, int protocol) = 0;
  virtual SysCallInt Bind(int fd, const sockaddr* address, socklen_t len) = 0;
  virtual SysCallInt Listen(int fd, int backlog) = 0;
  virtual SysCallInt Accept(int fd, sockaddr* address, socklen_t* len) = 0;
  virtual SysCallInt Connect(int fd, const sockaddr* address,
                             socklen_t len) = 0;
  virtual SysCallSize Send(int fd, const void* data, size_t len, int flags) = 0;
  virtual SysCallSize SendTo(int fd, const void* data, size_t len, int flags,
                             const sockaddr* address,
                             socklen_t address_len) = 0;
  virtual SysCallSize Recv(int fd, void* data, size_t len, int flags) = 0;
  virtual SysCallSize RecvFrom(int fd, void* data, size_t len, int flags,
                               sockaddr* address, socklen_t* address_len) = 0;
  virtual SysCallInt Shutdown(int fd, int how) = 0;
  virtual SysCallInt SetSockOpt(int fd, int level, int name, const void* value,
                                socklen_t len) = 0;
  virtual SysCallInt GetSockOpt(int fd, int level, int name, void* value,
                                socklen_t* len) = 0;
  virtual SysCallInt GetSockName(int fd, sockaddr* address, socklen_t* len) = 0;
  virtual SysCallInt GetPeerName(int fd, sockaddr* address, socklen_t* len) = 0;
};

// The real kernel. Retries EINTR.
class PosixSocketOps final : public SocketOps {
 public:
  // A process-wide instance.
  static PosixSocketOps& Get();

  SysCallInt Socket(int family, int type, int protocol) override;
  SysCallInt Bind(int fd, const sockaddr* address, socklen_t len) override;
  SysCallInt Listen(int fd, int backlog) override;
  SysCallInt Accept(int fd, sockaddr* address, socklen_t* len) override;
  SysCallInt Connect(int fd, const sockaddr* address, socklen_t len) override;
  SysCallSize Send(int fd, const void* data, size_t len, int flags) override;
  SysCallSize SendTo(int fd, const void* data, size_t len, int flags,
                     const sockaddr* address, socklen_t address_len) override;
  SysCallSize Recv(int fd, void* data, size_t len, int flags) override;
  SysCallSize RecvFrom(int fd, void* data, size_t len, int flags,
                       sockaddr* address, socklen_t* address_len) override;
  SysCallInt Shutdown(int fd, int how) override;
  SysCallInt SetSockOpt(int fd, int level, int name, const void* value,
                        socklen_t len) override;
  SysCallInt GetSockOpt(int fd, int level, int name, void* value,
                        socklen_t* len) override;
  SysCallInt GetSockName(int fd, sockaddr* address, socklen_t* len) override;
  SysCallInt GetPeerName(int fd, sockaddr* address, socklen_t* len) override;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_IO_SOCKET_OPS_H_
