#ifndef SOCKAGENT_TESTS_INTEGRATION_AGENT_PROCESS_H_
#define SOCKAGENT_TESTS_INTEGRATION_AGENT_PROCESS_H_

// Runs sockagentd as a real child process on 127.0.0.1:0 and stops it by
// pid. The port comes back through --port-file.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/common/wait.h"

extern char** environ;

namespace sockagent::testing {

class AgentProcess {
 public:
  // Starts `binary` with `extra_args`; waits (bounded) until it serves.
  // `wrapper` (e.g. {"/usr/bin/prlimit", "--nofile=256:256", "--"}) runs it
  // through a command that execs it, so the pid stays the agent's.
  bool Start(const std::string& binary,
             const std::vector<std::string>& extra_args = {},
             const std::vector<std::string>& wrapper = {}) {
    char dir_template[] = "/tmp/sockagentd-test-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) return false;
    dir_ = dir_template;
    const std::string port_file = dir_ + "/port";
    std::vector<std::string> args = {binary, "--listen", "127.0.0.1:0",
                                     "--port-file", port_file};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.insert(args.begin(), wrapper.begin(), wrapper.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/stderr.log";
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, args[0].c_str(), &actions, nullptr,
                               argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    return static_cast<bool>(test::WaitFor(
        [&] {
          std::ifstream in(port_file);
          std::string text;
          return in >> text && absl::SimpleAtoi(text, &port_) && port_ > 0;
        },
        absl::Seconds(30), "the agent's port file"));
  }

  ~AgentProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) {
      ::unlink((dir_ + "/port").c_str());
      ::unlink((dir_ + "/stderr.log").c_str());
      ::rmdir(dir_.c_str());
    }
  }

  // Sends `signal` and waits (bounded) for the exit. Returns the exit code,
  // or -1 if it did not exit normally in time (it is then killed).
  int StopWith(int signal, absl::Duration timeout = absl::Seconds(30)) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    if (!test::WaitFor(
            [&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout,
            "the agent to exit")) {
      return -1;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // "Threads:" from /proc/<pid>/status.
  int Threads() const { return StatusField("Threads:"); }
  // Resident set size in KiB.
  int RssKib() const { return StatusField("VmRSS:"); }

  std::string Log() const {
    std::ifstream in(dir_ + "/stderr.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int StatusField(const std::string& name) const {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
    std::string key;
    while (in >> key) {
      if (key == name) {
        int value = -1;
        in >> value;
        return value;
      }
      std::getline(in, key);
    }
    return -1;
  }

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

}  // namespace sockagent::testing

#endif  // SOCKAGENT_TESTS_INTEGRATION_AGENT_PROCESS_H_
