#ifndef SOCKAGENT_SERVER_CORE_FAULTS_H_
#define SOCKAGENT_SERVER_CORE_FAULTS_H_

// The fault vocabulary (v1::Faults) as the decisions a send path takes:
// which faults a socket can obey at all, how long to wait before a send, how
// big a slice is, a datagram's fate, and bandwidth pacing. Every random
// choice is a pure function of the profile's seed and a draw index, so the
// same sends after the same SetFaults replay exactly. No I/O, no gRPC;
// thread-compatible values.

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// The profile's own checks: INVALID_ARGUMENT naming the field for a
// negative or malformed duration, or a percentage outside 0..100.
absl::Status ValidateFaults(const v1::Faults& faults);

// INVALID_ARGUMENT naming the first field set in `faults` that a socket of
// `socket_type` (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET) cannot obey:
// loss/duplicate/reorder on a socket that is not SOCK_DGRAM; slicing,
// close_delay and close_with_reset on one that is not SOCK_STREAM.
absl::Status CheckFaultsApply(const v1::Faults& faults, int socket_type);

// True when `faults` changes anything a send does (every field but
// stop_reading, which shapes receiving).
bool ShapesSends(const v1::Faults& faults);

// The draw-th random 64-bit value of `seed` (splitmix64; index from 0).
uint64_t FaultDraw(uint64_t seed, uint64_t draw);

// A sequence of draws from a profile's seed. Thread-compatible.
class FaultDice {
 public:
  explicit FaultDice(uint64_t seed, uint64_t first_draw = 0)
      : seed_(seed), next_(first_draw) {}
  uint64_t Next() { return FaultDraw(seed_, next_++); }
  // Uniform in [0, 1).
  double Uniform();
  // True with probability percent / 100 (0 never draws).
  bool Chance(double percent);
  uint64_t draws() const { return next_; }

 private:
  uint64_t seed_;
  uint64_t next_;
};

// send_delay with its jitter drawn (never negative). Draws only when
// send_delay_jitter is set.
absl::Duration DrawSendDelay(const v1::Faults& faults, FaultDice& dice);

// The next slice's size: 0 when slice_bytes is off, otherwise slice_bytes
// with its variation drawn, at least 1.
size_t DrawSliceBytes(const v1::Faults& faults, FaultDice& dice);

// What happens to one datagram.
struct DatagramFate {
  bool lost = false;
  bool duplicated = false;
  bool reordered = false;
  absl::Duration delay;
};
// A datagram held back by reorder_percent goes out right after the next
// datagram on its socket, or alone (in order) once it has waited this long.
inline constexpr absl::Duration kReorderHoldLimit = absl::Milliseconds(50);

// Draws loss, then (if kept) duplication and reordering, then the delay.
DatagramFate DrawDatagramFate(const v1::Faults& faults, FaultDice& dice);

absl::Duration ToAbsl(const google::protobuf::Duration& d);

// Bandwidth pacing: sends never run faster than `rate` bytes per second
// (elapsed time >= bytes / rate, less one step of 1/20 s).
class RatePacer {
 public:
  static constexpr int64_t kStepsPerSecond = 20;
  // When the next send may start (InfinitePast: now).
  absl::Time ready_at() const { return next_; }
  // At most this many bytes per send at `rate` (0: unlimited -> `want`).
  static size_t MaxChunk(uint64_t rate, size_t want);
  // `n` bytes went out at `at` under `rate` (0 resets the pacing).
  void Sent(size_t n, uint64_t rate, absl::Time at);

 private:
  absl::Time next_ = absl::InfinitePast();
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_FAULTS_H_
