// udp_floor_relay: the floor of a user-space UDP relay, for
// bench/relay_bench.sh. One thread, one poll() over two non-blocking
// sockets, one recvfrom() and one send() per datagram, no checks, no
// faults, no figures: what any relay must at least do per datagram, so the
// agent's `sockctl proxy --udp` can be read against it. Serves one client
// (the last source address seen), which is what iperf3's UDP test needs.
//
//   udp_floor_relay LISTEN_PORT UPSTREAM_PORT   (both on 127.0.0.1)
//
// Runs until killed. Loopback only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  return address;
}

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: udp_floor_relay LISTEN_PORT UPSTREAM_PORT\n");
    return 2;
  }
  const int listen_port = std::atoi(argv[1]);
  const int upstream_port = std::atoi(argv[2]);
  if (listen_port <= 0 || listen_port > 65535 || upstream_port <= 0 ||
      upstream_port > 65535) {
    std::fprintf(stderr, "udp_floor_relay: ports must be 1-65535\n");
    return 2;
  }
  const int front =
      ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const sockaddr_in listen_address = Loopback(listen_port);
  if (front < 0 ||
      ::bind(front, reinterpret_cast<const sockaddr*>(&listen_address),
             sizeof(listen_address)) != 0) {
    std::perror("udp_floor_relay: bind");
    return 1;
  }
  const int back =
      ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const sockaddr_in upstream = Loopback(upstream_port);
  if (back < 0 || ::connect(back, reinterpret_cast<const sockaddr*>(&upstream),
                            sizeof(upstream)) != 0) {
    std::perror("udp_floor_relay: connect");
    return 1;
  }
  std::vector<char> buffer(65536);
  sockaddr_in client{};
  socklen_t client_length = 0;
  for (;;) {
    pollfd fds[2] = {{front, POLLIN, 0}, {back, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return 1;
    // Clients -> upstream, until the socket is drained.
    for (;;) {
      sockaddr_in from{};
      socklen_t length = sizeof(from);
      const ssize_t n = ::recvfrom(front, buffer.data(), buffer.size(), 0,
                                   reinterpret_cast<sockaddr*>(&from), &length);
      if (n < 0) {
        if (WouldBlock()) break;
        continue;
      }
      client = from;
      client_length = length;
      ::send(back, buffer.data(), static_cast<size_t>(n), MSG_NOSIGNAL);
    }
    // Upstream -> the client; ECONNREFUSED from an ICMP error is skipped.
    for (;;) {
      const ssize_t n = ::recv(back, buffer.data(), buffer.size(), 0);
      if (n < 0) {
        if (WouldBlock()) break;
        continue;
      }
      if (client_length == 0) continue;
      ::sendto(front, buffer.data(), static_cast<size_t>(n), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&client), client_length);
    }
  }
}
