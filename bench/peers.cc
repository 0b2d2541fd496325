#include "peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>

namespace sockbench {
namespace {

void Die(const char* what) {
  std::perror(what);
  std::abort();
}

struct Conn {
  std::string pending;  // echo: bytes read but not yet written back
  uint64_t sent = 0;    // source: bytes sent so far
};

}  // namespace

PeerServer::PeerServer(Mode mode, uint64_t source_bytes)
    : mode_(mode), source_bytes_(source_bytes) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) Die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) <
      0) {
    Die("bind");
  }
  if (::listen(listen_fd_, 4096) < 0) Die("listen");
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || stop_fd_ < 0) Die("epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.fd = stop_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
  thread_ = std::thread([this] { Loop(); });
}

PeerServer::~PeerServer() {
  uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof(one)) < 0) Die("eventfd write");
  thread_.join();
  ::close(listen_fd_);
  ::close(epoll_fd_);
  ::close(stop_fd_);
}

void PeerServer::Loop() {
  static char buffer[256 * 1024];
  std::unordered_map<int, Conn> conns;
  auto close_conn = [&](int fd) {
    ::close(fd);
    conns.erase(fd);
    open_.fetch_sub(1);
  };
  // Returns false if the connection was closed.
  auto pump = [&](int fd, Conn& c) -> bool {
    if (mode_ == Mode::kSource) {
      for (;;) {
        size_t want = sizeof(buffer);
        if (source_bytes_ != 0) {
          if (c.sent >= source_bytes_) {
            ::shutdown(fd, SHUT_WR);
            break;
          }
          want = std::min<uint64_t>(want, source_bytes_ - c.sent);
        }
        ssize_t n = ::send(fd, buffer, want, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN) break;
          close_conn(fd);
          return false;
        }
        c.sent += n;
        sent_.fetch_add(n);
      }
    }
    // Every mode reads: echo writes back, sink and source discard (a source
    // notices the peer's close by reading EOF).
    for (;;) {
      if (mode_ == Mode::kEcho && !c.pending.empty()) {
        ssize_t w =
            ::send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EAGAIN) return true;
          close_conn(fd);
          return false;
        }
        c.pending.erase(0, w);
        if (!c.pending.empty()) return true;
      }
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        close_conn(fd);
        return false;
      }
      if (n < 0) return true;
      if (mode_ == Mode::kEcho) c.pending.append(buffer, n);
    }
  };
  epoll_event events[256];
  for (;;) {
    int n = ::epoll_wait(epoll_fd_, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      Die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd_) {
        for (auto& [cfd, c] : conns) ::close(cfd);
        open_.store(0);
        return;
      }
      if (fd == listen_fd_) {
        for (;;) {
          int cfd = ::accept4(listen_fd_, nullptr, nullptr,
                              SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          int one = 1;
          ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          ev.data.fd = cfd;
          ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, cfd, &ev);
          conns.emplace(cfd, Conn{});
          open_.fetch_add(1);
          pump(cfd, conns[cfd]);
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it != conns.end()) pump(fd, it->second);
    }
  }
}

}  // namespace sockbench
