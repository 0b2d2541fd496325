#include "server/service/connection_limiter.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace sockagent {
namespace {

constexpr absl::Duration kSweepInterval = absl::Milliseconds(5);

// "a.b.c.d:port" or "[v6]:port"; IPv4-mapped IPv6 folded to IPv4.
std::string KeyOf(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(v4->sin_port));
  }
  if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      ::inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, sizeof(text));
      return absl::StrCat(text, ":", ntohs(v6->sin6_port));
    }
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return absl::StrCat("[", text, "]:", ntohs(v6->sin6_port));
  }
  return "";
}

std::string PercentDecode(absl::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    int value = 0;
    if (in[i] == '%' && i + 2 < in.size() &&
        absl::SimpleHexAtoi(in.substr(i + 1, 2), &value)) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// Splits "host:port" / "[v6]:port" (optionally "ipv4:" / "ipv6:" / "dns:"
// prefixed).
bool SplitHostPort(absl::string_view address, std::string* host,
                   std::string* port) {
  for (absl::string_view prefix : {"ipv4:", "ipv6:", "dns:"}) {
    if (absl::ConsumePrefix(&address, prefix)) break;
  }
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return false;
    }
    *host = std::string(address.substr(1, close - 1));
    *port = std::string(address.substr(close + 2));
    return true;
  }
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return false;
  *host = std::string(address.substr(0, colon));
  *port = std::string(address.substr(colon + 1));
  return true;
}

}  // namespace

std::string ConnectionLimiter::PeerKey(absl::string_view grpc_peer) {
  std::string host, port;
  if (!SplitHostPort(PercentDecode(grpc_peer), &host, &port)) return "";
  uint32_t port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number > 65535) return "";
  sockaddr_storage storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port_number));
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port_number));
  } else {
    return "";
  }
  return KeyOf(reinterpret_cast<const sockaddr*>(&storage));
}

absl::StatusOr<std::unique_ptr<ConnectionLimiter>> ConnectionLimiter::Listen(
    const std::string& address, Options options) {
  std::string host, port;
  if (!SplitHostPort(address, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen: '", address, "' is not host:port"));
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty() || host == "*") host = "::";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* results = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &results);
      rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", ::gai_strerror(rc)));
  }
  const addrinfo* chosen = results;
  for (const addrinfo* it = results; it != nullptr; it = it->ai_next) {
    if (it->ai_family == AF_INET) {
      chosen = it;
      break;
    }
  }
  const int fd = ::socket(chosen->ai_family,
                          SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int error = fd < 0 ? errno : 0;
  if (fd >= 0) {
    const int one = 1, zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (chosen->ai_family == AF_INET6) {
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (::bind(fd, chosen->ai_addr, chosen->ai_addrlen) != 0 ||
        ::listen(fd, SOMAXCONN) != 0) {
      error = errno;
    }
  }
  ::freeaddrinfo(results);
  if (error != 0) {
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", std::strerror(error),
                     " (the address is in use or not local to this host)"));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  const int bound_port =
      bound.ss_family == AF_INET
          ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
          : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  const int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    const int wake_error = errno;
    ::close(fd);
    return absl::InternalError(
        absl::StrCat("eventfd: ", std::strerror(wake_error)));
  }
  return std::unique_ptr<ConnectionLimiter>(
      new ConnectionLimiter(fd, wake, bound_port, options));
}

ConnectionLimiter::~ConnectionLimiter() {
  Stop();
  ::close(wake_fd_);
}

void ConnectionLimiter::Start(
    std::shared_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor) {
  acceptor_ = std::move(acceptor);
  thread_ = std::thread([this] { AcceptLoop(); });
}

void ConnectionLimiter::Stop() {
  if (stopped_.exchange(true)) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
}

bool ConnectionLimiter::OverCap(absl::string_view grpc_peer) const {
  if (over_cap_open_.load(std::memory_order_acquire) == 0) return false;
  const std::string key = PeerKey(grpc_peer);
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(key);
  return it != peers_.end() && it->second;
}

size_t ConnectionLimiter::open_connections() const {
  absl::MutexLock lock(&mu_);
  SweepLocked();
  return connections_.size();
}

void ConnectionLimiter::SweepLocked() const {
  size_t kept = 0;
  for (size_t i = 0; i < connections_.size(); ++i) {
    Connection& c = connections_[i];
    struct stat st {};
    if (::fstat(c.fd, &st) != 0 || st.st_ino != c.inode ||
        !S_ISSOCK(st.st_mode)) {
      auto it = peers_.find(c.peer);
      if (it != peers_.end()) peers_.erase(it);
      if (c.over_cap) over_cap_open_.fetch_sub(1);
      continue;
    }
    if (kept != i) connections_[kept] = std::move(c);
    ++kept;
  }
  connections_.resize(kept);
}

void ConnectionLimiter::AcceptLoop() {
  LogRateLimiter refused_log(absl::Seconds(10));
  // Out of descriptors, accept is retried every 100 ms: one line per 10 s.
  LogRateLimiter emfile_log(absl::Seconds(10));
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stopped_.load()) {
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) break;
    for (;;) {
      sockaddr_storage peer{};
      socklen_t length = sizeof(peer);
      const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer),
                               &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) {
          const int error = errno;
          if (uint64_t times = emfile_log.Allow(absl::Now()); times > 0) {
            spdlog::warn(
                "accept: {} ({} time(s) since the last warning); new "
                "connections wait in the backlog; retrying every 100 ms "
                "(raise RLIMIT_NOFILE or --fd-reserve)",
                std::strerror(error), times);
          }
          ::poll(nullptr, 0, 100);
        }
        break;
      }
      // gRPC sets TCP_NODELAY only on connections it accepts itself; without
      // it a response right after another (a CloseSession answer and the
      // HoldSession's end) waits for the client's delayed ACK (40 ms).
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (options_.tcp_user_timeout > absl::ZeroDuration()) {
        const unsigned int ms = static_cast<unsigned int>(
            absl::ToInt64Milliseconds(options_.tcp_user_timeout));
        ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
      }
      Connection connection;
      connection.fd = fd;
      connection.peer = KeyOf(reinterpret_cast<sockaddr*>(&peer));
      struct stat st {};
      ::fstat(fd, &st);
      connection.inode = st.st_ino;
      bool refuse = false;
      {
        absl::MutexLock lock(&mu_);
        // Entries gRPC closed only overstate the count, so the list is swept
        // (one fstat per connection) only when it reaches the cap, and then
        // at most every kSweepInterval: a flood of connections at the cap
        // costs O(1) per accept in between.
        const size_t threshold =
            options_.max_connections != 0 ? options_.max_connections : 1024;
        const absl::Time now = absl::Now();
        if (connections_.size() >= threshold &&
            now - last_sweep_ >= kSweepInterval) {
          SweepLocked();
          last_sweep_ = now;
        }
        const size_t open = connections_.size();
        const uint32_t cap = options_.max_connections;
        if (cap != 0 && open >= cap) {
          if (open >= static_cast<size_t>(cap) + options_.health_headroom) {
            refuse = true;
          } else {
            connection.over_cap = true;
          }
        }
        if (!refuse) {
          peers_[connection.peer] = connection.over_cap;
          if (connection.over_cap) over_cap_open_.fetch_add(1);
          connections_.push_back(connection);
        }
      }
      if (refuse) {
        ++refused_;  // counted before the client can see the close
        ::close(fd);
        if (uint64_t times = refused_log.Allow(absl::Now()); times > 0) {
          spdlog::warn(
              "max_connections: {} connection(s) refused (cap {} + health "
              "headroom {} reached) since the last warning",
              times, options_.max_connections, options_.health_headroom);
        }
        continue;
      }
      if (connection.over_cap) ++restricted_;
      grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters
          params;
      params.listener_fd = listen_fd_;
      params.fd = fd;
      acceptor_->HandleNewConnection(&params);
    }
  }
}

}  // namespace sockagent
