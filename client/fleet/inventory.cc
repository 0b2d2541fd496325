#include "client/fleet/inventory.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/credentials.h"
#include "proto/edit_distance.h"
#include "proto/labels.h"

namespace sockagent {
namespace fleet {
namespace {

// "host:port" -> (host, port) for "h:p", "[v6]:p"; port empty when absent.
// A bare IPv6 literal ("::1") has no port.
std::pair<std::string, std::string> SplitHostPort(absl::string_view text) {
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return {std::string(text), ""};
    std::string host(text.substr(1, close - 1));
    absl::string_view rest = text.substr(close + 1);
    if (absl::ConsumePrefix(&rest, ":")) return {host, std::string(rest)};
    return {host, ""};
  }
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || text.find(':') != colon) {
    return {std::string(text), ""};
  }
  return {std::string(text.substr(0, colon)),
          std::string(text.substr(colon + 1))};
}

bool IsPort(absl::string_view text) {
  int port = 0;
  return absl::SimpleAtoi(text, &port) && port > 0 && port < 65536;
}

std::string JoinHostPort(absl::string_view host, absl::string_view port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

// dns:NAME:PORT
absl::StatusOr<std::vector<AgentEndpoint>> LoadDns(absl::string_view spec) {
  auto [host, port] = SplitHostPort(spec);
  if (host.empty() || !IsPort(port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("agent source 'dns:", spec,
                     "': expected dns:NAME:PORT (e.g. "
                     "dns:sockagent.default.svc.cluster.local:7700)"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* results = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &results);
  if (rc != 0) {
    return absl::NotFoundError(
        absl::StrCat("agent source 'dns:", spec, "': ", ::gai_strerror(rc)));
  }
  std::vector<AgentEndpoint> agents;
  std::set<std::string> seen;
  for (const addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    char text[NI_MAXHOST];
    if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof(text), nullptr,
                      0, NI_NUMERICHOST) != 0) {
      continue;
    }
    if (!seen.insert(text).second) continue;
    AgentEndpoint agent;
    agent.name = text;
    agent.address = JoinHostPort(text, port);
    agents.push_back(std::move(agent));
  }
  ::freeaddrinfo(results);
  if (agents.empty()) {
    return absl::NotFoundError(
        absl::StrCat("agent source 'dns:", spec, "': no A/AAAA records"));
  }
  return agents;
}

// NAME=HOST:PORT,NAME=HOST:PORT
absl::StatusOr<std::vector<AgentEndpoint>> LoadList(absl::string_view list) {
  std::vector<AgentEndpoint> agents;
  std::set<std::string> names;
  for (absl::string_view item :
       absl::StrSplit(list, absl::ByAnyChar(", \t\n"), absl::SkipEmpty())) {
    const size_t eq = item.find('=');
    AgentEndpoint agent;
    agent.name = std::string(item.substr(0, eq));
    agent.address = std::string(item.substr(eq + 1));
    auto [host, port] = SplitHostPort(agent.address);
    if (agent.name.empty() || host.empty() || !IsPort(port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent list: '", item, "' is not NAME=HOST:PORT"));
    }
    if (!names.insert(agent.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent list: agent '", agent.name, "' named twice"));
    }
    agents.push_back(std::move(agent));
  }
  if (agents.empty()) {
    return absl::InvalidArgumentError("agent list: no agent in it");
  }
  return agents;
}

// --- inventory files -------------------------------------------------------

// Errors carry "SOURCE:LINE:COLUMN: key: what".
class InventoryParser {
 public:
  InventoryParser(std::string source, std::string base_dir)
      : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  absl::StatusOr<std::vector<AgentEndpoint>> Parse(absl::string_view yaml) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    }
    if (!root.IsMap())
      return Error(root, "", "expected a mapping with agents:");
    if (absl::Status s = CheckKeys(root, {"defaults", "agents"}); !s.ok()) {
      return s;
    }
    AgentEndpoint defaults;
    std::string default_port;
    if (root["defaults"]) {
      const YAML::Node node = root["defaults"];
      if (!node.IsMap()) return Error(node, "defaults", "expected a mapping");
      if (absl::Status s =
              CheckKeys(node, {"port", "tls", "token_file", "labels"});
          !s.ok()) {
        return s;
      }
      if (node["port"]) {
        default_port = Scalar(node["port"]);
        if (!IsPort(default_port)) {
          return Error(node["port"], "port", "expected a port (1-65535)");
        }
      }
      if (absl::Status s = Common(node, &defaults); !s.ok()) return s;
    }
    const YAML::Node agents_node = root["agents"];
    if (!agents_node || !agents_node.IsMap() || agents_node.size() == 0) {
      return Error(agents_node ? agents_node : root, "agents",
                   "expected a mapping of agent names to agents");
    }
    std::vector<AgentEndpoint> agents;
    std::map<std::string, int> lines;
    for (const auto& entry : agents_node) {
      const std::string name = Scalar(entry.first);
      if (name.empty()) return Error(entry.first, "agents", "empty agent name");
      if (auto [at, inserted] =
              lines.emplace(name, entry.first.Mark().line + 1);
          !inserted) {
        return Error(
            entry.first, name,
            absl::StrCat("agent named twice (first at line ", at->second, ")"));
      }
      AgentEndpoint agent = defaults;
      agent.name = name;
      const YAML::Node node = entry.second;
      if (node.IsScalar()) {
        agent.address = Scalar(node);
      } else if (node.IsMap()) {
        if (absl::Status s =
                CheckKeys(node, {"address", "tls", "token_file", "labels"});
            !s.ok()) {
          return s;
        }
        if (!node["address"]) {
          return Error(node, name, "address: missing (HOST:PORT)");
        }
        agent.address = Scalar(node["address"]);
        if (absl::Status s = Common(node, &agent); !s.ok()) return s;
      } else {
        return Error(node, name, "expected an address or a mapping");
      }
      auto [host, port] = SplitHostPort(agent.address);
      if (port.empty() && !default_port.empty()) {
        port = default_port;
        agent.address = JoinHostPort(host, port);
      }
      if (host.empty() || !IsPort(port)) {
        return Error(node, name,
                     absl::StrCat("address '", agent.address,
                                  "' is not HOST:PORT (or give "
                                  "defaults: {port: ...})"));
      }
      agents.push_back(std::move(agent));
    }
    return agents;
  }

 private:
  absl::Status Error(const YAML::Node& node, absl::string_view key,
                     absl::string_view what) const {
    const YAML::Mark mark = node.Mark();
    std::string where = source_;
    if (!mark.is_null()) {
      absl::StrAppend(&where, ":", mark.line + 1, ":", mark.column + 1);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", key.empty() ? "" : absl::StrCat(key, ": "), what));
  }

  static std::string Scalar(const YAML::Node& node) {
    return node.IsScalar() ? node.Scalar() : "";
  }

  // Every key of `node` is one of `known` and appears once.
  absl::Status CheckKeys(const YAML::Node& node,
                         const std::vector<std::string>& known) const {
    std::set<std::string> seen;
    for (const auto& entry : node) {
      const std::string key = Scalar(entry.first);
      bool found = false;
      std::string best;
      size_t best_distance = 3;
      for (const std::string& candidate : known) {
        if (candidate == key) found = true;
        const size_t d = EditDistance(key, candidate);
        if (d < best_distance) {
          best_distance = d;
          best = candidate;
        }
      }
      if (!found) {
        std::string what = absl::StrCat("unknown key (expected one of ",
                                        absl::StrJoin(known, ", "), ")");
        if (!best.empty())
          what = absl::StrCat("unknown key (did you mean ", best, "?)");
        return Error(entry.first, key, what);
      }
      if (!seen.insert(key).second) {
        return Error(entry.first, key, "duplicate key");
      }
    }
    return absl::OkStatus();
  }

  std::string Path(const std::string& path) const {
    if (path.empty() || path[0] == '/' || base_dir_.empty()) return path;
    return absl::StrCat(base_dir_, "/", path);
  }

  // tls, token_file and labels of `node` into `agent` (labels merge).
  absl::Status Common(const YAML::Node& node, AgentEndpoint* agent) const {
    if (const YAML::Node tls = node["tls"]; tls) {
      if (tls.IsScalar()) {
        const std::string value = absl::AsciiStrToLower(Scalar(tls));
        if (value != "true" && value != "false") {
          return Error(tls, "tls", "expected true, false or a mapping");
        }
        agent->tls = value == "true";
      } else if (tls.IsMap()) {
        if (absl::Status s =
                CheckKeys(tls, {"ca", "cert", "key", "server_name"});
            !s.ok()) {
          return s;
        }
        agent->tls = true;
        if (tls["ca"]) agent->tls_ca = Path(Scalar(tls["ca"]));
        if (tls["cert"]) agent->tls_cert = Path(Scalar(tls["cert"]));
        if (tls["key"]) agent->tls_key = Path(Scalar(tls["key"]));
        if (tls["server_name"]) {
          agent->tls_server_name = Scalar(tls["server_name"]);
        }
        if (agent->tls_cert.empty() != agent->tls_key.empty()) {
          return Error(tls, "tls", "cert and key go together");
        }
      } else {
        return Error(tls, "tls", "expected true, false or a mapping");
      }
    }
    if (node["token_file"]) {
      agent->token_file = Path(Scalar(node["token_file"]));
    }
    if (const YAML::Node labels = node["labels"]; labels) {
      if (!labels.IsMap()) {
        return Error(labels, "labels", "expected a mapping KEY: VALUE");
      }
      for (const auto& label : labels) {
        const std::string key = Scalar(label.first);
        const std::string value = Scalar(label.second);
        std::string error = LabelKeyError(key);
        if (error.empty()) error = LabelValueError(value);
        if (error.empty() && !label.second.IsScalar()) {
          error = "expected a scalar value";
        }
        if (!error.empty()) return Error(label.first, "labels", error);
        agent->labels[key] = value;
      }
    }
    return absl::OkStatus();
  }

  const std::string source_;
  const std::string base_dir_;
};

absl::StatusOr<std::vector<AgentEndpoint>> LoadSource(absl::string_view source,
                                                      bool allow_env) {
  source = absl::StripAsciiWhitespace(source);
  if (source.empty()) {
    return absl::InvalidArgumentError("agent source: empty");
  }
  absl::string_view rest = source;
  if (absl::ConsumePrefix(&rest, "dns:")) return LoadDns(rest);
  if (absl::ConsumePrefix(&rest, "env:")) {
    if (!allow_env) {
      return absl::InvalidArgumentError(
          "agent source: an environment variable names env: again");
    }
    const std::string name(rest);
    const char* value = std::getenv(name.c_str());
    if (value == nullptr || *value == '\0') {
      return absl::NotFoundError(absl::StrCat("agent source 'env:", name,
                                              "': the variable is not set"));
    }
    return LoadSource(value, false);
  }
  if (absl::ConsumePrefix(&rest, "file:")) {
    return LoadInventoryFile(std::string(rest));
  }
  if (absl::StrContains(source, '=')) return LoadList(source);
  return LoadInventoryFile(std::string(source));
}

}  // namespace

absl::StatusOr<std::vector<AgentEndpoint>> LoadAgents(
    absl::string_view source) {
  return LoadSource(source, true);
}

absl::StatusOr<std::vector<AgentEndpoint>> LoadAgentsOrEnv(
    absl::string_view source) {
  if (!source.empty()) return LoadAgents(source);
  const char* value = std::getenv(kAgentsEnvVar);
  if (value == nullptr || *value == '\0') {
    return absl::InvalidArgumentError(absl::StrCat(
        "no agents: give --agents SOURCE (an inventory file, dns:NAME:PORT, "
        "env:VAR or NAME=HOST:PORT,...) or set ",
        kAgentsEnvVar));
  }
  return LoadSource(value, true);
}

absl::StatusOr<std::vector<AgentEndpoint>> LoadInventoryFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("inventory ", path, ": cannot be read"));
  }
  std::stringstream text;
  text << in.rdbuf();
  const size_t slash = path.rfind('/');
  return ParseInventory(
      text.str(), path,
      slash == std::string::npos ? "" : path.substr(0, slash));
}

absl::StatusOr<std::vector<AgentEndpoint>> ParseInventory(
    absl::string_view yaml, const std::string& source,
    const std::string& base_dir) {
  return InventoryParser(source, base_dir).Parse(yaml);
}

void ApplyDefaults(const AgentEndpoint& defaults,
                   std::vector<AgentEndpoint>* agents) {
  for (AgentEndpoint& agent : *agents) {
    if (agent.tls || !agent.token.empty() || !agent.token_file.empty()) {
      continue;
    }
    agent.tls = defaults.tls;
    agent.tls_ca = defaults.tls_ca;
    agent.tls_cert = defaults.tls_cert;
    agent.tls_key = defaults.tls_key;
    agent.tls_server_name = defaults.tls_server_name;
    agent.token = defaults.token;
    agent.token_file = defaults.token_file;
  }
}

AgentEndpoint DefaultsFromEnvironment() {
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value == nullptr ? "" : value);
  };
  AgentEndpoint defaults;
  defaults.tls_ca = env("SOCKAGENT_TLS_CA");
  defaults.tls_cert = env("SOCKAGENT_TLS_CERT");
  defaults.tls_key = env("SOCKAGENT_TLS_KEY");
  defaults.tls = !defaults.tls_ca.empty() || !defaults.tls_cert.empty() ||
                 !defaults.tls_key.empty();
  defaults.token = env("SOCKAGENT_TOKEN");
  return defaults;
}

absl::StatusOr<AgentOptions> OptionsFor(const AgentEndpoint& endpoint) {
  AgentOptions options;
  options.target = endpoint.address;
  if (endpoint.tls) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        TlsCredentialsFromFiles(endpoint.tls_ca, endpoint.tls_cert,
                                endpoint.tls_key);
    if (!credentials.ok()) return credentials.status();
    options.credentials = *std::move(credentials);
    options.tls_server_name = endpoint.tls_server_name;
  }
  if (!endpoint.token_file.empty()) {
    std::ifstream in(endpoint.token_file);
    std::string token;
    if (!in || !std::getline(in, token)) {
      return absl::NotFoundError(
          absl::StrCat("agent ", endpoint.name, ": token file ",
                       endpoint.token_file, " cannot be read"));
    }
    options.token = std::string(absl::StripAsciiWhitespace(token));
  } else {
    options.token = endpoint.token;
  }
  return options;
}

}  // namespace fleet
}  // namespace sockagent
