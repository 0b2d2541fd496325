#ifndef SOCKAGENT_SERVER_CORE_SEND_OP_H_
#define SOCKAGENT_SERVER_CORE_SEND_OP_H_

// send() or sendto() as an engine operation: once, or (send_all) until
// every byte is out. Counts the bytes on the socket. No gRPC, no policy.

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/address.h"
#include "server/core/call_context.h"
#include "server/core/session_table.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"

namespace sockagent {

class SendOp final : public IoOp {
 public:
  // `data` must outlive the op. `to` set: sendto() there. A partial send is
  // OK with the bytes sent unless `send_all`. `done` gets the bytes sent.
  SendOp(SocketOps& ops, std::shared_ptr<ManagedSocket> socket,
         absl::string_view data, int flags, bool send_all,
         std::optional<SockAddr> to, Callback<uint64_t> done);

  std::optional<absl::Status> Attempt(int fd) override;
  void Complete(absl::Status status) override;
  const char* name() const override {
    return to_.has_value() ? "sendto" : "send";
  }

 private:
  SocketOps& ops_;
  std::shared_ptr<ManagedSocket> socket_;
  absl::string_view data_;
  const int flags_;
  const bool send_all_;
  const std::optional<SockAddr> to_;
  size_t sent_ = 0;
  Callback<uint64_t> done_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_SEND_OP_H_
