#ifndef SOCKAGENT_SERVER_CORE_SERIAL_EVENTS_H_
#define SOCKAGENT_SERVER_CORE_SERIAL_EVENTS_H_

// Runs events one at a time, in the order posted, on whichever thread posts
// while none runs: a multi-step operation whose engine ops complete on
// several shard threads (or inline, inside Submit) handles their outcomes
// serially, in a loop rather than by recursion, so its own fields need no
// lock. Thread-safe.

#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace sockagent {

class SerialEvents {
 public:
  // Runs `event` now, or after the events posted before it, on the thread
  // already running events.
  void Post(absl::AnyInvocable<void()> event) {
    {
      absl::MutexLock lock(&mu_);
      events_.push_back(std::move(event));
      if (running_) return;
      running_ = true;
    }
    for (;;) {
      absl::AnyInvocable<void()> next;
      {
        absl::MutexLock lock(&mu_);
        if (events_.empty()) {
          running_ = false;
          return;
        }
        next = std::move(events_.front());
        events_.pop_front();
      }
      next();
    }
  }

 private:
  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> events_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_SERIAL_EVENTS_H_
