#include "server/core/send_pump.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/send_op.h"

namespace sockagent {

SendPump::SendPump(SocketOps& ops, Engine& engine, SessionRegistry& sessions,
                   PolicyGate& gate, ResolvedSocket socket,
                   size_t max_send_bytes, OnSent on_sent)
    : ops_(ops),
      engine_(engine),
      sessions_(sessions),
      gate_(gate),
      call_(std::move(socket)),
      max_send_bytes_(max_send_bytes),
      on_sent_(std::move(on_sent)) {}

void SendPump::Send(std::string* data) {
  if (data->size() > max_send_bytes_) {
    return on_sent_(absl::InvalidArgumentError(
        absl::StrCat("data: ", data->size(), " bytes exceeds the limit of ",
                     max_send_bytes_, " (limits.max_send_bytes)")));
  }
  if (absl::Status rate =
          gate_.CheckByteRate(call_, "Send", PolicyEngine::Direction::kSend);
      !rate.ok()) {
    return on_sent_(std::move(rate));
  }
  data_.swap(*data);
  data->clear();
  engine_.Submit(
      call_.socket->io(), Interest::kWrite,
      std::make_unique<SendOp>(
          ops_, call_.socket, data_, /*flags=*/0,
          /*send_all=*/true, std::nullopt,
          [self = shared_from_this()](absl::StatusOr<uint64_t> sent) mutable {
            SendPump& pump = *self;
            pump.Sent(std::move(sent));
          }),
      call_.WaitFromNow());
}

void SendPump::Sent(absl::StatusOr<uint64_t> sent) {
  if (!sent.ok()) {
    return on_sent_(sessions_.Explain(call_, std::move(sent).status()));
  }
  gate_.ChargeBytes(call_, PolicyEngine::Direction::kSend, *sent);
  on_sent_(*sent);
}

}  // namespace sockagent
