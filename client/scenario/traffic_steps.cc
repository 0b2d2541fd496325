// Traffic steps on the agent's Traffic / Abort / SetFaults calls
// (Socket::Traffic, Socket::Abort, Socket::SetFaults).

#include "client/scenario/traffic_steps.h"

#include <cstdint>
#include <string>

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

absl::Status RunFaultsStep(Socket& socket, const StepArgs& args) {
  v1::Faults faults;
  absl::Duration send_delay, slice_delay;
  bool has_send_delay = false, has_slice_delay = false;
  uint64_t rate = 0, slice = 0, close_after = 0;
  bool reset = false, stop_reading = false;
  for (absl::Status s :
       {Optional(args, "send_delay", ParseDurationText, &send_delay,
                 &has_send_delay),
        Optional(args, "slice_delay", ParseDurationText, &slice_delay,
                 &has_slice_delay),
        Optional(args, "send_rate", ParseSize, &rate),
        Optional(args, "slice_bytes", ParseSize, &slice),
        Optional(args, "close_after_bytes", ParseSize, &close_after),
        Optional(args, "close_with_reset", ParseBool, &reset),
        Optional(args, "stop_reading", ParseBool, &stop_reading)}) {
    if (!s.ok()) return s;
  }
  if (has_send_delay) SetProtoDuration(send_delay, faults.mutable_send_delay());
  if (has_slice_delay)
    SetProtoDuration(slice_delay, faults.mutable_slice_delay());
  faults.set_send_rate_bytes_per_second(rate);
  faults.set_slice_bytes(static_cast<uint32_t>(slice));
  faults.set_close_after_bytes(close_after);
  faults.set_close_with_reset(reset);
  faults.set_stop_reading(stop_reading);
  return socket.SetFaults(faults);
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
  kinds->push_back(StepKind("faults", Faults)
                       .Optional("send_delay", T::kDuration)
                       .Optional("send_rate", T::kSize)
                       .Optional("slice_bytes", T::kSize)
                       .Optional("slice_delay", T::kDuration)
                       .Optional("close_after_bytes", T::kSize)
                       .Optional("close_with_reset", T::kBool)
                       .Optional("stop_reading", T::kBool)
                       .OnSocket());
}

}  // namespace sockagent::scenario
