#ifndef SOCKAGENT_TESTS_FUZZ_FUZZ_UTIL_H_
#define SOCKAGENT_TESTS_FUZZ_FUZZ_UTIL_H_

// Helpers shared by the fuzz targets: a private network namespace (so that
// nothing a fuzz input asks for can leave the process's own loopback), a
// memory-backed file for parsers that read a path, and literal socket
// addresses. Single-threaded use.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <net/if.h>

namespace sockagent::fuzz {

// Moves the process into a new network namespace that has only a loopback
// interface (brought up), or exits: a fuzz target that may open sockets or
// resolve names never runs in the machine's own namespace. Needs root, or
// unprivileged user namespaces. Call before any thread starts.
inline void IsolateNetworkOrDie() {
  if (::unshare(CLONE_NEWNET) != 0 &&
      ::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
    std::fprintf(stderr,
                 "fuzz: cannot enter a private network namespace (%s); "
                 "refusing to run against the machine's network\n",
                 std::strerror(errno));
    std::exit(1);
  }
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (fd < 0 || ::ioctl(fd, SIOCGIFFLAGS, &request) != 0) {
    std::perror("fuzz: SIOCGIFFLAGS lo");
    std::exit(1);
  }
  request.ifr_flags |= IFF_UP;
  if (::ioctl(fd, SIOCSIFFLAGS, &request) != 0) {
    std::perror("fuzz: SIOCSIFFLAGS lo");
    std::exit(1);
  }
  ::close(fd);
  struct if_nameindex* names = ::if_nameindex();
  for (struct if_nameindex* it = names; it != nullptr && it->if_index != 0;
       ++it) {
    if (std::strcmp(it->if_name, "lo") != 0) {
      std::fprintf(stderr, "fuzz: unexpected interface %s in the namespace\n",
                   it->if_name);
      std::exit(1);
    }
  }
  if (names != nullptr) ::if_freenameindex(names);
}

// A file in memory (memfd) reachable by path, for parsers that read a file.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(::memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) {
      std::perror("fuzz: memfd_create");
      std::exit(1);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  // Replaces the contents with `text`.
  void Write(const std::string& text) const {
    if (::ftruncate(fd_, 0) != 0 ||
        ::pwrite(fd_, text.data(), text.size(), 0) !=
            static_cast<ssize_t>(text.size())) {
      std::perror("fuzz: memfd write");
      std::exit(1);
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// A literal IP socket address.
struct Ip {
  sockaddr_storage storage{};
  socklen_t length = 0;

  static Ip V4(const char* text, uint16_t port) {
    Ip ip;
    auto* sin = reinterpret_cast<sockaddr_in*>(&ip.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (::inet_pton(AF_INET, text, &sin->sin_addr) != 1) std::abort();
    ip.length = sizeof(sockaddr_in);
    return ip;
  }
  static Ip V6(const char* text, uint16_t port) {
    Ip ip;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ip.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (::inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) std::abort();
    ip.length = sizeof(sockaddr_in6);
    return ip;
  }
  const sockaddr* get() const {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
};

}  // namespace sockagent::fuzz

#endif  // SOCKAGENT_TESTS_FUZZ_FUZZ_UTIL_H_
