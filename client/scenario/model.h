#ifndef SOCKAGENT_CLIENT_SCENARIO_MODEL_H_
#define SOCKAGENT_CLIENT_SCENARIO_MODEL_H_

// The parsed form of a scenario file, and the value parsers shared by the
// parser (to reject bad literals with their location) and the runner (to
// convert values after ${...} substitution). Internal to the scenario
// library. Immutable after parsing; pure functions; thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sockagent::scenario {

// A step's result fields, and a var's: "" is the main value (what ${name}
// gives), others are ${name.field}.
using Fields = std::map<std::string, std::string>;

// Where a key or value sits in the file (1-based).
struct Location {
  int line = 0;
  int column = 0;
};

struct StepKind;  // step_kinds.h

// What a step is: one action (a StepKind), or a group of steps.
enum class StepShape {
  kLeaf,      // one action of `kind`
  kParallel,  // parallel: children run at the same time
  kGroup,     // steps: children run in order
  kMatrix,    // matrix: children run once per (from, to) pair of agents
  kForEach,   // for_each: children run once per agent
};

// How a step argument's value is checked and converted.
enum class ArgType {
  kString,
  kSocketName,  // a socket saved earlier with save_as
  kAddress,     // ParseAddress forms
  kUint,        // a non-negative integer
  kSize,        // 1024, 64KiB, 1MiB
  kDuration,    // 200ms, 2s, 1.5 (seconds)
  kTimeout,     // none | 0 | a duration
  kBool,
  kFamily,
  kSocketType,
  kHow,
  kOption,
  kOptionValue,
  kFlags,      // a list (or comma list) of peek, waitall, oob, dontwait
  kMode,       // echo | sink | source
  kPattern,    // sequence | random | zero
  kPercent,    // 0..100, optionally with a trailing %
  kDirection,  // both | upstream | downstream (a proxy's faults)
};

// Bytes to send or to compare against. Exactly one of text, hex or size is
// the source; text and hex may repeat.
struct DataSpec {
  std::optional<std::string> text;  // may hold ${...}
  std::optional<std::string> hex;
  std::optional<std::string> size;  // kSize, may hold ${...}
  std::string pattern = "sequence";
  std::string seed = "0";
  std::string repeat = "1";
  Location location;
};

struct Expectation {
  std::optional<std::string> status;  // a code name, "OK" or "error"
  std::optional<std::string> errno_name;
  std::optional<DataSpec> data;  // equals
  std::optional<std::string> contains;
  std::optional<std::string> matches;  // RE2 syntax, unanchored search
  std::optional<std::string> bytes;
  std::optional<std::string> checksum;  // XXH3-64, 16 hex digits
  std::optional<DataSpec> checksum_of;  // ... of these bytes
  std::optional<absl::Duration> within;
  std::optional<absl::Duration> no_data_for;
  // Result field -> expected text ("eof" -> "true", "end" -> "eof").
  std::vector<std::pair<std::string, std::string>> values;
};

struct Retry {
  bool enabled = false;
  int attempts = 0;  // 0: until the deadline only
  absl::Duration until = absl::ZeroDuration();
  absl::Duration interval = absl::Milliseconds(100);
};

struct Step {
  int index = 0;  // 1-based among leaves; 0 for parallel and groups
  StepShape shape = StepShape::kLeaf;
  const StepKind* kind = nullptr;  // for leaves; from StepKinds::Get()
  std::string kind_name;
  std::string name;
  std::string agent;  // explicit `agent:` ("" = the socket's agent)
  std::string save_as;
  std::map<std::string, std::string> args;  // key -> value (may hold ${...})
  std::optional<DataSpec> data;
  Expectation expect;
  std::optional<absl::Duration> timeout;
  Retry retry;
  std::vector<Step> children;  // parallel branches or group steps
  // matrix: the selectors (fleet::Selector) of the `from` and `to` agents;
  // for_each: `from` selects the agents. At most `concurrency` pairs (or
  // agents) run at a time. `first_leaf` is the index of the first leaf
  // inside (orders the group's results among the steps).
  std::string from;
  std::string to;
  int concurrency = 1;
  int first_leaf = 0;
  Location location;
};

struct AgentSpec {
  std::string name;
  std::string address;  // may hold ${env.X}; "" = from the environment
  bool has_security = false;
  // TLS even when no file is named (the system's roots verify the agent).
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  std::string token;
  absl::Duration ttl = absl::Seconds(30);
  Location location;
};

struct Model {
  std::string name;
  std::string description;
  std::string file;
  std::vector<AgentSpec> agents;
  // An agent source (fleet::LoadAgents: an inventory file, dns:NAME:PORT,
  // env:VAR, NAME=HOST:PORT,...) whose agents join `agents` at run time,
  // those matching the selector `select` (all when empty). May hold ${env.X}.
  std::string agents_from;
  std::string select;
  std::vector<std::pair<std::string, std::string>> vars;
  absl::Duration default_timeout = absl::Seconds(30);
  std::vector<Step> steps;
  int leaf_count = 0;
};

// Whether `text` holds a ${...} reference (then it is checked at run time).
bool HasReference(absl::string_view text);

// Checks (and for the runner, normalizes) one argument value of `type`.
// INVALID_ARGUMENT saying what is wrong.
absl::Status CheckArg(ArgType type, absl::string_view value);

// A size in the project's one grammar (ParseByteSize, docs/units.md: "1024",
// "64K" = "64KiB", "1MB" = 10^6), at most 1 TiB in a scenario.
absl::StatusOr<uint64_t> ParseSize(absl::string_view text);
absl::StatusOr<bool> ParseBool(absl::string_view text);
absl::StatusOr<uint64_t> ParseUint(absl::string_view text);
// "5", "5%", "0.5": a percentage from 0 to 100.
absl::StatusOr<double> ParsePercent(absl::string_view text);
// MSG_* bits for "peek,waitall" (also with spaces).
absl::StatusOr<int> ParseRecvFlags(absl::string_view text);
// How `matches` patterns are compiled: byte-wise (Latin-1, so received
// bytes need not be UTF-8), errors returned rather than logged.
RE2::Options RegexOptions();
// sockctl's duration text ("359us", "9.12ms", "2.182s"; vocab::DurationText).
std::string DurationText(absl::Duration duration);

// The byte sequence patterns shared with the agent's traffic source:
// sequence = position mod 256, zero = 0, random = a splitmix64 stream from
// `seed`. `offset` is the position of out[0] in the stream.
absl::Status FillPatternBytes(absl::string_view pattern, uint64_t seed,
                              uint64_t offset, char* out, size_t n);

}  // namespace sockagent::scenario

#endif  // SOCKAGENT_CLIENT_SCENARIO_MODEL_H_
