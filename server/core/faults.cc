#include "server/core/faults.h"

#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sockagent {
namespace {

absl::Status CheckDuration(const google::protobuf::Duration& d,
                           const char* field) {
  if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() >= 1000000000) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be a non-negative duration"));
  }
  return absl::OkStatus();
}

absl::Status CheckPercent(double value, const char* field) {
  // NaN fails both comparisons.
  if (!(value >= 0.0 && value <= 100.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be a percentage from 0 to 100"));
  }
  return absl::OkStatus();
}

bool IsSet(const google::protobuf::Duration& d) {
  return d.seconds() != 0 || d.nanos() != 0;
}

absl::Status CannotApply(const char* field, const char* why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "faults.", field, ": cannot apply to this socket (", why, ")"));
}

}  // namespace

absl::Duration ToAbsl(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status ValidateFaults(const v1::Faults& faults) {
  for (const auto& [duration, field] :
       {std::pair{&faults.send_delay(), "faults.send_delay"},
        std::pair{&faults.slice_delay(), "faults.slice_delay"},
        std::pair{&faults.send_delay_jitter(), "faults.send_delay_jitter"},
        std::pair{&faults.close_delay(), "faults.close_delay"},
        std::pair{&faults.close_after_time(), "faults.close_after_time"}}) {
    if (absl::Status s = CheckDuration(*duration, field); !s.ok()) return s;
  }
  for (const auto& [percent, field] :
       {std::pair{faults.loss_percent(), "faults.loss_percent"},
        std::pair{faults.duplicate_percent(), "faults.duplicate_percent"},
        std::pair{faults.reorder_percent(), "faults.reorder_percent"}}) {
    if (absl::Status s = CheckPercent(percent, field); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckFaultsApply(const v1::Faults& faults, int socket_type) {
  if (socket_type != SOCK_DGRAM) {
    const char* why = "datagram sockets only";
    if (faults.loss_percent() != 0) return CannotApply("loss_percent", why);
    if (faults.duplicate_percent() != 0) {
      return CannotApply("duplicate_percent", why);
    }
    if (faults.reorder_percent() != 0) {
      return CannotApply("reorder_percent", why);
    }
  }
  if (socket_type != SOCK_STREAM) {
    const char* why = "stream sockets only: a datagram is never cut";
    if (faults.slice_bytes() != 0) return CannotApply("slice_bytes", why);
    if (faults.slice_bytes_variation() != 0) {
      return CannotApply("slice_bytes_variation", why);
    }
    if (IsSet(faults.slice_delay())) return CannotApply("slice_delay", why);
    if (IsSet(faults.close_delay())) {
      return CannotApply("close_delay", "stream sockets only: no FIN here");
    }
    if (faults.close_with_reset()) {
      return CannotApply("close_with_reset",
                         "stream sockets only: no RST here");
    }
  }
  if (faults.slice_bytes_variation() != 0 && faults.slice_bytes() == 0) {
    return absl::InvalidArgumentError(
        "faults.slice_bytes_variation: needs faults.slice_bytes");
  }
  if (faults.slice_bytes_variation() >= faults.slice_bytes() &&
      faults.slice_bytes() != 0) {
    return absl::InvalidArgumentError(
        "faults.slice_bytes_variation: must be less than slice_bytes");
  }
  if (IsSet(faults.slice_delay()) && faults.slice_bytes() == 0) {
    return absl::InvalidArgumentError(
        "faults.slice_delay: needs faults.slice_bytes (the slices it "
        "separates)");
  }
  if (IsSet(faults.send_delay_jitter()) &&
      ToAbsl(faults.send_delay_jitter()) > ToAbsl(faults.send_delay())) {
    return absl::InvalidArgumentError(
        "faults.send_delay_jitter: must not exceed send_delay");
  }
  if (faults.close_with_reset() && faults.close_after_bytes() == 0 &&
      !IsSet(faults.close_after_time())) {
    return absl::InvalidArgumentError(
        "faults.close_with_reset: needs close_after_bytes or "
        "close_after_time (when to close)");
  }
  return absl::OkStatus();
}

bool ShapesSends(const v1::Faults& faults) {
  v1::Faults copy = faults;
  copy.clear_stop_reading();
  copy.clear_seed();
  return copy.ByteSizeLong() != 0;
}

uint64_t FaultDraw(uint64_t seed, uint64_t draw) {
  uint64_t z = seed + (draw + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double FaultDice::Uniform() {
  // The top 53 bits as a double in [0, 1).
  return static_cast<double>(Next() >> 11) * 0x1.0p-53;
}

bool FaultDice::Chance(double percent) {
  if (percent <= 0) return false;
  return Uniform() * 100.0 < percent;
}

absl::Duration DrawSendDelay(const v1::Faults& faults, FaultDice& dice) {
  absl::Duration delay = ToAbsl(faults.send_delay());
  if (IsSet(faults.send_delay_jitter())) {
    const absl::Duration jitter = ToAbsl(faults.send_delay_jitter());
    delay += jitter * (2.0 * dice.Uniform() - 1.0);
  }
  return std::max(delay, absl::ZeroDuration());
}

size_t DrawSliceBytes(const v1::Faults& faults, FaultDice& dice) {
  if (faults.slice_bytes() == 0) return 0;
  int64_t size = faults.slice_bytes();
  if (faults.slice_bytes_variation() != 0) {
    const int64_t span = 2 * int64_t{faults.slice_bytes_variation()} + 1;
    size += static_cast<int64_t>(dice.Next() % static_cast<uint64_t>(span)) -
            int64_t{faults.slice_bytes_variation()};
  }
  return static_cast<size_t>(std::max<int64_t>(size, 1));
}

DatagramFate DrawDatagramFate(const v1::Faults& faults, FaultDice& dice) {
  DatagramFate fate;
  fate.lost = dice.Chance(faults.loss_percent());
  if (!fate.lost) {
    fate.duplicated = dice.Chance(faults.duplicate_percent());
    fate.reordered = dice.Chance(faults.reorder_percent());
  }
  fate.delay = DrawSendDelay(faults, dice);
  return fate;
}

size_t RatePacer::MaxChunk(uint64_t rate, size_t want) {
  if (rate == 0) return want;
  return static_cast<size_t>(
      std::min<uint64_t>(want, std::max<uint64_t>(1, rate / kStepsPerSecond)));
}

void RatePacer::Sent(size_t n, uint64_t rate, absl::Time at) {
  if (rate == 0) {
    next_ = absl::InfinitePast();
    return;
  }
  next_ = std::max(next_, at) +
          absl::Seconds(static_cast<double>(n) / static_cast<double>(rate));
}

}  // namespace sockagent
