// The one bounded wait of the test suite: poll a condition until it holds or
// a deadline passes. Tests wait on something observable (a counter, a state,
// a file), never on a bare sleep; a wait that times out says what it waited
// for and how long.
//
//   ASSERT_TRUE(test::WaitFor([&] { return table.size() == 0; },
//   absl::Seconds(5),
//                       "every session to be reaped"));
//
// Thread-compatible: the condition runs on the calling thread only.

#ifndef SOCKAGENT_TESTS_COMMON_WAIT_H_
#define SOCKAGENT_TESTS_COMMON_WAIT_H_

#include <algorithm>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace sockagent::test {

// How long a test waits for something that normally takes milliseconds.
// Generous: sanitizer builds and a loaded 2-core machine are slow.
inline constexpr absl::Duration kDefaultWait = absl::Seconds(30);

// Calls `condition` until it returns true (success) or `timeout` has passed
// (failure naming `what`). Checks at once, then with a pause that grows from
// 1 ms to 20 ms, so a condition that is already true costs nothing and one
// that takes long costs little CPU. The condition is checked one last time at
// the deadline.
inline ::testing::AssertionResult WaitFor(
    absl::FunctionRef<bool()> condition, absl::Duration timeout = kDefaultWait,
    absl::string_view what = "the condition") {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (true) {
    if (condition()) return ::testing::AssertionSuccess();
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    absl::SleepFor(std::min(pause, deadline - now));
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
  return ::testing::AssertionFailure()
         << "timed out after " << absl::FormatDuration(timeout)
         << " waiting for " << what;
}

}  // namespace sockagent::test

#endif  // SOCKAGENT_TESTS_COMMON_WAIT_H_
