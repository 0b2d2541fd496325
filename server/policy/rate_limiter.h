#ifndef SOCKAGENT_SERVER_POLICY_RATE_LIMITER_H_
#define SOCKAGENT_SERVER_POLICY_RATE_LIMITER_H_

// Per-identity rate buckets for the policy's quotas: operations per second
// (a window of one second) and bytes per second in each direction (a token
// bucket that holds at most one second's worth and may go into debt: a call
// is admitted while its bucket is not in debt, and charged what it moved
// afterwards). The buckets are the limiter's state, so every method changes
// it. Thread-safe. No gRPC.

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sockagent {

class RateLimiter {
 public:
  enum class Direction { kSend, kRecv };

  // Counts one operation of `identity` at `now`: false when that makes
  // more than `limit` (> 0) in the current one-second window.
  bool TakeOp(absl::string_view identity, uint32_t limit, absl::Time now);

  // Whether `identity` may move bytes in `direction` at `now` under `rate`
  // (> 0) bytes per second: true unless its bucket is in debt.
  bool AdmitBytes(absl::string_view identity, Direction direction,
                  uint64_t rate, absl::Time now);
  // Takes `bytes` from the bucket (refilled at `rate` up to `now` first).
  void ChargeBytes(absl::string_view identity, Direction direction,
                   uint64_t rate, uint64_t bytes, absl::Time now);

 private:
  struct OpWindow {
    absl::Time start;
    uint32_t count = 0;
  };
  // Bytes a direction may still move; refilled at the rate, capped at one
  // second's worth; negative = in debt.
  struct ByteBucket {
    double tokens = 0;
    absl::Time refilled = absl::InfinitePast();
  };
  static void Refill(ByteBucket& bucket, uint64_t rate, absl::Time now);
  ByteBucket& BucketLocked(absl::string_view identity, Direction direction)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, OpWindow> ops_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ByteBucket> send_bytes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ByteBucket> recv_bytes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_POLICY_RATE_LIMITER_H_
