#include "server/core/ids.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace sockagent {
namespace {

bool IsHex(absl::string_view text, size_t min_size, size_t max_size) {
  if (text.size() < min_size || text.size() > max_size) return false;
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

IdIssuer::IdIssuer() : IdIssuer(absl::Uniform<uint64_t>(absl::BitGen())) {}

IdIssuer::IdIssuer(uint64_t incarnation)
    : incarnation_(absl::StrFormat("%016x", incarnation)),
      tag_(incarnation_.substr(0, 8)) {}

std::string IdIssuer::Next() {
  absl::MutexLock lock(&mu_);
  return absl::StrFormat("%s.%x.%016x", tag_, ++sequence_,
                         absl::Uniform<uint64_t>(random_));
}

absl::Status IdIssuer::Check(absl::string_view id,
                             absl::string_view field) const {
  if (id.empty())
    return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  std::vector<absl::string_view> parts = absl::StrSplit(id, '.');
  if (parts.size() != 3 || !IsHex(parts[0], 8, 8) || !IsHex(parts[1], 1, 16) ||
      !IsHex(parts[2], 16, 16)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": malformed id '", absl::CHexEscape(id.substr(0, 64)),
        "' (expected <8 hex>.<hex>.<16 hex>)"));
  }
  if (parts[0] != tag_) {
    return absl::NotFoundError(absl::StrCat(
        field, ": '", id, "' belongs to an earlier run of the agent (",
        parts[0], "); the agent restarted (now ", tag_,
        ") and closed everything it held"));
  }
  return absl::OkStatus();
}

}  // namespace sockagent
