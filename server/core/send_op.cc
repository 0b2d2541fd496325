#include "server/core/send_op.h"

#include <sys/socket.h>

#include <utility>

#include "proto/errno_status.h"

namespace sockagent {

SendOp::SendOp(SocketOps& ops, std::shared_ptr<ManagedSocket> socket,
               absl::string_view data, int flags, bool send_all,
               std::optional<SockAddr> to, Callback<uint64_t> done)
    : ops_(ops),
      socket_(std::move(socket)),
      data_(data),
      flags_(flags & ~MSG_DONTWAIT),
      send_all_(send_all),
      to_(to),
      done_(std::move(done)) {}

std::optional<absl::Status> SendOp::Attempt(int fd) {
  for (;;) {
    const char* begin = data_.data() + sent_;
    const size_t left = data_.size() - sent_;
    SysCallSize rc = to_.has_value() ? ops_.SendTo(fd, begin, left, flags_,
                                                   to_->get(), to_->length)
                                     : ops_.Send(fd, begin, left, flags_);
    if (rc.would_block()) {
      if (sent_ > 0 && !send_all_) return absl::OkStatus();
      return std::nullopt;
    }
    if (!rc.ok()) {
      if (sent_ > 0 && !send_all_) return absl::OkStatus();
      return OsError(rc.error, name());
    }
    sent_ += static_cast<size_t>(rc.value);
    if (!send_all_ || sent_ >= data_.size()) return absl::OkStatus();
  }
}

void SendOp::Complete(absl::Status status) {
  socket_->bytes_sent += sent_;
  if (!status.ok()) return done_(std::move(status));
  done_(static_cast<uint64_t>(sent_));
}

}  // namespace sockagent
