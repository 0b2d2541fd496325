#ifndef SOCKAGENT_CLIENT_CLI_PROXY_CONTROL_H_
#define SOCKAGENT_CLIENT_CLI_PROXY_CONTROL_H_

// The control socket of `sockctl proxy --control PATH`: a Unix stream socket
// on the harness host (not on the agent) through which another process
// (`sockctl proxy-faults --control PATH`) changes the running proxy's
// faults. One request per connection: a change line (the syntax of the
// proxy's stdin lines, cli/fault_flags.h ParseFaultChange) ended by a
// newline or EOF; one answer line back (the proxy's "faults" event as JSON),
// then the proxy closes the connection.
//
// ControlSocket is thread-safe: one thread serves the requests in turn, each
// read and write bounded by a timeout, so a stuck client cannot hold it.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sockagent {
namespace cli {

class ControlSocket {
 public:
  // Answers one request line.
  using Handler = std::function<std::string(absl::string_view line)>;

  // Listens at `path` with mode 0600. A stale socket file there (nothing
  // accepts on it) is replaced. Errors name --control: ALREADY_EXISTS when
  // a process listens there, INVALID_ARGUMENT when the path is too long or
  // is not a socket, otherwise the errno of socket/bind/listen.
  static absl::StatusOr<std::unique_ptr<ControlSocket>> Listen(
      const std::string& path);

  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;
  // Stops serving, then removes the socket file.
  ~ControlSocket();

  // Starts the serving thread; `handler` runs on it, once per request.
  void Serve(Handler handler);

 private:
  ControlSocket(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  void Loop(const Handler& handler);

  const std::string path_;
  const int fd_;
  std::thread thread_;
};

// Sends `line` to the proxy listening at `path` and returns its answer
// line. UNAVAILABLE naming --control when nothing listens there; the
// errno of the exchange otherwise; DEADLINE_EXCEEDED after `timeout`.
absl::StatusOr<std::string> SendControlLine(const std::string& path,
                                            absl::string_view line,
                                            absl::Duration timeout);

}  // namespace cli
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CLI_PROXY_CONTROL_H_
