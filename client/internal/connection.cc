#include "client/internal/connection.h"

#include <algorithm>
#include <utility>

#include "proto/status_codec.h"

namespace sockagent {
namespace internal {

Connection::Connection(std::shared_ptr<grpc::ChannelInterface> channel,
                       std::unique_ptr<v1::SocketAgent::StubInterface> stub,
                       std::string session_id, absl::Duration call_timeout)
    : channel_(std::move(channel)),
      stub_(std::move(stub)),
      session_id_(std::move(session_id)),
      call_timeout_(call_timeout) {}

std::unique_ptr<grpc::ClientContext> Connection::MakeContext(
    CallKind kind, absl::Time deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!session_id_.empty()) {
    context->AddMetadata(kSessionMetadataKey, session_id_);
  }
  if (kind == CallKind::kImmediate &&
      call_timeout_ != absl::InfiniteDuration()) {
    deadline = std::min(deadline, absl::Now() + call_timeout_);
  }
  if (kind == CallKind::kWaiting && deadline != absl::InfiniteFuture()) {
    // Were the RPC cut at the deadline, the agent could still take data
    // before the cancel reached it, and that data would be lost.
    const absl::Duration wait =
        std::max(deadline - absl::Now(), absl::ZeroDuration());
    context->AddMetadata(kWaitTimeoutMetadataKey, absl::FormatDuration(wait));
    deadline += kWaitAnswerGrace;
  }
  SetDeadline(context.get(), deadline);
  return context;
}

absl::Status Connection::Convert(const grpc::Status& status) {
  return FromGrpcStatus(status);
}

void SetDeadline(grpc::ClientContext* context, absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return;
  context->set_deadline(absl::ToChronoTime(deadline));
}

}  // namespace internal
}  // namespace sockagent
