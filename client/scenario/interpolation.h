#ifndef SOCKAGENT_CLIENT_SCENARIO_INTERPOLATION_H_
#define SOCKAGENT_CLIENT_SCENARIO_INTERPOLATION_H_

// ${...} references in scenario values, and the bytes a data: spec stands
// for. Pure functions of their lookups; thread-safe when the lookup is.

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/scenario/model.h"

namespace sockagent::scenario {

// The fields saved under `name` (a var or a step's save_as), or nullopt
// when it has no value yet.
using FieldsLookup =
    std::function<std::optional<Fields>(const std::string& name)>;
// A value with its ${...} references replaced.
using Interpolator =
    std::function<absl::StatusOr<std::string>(absl::string_view text)>;

// `text` with each reference replaced: ${env.X} (or ${env.X:-fallback}) by
// the environment variable, ${name} by the main value ("" field) and
// ${name.field} by a field of what `lookup` finds. INVALID_ARGUMENT naming
// the reference for an unterminated ${, an unset variable without a
// fallback, a name without a value yet or a missing field (listing the
// fields there are).
absl::StatusOr<std::string> Interpolate(absl::string_view text,
                                        const FieldsLookup& lookup);

// The bytes of `spec`: its text (interpolated), hex, or `size` pattern
// bytes from `seed`, repeated `repeat` times. INVALID_ARGUMENT for a bad
// value after interpolation or more than 1 GiB.
absl::StatusOr<std::string> MaterializeData(const DataSpec& spec,
                                            const Interpolator& interpolate);

}  // namespace sockagent::scenario

#endif  // SOCKAGENT_CLIENT_SCENARIO_INTERPOLATION_H_
