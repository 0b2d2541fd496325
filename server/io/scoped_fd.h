#ifndef SOCKAGENT_SERVER_IO_SCOPED_FD_H_
#define SOCKAGENT_SERVER_IO_SCOPED_FD_H_

#include <unistd.h>

#include <utility>

namespace sockagent {

// Sole owner of a file descriptor; closes it on destruction. Move-only.
// Not thread-safe: the owner serializes access.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }

  // Closes the current descriptor (if any) and owns `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_IO_SCOPED_FD_H_
