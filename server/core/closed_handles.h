#ifndef SOCKAGENT_SERVER_CORE_CLOSED_HANDLES_H_
#define SOCKAGENT_SERVER_CORE_CLOSED_HANDLES_H_

// The most recently closed handles of one session, so that a second Close is
// OK and any other call is EBADF, as after Python's close(), while a handle
// the session never had stays NOT_FOUND. Bounded: it keeps the last
// `capacity` handles (older ones are forgotten and read as unknown again),
// each as a 64-bit hash, so a session costs at most about 20 bytes per
// remembered handle. A never-issued handle matches a remembered one only by
// a hash collision (odds about capacity / 2^64). Thread-compatible: the
// owner (Session) guards it.

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace sockagent {

class ClosedHandles {
 public:
  // Handles remembered per session by default.
  static constexpr size_t kDefaultCapacity = 1024;

  explicit ClosedHandles(size_t capacity = kDefaultCapacity)
      : capacity_(capacity) {}

  // Remembers `handle` as closed, forgetting the oldest one past capacity.
  void Add(absl::string_view handle) {
    if (capacity_ == 0) return;
    const uint64_t key = Key(handle);
    if (!keys_.insert(key).second) return;
    order_.push_back(key);
    if (order_.size() > capacity_) {
      keys_.erase(order_.front());
      order_.pop_front();
    }
  }

  bool Contains(absl::string_view handle) const {
    return keys_.contains(Key(handle));
  }

  size_t size() const { return order_.size(); }

 private:
  static uint64_t Key(absl::string_view handle) { return absl::HashOf(handle); }

  const size_t capacity_;
  absl::flat_hash_set<uint64_t> keys_;
  std::deque<uint64_t> order_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_CLOSED_HANDLES_H_
