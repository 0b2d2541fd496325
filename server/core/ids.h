#ifndef SOCKAGENT_SERVER_CORE_IDS_H_
#define SOCKAGENT_SERVER_CORE_IDS_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace sockagent {

// Issues session ids and socket handles: "<tag>.<sequence>.<random>", where
// the tag is the first 8 hex digits of this run's incarnation, the sequence
// makes every id of the run distinct (never reused), and 64 random bits make
// ids unguessable. Thread-safe.
class IdIssuer {
 public:
  // A random incarnation, different on every start.
  IdIssuer();
  // A fixed incarnation (16 hex digits), for tests.
  explicit IdIssuer(uint64_t incarnation);

  // 16 hex digits.
  const std::string& incarnation() const { return incarnation_; }

  std::string Next();

  // Checks that `id` could have been issued by this run. Errors:
  // INVALID_ARGUMENT "<field>: ..." when empty or malformed; NOT_FOUND saying
  // the agent restarted when it is from another incarnation.
  absl::Status Check(absl::string_view id, absl::string_view field) const;

 private:
  std::string incarnation_;
  std::string tag_;
  absl::Mutex mu_;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  absl::BitGen random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_IDS_H_
