#include "server/policy/audit_log.h"

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace sockagent {
namespace {

void AppendQuoted(std::string* out, const std::string& text) {
  out->push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void Field(std::string* out, const char* name, const std::string& value) {
  if (value.empty()) return;
  absl::StrAppend(out, ",\"", name, "\":");
  AppendQuoted(out, value);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    const std::string& path, uint32_t max_lines_per_second) {
  if (path == "-") {
    return std::make_unique<AuditLog>(stderr, false, max_lines_per_second);
  }
  FILE* out = std::fopen(path.c_str(), "ae");
  if (out == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "audit log ", path, ": cannot be opened: ", std::strerror(errno)));
  }
  return std::make_unique<AuditLog>(out, true, max_lines_per_second);
}

AuditLog::AuditLog(FILE* out, bool owned, uint32_t max_lines_per_second)
    : out_(out), owned_(owned), max_lines_per_second_(max_lines_per_second) {}

AuditLog::~AuditLog() {
  {
    absl::MutexLock lock(&mu_);
    FlushSuppressedLocked(absl::Now());
  }
  if (owned_) std::fclose(out_);
}

std::string AuditLog::ToJson(const AuditEvent& event, absl::Time now) {
  std::string out = "{\"time\":";
  AppendQuoted(
      &out, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone()));
  Field(&out, "event", event.event);
  Field(&out, "identity", event.identity);
  Field(&out, "peer", event.peer);
  Field(&out, "session", event.session);
  Field(&out, "method", event.method);
  Field(&out, "handle", event.handle);
  if (event.family != 0) absl::StrAppend(&out, ",\"family\":", event.family);
  if (event.type != 0) absl::StrAppend(&out, ",\"type\":", event.type);
  Field(&out, "local", event.local);
  Field(&out, "remote", event.remote);
  Field(&out, "decision", event.decision);
  Field(&out, "rule", event.rule);
  Field(&out, "status", event.status);
  if (event.event == "close") {
    absl::StrAppend(&out, ",\"bytes_in\":", event.bytes_in,
                    ",\"bytes_out\":", event.bytes_out);
  }
  Field(&out, "close_reason", event.close_reason);
  out.push_back('}');
  return out;
}

void AuditLog::Record(const AuditEvent& event) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  if (now - window_start_ >= absl::Seconds(1)) {
    FlushSuppressedLocked(now);
    window_start_ = now;
    lines_in_window_ = 0;
  }
  if (lines_in_window_ >= max_lines_per_second_) {
    ++suppressed_;
    return;
  }
  ++lines_in_window_;
  WriteLocked(ToJson(event, now));
}

void AuditLog::FlushSuppressedLocked(absl::Time now) {
  if (suppressed_ == 0) return;
  std::string line = "{\"time\":";
  AppendQuoted(&line, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now,
                                       absl::UTCTimeZone()));
  absl::StrAppend(
      &line, ",\"event\":\"suppressed\",\"suppressed\":", suppressed_, "}");
  suppressed_ = 0;
  WriteLocked(line);
}

void AuditLog::WriteLocked(const std::string& line) {
  std::string whole = line;
  whole.push_back('\n');
  std::fwrite(whole.data(), 1, whole.size(), out_);
  std::fflush(out_);
}

}  // namespace sockagent
