#ifndef SOCKAGENT_PROTO_STATUS_CODEC_H_
#define SOCKAGENT_PROTO_STATUS_CODEC_H_

// The one place where absl::Status and grpc::Status meet. Every absl payload
// travels as a google.rpc.Status detail (google.protobuf.Any with the same
// type URL), so the errno detail of errno_status.h survives the wire.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace sockagent {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace sockagent

#endif  // SOCKAGENT_PROTO_STATUS_CODEC_H_
