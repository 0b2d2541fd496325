#include "client/vocab/traffic.h"

#include "absl/strings/str_cat.h"
#include "client/vocab/json.h"
#include "client/vocab/quantities.h"
#include "client/vocab/words.h"
#include "proto/duration_codec.h"

namespace sockagent {
namespace vocab {

namespace {

absl::Duration ElapsedOf(const v1::TrafficResponse& response) {
  return FromProtoDuration(response.elapsed());
}

}  // namespace

std::string FormatTraffic(const v1::TrafficResponse& response) {
  return absl::StrCat("end=", TrafficEndName(response.end()),
                      " bytes_received=", response.bytes_received(),
                      " bytes_sent=", response.bytes_sent(),
                      " datagrams_received=", response.datagrams_received(),
                      " datagrams_sent=", response.datagrams_sent(),
                      " elapsed=", DurationText(ElapsedOf(response)),
                      " bytes_per_second=",
                      static_cast<uint64_t>(response.bytes_per_second() + 0.5),
                      " checksum=", response.checksum());
}

std::string TrafficJson(const v1::TrafficResponse& response) {
  JsonObject object;
  object.AddString("end", TrafficEndName(response.end()))
      .AddInt("bytes_received", static_cast<int64_t>(response.bytes_received()))
      .AddInt("bytes_sent", static_cast<int64_t>(response.bytes_sent()))
      .AddInt("datagrams_received",
              static_cast<int64_t>(response.datagrams_received()))
      .AddInt("datagrams_sent", static_cast<int64_t>(response.datagrams_sent()))
      .AddRaw("elapsed_s", DurationSeconds(ElapsedOf(response)))
      .AddRaw("bytes_per_second", absl::StrCat(response.bytes_per_second()))
      .AddString("checksum", response.checksum());
  if (response.has_relay()) {
    object.AddRaw("relay", MessageJson(response.relay()));
  }
  return object.Build();
}

std::string FormatRelayDirection(const v1::RelayDirection& d) {
  return absl::StrCat(
      "bytes_received=", d.bytes_received(), " bytes_sent=", d.bytes_sent(),
      " datagrams_received=", d.datagrams_received(),
      " datagrams_sent=", d.datagrams_sent(), " lost=", d.datagrams_lost(),
      " duplicated=", d.datagrams_duplicated(),
      " reordered=", d.datagrams_reordered(),
      " blackholed=", d.bytes_blackholed(), " end=",
      EnumWord(
          *v1::RelayDirectionEnd_descriptor()->FindValueByNumber(d.end())));
}

}  // namespace vocab
}  // namespace sockagent
