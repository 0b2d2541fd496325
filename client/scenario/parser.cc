// Scenario::ParseFile / ParseString and the document a scenario file is:
// its top-level keys, agents:, agents_from:/select:, vars: and defaults:.
// The steps and values: parser.h.

#include "client/scenario/parser.h"

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/fleet/selector.h"
#include "client/scenario/scenario.h"

namespace sockagent {
namespace scenario {
namespace internal {
namespace {

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.rfind('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

}  // namespace

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

}  // namespace internal
}  // namespace scenario

Scenario::Scenario(std::unique_ptr<scenario::Model> model)
    : model_(std::move(model)) {}
Scenario::Scenario(Scenario&&) noexcept = default;
Scenario& Scenario::operator=(Scenario&&) noexcept = default;
Scenario::~Scenario() = default;

absl::StatusOr<Scenario> Scenario::ParseString(absl::string_view yaml,
                                               const std::string& origin) {
  auto model = std::make_unique<scenario::Model>();
  scenario::internal::Parser parser(origin);
  absl::Status parsed;
  try {
    parsed = parser.Parse(yaml, model.get());
  } catch (const YAML::Exception& e) {
    // Not expected (the parser checks node types first); kept from leaving.
    parsed = absl::InvalidArgumentError(absl::StrCat(
        origin, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  if (!parsed.ok()) return parsed;
  if (model->name.empty()) model->name = scenario::internal::BaseName(origin);
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
