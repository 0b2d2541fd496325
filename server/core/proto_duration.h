#ifndef SOCKAGENT_SERVER_CORE_PROTO_DURATION_H_
#define SOCKAGENT_SERVER_CORE_PROTO_DURATION_H_

// absl::Duration <-> google.protobuf.Duration for the core's messages.

#include <cstdint>

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"

namespace sockagent {

inline absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

inline void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_PROTO_DURATION_H_
