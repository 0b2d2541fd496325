#include "client/cli/stdio.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sockagent {
namespace cli {

bool WriteStdout(absl::string_view data) {
  if (data.empty()) return true;
  if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) {
    return false;
  }
  return std::fflush(stdout) == 0;
}

absl::StatusOr<std::string> ReadAll(int fd) {
  std::string out;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "read");
    if (n == 0) return out;
    out.append(buffer, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  if (path == "-") return ReadAll(STDIN_FILENO);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  absl::StatusOr<std::string> data = ReadAll(fd);
  ::close(fd);
  return data;
}

}  // namespace cli
}  // namespace sockagent
