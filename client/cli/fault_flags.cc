#include "client/cli/fault_flags.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// Every fault flag: its names (the first is the one FaultFlagWords
// writes), its help, and where its text (or on/off) lives.
struct TextFlag {
  const char* names;
  const char* help;
  std::string FaultFlagText::*field;
};
struct OnOffFlag {
  const char* names;
  const char* help;
  bool FaultFlagText::*field;
};

constexpr TextFlag kTextFlags[] = {
    {"--send-delay,--latency", "wait before each send (latency), e.g. 100ms",
     &FaultFlagText::send_delay},
    {"--jitter", "latency varies by up to this much either way",
     &FaultFlagText::jitter},
    {"--rate", "bandwidth: most bytes per second sent, e.g. 1M",
     &FaultFlagText::rate},
    {"--slice-bytes", "slicer: cut sends into slices of this size",
     &FaultFlagText::slice_bytes},
    {"--slice-variation", "slice sizes vary by up to this much either way",
     &FaultFlagText::slice_variation},
    {"--slice-delay", "pause between slices", &FaultFlagText::slice_delay},
    {"--close-after-bytes", "limit_data: close after this many bytes",
     &FaultFlagText::close_after_bytes},
    {"--close-after-time",
     "reset_peer/timeout: close this long after the faults are set",
     &FaultFlagText::close_after_time},
    {"--close-delay", "slow_close: delay a relayed FIN by this much",
     &FaultFlagText::close_delay},
    {"--loss", "datagrams: percent dropped, e.g. 5", &FaultFlagText::loss},
    {"--duplicate", "datagrams: percent sent twice", &FaultFlagText::duplicate},
    {"--reorder", "datagrams: percent held back behind the next one",
     &FaultFlagText::reorder},
    {"--seed", "seed of every random choice (replays exactly)",
     &FaultFlagText::seed},
};

constexpr OnOffFlag kOnOffFlags[] = {
    {"--reset", "close with RST instead of FIN", &FaultFlagText::reset},
    {"--blackhole", "timeout: swallow what would be sent, keep the connection",
     &FaultFlagText::blackhole},
    {"--stop-reading", "stop reading (the peer's window fills)",
     &FaultFlagText::stop_reading},
};

// "--send-delay,--latency" -> "--send-delay".
std::string FirstName(const char* names) {
  return std::string(
      absl::string_view(names).substr(0, absl::string_view(names).find(',')));
}

}  // namespace

bool FaultFlagText::any() const { return !FaultFlagWords(*this).empty(); }

void AddFaultFlags(CLI::App* command, FaultFlagText* flags) {
  for (const TextFlag& flag : kTextFlags) {
    command->add_option(flag.names, flags->*flag.field, flag.help);
  }
  for (const OnOffFlag& flag : kOnOffFlags) {
    command->add_flag(flag.names, flags->*flag.field, flag.help);
  }
}

std::vector<std::string> FaultFlagWords(const FaultFlagText& flags) {
  std::vector<std::string> words;
  for (const TextFlag& flag : kTextFlags) {
    if ((flags.*flag.field).empty()) continue;
    words.push_back(FirstName(flag.names));
    words.push_back(flags.*flag.field);
  }
  for (const OnOffFlag& flag : kOnOffFlags) {
    if (flags.*flag.field) words.push_back(FirstName(flag.names));
  }
  return words;
}

absl::StatusOr<FaultChange> ParseFaultChange(absl::string_view line) {
  std::vector<std::string> words =
      absl::StrSplit(line, absl::ByAnyChar(" \t\r\n"), absl::SkipWhitespace());
  FaultChange change;
  if (words.size() == 1 && words[0] == "clear") {
    change.clear = true;
    return change;
  }
  FaultFlagText text;
  CLI::App parser("faults", "proxy-faults");
  AddFaultFlags(&parser, &text);
  parser.add_option("--direction", change.direction);
  parser.add_flag("--clear", change.clear);
  // CLI11 takes the arguments in reverse order.
  std::vector<std::string> args(words.rbegin(), words.rend());
  try {
    parser.parse(args);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (change.clear && text.any()) {
    return absl::InvalidArgumentError("--clear takes no other fault flag");
  }
  absl::StatusOr<v1::Faults> faults = FaultsFromFlags(text);
  if (!faults.ok()) return faults.status();
  change.faults = *faults;
  if (change.direction != "both" && change.direction != "upstream" &&
      change.direction != "downstream") {
    return absl::InvalidArgumentError(
        absl::StrCat("--direction: \"", change.direction,
                     "\" is not one of both, upstream, downstream"));
  }
  return change;
}

void ApplyFaultChange(const FaultChange& change, v1::Faults* to_upstream,
                      v1::Faults* to_client) {
  const v1::Faults faults = change.clear ? v1::Faults() : change.faults;
  if (change.direction != "downstream") *to_upstream = faults;
  if (change.direction != "upstream") *to_client = faults;
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
