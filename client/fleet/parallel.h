#ifndef SOCKAGENT_CLIENT_FLEET_PARALLEL_H_
#define SOCKAGENT_CLIENT_FLEET_PARALLEL_H_

// RunParallel: calls fn(0) ... fn(n-1), at most `concurrency` at a time, on
// threads of its own, and returns when every call has returned. The calls
// for one agent of a fleet never wait behind another's: a slow or
// unreachable agent holds one thread, not the rest. `fn` must be
// thread-safe.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

namespace sockagent {
namespace fleet {

inline void RunParallel(size_t n, size_t concurrency,
                        const std::function<void(size_t)>& fn) {
  const size_t threads = std::min(n, std::max<size_t>(concurrency, 1));
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  }
  for (std::thread& worker : workers) worker.join();
}

}  // namespace fleet
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_FLEET_PARALLEL_H_
