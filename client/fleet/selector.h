#ifndef SOCKAGENT_CLIENT_FLEET_SELECTOR_H_
#define SOCKAGENT_CLIENT_FLEET_SELECTOR_H_

// Which agents of a fleet a harness means: a comma-separated list of terms,
// every one of which must hold.
//
//   worker-3             the agent named worker-3
//   node=worker-3        label node is worker-3
//   zone!=eu-1           label zone is absent or not eu-1
//   *                    every agent
//
// A bare word is the agent's name. `name=X` also matches by name. An empty
// selector matches every agent. Immutable after Parse; thread-safe.

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sockagent {
namespace fleet {

class Selector {
 public:
  // INVALID_ARGUMENT naming the term for a malformed one (an empty key, a
  // key outside the label grammar).
  static absl::StatusOr<Selector> Parse(absl::string_view text);

  // Whether the agent `name` with `labels` is selected.
  bool Matches(absl::string_view name,
               const std::map<std::string, std::string>& labels) const;

  // The selector as written (for messages).
  const std::string& text() const { return text_; }

 private:
  struct Term {
    enum class Kind { kName, kEqual, kNotEqual } kind;
    std::string key;
    std::string value;
  };
  std::string text_;
  std::vector<Term> terms_;
};

}  // namespace fleet
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_FLEET_SELECTOR_H_
