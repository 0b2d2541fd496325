#ifndef SOCKAGENT_TESTS_SERVER_CORE_TEST_UTIL_H_
#define SOCKAGENT_TESTS_SERVER_CORE_TEST_UTIL_H_

// Helpers shared by the AgentCore tests (agent_core_test, traffic_test):
// the one result of a call that may wait, the errno a status carries, and a
// loopback address.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "proto/errno_status.h"
#include "server/core/agent_core.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace core_test {

// How long a test waits for a callback before it fails.
inline constexpr absl::Duration kCallbackWait = absl::Seconds(20);

// The errno a status carries, 0 if none.
inline int ErrnoOf(const absl::Status& status) {
  std::optional<ErrnoInfo> info = GetErrno(status);
  return info.has_value() ? info->number : 0;
}

// Collects the one result of an operation that may wait. Copies of the
// callback share the state, so a late callback never touches a dead object;
// late or repeated callbacks are counted, never recorded.
template <typename T>
class Waiter {
 public:
  Callback<T> callback() {
    return [state = state_](absl::StatusOr<T> result) {
      if (state->calls.fetch_add(1) != 0) return;
      state->result = std::move(result);
      state->done.Notify();
    };
  }
  bool done() const { return state_->done.HasBeenNotified(); }
  int calls() const { return state_->calls.load(); }
  absl::StatusOr<T> Wait() {
    if (!state_->done.WaitForNotificationWithTimeout(kCallbackWait)) {
      return absl::InternalError("test: the callback did not run in time");
    }
    return state_->result;
  }

 private:
  struct State {
    absl::Notification done;
    std::atomic<int> calls{0};
    absl::StatusOr<T> result = absl::UnknownError("test: no result");
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

inline v1::Address Loopback(uint32_t port = 0) {
  v1::Address address;
  address.mutable_inet()->set_host("127.0.0.1");
  address.mutable_inet()->set_port(port);
  return address;
}

}  // namespace core_test
}  // namespace sockagent

#endif  // SOCKAGENT_TESTS_SERVER_CORE_TEST_UTIL_H_
