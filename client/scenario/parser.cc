// Scenario::ParseFile / ParseString: YAML -> scenario::Model, rejecting
// anything the runner could not do with the file:line:column and key where
// it is written. yaml-cpp reports errors by throwing; the exceptions are
// caught here and never leave this file.

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/fleet/selector.h"
#include "client/scenario/model.h"
#include "client/scenario/scenario.h"
#include "client/scenario/step_kinds.h"
#include "proto/edit_distance.h"
#include "proto/errno_status.h"
#include "proto/units.h"

namespace sockagent {
namespace scenario {
namespace {

constexpr const char* kStepKeys[] = {"name",    "agent",   "save_as",  "expect",
                                     "timeout", "retry",   "parallel", "steps",
                                     "matrix",  "for_each"};

// Step keys that group other steps rather than name an action's options.
bool IsGroupKey(absl::string_view key) {
  return key == "parallel" || key == "steps" || key == "matrix" ||
         key == "for_each";
}

// The name of `names` closest to `word` (case-insensitive), when it is close
// enough to be a likely typo; "" otherwise.
std::string Closest(absl::string_view word,
                    const std::vector<std::string>& names) {
  const std::string lower = absl::AsciiStrToLower(word);
  std::string best;
  size_t best_distance = std::max<size_t>(2, lower.size() / 3) + 1;
  for (const std::string& name : names) {
    const size_t d = EditDistance(lower, absl::AsciiStrToLower(name));
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  return best;
}

// " (did you mean \"x\"?)" or "".
std::string DidYouMean(absl::string_view word,
                       const std::vector<std::string>& names) {
  const std::string best = Closest(word, names);
  return best.empty() ? "" : absl::StrCat(" (did you mean \"", best, "\"?)");
}

// The lower-case words of `text` (letters, digits, '_'), e.g. the key list
// of an "unknown key (a, b, c)" message.
std::vector<std::string> Words(absl::string_view text) {
  std::vector<std::string> words;
  std::string current;
  for (char c : text) {
    if (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_') {
      current += c;
    } else if (!current.empty()) {
      words.push_back(current);
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(current);
  return words;
}

// Every errno name the agent can report: the system's errno names, their
// aliases, and getaddrinfo's EAI_* names.
const std::vector<std::string>& ErrnoNames() {
  static const auto* names = [] {
    auto* out = new std::vector<std::string>;
    for (int err = 1; err < 4096; ++err) {
      const std::string name = ErrnoName(err);
      // ErrnoName() gives "E<number>" for a value without a name.
      if (name.size() > 1 && !absl::ascii_isdigit(name[1])) {
        out->push_back(name);
      }
    }
    for (const char* extra :
         {"EWOULDBLOCK", "EDEADLOCK", "ENOTSUP", "EAI_ADDRFAMILY", "EAI_AGAIN",
          "EAI_BADFLAGS", "EAI_FAIL", "EAI_FAMILY", "EAI_MEMORY", "EAI_NODATA",
          "EAI_NONAME", "EAI_OVERFLOW", "EAI_SERVICE", "EAI_SOCKTYPE",
          "EAI_SYSTEM"}) {
      out->push_back(extra);
    }
    return out;
  }();
  return *names;
}

// Names a step may use as keys: every kind and the common keys.
std::vector<std::string> StepKeyNames();

bool IsStepKey(absl::string_view key) {
  for (const char* k : kStepKeys) {
    if (key == k) return true;
  }
  return false;
}

std::vector<std::string> StepKeyNames() {
  std::vector<std::string> names = {"recv_all"};
  for (const StepKind& kind : StepKinds::Get().all()) {
    names.push_back(kind.name);
  }
  for (const char* key : kStepKeys) names.push_back(key);
  return names;
}

// The most steps a file may hold. Aliases let a small file name a huge tree
// (each level of `parallel: [*a, *a]` doubles it), which would exhaust memory.
constexpr int kMaxSteps = 10000;
// The deepest nesting of parallel: / steps: groups. An alias inside the node
// it names (`&a {parallel: [*a]}`) is a cycle, endless without a bound.
constexpr int kMaxNesting = 64;

class Parser {
 public:
  explicit Parser(std::string origin) : origin_(std::move(origin)) {}

  absl::Status Parse(absl::string_view text, Model* model);

 private:
  // "FILE:LINE:COLUMN: KEY: WHAT". For an "unknown ..." key whose
  // message lists the known ones in parentheses, adds the closest of them
  // ("did you mean").
  absl::Status Error(const YAML::Node& node, absl::string_view key,
                     absl::string_view what) const {
    Location at = Where(node);
    std::string suggestion;
    if (!key.empty() && absl::StartsWith(what, "unknown")) {
      const size_t open = what.find('(');
      suggestion = DidYouMean(key, absl::StartsWith(what, "unknown step key")
                                       ? StepKeyNames()
                                       : Words(open == absl::string_view::npos
                                                   ? absl::string_view()
                                                   : what.substr(open)));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        origin_, ":", at.line, ":", at.column, ": ",
        key.empty() ? "" : absl::StrCat(key, ": "), what, suggestion));
  }
  static Location Where(const YAML::Node& node) {
    YAML::Mark mark = node.Mark();
    if (mark.is_null()) return Location{0, 0};
    return Location{mark.line + 1, mark.column + 1};
  }

  // A scalar's text (null -> ""); sequences of scalars are joined with ","
  // when `allow_list`.
  absl::StatusOr<std::string> Scalar(const YAML::Node& node,
                                     absl::string_view key,
                                     bool allow_list = false) const;
  // INVALID_ARGUMENT at the second occurrence of a key repeated in any
  // mapping under `node`. `checked` holds the nodes already walked (by
  // position and type), so an alias is walked once.
  absl::Status CheckUniqueKeys(const YAML::Node& node,
                               std::set<std::pair<int, int>>* checked) const;
  absl::Status ParseAgents(const YAML::Node& node, Model* model);
  absl::Status ParseSteps(const YAML::Node& node, absl::string_view key,
                          std::vector<Step>* steps);
  absl::Status ParseStep(const YAML::Node& node, Step* step);
  // matrix: / for_each: (`body` is the mapping under the key).
  absl::Status ParseFanOut(const YAML::Node& node, const std::string& key,
                           const YAML::Node& body, Step* step);
  absl::Status ParseKindArgs(const StepKind& def, const YAML::Node& node,
                             Step* step);
  absl::Status ParseData(const YAML::Node& node, absl::string_view key,
                         DataSpec* data);
  absl::Status ParseExpect(const YAML::Node& node, Step* step);
  absl::Status ParseRetry(const YAML::Node& node, Retry* retry);
  absl::StatusOr<absl::Duration> Duration(const YAML::Node& node,
                                          absl::string_view key) const;
  // Checks every ${...} in `text` names env, a var or an earlier save_as.
  absl::Status CheckRefs(const YAML::Node& node, absl::string_view key,
                         absl::string_view text) const;
  absl::Status CheckArgValue(const YAML::Node& node, absl::string_view key,
                             ArgType type, const std::string& value) const;

  std::string origin_;
  std::set<std::string> agents_;
  // agents_from: is set, so agent names are known only at run time.
  bool sourced_agents_ = false;
  std::set<std::string> names_;  // vars and save_as names seen so far
  // Saved socket -> its agent ("" when not known statically).
  absl::flat_hash_map<std::string, std::string> socket_agents_;
  int leaves_ = 0;
  // Steps parsed so far, groups included, counting an alias each time it is
  // used (kMaxSteps).
  int steps_parsed_ = 0;
  // How deep the step list being parsed is nested (kMaxNesting).
  int nesting_ = 0;
};

absl::StatusOr<std::string> Parser::Scalar(const YAML::Node& node,
                                           absl::string_view key,
                                           bool allow_list) const {
  if (node.IsNull()) return std::string();
  if (node.IsScalar()) return node.Scalar();
  if (allow_list && node.IsSequence()) {
    std::vector<std::string> parts;
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) return Error(item, key, "expected a scalar");
      parts.push_back(item.Scalar());
    }
    return absl::StrJoin(parts, ",");
  }
  return Error(node, key, "expected a scalar value");
}

absl::StatusOr<absl::Duration> Parser::Duration(const YAML::Node& node,
                                                absl::string_view key) const {
  absl::StatusOr<std::string> text = Scalar(node, key);
  if (!text.ok()) return text.status();
  absl::StatusOr<absl::Duration> duration = ParseDurationText(*text);
  if (!duration.ok()) return Error(node, key, duration.status().message());
  return *duration;
}

absl::Status Parser::CheckRefs(const YAML::Node& node, absl::string_view key,
                               absl::string_view text) const {
  size_t pos = 0;
  while ((pos = text.find("${", pos)) != absl::string_view::npos) {
    size_t end = text.find('}', pos);
    if (end == absl::string_view::npos) {
      return Error(node, key,
                   absl::StrCat("unterminated ${ in \"", text, "\""));
    }
    absl::string_view ref = text.substr(pos + 2, end - pos - 2);
    absl::string_view root = ref.substr(0, ref.find_first_of(".:"));
    if (root.empty()) {
      return Error(node, key,
                   absl::StrCat("empty reference in \"", text, "\""));
    }
    if (root != "env" && names_.count(std::string(root)) == 0) {
      return Error(node, key,
                   absl::StrCat("${", ref, "}: \"", root,
                                "\" is not a var or an earlier save_as"));
    }
    if (root == "env" && !absl::StartsWith(ref, "env.")) {
      return Error(node, key,
                   absl::StrCat("${", ref, "}: expected ${env.NAME}"));
    }
    pos = end + 1;
  }
  return absl::OkStatus();
}

absl::Status Parser::CheckArgValue(const YAML::Node& node,
                                   absl::string_view key, ArgType type,
                                   const std::string& value) const {
  if (absl::Status s = CheckRefs(node, key, value); !s.ok()) return s;
  if (HasReference(value)) return absl::OkStatus();
  if (absl::Status s = CheckArg(type, value); !s.ok()) {
    return Error(node, key, s.message());
  }
  return absl::OkStatus();
}

absl::Status Parser::Parse(absl::string_view text, Model* model) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin_, ":", e.mark.line + 1, ":", e.mark.column + 1,
                     ": YAML syntax error: ", e.msg));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin_,
                     ":1:1: a scenario file is a mapping with "
                     "agents: and steps:"));
  }
  // YAML wants the keys of a mapping unique, but yaml-cpp keeps every
  // entry: a second "agents:" would be ignored, a repeated agent name used
  // twice.
  std::set<std::pair<int, int>> checked;
  if (absl::Status s = CheckUniqueKeys(root, &checked); !s.ok()) return s;
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    if (key != "name" && key != "description" && key != "agents" &&
        key != "agents_from" && key != "select" && key != "vars" &&
        key != "defaults" && key != "steps") {
      return Error(entry.first, key,
                   "unknown key (name, description, agents, agents_from, "
                   "select, vars, defaults, steps)");
    }
  }
  for (const char* key : {"agents_from", "select"}) {
    if (!root[key]) continue;
    absl::StatusOr<std::string> text = Scalar(root[key], key);
    if (!text.ok()) return text.status();
    if (absl::Status s = CheckRefs(root[key], key, *text); !s.ok()) return s;
    (std::string(key) == "select" ? model->select : model->agents_from) = *text;
  }
  if (root["select"] && model->agents_from.empty()) {
    return Error(root["select"], "select", "needs agents_from:");
  }
  if (!model->select.empty()) {
    absl::StatusOr<fleet::Selector> selector =
        fleet::Selector::Parse(model->select);
    if (!selector.ok()) {
      return Error(root["select"], "select", selector.status().message());
    }
  }
  if (root["name"]) {
    absl::StatusOr<std::string> name = Scalar(root["name"], "name");
    if (!name.ok()) return name.status();
    model->name = *name;
  }
  if (root["description"]) {
    absl::StatusOr<std::string> d = Scalar(root["description"], "description");
    if (!d.ok()) return d.status();
    model->description = *d;
  }
  if (!root["agents"] && model->agents_from.empty()) {
    return Error(root, "agents",
                 "missing (at least one named agent, or agents_from:)");
  }
  if (root["agents"]) {
    if (absl::Status s = ParseAgents(root["agents"], model); !s.ok()) return s;
  }
  sourced_agents_ = !model->agents_from.empty();
  if (YAML::Node vars = root["vars"]) {
    if (!vars.IsMap()) return Error(vars, "vars", "expected a mapping");
    for (const auto& entry : vars) {
      const std::string key = entry.first.Scalar();
      absl::StatusOr<std::string> value = Scalar(entry.second, key);
      if (!value.ok()) return value.status();
      if (absl::Status s = CheckRefs(entry.second, key, *value); !s.ok()) {
        return s;
      }
      names_.insert(key);
      model->vars.emplace_back(key, *value);
    }
  }
  if (YAML::Node defaults = root["defaults"]) {
    if (!defaults.IsMap()) {
      return Error(defaults, "defaults", "expected a mapping");
    }
    for (const auto& entry : defaults) {
      const std::string key = entry.first.Scalar();
      if (key != "timeout") {
        return Error(entry.first, key, "unknown key in defaults (timeout)");
      }
      absl::StatusOr<absl::Duration> d = Duration(entry.second, key);
      if (!d.ok()) return d.status();
      model->default_timeout = *d;
    }
  }
  if (!root["steps"]) return Error(root, "steps", "missing");
  if (absl::Status s = ParseSteps(root["steps"], "steps", &model->steps);
      !s.ok()) {
    return s;
  }
  if (model->steps.empty()) return Error(root["steps"], "steps", "empty");
  model->leaf_count = leaves_;
  return absl::OkStatus();
}

absl::Status Parser::CheckUniqueKeys(
    const YAML::Node& node, std::set<std::pair<int, int>>* checked) const {
  if (!node.IsMap() && !node.IsSequence()) return absl::OkStatus();
  const YAML::Mark mark = node.Mark();
  if (!mark.is_null() &&
      !checked->insert({mark.pos, static_cast<int>(node.Type())}).second) {
    return absl::OkStatus();
  }
  if (node.IsSequence()) {
    for (const auto& item : node) {
      if (absl::Status s = CheckUniqueKeys(item, checked); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  std::map<std::string, Location> keys;
  for (const auto& entry : node) {
    if (entry.first.IsScalar()) {
      const std::string key = entry.first.Scalar();
      auto [first, inserted] = keys.emplace(key, Where(entry.first));
      if (!inserted) {
        return Error(entry.first, key,
                     absl::StrCat("duplicate key (first at line ",
                                  first->second.line, ")"));
      }
    }
    if (absl::Status s = CheckUniqueKeys(entry.second, checked); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseAgents(const YAML::Node& node, Model* model) {
  if (!node.IsMap() || node.size() == 0) {
    return Error(node, "agents", "expected a mapping of agent names");
  }
  for (const auto& entry : node) {
    AgentSpec spec;
    spec.name = entry.first.Scalar();
    spec.location = Where(entry.first);
    if (spec.name.empty() || spec.name == "env" ||
        spec.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                    "QRSTUVWXYZ0123456789_-") !=
            std::string::npos) {
      return Error(entry.first, spec.name,
                   "an agent name is letters, digits, _ and - (not \"env\")");
    }
    const YAML::Node& value = entry.second;
    if (value.IsScalar() || value.IsNull()) {
      spec.address = value.IsNull() ? "" : value.Scalar();
    } else if (value.IsMap()) {
      for (const auto& field : value) {
        const std::string key = field.first.Scalar();
        if (key == "address" || key == "token") {
          absl::StatusOr<std::string> text = Scalar(field.second, key);
          if (!text.ok()) return text.status();
          (key == "address" ? spec.address : spec.token) = *text;
          if (key == "token") spec.has_security = true;
        } else if (key == "ttl") {
          absl::StatusOr<absl::Duration> d = Duration(field.second, key);
          if (!d.ok()) return d.status();
          spec.ttl = *d;
        } else if (key == "tls") {
          if (!field.second.IsMap()) {
            return Error(field.second, key, "expected a mapping");
          }
          spec.has_security = true;
          spec.tls = true;
          for (const auto& tls : field.second) {
            const std::string tkey = tls.first.Scalar();
            absl::StatusOr<std::string> text = Scalar(tls.second, tkey);
            if (!text.ok()) return text.status();
            if (tkey == "ca") {
              spec.tls_ca = *text;
            } else if (tkey == "cert") {
              spec.tls_cert = *text;
            } else if (tkey == "key") {
              spec.tls_key = *text;
            } else if (tkey == "server_name") {
              spec.tls_server_name = *text;
            } else {
              return Error(tls.first, tkey,
                           "unknown key in tls (ca, cert, key, server_name)");
            }
          }
        } else {
          return Error(field.first, key,
                       "unknown key in an agent (address, tls, token, ttl)");
        }
      }
    } else {
      return Error(value, spec.name, "expected an address or a mapping");
    }
    for (const std::string* text : {&spec.address, &spec.token, &spec.tls_ca,
                                    &spec.tls_cert, &spec.tls_key}) {
      // Only ${env.X} exists before the steps run.
      if (absl::Status s = CheckRefs(value, spec.name, *text); !s.ok()) {
        return s;
      }
    }
    if (!spec.address.empty() && !HasReference(spec.address) &&
        spec.address.find(':') == std::string::npos) {
      return Error(value, "address",
                   absl::StrCat("\"", spec.address, "\": expected host:port"));
    }
    agents_.insert(spec.name);
    model->agents.push_back(std::move(spec));
  }
  return absl::OkStatus();
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

absl::Status Parser::ParseData(const YAML::Node& node, absl::string_view key,
                               DataSpec* data) {
  data->location = Where(node);
  if (node.IsScalar()) {
    data->text = node.Scalar();
    return CheckRefs(node, key, *data->text);
  }
  if (!node.IsMap()) {
    return Error(node, key,
                 "expected text or a mapping (text, hex, bytes, pattern, "
                 "seed, repeat)");
  }
  int sources = 0;
  for (const auto& entry : node) {
    const std::string k = entry.first.Scalar();
    absl::StatusOr<std::string> value = Scalar(entry.second, k);
    if (!value.ok()) return value.status();
    if (absl::Status s = CheckRefs(entry.second, k, *value); !s.ok()) return s;
    const bool literal = !HasReference(*value);
    if (k == "text") {
      data->text = *value;
      ++sources;
    } else if (k == "hex") {
      std::string digits;
      for (char c : *value) {
        if (c == ' ' || c == ':') continue;
        if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
          return Error(entry.second, k, "expected hex digits");
        }
        digits.push_back(c);
      }
      if (digits.size() % 2 != 0) {
        return Error(entry.second, k, "odd number of hex digits");
      }
      data->hex = digits;
      ++sources;
    } else if (k == "bytes") {
      if (literal && !ParseSize(*value).ok()) {
        return Error(entry.second, k, ParseSize(*value).status().message());
      }
      data->size = *value;
      ++sources;
    } else if (k == "pattern") {
      if (absl::Status s = CheckArg(ArgType::kPattern, *value); !s.ok()) {
        return Error(entry.second, k, s.message());
      }
      data->pattern = *value;
    } else if (k == "seed" || k == "repeat") {
      if (literal && !ParseUint(*value).ok()) {
        return Error(entry.second, k, ParseUint(*value).status().message());
      }
      (k == "seed" ? data->seed : data->repeat) = *value;
    } else {
      return Error(entry.first, k,
                   "unknown key in data (text, hex, bytes, pattern, seed, "
                   "repeat)");
    }
  }
  if (sources != 1) {
    return Error(node, key, "give exactly one of text, hex or bytes");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseExpect(const YAML::Node& node, Step* step) {
  if (!node.IsMap()) return Error(node, "expect", "expected a mapping");
  Expectation& expect = step->expect;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (key == "data") {
      DataSpec data;
      if (absl::Status s = ParseData(value, key, &data); !s.ok()) return s;
      expect.data = std::move(data);
      continue;
    }
    if (key == "checksum" && value.IsMap()) {
      DataSpec data;
      if (absl::Status s = ParseData(value, key, &data); !s.ok()) return s;
      expect.checksum_of = std::move(data);
      continue;
    }
    if (key == "values") {
      if (!value.IsMap()) return Error(value, key, "expected a mapping");
      for (const auto& field : value) {
        absl::StatusOr<std::string> text =
            Scalar(field.second, field.first.Scalar());
        if (!text.ok()) return text.status();
        if (absl::Status s =
                CheckRefs(field.second, field.first.Scalar(), *text);
            !s.ok()) {
          return s;
        }
        expect.values.emplace_back(field.first.Scalar(), *text);
      }
      continue;
    }
    if (key == "within" || key == "no_data_for") {
      absl::StatusOr<absl::Duration> d = Duration(value, key);
      if (!d.ok()) return d.status();
      (key == "within" ? expect.within : expect.no_data_for) = *d;
      continue;
    }
    absl::StatusOr<std::string> text = Scalar(value, key);
    if (!text.ok()) return text.status();
    if (absl::Status s = CheckRefs(value, key, *text); !s.ok()) return s;
    const bool literal = !HasReference(*text);
    if (key == "status") {
      std::string upper = absl::AsciiStrToUpper(*text);
      bool known = upper == "OK" || upper == "ERROR";
      for (int c = 1; c <= 16 && !known; ++c) {
        known =
            absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == upper;
      }
      if (!known) {
        return Error(value, key,
                     absl::StrCat("\"", *text,
                                  "\" is not OK, error or a status code name "
                                  "(UNAVAILABLE, DEADLINE_EXCEEDED, ...)"));
      }
      expect.status = upper;
    } else if (key == "errno") {
      const std::vector<std::string>& names = ErrnoNames();
      if (literal &&
          std::find(names.begin(), names.end(), *text) == names.end()) {
        return Error(value, key,
                     absl::StrCat("\"", *text,
                                  "\" is not an errno name (ECONNRESET, ...)",
                                  DidYouMean(*text, names)));
      }
      expect.errno_name = *text;
    } else if (key == "contains") {
      expect.contains = *text;
    } else if (key == "matches") {
      if (literal) {
        RE2 re(*text, RegexOptions());
        if (!re.ok()) {
          return Error(value, key, absl::StrCat("bad regex: ", re.error()));
        }
      }
      expect.matches = *text;
    } else if (key == "bytes") {
      if (literal && !ParseSize(*text).ok()) {
        return Error(value, key, ParseSize(*text).status().message());
      }
      expect.bytes = *text;
    } else if (key == "checksum") {
      if (literal &&
          (text->size() != 16 ||
           text->find_first_not_of("0123456789abcdef") != std::string::npos)) {
        return Error(value, key,
                     "expected 16 lowercase hex digits (XXH3-64) or a "
                     "${step.checksum}");
      }
      expect.checksum = *text;
    } else if (key == "eof") {
      absl::StatusOr<bool> b = ParseBool(*text);
      if (!b.ok()) return Error(value, key, b.status().message());
      expect.values.emplace_back("eof", *b ? "true" : "false");
    } else {
      return Error(entry.first, key,
                   "unknown expectation (status, errno, data, contains, "
                   "matches, bytes, checksum, eof, values, within, "
                   "no_data_for)");
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseRetry(const YAML::Node& node, Retry* retry) {
  retry->enabled = true;
  if (node.IsScalar()) {
    absl::StatusOr<absl::Duration> d = Duration(node, "retry");
    if (!d.ok()) return d.status();
    retry->until = *d;
    return absl::OkStatus();
  }
  if (!node.IsMap()) {
    return Error(node, "retry", "expected a duration or a mapping");
  }
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    if (key == "until" || key == "interval") {
      absl::StatusOr<absl::Duration> d = Duration(entry.second, key);
      if (!d.ok()) return d.status();
      (key == "until" ? retry->until : retry->interval) = *d;
    } else if (key == "attempts") {
      absl::StatusOr<std::string> text = Scalar(entry.second, key);
      if (!text.ok()) return text.status();
      absl::StatusOr<uint64_t> n = ParseUint(*text);
      if (!n.ok() || *n == 0 || *n > 100000) {
        return Error(entry.second, key, "expected a count from 1 to 100000");
      }
      retry->attempts = static_cast<int>(*n);
    } else {
      return Error(entry.first, key,
                   "unknown key in retry (until, attempts, interval)");
    }
  }
  if (retry->attempts == 0 && retry->until == absl::ZeroDuration()) {
    return Error(node, "retry", "give until: or attempts:");
  }
  return absl::OkStatus();
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.rfind('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

}  // namespace
}  // namespace scenario

Scenario::Scenario(std::unique_ptr<scenario::Model> model)
    : model_(std::move(model)) {}
Scenario::Scenario(Scenario&&) noexcept = default;
Scenario& Scenario::operator=(Scenario&&) noexcept = default;
Scenario::~Scenario() = default;

absl::StatusOr<Scenario> Scenario::ParseString(absl::string_view yaml,
                                               const std::string& origin) {
  auto model = std::make_unique<scenario::Model>();
  scenario::Parser parser(origin);
  absl::Status parsed;
  try {
    parsed = parser.Parse(yaml, model.get());
  } catch (const YAML::Exception& e) {
    // Not expected (the parser checks node types first); kept from leaving.
    parsed = absl::InvalidArgumentError(absl::StrCat(
        origin, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  if (!parsed.ok()) return parsed;
  if (model->name.empty()) model->name = scenario::BaseName(origin);
  return Scenario(std::move(model));
}

absl::StatusOr<Scenario> Scenario::ParseFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<Scenario> scenario = ParseString(text.str(), path);
  if (scenario.ok()) scenario->model_->file = path;
  return scenario;
}

const std::string& Scenario::name() const { return model_->name; }
const std::string& Scenario::file() const { return model_->file; }
int Scenario::step_count() const { return model_->leaf_count; }

std::vector<std::string> Scenario::agent_names() const {
  std::vector<std::string> names;
  for (const scenario::AgentSpec& agent : model_->agents) {
    names.push_back(agent.name);
  }
  return names;
}

}  // namespace sockagent
