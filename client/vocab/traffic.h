#ifndef SOCKAGENT_CLIENT_VOCAB_TRAFFIC_H_
#define SOCKAGENT_CLIENT_VOCAB_TRAFFIC_H_

// A finished agent-side traffic (TrafficResponse) as one text line and as a
// JSON object with the same keys. Pure functions; thread-safe.

#include <string>

#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace vocab {

// One line, key=value pairs with the keys of TrafficJson: "end=eof
// bytes_received=1048576 bytes_sent=0 datagrams_received=0 datagrams_sent=0
// elapsed=12.5ms bytes_per_second=83886080 checksum=0123456789abcdef".
std::string FormatTraffic(const v1::TrafficResponse& response);
// The same as a JSON object: counts as numbers, elapsed as "elapsed_s"
// (seconds, a number).
// With a relay's figures (response.has_relay()), also "relay": the
// RelayFigures message in proto3 JSON form (to_peer, from_peer, clients,
// refused_datagrams).
std::string TrafficJson(const v1::TrafficResponse& response);
// One relay direction as key=value pairs: "bytes_received=10 bytes_sent=10
// datagrams_received=0 datagrams_sent=0 lost=0 duplicated=0 reordered=0
// blackholed=0 end=eof".
std::string FormatRelayDirection(const v1::RelayDirection& direction);

}  // namespace vocab
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_VOCAB_TRAFFIC_H_
