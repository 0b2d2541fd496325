#ifndef SOCKAGENT_CLIENT_CLI_INTERRUPT_WATCHER_H_
#define SOCKAGENT_CLIENT_CLI_INTERRUPT_WATCHER_H_

#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"

namespace sockagent {
namespace cli {

// Blocks SIGINT and SIGTERM in the calling thread (and every thread it
// starts later) and turns them into `interrupt` from a sigwait thread, so a
// signal stops a scenario and its cleanup still runs. Stop() ends the thread.
class InterruptWatcher {
 public:
  InterruptWatcher();
  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;
  ~InterruptWatcher() { Stop(); }
  void Stop();
  const absl::Notification* interrupt() const { return &interrupt_; }
  // The signal received, or 0.
  int signal() const { return signal_.load(); }

 private:
  sigset_t set_;
  std::atomic<bool> done_{false};
  std::atomic<int> signal_{0};
  absl::Notification interrupt_;
  std::thread thread_;
};

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_INTERRUPT_WATCHER_H_
