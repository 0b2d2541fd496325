#include "client/cli/proxy_control.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace sockagent {
namespace cli {
namespace {

// A request or an answer is one line of at most this many bytes.
constexpr size_t kMaxLine = 64 * 1024;
// How long the proxy waits for a request's line and for its answer to go.
constexpr absl::Duration kServeTimeout = absl::Seconds(5);

absl::Status Errno(int error, absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(error,
                             absl::StrCat("--control ", path, ": ", what));
}

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--control: \"", path, "\" must be a path of 1 to ",
                     sizeof(address.sun_path) - 1, " bytes"));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

void SetTimeouts(int fd, absl::Duration timeout) {
  const timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Reads up to a newline, EOF or kMaxLine bytes; false on a read error.
bool ReadLine(int fd, std::string* line) {
  char buffer[4096];
  while (line->size() < kMaxLine) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    line->append(buffer, static_cast<size_t>(n));
    const size_t newline = line->find('\n');
    if (newline != std::string::npos) {
      line->resize(newline);
      return true;
    }
  }
  return true;
}

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A connected Unix stream socket to `path`, or the errno of connect.
absl::StatusOr<int> Connect(const sockaddr_un& address) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address),
                sizeof(address)) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, "connect");
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlSocket>> ControlSocket::Listen(
    const std::string& path) {
  absl::StatusOr<sockaddr_un> address = UnixAddress(path);
  if (!address.ok()) return address.status();
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--control ", path,
                       ": exists and is not a socket (remove it or "
                       "choose another path)"));
    }
    absl::StatusOr<int> live = Connect(*address);
    if (live.ok()) {
      ::close(*live);
      return absl::AlreadyExistsError(
          absl::StrCat("--control ", path, ": another proxy listens there"));
    }
    // Nothing accepts on it: a socket file left by a process that died.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Errno(errno, "cannot remove the stale socket", path);
    }
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno(errno, "socket", path);
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  // Only this user may connect: the file is made 0600 from the start.
  const mode_t previous = ::umask(0177);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&*address),
                           sizeof(*address));
  const int bind_error = errno;
  ::umask(previous);
  if (bound != 0) return Errno(bind_error, "bind", path);
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd, 8) != 0) {
    const int error = errno;
    ::unlink(path.c_str());
    return Errno(error, "listen", path);
  }
  std::move(close_fd).Cancel();
  return std::unique_ptr<ControlSocket>(new ControlSocket(path, fd));
}

ControlSocket::~ControlSocket() {
  // shutdown() makes a blocked accept() return (EINVAL) on Linux.
  ::shutdown(fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
  ::unlink(path_.c_str());
}

void ControlSocket::Serve(Handler handler) {
  thread_ =
      std::thread([this, handler = std::move(handler)] { Loop(handler); });
}

void ControlSocket::Loop(const Handler& handler) {
  for (;;) {
    const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down by the destructor
    }
    absl::Cleanup close_conn = [conn] { ::close(conn); };
    SetTimeouts(conn, kServeTimeout);
    std::string line;
    if (!ReadLine(conn, &line)) continue;
    WriteAll(conn, absl::StrCat(handler(line), "\n"));
  }
}

absl::StatusOr<std::string> SendControlLine(const std::string& path,
                                            absl::string_view line,
                                            absl::Duration timeout) {
  absl::StatusOr<sockaddr_un> address = UnixAddress(path);
  if (!address.ok()) return address.status();
  absl::StatusOr<int> fd = Connect(*address);
  if (!fd.ok()) {
    return absl::UnavailableError(absl::StrCat("--control ", path,
                                               ": no proxy listens there (",
                                               fd.status().message(), ")"));
  }
  absl::Cleanup close_fd = [fd = *fd] { ::close(fd); };
  SetTimeouts(*fd, timeout);
  if (!WriteAll(*fd, absl::StrCat(line, "\n"))) {
    return Errno(errno, "send", path);
  }
  ::shutdown(*fd, SHUT_WR);
  std::string answer;
  if (!ReadLine(*fd, &answer)) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return absl::DeadlineExceededError(
          absl::StrCat("--control ", path, ": the proxy did not answer within ",
                       absl::FormatDuration(timeout)));
    }
    return Errno(errno, "recv", path);
  }
  if (answer.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "--control ", path, ": the proxy closed without an answer"));
  }
  return answer;
}

}  // namespace cli
}  // namespace sockagent
