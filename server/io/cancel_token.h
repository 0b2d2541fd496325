#ifndef SOCKAGENT_SERVER_IO_CANCEL_TOKEN_H_
#define SOCKAGENT_SERVER_IO_CANCEL_TOKEN_H_

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace sockagent {

// A one-shot cancellation signal from a caller (an RPC's OnCancel) to
// whatever currently waits on its behalf. Thread-safe. Cancel() runs the
// registered callback exactly once, outside the token's lock; a callback
// registered after Cancel() runs immediately in SetCallback().
class CancelToken {
 public:
  void Cancel() {
    absl::AnyInvocable<void()> callback;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return;
      cancelled_ = true;
      callback = std::move(callback_);
    }
    if (callback) callback();
  }

  // Replaces the callback. Returns false (after running `callback`) if the
  // token was already cancelled.
  bool SetCallback(absl::AnyInvocable<void()> callback) {
    {
      absl::MutexLock lock(&mu_);
      if (!cancelled_) {
        callback_ = std::move(callback);
        return true;
      }
    }
    callback();
    return false;
  }

  // Like SetCallback, but when the token was already cancelled returns false
  // without running `callback`: safe to call with the caller's locks held.
  bool TrySetCallback(absl::AnyInvocable<void()> callback) {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return false;
    callback_ = std::move(callback);
    return true;
  }

  bool cancelled() const {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::AnyInvocable<void()> callback_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_IO_CANCEL_TOKEN_H_
