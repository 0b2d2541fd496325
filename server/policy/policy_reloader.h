#ifndef SOCKAGENT_SERVER_POLICY_POLICY_RELOADER_H_
#define SOCKAGENT_SERVER_POLICY_POLICY_RELOADER_H_

// Keeps a PolicyEngine in step with its file: Reload() (SIGHUP) and a
// background poll of the file's modification time and size every `interval`.
// An invalid file is rejected with one log line and counted in
// rejected_reloads(); the last valid policy stays in force. Thread-safe.

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/policy/policy_engine.h"

namespace sockagent {

class PolicyReloader {
 public:
  // `engine` must outlive the reloader. Does not load: call Reload() first.
  PolicyReloader(PolicyEngine* engine, std::string path,
                 absl::Duration interval);
  ~PolicyReloader();

  // Loads the file now. The error is also logged and counted.
  absl::Status Reload();

  uint64_t rejected_reloads() const { return rejected_.load(); }
  uint64_t reloads() const { return reloads_.load(); }

 private:
  void Poll();

  PolicyEngine* const engine_;
  const std::string path_;
  const absl::Duration interval_;
  absl::Mutex mu_;  // serializes reloads
  int64_t last_mtime_ns_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t last_size_ ABSL_GUARDED_BY(mu_) = -1;
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> reloads_{0};
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_POLICY_POLICY_RELOADER_H_
