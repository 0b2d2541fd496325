#include "server/core/recv_pump.h"

#include <sys/socket.h>

#include <utility>

namespace sockagent {

RecvPump::RecvPump(SocketOps& ops, Engine& engine, SessionRegistry& sessions,
                   PolicyGate& gate, ResolvedSocket socket, Options options,
                   OnChunk on_chunk)
    : ops_(ops),
      engine_(engine),
      sessions_(sessions),
      gate_(gate),
      call_(std::move(socket)),
      options_(options),
      on_chunk_(std::move(on_chunk)) {
  if (call_.socket->io()->type() == SOCK_DGRAM) {
    filter_ = gate_.SourceFilterFor(call_.ctx, options_.method, call_.socket);
  }
}

void RecvPump::Next(size_t max_bytes) {
  if (absl::Status rate = gate_.CheckByteRate(call_, options_.method,
                                              PolicyEngine::Direction::kRecv);
      !rate.ok()) {
    return on_chunk_(std::move(rate));
  }
  PolicyGate::SourceFilter filter;
  if (filter_) {
    filter = [pump = this](const sockaddr* address, socklen_t length) {
      return pump->filter_(address, length);
    };
  }
  // The op holds the pump (and so `filter_`) until it completes.
  engine_.Submit(
      call_.socket->io(), Interest::kRead,
      std::make_unique<RecvOp>(
          ops_, call_.socket, max_bytes, /*flags=*/0, options_.want_source,
          [self = shared_from_this()](
              absl::StatusOr<RecvOp::Received> got) mutable {
            RecvPump& pump = *self;
            pump.Delivered(std::move(got));
          },
          std::move(filter)),
      call_.WaitFromNow());
}

void RecvPump::Delivered(absl::StatusOr<RecvOp::Received> got) {
  if (!got.ok()) {
    return on_chunk_(sessions_.Explain(call_, std::move(got).status()));
  }
  gate_.ChargeBytes(call_, PolicyEngine::Direction::kRecv, got->data.size());
  on_chunk_(std::move(got));
}

}  // namespace sockagent
