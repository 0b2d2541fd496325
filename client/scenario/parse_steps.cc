// The scenario parser's step tree: a list of steps, one step (its kind and
// common keys), groups (parallel:, steps:), fan-outs (matrix:, for_each:)
// and a kind's arguments, within the bounds on size and nesting.

#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/fleet/selector.h"
#include "client/scenario/parser.h"

namespace sockagent {
namespace scenario {
namespace internal {
namespace {

constexpr const char* kStepKeys[] = {"name",    "agent",   "save_as",  "expect",
                                     "timeout", "retry",   "parallel", "steps",
                                     "matrix",  "for_each"};

// Step keys that group other steps rather than name an action's options.
bool IsGroupKey(absl::string_view key) {
  return key == "parallel" || key == "steps" || key == "matrix" ||
         key == "for_each";
}

bool IsStepKey(absl::string_view key) {
  for (const char* k : kStepKeys) {
    if (key == k) return true;
  }
  return false;
}

// The most steps a file may hold. Aliases let a small file name a huge tree
// (each level of `parallel: [*a, *a]` doubles it), which would exhaust memory.
constexpr int kMaxSteps = 10000;
// The deepest nesting of parallel: / steps: groups. An alias inside the node
// it names (`&a {parallel: [*a]}`) is a cycle, endless without a bound.
constexpr int kMaxNesting = 64;

}  // namespace

std::vector<std::string> StepKeyNames() {
  std::vector<std::string> names = {"recv_all"};
  for (const StepKind& kind : StepKinds::Get().all()) {
    names.push_back(kind.name);
  }
  for (const char* key : kStepKeys) names.push_back(key);
  return names;
}

absl::Status Parser::ParseSteps(const YAML::Node& node, absl::string_view key,
                                std::vector<Step>* steps) {
  if (!node.IsSequence()) return Error(node, key, "expected a list of steps");
  if (nesting_ >= kMaxNesting) {
    return Error(node, key,
                 absl::StrCat("nested more than ", kMaxNesting,
                              " deep (or an alias used inside itself)"));
  }
  ++nesting_;
  absl::Cleanup unnest = [this] { --nesting_; };
  for (const YAML::Node& item : node) {
    if (++steps_parsed_ > kMaxSteps) {
      return Error(item, key,
                   absl::StrCat("more than ", kMaxSteps,
                                " steps (an alias counts each time it is "
                                "used)"));
    }
    Step step;
    if (absl::Status s = ParseStep(item, &step); !s.ok()) return s;
    steps->push_back(std::move(step));
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseStep(const YAML::Node& node, Step* step) {
  step->location = Where(node);
  if (!node.IsMap()) return Error(node, "", "a step is a mapping");
  const StepKind* def = nullptr;
  YAML::Node kind_node;
  std::string kind_key;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    if (IsStepKey(key) && !IsGroupKey(key)) continue;
    if (IsGroupKey(key) || StepKinds::Get().Find(key) != nullptr) {
      if (!kind_key.empty()) {
        return Error(entry.first, key,
                     absl::StrCat("a step does one thing; it already has \"",
                                  kind_key, "\""));
      }
      kind_key = key;
      kind_node = entry.second;
      def = StepKinds::Get().Find(key);
      continue;
    }
    return Error(entry.first, key,
                 "unknown step key (an RPC such as socket, bind, connect, "
                 "send, recv, ...; parallel, steps, matrix, for_each, signal, "
                 "wait, sleep; or "
                 "name, agent, save_as, expect, timeout, retry)");
  }
  if (kind_key.empty()) {
    return Error(node, "", "a step needs an action (socket, connect, ...)");
  }
  step->kind_name = kind_key == "recv_all" ? "recv_stream" : kind_key;
  if (YAML::Node n = node["name"]) {
    absl::StatusOr<std::string> text = Scalar(n, "name");
    if (!text.ok()) return text.status();
    step->name = *text;
  }
  if (YAML::Node n = node["agent"]) {
    absl::StatusOr<std::string> text = Scalar(n, "agent");
    if (!text.ok()) return text.status();
    if (HasReference(*text)) {
      // ${from}, ${to}, ${agent} in a matrix or for_each.
      if (absl::Status s = CheckRefs(n, "agent", *text); !s.ok()) return s;
    } else if (agents_.count(*text) == 0 && !sourced_agents_) {
      return Error(n, "agent",
                   absl::StrCat("\"", *text, "\" is not under agents:"));
    }
    step->agent = *text;
  }
  if (YAML::Node n = node["timeout"]) {
    absl::StatusOr<absl::Duration> d = Duration(n, "timeout");
    if (!d.ok()) return d.status();
    step->timeout = *d;
  }
  if (YAML::Node n = node["retry"]) {
    if (absl::Status s = ParseRetry(n, &step->retry); !s.ok()) return s;
  }

  if (kind_key == "matrix" || kind_key == "for_each") {
    return ParseFanOut(node, kind_key, kind_node, step);
  }
  if (kind_key == "parallel" || kind_key == "steps") {
    step->shape =
        kind_key == "parallel" ? StepShape::kParallel : StepShape::kGroup;
    for (const char* key : {"agent", "save_as", "expect", "retry", "timeout"}) {
      if (node[key]) {
        return Error(node[key], key,
                     absl::StrCat("not allowed on ", kind_key,
                                  " (put it on the steps inside)"));
      }
    }
    if (absl::Status s = ParseSteps(kind_node, kind_key, &step->children);
        !s.ok()) {
      return s;
    }
    if (step->children.empty()) return Error(kind_node, kind_key, "empty");
    return absl::OkStatus();
  }

  step->shape = StepShape::kLeaf;
  step->kind = def;
  step->index = ++leaves_;
  if (absl::Status s = ParseKindArgs(*def, kind_node, step); !s.ok()) return s;

  // The agent: explicit, or the socket's.
  auto socket_it = step->args.find("socket");
  if (def->on_socket) {
    if (socket_it == step->args.end()) {
      return Error(kind_node, kind_key, "missing socket: (a save_as name)");
    }
    const std::string& socket = socket_it->second;
    if (!HasReference(socket)) {
      auto known = socket_agents_.find(socket);
      if (known == socket_agents_.end()) {
        return Error(kind_node, "socket",
                     absl::StrCat("\"", socket,
                                  "\" is not a socket saved earlier with "
                                  "save_as"));
      }
      if (!step->agent.empty() && !known->second.empty() &&
          step->agent != known->second) {
        return Error(
            node["agent"], "agent",
            absl::StrCat("socket \"", socket, "\" lives on agent \"",
                         known->second, "\", not \"", step->agent, "\""));
      }
    }
  } else if (step->agent.empty() && def->needs_agent) {
    return Error(node, "agent", absl::StrCat(kind_key, " needs agent:"));
  }

  if (YAML::Node n = node["expect"]) {
    if (absl::Status s = ParseExpect(n, step); !s.ok()) return s;
  }
  if (step->expect.no_data_for.has_value() && !def->receives) {
    return Error(node["expect"], "no_data_for",
                 "only for recv, recv_stream and recvfrom");
  }

  if (YAML::Node n = node["save_as"]) {
    absl::StatusOr<std::string> text = Scalar(n, "save_as");
    if (!text.ok()) return text.status();
    if (text->empty() || *text == "env" ||
        text->find_first_of(".${} ") != std::string::npos) {
      return Error(n, "save_as", "a name without '.', '$', '{', '}' or space");
    }
    if (agents_.count(*text) != 0) {
      return Error(n, "save_as",
                   absl::StrCat("\"", *text, "\" is an agent's name"));
    }
    step->save_as = *text;
    names_.insert(*text);
    if (def->makes_socket) {
      std::string agent = step->agent;
      if (agent.empty() && socket_it != step->args.end()) {
        auto known = socket_agents_.find(socket_it->second);
        if (known != socket_agents_.end()) agent = known->second;
      }
      socket_agents_[*text] = agent;
    }
  } else if (def->needs_save_as) {
    return Error(
        node, "save_as",
        absl::StrCat(kind_key, " needs save_as: (the name later steps use)"));
  }
  if (step->name.empty()) {
    step->name = step->kind_name;
    if (socket_it != step->args.end()) {
      absl::StrAppend(&step->name, " ", socket_it->second);
    } else if (!step->save_as.empty()) {
      absl::StrAppend(&step->name, " ", step->save_as);
    } else if (!step->args.empty()) {
      absl::StrAppend(&step->name, " ", step->args.begin()->second);
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseFanOut(const YAML::Node& node, const std::string& key,
                                 const YAML::Node& body, Step* step) {
  const bool matrix = key == "matrix";
  step->shape = matrix ? StepShape::kMatrix : StepShape::kForEach;
  for (const char* k : {"agent", "save_as", "expect", "retry", "timeout"}) {
    if (node[k]) {
      return Error(node[k], k,
                   absl::StrCat("not allowed on ", key,
                                " (put it on the steps inside)"));
    }
  }
  if (!body.IsMap()) {
    return Error(body, key,
                 matrix ? "expected a mapping with from, to and steps"
                        : "expected a mapping with agents and steps");
  }
  const std::vector<std::string> keys =
      matrix ? std::vector<std::string>{"from", "to", "concurrency", "steps"}
             : std::vector<std::string>{"agents", "concurrency", "steps"};
  for (const auto& entry : body) {
    const std::string k = entry.first.Scalar();
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
      return Error(entry.first, k,
                   absl::StrCat("unknown key in ", key, " (",
                                absl::StrJoin(keys, ", "), ")"));
    }
  }
  for (const std::string& k : keys) {
    if (k == "concurrency" || k == "steps") continue;
    if (!body[k]) return Error(body, k, "missing (a selector, * for all)");
    absl::StatusOr<std::string> text = Scalar(body[k], k);
    if (!text.ok()) return text.status();
    absl::StatusOr<fleet::Selector> selector = fleet::Selector::Parse(*text);
    if (!selector.ok()) return Error(body[k], k, selector.status().message());
    (k == "to" ? step->to : step->from) = *text;
  }
  if (YAML::Node n = body["concurrency"]) {
    absl::StatusOr<std::string> text = Scalar(n, "concurrency");
    if (!text.ok()) return text.status();
    absl::StatusOr<uint64_t> value = ParseUint(*text);
    if (!value.ok() || *value < 1 || *value > 1024) {
      return Error(n, "concurrency", "expected an integer from 1 to 1024");
    }
    step->concurrency = static_cast<int>(*value);
  }
  if (!body["steps"]) return Error(body, "steps", "missing");
  // ${from} and ${to} (${agent}) exist inside only.
  const std::vector<std::string> bound =
      matrix ? std::vector<std::string>{"from", "to"}
             : std::vector<std::string>{"agent"};
  std::vector<std::string> added;
  for (const std::string& name : bound) {
    if (names_.insert(name).second) added.push_back(name);
  }
  step->first_leaf = leaves_ + 1;
  absl::Status parsed = ParseSteps(body["steps"], "steps", &step->children);
  for (const std::string& name : added) names_.erase(name);
  if (!parsed.ok()) return parsed;
  if (step->children.empty()) return Error(body["steps"], "steps", "empty");
  if (step->name.empty()) {
    step->name = matrix ? absl::StrCat("matrix ", step->from, " -> ", step->to)
                        : absl::StrCat("for_each ", step->from);
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseKindArgs(const StepKind& def, const YAML::Node& node,
                                   Step* step) {
  const std::string kind = def.name;
  if (node.IsNull()) {
    // `gethostname:` / `list_sockets:` with nothing.
  } else if (node.IsScalar()) {
    const std::string& key = def.shorthand;
    if (key.empty()) {
      return Error(node, kind,
                   "expected a mapping of arguments (a scalar is only allowed "
                   "where one argument is enough)");
    }
    ArgType type = ArgType::kSocketName;
    for (const ArgDef& arg : def.args) {
      if (key == arg.key) type = arg.type;
    }
    if (absl::Status s = CheckArgValue(node, key, type, node.Scalar());
        !s.ok()) {
      return s;
    }
    step->args[key] = node.Scalar();
  } else if (node.IsMap()) {
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      if (key == "data" && def.takes_data) {
        DataSpec data;
        if (absl::Status s = ParseData(entry.second, "data", &data); !s.ok()) {
          return s;
        }
        step->data = std::move(data);
        continue;
      }
      bool known = key == "socket" && def.on_socket;
      ArgType type = ArgType::kSocketName;
      for (const ArgDef& arg : def.args) {
        if (key == arg.key) {
          known = true;
          type = arg.type;
        }
      }
      if (!known) {
        std::vector<std::string> keys;
        if (def.on_socket) keys.push_back("socket");
        for (const ArgDef& arg : def.args) keys.push_back(arg.key);
        if (def.takes_data) keys.push_back("data");
        return Error(
            entry.first, key,
            absl::StrCat("unknown argument of ", kind, " (",
                         keys.empty() ? "none" : absl::StrJoin(keys, ", "),
                         ")"));
      }
      absl::StatusOr<std::string> value =
          Scalar(entry.second, key, type == ArgType::kFlags);
      if (!value.ok()) return value.status();
      if (absl::Status s = CheckArgValue(entry.second, key, type, *value);
          !s.ok()) {
        return s;
      }
      step->args[key] = *value;
    }
  } else {
    return Error(node, kind, "expected a mapping of arguments");
  }
  for (const ArgDef& arg : def.args) {
    if (arg.required && step->args.count(arg.key) == 0) {
      return Error(node, kind, absl::StrCat("missing ", arg.key, ":"));
    }
  }
  if (def.takes_data && !step->data.has_value()) {
    return Error(node, kind, "missing data:");
  }
  if (def.check) {
    if (absl::Status s = def.check(step->args); !s.ok()) {
      return Error(node, kind, s.message());
    }
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace scenario
}  // namespace sockagent
