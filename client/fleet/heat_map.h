#ifndef SOCKAGENT_CLIENT_FLEET_HEAT_MAP_H_
#define SOCKAGENT_CLIENT_FLEET_HEAT_MAP_H_

// A from x to matrix of pair results as a PNG heat map (libpng): one square
// cell per (from, to), rows are `from`, columns `to`. A passed pair is
// coloured by its latency on a green -> yellow -> red scale from the
// fastest to the slowest pair; a failed pair is black; a pair not run (the
// diagonal of an all-pairs matrix) is grey. People read a fleet's health
// faster from a picture. Thread-compatible.

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace sockagent {
namespace fleet {

struct MatrixCell {
  enum class State { kNotRun, kPassed, kFailed } state = State::kNotRun;
  absl::Duration latency = absl::ZeroDuration();
};

// cells[from * columns + to]. INVALID_ARGUMENT when cells.size() is not
// rows * columns or either is 0; the errno of writing `path` otherwise.
absl::Status WriteHeatMapPng(const std::string& path, size_t rows,
                             size_t columns,
                             const std::vector<MatrixCell>& cells);

}  // namespace fleet
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_FLEET_HEAT_MAP_H_
