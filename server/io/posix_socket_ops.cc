#include <sys/socket.h>

#include <cerrno>

#include "server/io/socket_ops.h"

namespace sockagent {
namespace {

// Runs `call` until it is not interrupted by a signal.
template <typename T, typename Call>
SysCallResult<T> Retry(Call call) {
  for (;;) {
    T value = call();
    if (value >= 0) return {value, 0};
    if (errno != EINTR) return {value, errno};
  }
}

}  // namespace

PosixSocketOps& PosixSocketOps::Get() {
  static PosixSocketOps* const ops = new PosixSocketOps();
  return *ops;
}

SysCallInt PosixSocketOps::Socket(int family, int type, int protocol) {
  return Retry<int>([&] {
    return ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  });
}

SysCallInt PosixSocketOps::Bind(int fd, const sockaddr* address,
                                socklen_t len) {
  return Retry<int>([&] { return ::bind(fd, address, len); });
}

SysCallInt PosixSocketOps::Listen(int fd, int backlog) {
  return Retry<int>([&] { return ::listen(fd, backlog); });
}

SysCallInt PosixSocketOps::Accept(int fd, sockaddr* address, socklen_t* len) {
  return Retry<int>([&] {
    return ::accept4(fd, address, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  });
}

SysCallInt PosixSocketOps::Connect(int fd, const sockaddr* address,
                                   socklen_t len) {
  // A non-blocking connect interrupted by a signal keeps going in the
  // kernel; calling connect() again would report EALREADY, so report the
  // attempt as in progress instead of retrying.
  int rc = ::connect(fd, address, len);
  if (rc == 0) return {0, 0};
  if (errno == EINTR) return {-1, EINPROGRESS};
  return {rc, errno};
}

SysCallSize PosixSocketOps::Send(int fd, const void* data, size_t len,
                                 int flags) {
  return Retry<ssize_t>(
      [&] { return ::send(fd, data, len, flags | MSG_NOSIGNAL); });
}

SysCallSize PosixSocketOps::SendTo(int fd, const void* data, size_t len,
                                   int flags, const sockaddr* address,
                                   socklen_t address_len) {
  return Retry<ssize_t>([&] {
    return ::sendto(fd, data, len, flags | MSG_NOSIGNAL, address, address_len);
  });
}

SysCallSize PosixSocketOps::Recv(int fd, void* data, size_t len, int flags) {
  return Retry<ssize_t>([&] { return ::recv(fd, data, len, flags); });
}

SysCallSize PosixSocketOps::RecvFrom(int fd, void* data, size_t len, int flags,
                                     sockaddr* address,
                                     socklen_t* address_len) {
  return Retry<ssize_t>(
      [&] { return ::recvfrom(fd, data, len, flags, address, address_len); });
}

SysCallInt PosixSocketOps::Shutdown(int fd, int how) {
  return Retry<int>([&] { return ::shutdown(fd, how); });
}

SysCallInt PosixSocketOps::SetSockOpt(int fd, int level, int name,
                                      const void* value, socklen_t len) {
  return Retry<int>([&] { return ::setsockopt(fd, level, name, value, len); });
}

SysCallInt PosixSocketOps::GetSockOpt(int fd, int level, int name, void* value,
                                      socklen_t* len) {
  return Retry<int>([&] { return ::getsockopt(fd, level, name, value, len); });
}

SysCallInt PosixSocketOps::GetSockName(int fd, sockaddr* address,
                                       socklen_t* len) {
  return Retry<int>([&] { return ::getsockname(fd, address, len); });
}

SysCallInt PosixSocketOps::GetPeerName(int fd, sockaddr* address,
                                       socklen_t* len) {
  return Retry<int>([&] { return ::getpeername(fd, address, len); });
}

}  // namespace sockagent
