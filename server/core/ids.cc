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

// FNV-1a, 32 bits: stable across runs and builds (absl::Hash is seeded per
// process, so it cannot name an agent across restarts).
uint32_t Fnv1a(absl::string_view text) {
  uint32_t hash = 2166136261u;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619u;
  }
  return hash;
}

std::string CheckDigits(absl::string_view body) {
  const uint32_t hash = Fnv1a(body);
  return absl::StrFormat("%04x", (hash >> 16) ^ (hash & 0xffff));
}

std::string Quoted(absl::string_view id) {
  return absl::StrCat("'", absl::CHexEscape(id.substr(0, 64)), "'");
}

}  // namespace

IdIssuer::IdIssuer() : IdIssuer(0) {}

IdIssuer::IdIssuer(uint64_t incarnation, absl::string_view agent_key)
    : incarnation_(absl::StrFormat(
          "%016x", incarnation != 0 ? incarnation
                                    : absl::Uniform<uint64_t>(absl::BitGen()))),
      agent_(absl::StrFormat("%08x", Fnv1a(agent_key))),
      tag_(incarnation_.substr(0, 8)) {}

std::string IdIssuer::Next() {
  std::string body;
  {
    absl::MutexLock lock(&mu_);
    body = absl::StrFormat("%s.%s.%x.%016x", agent_, tag_, ++sequence_,
                           absl::Uniform<uint64_t>(random_));
  }
  return absl::StrCat(body, ".", CheckDigits(body));
}

absl::Status IdIssuer::Check(absl::string_view id,
                             absl::string_view field) const {
  if (id.empty())
    return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  std::vector<absl::string_view> parts = absl::StrSplit(id, '.');
  if (parts.size() == 3 && IsHex(parts[0], 8, 8) && IsHex(parts[1], 1, 16) &&
      IsHex(parts[2], 16, 16)) {
    // The form before ids carried an agent and check digits.
    return absl::NotFoundError(absl::StrCat(
        field, ": ", Quoted(id),
        " was issued by an older sockagentd (another agent, or this one "
        "before it was upgraded and restarted); it holds nothing here"));
  }
  if (parts.size() != 5 || !IsHex(parts[0], 8, 8) || !IsHex(parts[1], 8, 8) ||
      !IsHex(parts[2], 1, 16) || !IsHex(parts[3], 16, 16) ||
      !IsHex(parts[4], 4, 4)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": malformed id ", Quoted(id),
        " (expected <8 hex>.<8 hex>.<hex>.<16 hex>.<4 hex>, exactly as the "
        "agent returned it)"));
  }
  const absl::string_view body = id.substr(0, id.size() - 5);
  if (absl::AsciiStrToLower(parts[4]) != CheckDigits(body)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": malformed id ", Quoted(id),
        ": its check digits do not match (mistyped or truncated?)"));
  }
  if (parts[0] != agent_) {
    return absl::NotFoundError(absl::StrCat(
        field, ": ", Quoted(id), " was issued by another agent (agent ",
        parts[0], "; this is agent ", agent_,
        ", or this agent under another host name or listen address): send "
        "it to the agent that created it"));
  }
  if (parts[1] != tag_) {
    return absl::NotFoundError(absl::StrCat(
        field, ": ", Quoted(id), " belongs to an earlier run of this agent (",
        parts[1], "); the agent restarted (now ", tag_,
        ") and closed everything it held"));
  }
  return absl::OkStatus();
}

}  // namespace sockagent
