#ifndef SOCKAGENT_TESTS_FUZZ_FUZZ_CHECK_H_
#define SOCKAGENT_TESTS_FUZZ_FUZZ_CHECK_H_

// FUZZ_CHECK(condition): a broken invariant in a fuzz target. Prints the
// condition and its place, then aborts, which libFuzzer reports as a crash
// and saves the input. Active in every build type (unlike assert()).

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                         \
  do {                                                                \
    if (!(condition)) {                                               \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
                   __LINE__, #condition);                             \
      std::abort();                                                   \
    }                                                                 \
  } while (false)

#endif  // SOCKAGENT_TESTS_FUZZ_FUZZ_CHECK_H_
