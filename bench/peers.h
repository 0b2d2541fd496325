#ifndef SOCKAGENT_BENCH_PEERS_H_
#define SOCKAGENT_BENCH_PEERS_H_
// Local TCP peers for the benchmarks, all on 127.0.0.1 with a kernel-chosen
// port: an echo server, a sink (reads and discards) and a source (sends up to
// a byte budget per connection). One epoll thread per server; every
// connection is edge-triggered and non-blocking. Thread-safe accessors; the
// destructor stops the thread and closes every descriptor.
#include <atomic>
#include <cstdint>
#include <thread>

namespace sockbench {

class PeerServer {
 public:
  enum class Mode { kEcho, kSink, kSource };
  // `source_bytes`: what a kSource connection sends before closing its write
  // side (0: until the peer goes away).
  explicit PeerServer(Mode mode, uint64_t source_bytes = 0);
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;
  ~PeerServer();

  int port() const { return port_; }
  // Connections accepted and not yet closed.
  int64_t open_connections() const { return open_.load(); }
  uint64_t bytes_sent() const { return sent_.load(); }

 private:
  void Loop();

  const Mode mode_;
  const uint64_t source_bytes_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  int port_ = 0;
  std::atomic<int64_t> open_{0};
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

}  // namespace sockbench

#endif  // SOCKAGENT_BENCH_PEERS_H_
