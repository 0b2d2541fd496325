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

// Issues session ids and socket handles:
//
//   <agent>.<run>.<sequence>.<random>.<check>
//
// `agent` (8 hex) names the agent: a hash of a key that stays the same when
// the agent restarts (AgentServer uses the host name, /etc/machine-id and
// the listen address); `run` (8 hex) is the first half of this run's random
// incarnation; the sequence makes every id of the run distinct (never
// reused); 64 random bits make ids unguessable; `check` (4 hex) is a hash of
// everything before it, so a mistyped or truncated id is told apart from a
// well-formed one (a random typo passes with probability 1/65536).
//
// What Check() can and cannot know: a malformed or mistyped id is certain;
// an id naming another agent key came from another agent (or from this one
// under another host name or listen address); an id naming this agent key
// and another run came from an earlier run of this agent, which restarted.
// Two agents with the same key (same host name, machine id and listen
// address, e.g. "127.0.0.1:0" in two containers cloned from one image) look
// like one agent that restarted. Thread-safe.
class IdIssuer {
 public:
  // A random incarnation, different on every start; agent key "".
  IdIssuer();
  // A fixed incarnation (16 hex digits; 0 = random), for tests, and the
  // agent key.
  explicit IdIssuer(uint64_t incarnation, absl::string_view agent_key = "");

  // 16 hex digits.
  const std::string& incarnation() const { return incarnation_; }
  // 8 hex digits, from the agent key.
  const std::string& agent_id() const { return agent_; }

  std::string Next();

  // Checks that `id` could have been issued by this run. Errors:
  // INVALID_ARGUMENT "<field>: ..." when empty, malformed or failing its
  // check digits; NOT_FOUND saying which when it is from another agent or
  // from an earlier run of this one (the agent restarted).
  absl::Status Check(absl::string_view id, absl::string_view field) const;

 private:
  std::string incarnation_;
  std::string agent_;
  std::string tag_;
  absl::Mutex mu_;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  absl::BitGen random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_IDS_H_
