#include "client/cli/fault_flags.h"

#include <cstdint>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/vocab/quantities.h"
#include "proto/duration_codec.h"
#include "proto/units.h"

namespace sockagent {
namespace cli {
namespace {

using ::sockagent::vocab::ParseByteCount;

absl::Status SetDurationFlag(const std::string& text, const char* flag,
                             google::protobuf::Duration* out) {
  if (text.empty()) return absl::OkStatus();
  absl::StatusOr<absl::Duration> d = ParseDurationText(text);
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", d.status().message()));
  }
  *out = ToProtoDuration(*d);
  return absl::OkStatus();
}

absl::StatusOr<double> ParsePercent(const std::string& text, const char* flag) {
  std::string number = text;
  if (!number.empty() && number.back() == '%') number.pop_back();
  double value = 0;
  if (!absl::SimpleAtod(number, &value) || !(value >= 0 && value <= 100)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": \"", text, "\" is not a percentage from 0 to 100"));
  }
  return value;
}

}  // namespace

bool FaultFlagText::any() const {
  return !send_delay.empty() || !jitter.empty() || !rate.empty() ||
         !slice_bytes.empty() || !slice_variation.empty() ||
         !slice_delay.empty() || !close_after_bytes.empty() ||
         !close_after_time.empty() || !close_delay.empty() || reset ||
         blackhole || stop_reading || !loss.empty() || !duplicate.empty() ||
         !reorder.empty() || !seed.empty();
}

void AddFaultFlags(CLI::App* command, FaultFlagText* flags) {
  command->add_option("--send-delay,--latency", flags->send_delay,
                      "wait before each send (latency), e.g. 100ms");
  command->add_option("--jitter", flags->jitter,
                      "latency varies by up to this much either way");
  command->add_option("--rate", flags->rate,
                      "bandwidth: most bytes per second sent, e.g. 1M");
  command->add_option("--slice-bytes", flags->slice_bytes,
                      "slicer: cut sends into slices of this size");
  command->add_option("--slice-variation", flags->slice_variation,
                      "slice sizes vary by up to this much either way");
  command->add_option("--slice-delay", flags->slice_delay,
                      "pause between slices");
  command->add_option("--close-after-bytes", flags->close_after_bytes,
                      "limit_data: close after this many bytes");
  command->add_option("--close-after-time", flags->close_after_time,
                      "reset_peer/timeout: close this long after the faults "
                      "are set");
  command->add_option("--close-delay", flags->close_delay,
                      "slow_close: delay a relayed FIN by this much");
  command->add_flag("--reset", flags->reset, "close with RST instead of FIN");
  command->add_flag("--blackhole", flags->blackhole,
                    "timeout: swallow what would be sent, keep the "
                    "connection");
  command->add_flag("--stop-reading", flags->stop_reading,
                    "stop reading (the peer's window fills)");
  command->add_option("--loss", flags->loss,
                      "datagrams: percent dropped, e.g. 5");
  command->add_option("--duplicate", flags->duplicate,
                      "datagrams: percent sent twice");
  command->add_option("--reorder", flags->reorder,
                      "datagrams: percent held back behind the next one");
  command->add_option("--seed", flags->seed,
                      "seed of every random choice (replays exactly)");
}

absl::StatusOr<v1::Faults> FaultsFromFlags(const FaultFlagText& flags) {
  v1::Faults faults;
  for (const auto& [text, flag, field] :
       {std::tuple{&flags.send_delay, "--send-delay",
                   faults.mutable_send_delay()},
        std::tuple{&flags.jitter, "--jitter",
                   faults.mutable_send_delay_jitter()},
        std::tuple{&flags.slice_delay, "--slice-delay",
                   faults.mutable_slice_delay()},
        std::tuple{&flags.close_after_time, "--close-after-time",
                   faults.mutable_close_after_time()},
        std::tuple{&flags.close_delay, "--close-delay",
                   faults.mutable_close_delay()}}) {
    if (absl::Status s = SetDurationFlag(*text, flag, field); !s.ok()) {
      return s;
    }
  }
  if (!flags.rate.empty()) {
    absl::StatusOr<uint64_t> rate = ParseByteCount(flags.rate, "--rate");
    if (!rate.ok()) return rate.status();
    faults.set_send_rate_bytes_per_second(*rate);
  }
  for (const auto& [text, flag, setter] :
       {std::tuple{&flags.slice_bytes, "--slice-bytes",
                   &v1::Faults::set_slice_bytes},
        std::tuple{&flags.slice_variation, "--slice-variation",
                   &v1::Faults::set_slice_bytes_variation}}) {
    if (text->empty()) continue;
    absl::StatusOr<uint64_t> n = ParseByteCount(*text, flag);
    if (!n.ok()) return n.status();
    if (*n > UINT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " is too large"));
    }
    (faults.*setter)(static_cast<uint32_t>(*n));
  }
  if (!flags.close_after_bytes.empty()) {
    absl::StatusOr<uint64_t> after =
        ParseByteCount(flags.close_after_bytes, "--close-after-bytes");
    if (!after.ok()) return after.status();
    faults.set_close_after_bytes(*after);
  }
  for (const auto& [text, flag, setter] :
       {std::tuple{&flags.loss, "--loss", &v1::Faults::set_loss_percent},
        std::tuple{&flags.duplicate, "--duplicate",
                   &v1::Faults::set_duplicate_percent},
        std::tuple{&flags.reorder, "--reorder",
                   &v1::Faults::set_reorder_percent}}) {
    if (text->empty()) continue;
    absl::StatusOr<double> percent = ParsePercent(*text, flag);
    if (!percent.ok()) return percent.status();
    (faults.*setter)(*percent);
  }
  if (!flags.seed.empty()) {
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(flags.seed, &seed)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--seed: \"", flags.seed, "\" is not a number"));
    }
    faults.set_seed(seed);
  }
  faults.set_close_with_reset(flags.reset);
  faults.set_blackhole(flags.blackhole);
  faults.set_stop_reading(flags.stop_reading);
  return faults;
}

}  // namespace cli
}  // namespace sockagent
