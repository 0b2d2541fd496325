#include "client/cli/interrupt_watcher.h"

#include <time.h>

#include <cstdlib>
#include <iostream>

namespace sockagent {
namespace cli {

InterruptWatcher::InterruptWatcher() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  thread_ = std::thread([this] {
    const timespec tick{0, 100 * 1000 * 1000};
    while (!done_.load()) {
      int sig = ::sigtimedwait(&set_, nullptr, &tick);
      if (sig != SIGINT && sig != SIGTERM) continue;
      const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
      if (interrupt_.HasBeenNotified()) {
        // A second signal: the user does not want to wait for cleanup.
        // The agents close what is left when the sessions' leases lapse.
        std::cerr << "sockctl run: " << name
                  << " again: exiting without cleanup" << std::endl;
        std::_Exit(128 + sig);
      }
      signal_.store(sig);
      std::cerr << "sockctl run: " << name
                << ": stopping, cleaning up (again to exit at once)"
                << std::endl;
      interrupt_.Notify();
    }
  });
}

void InterruptWatcher::Stop() {
  done_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace cli
}  // namespace sockagent
