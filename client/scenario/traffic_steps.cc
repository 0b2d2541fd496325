// Traffic steps on the agent's Traffic / Abort / SetFaults calls
// (Socket::Traffic, Socket::Abort, Socket::SetFaults).

#include "client/scenario/traffic_steps.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/address.h"
#include "client/scenario/model.h"
#include "client/scenario/step_kinds.h"
#include "client/vocab/words.h"
#include "proto/duration_codec.h"
#include "proto/units.h"

namespace sockagent::scenario {
namespace {

absl::Status Bad(absl::string_view key, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", status.message()));
}

// Reads the optional argument `key` with `parse` into `*out`.
template <typename T, typename Parse>
absl::Status Optional(const StepArgs& args, const char* key, Parse parse,
                      T* out, bool* present = nullptr) {
  auto it = args.find(key);
  if (present != nullptr) *present = it != args.end();
  if (it == args.end()) return absl::OkStatus();
  auto value = parse(it->second);
  if (!value.ok()) return Bad(key, value.status());
  *out = *value;
  return absl::OkStatus();
}

}  // namespace

absl::Status RunTrafficStep(Socket& socket, const StepArgs& args,
                            absl::Time deadline, StepFields* fields) {
  v1::TrafficRequest request;
  const std::string mode = args.count("mode") != 0 ? args.at("mode") : "";
  uint64_t bytes = 0, max_bytes = 0, seed = 0, rate = 0, datagram = 0;
  bool shutdown_at_end = false;
  absl::Duration duration;
  bool has_duration = false;
  std::string pattern = "sequence";
  auto text = [](const std::string& s) -> absl::StatusOr<std::string> {
    return s;
  };
  for (absl::Status s :
       {Optional(args, "bytes", ParseSize, &bytes),
        Optional(args, "max_bytes", ParseSize, &max_bytes),
        Optional(args, "seed", ParseUint, &seed),
        Optional(args, "rate", ParseSize, &rate),
        Optional(args, "datagram_bytes", ParseSize, &datagram),
        Optional(args, "shutdown_write_at_end", ParseBool, &shutdown_at_end),
        Optional(args, "duration", ParseDurationText, &duration, &has_duration),
        Optional(args, "pattern", text, &pattern)}) {
    if (!s.ok()) return s;
  }
  if (has_duration) SetProtoDuration(duration, request.mutable_duration());
  if (mode == "echo") {
    request.mutable_echo()->set_max_bytes(max_bytes);
  } else if (mode == "sink") {
    request.mutable_sink()->set_max_bytes(max_bytes);
  } else if (mode == "source") {
    v1::SourceTraffic* source = request.mutable_source();
    source->set_bytes(bytes);
    source->set_pattern(pattern == "random" ? v1::TRAFFIC_PATTERN_RANDOM
                        : pattern == "zero" ? v1::TRAFFIC_PATTERN_ZERO
                                            : v1::TRAFFIC_PATTERN_SEQUENCE);
    source->set_seed(seed);
    source->set_rate_bytes_per_second(rate);
    source->set_shutdown_write_at_end(shutdown_at_end);
    source->set_datagram_bytes(static_cast<uint32_t>(datagram));
    if (auto it = args.find("destination"); it != args.end()) {
      absl::StatusOr<v1::Address> address = ParseAddress(it->second);
      if (!address.ok()) return Bad("destination", address.status());
      *source->mutable_destination() = *address;
    }
  } else {
    return Bad("mode", absl::InvalidArgumentError(absl::StrCat(
                           "\"", mode, "\": echo, sink or source")));
  }
  absl::StatusOr<v1::TrafficResponse> response =
      socket.Traffic(request, deadline);
  if (!response.ok()) return response.status();
  (*fields)["bytes_received"] = absl::StrCat(response->bytes_received());
  (*fields)["bytes_sent"] = absl::StrCat(response->bytes_sent());
  (*fields)["datagrams_received"] =
      absl::StrCat(response->datagrams_received());
  (*fields)["datagrams_sent"] = absl::StrCat(response->datagrams_sent());
  (*fields)["checksum"] = response->checksum();
  (*fields)["end"] = vocab::TrafficEndName(response->end());
  (*fields)["bytes_per_second"] =
      absl::StrFormat("%.0f", response->bytes_per_second());
  (*fields)["elapsed_ms"] = absl::StrCat(
      absl::ToInt64Milliseconds(FromProtoDuration(response->elapsed())));
  (*fields)["bytes"] = absl::StrCat(
      mode == "source" ? response->bytes_sent() : response->bytes_received());
  return absl::OkStatus();
}

absl::Status RunAbortStep(Socket& socket) { return socket.Abort(); }

absl::StatusOr<v1::Faults> FaultsFromArgs(const StepArgs& args) {
  v1::Faults faults;
  for (const auto& [key, field] :
       {std::pair{"send_delay", faults.mutable_send_delay()},
        std::pair{"send_delay_jitter", faults.mutable_send_delay_jitter()},
        std::pair{"slice_delay", faults.mutable_slice_delay()},
        std::pair{"close_after_time", faults.mutable_close_after_time()},
        std::pair{"close_delay", faults.mutable_close_delay()}}) {
    absl::Duration d;
    bool present = false;
    if (absl::Status s = Optional(args, key, ParseDurationText, &d, &present);
        !s.ok()) {
      return s;
    }
    if (present) SetProtoDuration(d, field);
  }
  for (const auto& [key, setter] :
       {std::pair{"send_rate", &v1::Faults::set_send_rate_bytes_per_second},
        std::pair{"close_after_bytes", &v1::Faults::set_close_after_bytes},
        std::pair{"seed", &v1::Faults::set_seed}}) {
    uint64_t n = 0;
    if (absl::Status s = Optional(
            args, key, std::string(key) == "seed" ? ParseUint : ParseSize, &n);
        !s.ok()) {
      return s;
    }
    (faults.*setter)(n);
  }
  for (const auto& [key, setter] :
       {std::pair{"slice_bytes", &v1::Faults::set_slice_bytes},
        std::pair{"slice_bytes_variation",
                  &v1::Faults::set_slice_bytes_variation}}) {
    uint64_t n = 0;
    if (absl::Status s = Optional(args, key, ParseSize, &n); !s.ok()) return s;
    if (n > UINT32_MAX) {
      return Bad(key, absl::InvalidArgumentError("too large"));
    }
    (faults.*setter)(static_cast<uint32_t>(n));
  }
  for (const auto& [key, setter] :
       {std::pair{"close_with_reset", &v1::Faults::set_close_with_reset},
        std::pair{"blackhole", &v1::Faults::set_blackhole},
        std::pair{"stop_reading", &v1::Faults::set_stop_reading}}) {
    bool on = false;
    if (absl::Status s = Optional(args, key, ParseBool, &on); !s.ok()) {
      return s;
    }
    (faults.*setter)(on);
  }
  for (const auto& [key, setter] :
       {std::pair{"loss_percent", &v1::Faults::set_loss_percent},
        std::pair{"duplicate_percent", &v1::Faults::set_duplicate_percent},
        std::pair{"reorder_percent", &v1::Faults::set_reorder_percent}}) {
    double percent = 0;
    if (absl::Status s = Optional(args, key, ParsePercent, &percent); !s.ok()) {
      return s;
    }
    (faults.*setter)(percent);
  }
  return faults;
}

void AddFaultArgs(StepKind& kind) {
  using T = ArgType;
  kind.Optional("send_delay", T::kDuration)
      .Optional("send_delay_jitter", T::kDuration)
      .Optional("send_rate", T::kSize)
      .Optional("slice_bytes", T::kSize)
      .Optional("slice_bytes_variation", T::kSize)
      .Optional("slice_delay", T::kDuration)
      .Optional("close_after_bytes", T::kSize)
      .Optional("close_after_time", T::kDuration)
      .Optional("close_delay", T::kDuration)
      .Optional("close_with_reset", T::kBool)
      .Optional("blackhole", T::kBool)
      .Optional("stop_reading", T::kBool)
      .Optional("loss_percent", T::kPercent)
      .Optional("duplicate_percent", T::kPercent)
      .Optional("reorder_percent", T::kPercent)
      .Optional("seed", T::kUint);
}

absl::Status RunFaultsStep(Socket& socket, const StepArgs& args) {
  absl::StatusOr<v1::Faults> faults = FaultsFromArgs(args);
  if (!faults.ok()) return faults.status();
  return socket.SetFaults(*faults);
}

namespace {

Outcome Traffic(const StepCall& call) {
  Outcome out;
  out.status =
      RunTrafficStep(call.socket, call.args, call.deadline, &out.fields);
  if (out.status.ok() && out.fields.count("bytes") != 0) {
    out.fields[""] = out.fields["bytes"];
  }
  return out;
}

Outcome Abort(const StepCall& call) {
  Outcome out;
  out.status = RunAbortStep(call.socket);
  out.closed_socket = out.status.ok();
  return out;
}

Outcome Faults(const StepCall& call) {
  Outcome out;
  out.status = RunFaultsStep(call.socket, call.args);
  return out;
}

// A source ends by its byte count or its duration; echo and sink also at
// EOF.
absl::Status SourceHasAnEnd(const Fields& args) {
  auto mode = args.find("mode");
  if (mode != args.end() && mode->second == "source" &&
      args.count("bytes") == 0 && args.count("duration") == 0) {
    return absl::InvalidArgumentError("source needs bytes: or duration:");
  }
  return absl::OkStatus();
}

}  // namespace

void AddTrafficSteps(std::vector<StepKind>* kinds) {
  using T = ArgType;
  kinds->push_back(StepKind("traffic", Traffic)
                       .Required("mode", T::kMode)
                       .Optional("bytes", T::kSize)
                       .Optional("max_bytes", T::kSize)
                       .Optional("duration", T::kDuration)
                       .Optional("pattern", T::kPattern)
                       .Optional("seed", T::kUint)
                       .Optional("rate", T::kSize)
                       .Optional("shutdown_write_at_end", T::kBool)
                       .Optional("datagram_bytes", T::kSize)
                       .Optional("destination", T::kAddress)
                       .OnSocket()
                       .Checked(SourceHasAnEnd));
  kinds->push_back(StepKind("abort", Abort).Shorthand("socket").OnSocket());
  StepKind faults("faults", Faults);
  AddFaultArgs(faults);
  kinds->push_back(std::move(faults.OnSocket()));
}

}  // namespace sockagent::scenario
