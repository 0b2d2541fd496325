#include "server/policy/rate_limiter.h"

namespace sockagent {

bool RateLimiter::TakeOp(absl::string_view identity, uint32_t limit,
                         absl::Time now) {
  absl::MutexLock lock(&mu_);
  OpWindow& window = ops_[identity];
  if (now - window.start >= absl::Seconds(1)) {
    window.start = now;
    window.count = 0;
  }
  return ++window.count <= limit;
}

void RateLimiter::Refill(ByteBucket& bucket, uint64_t rate, absl::Time now) {
  const double capacity = static_cast<double>(rate);
  if (bucket.refilled == absl::InfinitePast()) {
    bucket.tokens = capacity;
  } else {
    bucket.tokens += absl::ToDoubleSeconds(now - bucket.refilled) * capacity;
    if (bucket.tokens > capacity) bucket.tokens = capacity;
  }
  bucket.refilled = now;
}

RateLimiter::ByteBucket& RateLimiter::BucketLocked(absl::string_view identity,
                                                   Direction direction) {
  return (direction == Direction::kSend ? send_bytes_ : recv_bytes_)[identity];
}

bool RateLimiter::AdmitBytes(absl::string_view identity, Direction direction,
                             uint64_t rate, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ByteBucket& bucket = BucketLocked(identity, direction);
  Refill(bucket, rate, now);
  return bucket.tokens > 0;
}

void RateLimiter::ChargeBytes(absl::string_view identity, Direction direction,
                              uint64_t rate, uint64_t bytes, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ByteBucket& bucket = BucketLocked(identity, direction);
  Refill(bucket, rate, now);
  bucket.tokens -= static_cast<double>(bytes);
}

}  // namespace sockagent
