#include "server/core/recv_op.h"

#include <algorithm>
#include <utility>

#include "proto/errno_status.h"
#include "server/core/address.h"

namespace sockagent {
namespace {

// The largest receive that goes through the per-thread scratch buffer.
constexpr size_t kScratchBytes = 256 * 1024;

// A per-thread buffer of kScratchBytes for one recv() at a time.
char* ScratchBuffer() {
  thread_local std::unique_ptr<char[]> buffer(new char[kScratchBytes]);
  return buffer.get();
}

}  // namespace

RecvOp::RecvOp(SocketOps& ops, std::shared_ptr<ManagedSocket> socket,
               size_t max_bytes, int flags, bool want_source,
               Callback<Received> done,
               absl::AnyInvocable<bool(const sockaddr*, socklen_t)> filter)
    : ops_(ops),
      socket_(std::move(socket)),
      max_bytes_(max_bytes),
      flags_(flags & ~(MSG_WAITALL | MSG_DONTWAIT)),
      wait_all_((flags & MSG_WAITALL) != 0 &&
                socket_->io()->type() == SOCK_STREAM),
      peek_((flags & MSG_PEEK) != 0),
      truncated_report_((flags & MSG_TRUNC) != 0 &&
                        socket_->io()->type() != SOCK_STREAM),
      want_source_(want_source),
      filter_(std::move(filter)),
      done_(std::move(done)) {}

std::optional<absl::Status> RecvOp::Attempt(int fd) {
  // Receives of up to kScratchBytes land in a per-thread scratch buffer
  // and are copied out at their real length, so a Recv(65536) that gets
  // 64 bytes, or waits, never allocates and zero-fills 64 KiB (that cost
  // ~64 KiB of heap per waiting Recv). Larger ones read in place.
  const bool scratch = max_bytes_ <= kScratchBytes;
  if (!scratch && buffer_.size() != max_bytes_) buffer_.resize(max_bytes_);
  for (;;) {
    char* const target = scratch ? ScratchBuffer() : buffer_.data() + got_;
    SockAddr from;
    from.length = sizeof(from.storage);
    SysCallSize rc = want_source_ || filter_
                         ? ops_.RecvFrom(fd, target, max_bytes_ - got_, flags_,
                                         from.mutable_get(), &from.length)
                         : ops_.Recv(fd, target, max_bytes_ - got_, flags_);
    if (rc.would_block()) {
      // Waiting holds no buffer: 10,000 idle receives cost no memory.
      if (got_ == 0) buffer_ = std::string();
      return std::nullopt;
    }
    if (!rc.ok()) {
      if (got_ > 0) return absl::OkStatus();
      return OsError(rc.error, name());
    }
    if (filter_ && from.length > 0 && !filter_(from.get(), from.length)) {
      // Dropped; a peeked datagram is consumed so the next one surfaces.
      if (peek_) ops_.Recv(fd, target, 1, flags_ & ~MSG_PEEK);
      continue;
    }
    if (want_source_) {
      result_.from = ToWireAddress(from.get(), from.length);
    }
    const size_t real = static_cast<size_t>(rc.value);
    const size_t n = std::min(real, max_bytes_ - got_);
    // MSG_TRUNC on a datagram socket returns the datagram's real length;
    // Python then gives a bytes of that length, zero past what was read.
    if (truncated_report_) truncated_ = real - n;
    if (peek_) {
      // A peek never consumes: wait until all of it is there at once.
      if (wait_all_ && n > 0 && n < max_bytes_) return std::nullopt;
      if (scratch) buffer_.assign(target, n);
      got_ = n;
      return absl::OkStatus();
    }
    if (scratch) buffer_.append(target, n);
    got_ += n;
    if (n == 0 || !wait_all_ || got_ == max_bytes_) return absl::OkStatus();
  }
}

void RecvOp::Complete(absl::Status status) {
  if (!peek_) socket_->bytes_received += got_;
  // A MSG_WAITALL receive whose wait ends early (timeout, cancel, close,
  // drain) returns what it already took from the socket, as recv(2) does:
  // those bytes are gone from the kernel and must not be lost.
  if (!status.ok() && got_ > 0 && !peek_ &&
      (absl::IsDeadlineExceeded(status) || absl::IsCancelled(status) ||
       absl::IsAborted(status) || absl::IsUnavailable(status))) {
    status = absl::OkStatus();
  }
  if (!status.ok()) return done_(std::move(status));
  buffer_.resize(got_);
  buffer_.append(truncated_, '\0');
  result_.data = std::move(buffer_);
  done_(std::move(result_));
}

}  // namespace sockagent
