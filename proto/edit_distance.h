#ifndef SOCKAGENT_PROTO_EDIT_DISTANCE_H_
#define SOCKAGENT_PROTO_EDIT_DISTANCE_H_

// Levenshtein distance, for the "did you mean" of every error that names an
// unknown word (sockctl subcommands, scenario keys, config fields). Lives in
// the bottom layer because client and server both use it. Pure; thread-safe.

#include <algorithm>
#include <cstddef>
#include <vector>

#include "absl/strings/string_view.h"

namespace sockagent {

inline size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace sockagent

#endif  // SOCKAGENT_PROTO_EDIT_DISTANCE_H_
