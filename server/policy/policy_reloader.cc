#include "server/policy/policy_reloader.h"

#include <sys/stat.h>

#include <utility>

#include "spdlog/spdlog.h"

namespace sockagent {

PolicyReloader::PolicyReloader(PolicyEngine* engine, std::string path,
                               absl::Duration interval)
    : engine_(engine), path_(std::move(path)), interval_(interval) {
  thread_ = std::thread([this] { Poll(); });
}

PolicyReloader::~PolicyReloader() {
  stop_.Notify();
  thread_.join();
}

absl::Status PolicyReloader::Reload() {
  absl::MutexLock lock(&mu_);
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    last_mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                     st.st_mtim.tv_nsec;
    last_size_ = st.st_size;
  }
  absl::Status loaded = engine_->LoadFile(path_);
  if (!loaded.ok()) {
    rejected_.fetch_add(1);
    spdlog::error("policy reload rejected, the previous policy stays: {}",
                  std::string(loaded.message()));
    return loaded;
  }
  reloads_.fetch_add(1);
  spdlog::info("policy loaded from {}{}", path_,
               engine_->report_only() ? " (report-only)" : "");
  return loaded;
}

void PolicyReloader::Poll() {
  while (!stop_.WaitForNotificationWithTimeout(interval_)) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) continue;
    const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                          st.st_mtim.tv_nsec;
    bool changed = false;
    {
      absl::MutexLock lock(&mu_);
      changed = mtime != last_mtime_ns_ || st.st_size != last_size_;
    }
    if (changed) Reload().IgnoreError();
  }
}

}  // namespace sockagent
