#ifndef SOCKAGENT_SERVER_POLICY_AUDIT_LOG_H_
#define SOCKAGENT_SERVER_POLICY_AUDIT_LOG_H_

// The audit log: one JSON line per policy decision and per socket close,
// written whole with one fwrite under a lock, flushed per line. Never holds
// payload bytes or credentials (callers pass none: there is no field for
// them). Under a flood, at most `max_lines_per_second` lines are written per
// second; the rest are counted and reported in one
// {"event":"suppressed","suppressed":N} line when the next second starts (or
// when the log is destroyed). Thread-safe.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sockagent {

struct AuditEvent {
  std::string event;  // "decision" or "close"
  std::string identity;
  std::string peer;
  std::string session;
  std::string method;
  std::string handle;
  int family = 0;
  int type = 0;
  std::string local;
  std::string remote;
  std::string decision;  // "allow", "deny", "would_deny"
  std::string rule;
  std::string status;  // canonical code name, "OK" when allowed
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::string close_reason;  // close events only
};

class AuditLog {
 public:
  // "-" means stderr. INVALID_ARGUMENT / NOT_FOUND when the file cannot be
  // opened for appending.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(
      const std::string& path, uint32_t max_lines_per_second = 200);
  // Writes to `out` (not owned).
  AuditLog(FILE* out, bool owned, uint32_t max_lines_per_second);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void Record(const AuditEvent& event);

  // The JSON line of `event`, without the newline.
  static std::string ToJson(const AuditEvent& event, absl::Time now);

 private:
  void WriteLocked(const std::string& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushSuppressedLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  FILE* const out_;
  const bool owned_;
  const uint32_t max_lines_per_second_;
  absl::Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_);
  uint32_t lines_in_window_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_POLICY_AUDIT_LOG_H_
