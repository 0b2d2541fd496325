#include "client/scenario/interpolation.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sockagent::scenario {

absl::StatusOr<std::string> Interpolate(absl::string_view text,
                                        const FieldsLookup& lookup) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t start = text.find("${", pos);
    if (start == absl::string_view::npos) {
      absl::StrAppend(&out, text.substr(pos));
      return out;
    }
    absl::StrAppend(&out, text.substr(pos, start - pos));
    size_t end = text.find('}', start);
    if (end == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("unterminated ${ in \"", text, "\""));
    }
    const std::string ref(text.substr(start + 2, end - start - 2));
    pos = end + 1;
    if (absl::StartsWith(ref, "env.")) {
      std::string name = ref.substr(4);
      std::optional<std::string> fallback;
      if (size_t colon = name.find(":-"); colon != std::string::npos) {
        fallback = name.substr(colon + 2);
        name.resize(colon);
      }
      const char* value = std::getenv(name.c_str());
      if (value != nullptr && *value != '\0') {
        absl::StrAppend(&out, value);
      } else if (fallback.has_value()) {
        absl::StrAppend(&out, *fallback);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "${", ref, "}: environment variable ", name, " is not set"));
      }
      continue;
    }
    size_t dot = ref.find('.');
    const std::string root = ref.substr(0, dot);
    const std::string field =
        dot == std::string::npos ? "" : ref.substr(dot + 1);
    const std::optional<Fields> var = lookup(root);
    if (!var.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("${", ref, "}: ", root,
                       " has no value yet (its step did not run "
                       "or failed)"));
    }
    auto value = var->find(field);
    if (value == var->end()) {
      std::vector<std::string> names;
      for (const auto& [name, v] : *var) {
        if (!name.empty()) names.push_back(name);
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "${", ref, "}: ", root, " has no ",
          field.empty() ? "main value" : absl::StrCat("field ", field),
          " (fields: ", absl::StrJoin(names, ", "), ")"));
    }
    absl::StrAppend(&out, value->second);
  }
}

absl::StatusOr<std::string> MaterializeData(const DataSpec& spec,
                                            const Interpolator& interpolate) {
  absl::StatusOr<std::string> repeat_text = interpolate(spec.repeat);
  if (!repeat_text.ok()) return repeat_text.status();
  absl::StatusOr<uint64_t> repeat = ParseUint(*repeat_text);
  if (!repeat.ok()) return repeat.status();
  std::string unit;
  if (spec.text.has_value()) {
    absl::StatusOr<std::string> text = interpolate(*spec.text);
    if (!text.ok()) return text.status();
    unit = *text;
  } else if (spec.hex.has_value()) {
    unit = absl::HexStringToBytes(*spec.hex);
  } else if (spec.size.has_value()) {
    absl::StatusOr<std::string> size_text = interpolate(*spec.size);
    if (!size_text.ok()) return size_text.status();
    absl::StatusOr<uint64_t> size = ParseSize(*size_text);
    if (!size.ok()) return size.status();
    absl::StatusOr<std::string> seed_text = interpolate(spec.seed);
    if (!seed_text.ok()) return seed_text.status();
    absl::StatusOr<uint64_t> seed = ParseUint(*seed_text);
    if (!seed.ok()) return seed.status();
    unit.resize(*size);
    if (absl::Status s =
            FillPatternBytes(spec.pattern, *seed, 0, unit.data(), unit.size());
        !s.ok()) {
      return s;
    }
  }
  if (*repeat == 1) return unit;
  if (unit.size() * *repeat > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError("data larger than 1 GiB");
  }
  std::string out;
  out.reserve(unit.size() * *repeat);
  for (uint64_t i = 0; i < *repeat; ++i) out += unit;
  return out;
}

}  // namespace sockagent::scenario
