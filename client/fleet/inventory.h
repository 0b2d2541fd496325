#ifndef SOCKAGENT_CLIENT_FLEET_INVENTORY_H_
#define SOCKAGENT_CLIENT_FLEET_INVENTORY_H_

// Where a harness finds its agents: an agent source names a set of agents.
//
//   dns:NAME:PORT   every A/AAAA record of NAME (getaddrinfo) is an agent on
//                   PORT, named by its address: a Kubernetes headless
//                   Service gives one record per pod. `dns:[::1]:7700` and
//                   `dns:localhost:7700` work as well.
//   env:VAR         the value of the environment variable VAR is the source
//                   (any form here except env:).
//   NAME=HOST:PORT[,NAME=HOST:PORT...]
//                   a literal list (handy in an environment variable).
//   file:PATH, PATH an inventory file (YAML), see LoadInventoryFile().
//
// With no source at all, tools read $SOCKAGENT_AGENTS (kAgentsEnvVar).
// Pure functions of their input (and of DNS, files and the environment);
// thread-safe.

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/agent.h"

namespace sockagent {
namespace fleet {

inline constexpr char kAgentsEnvVar[] = "SOCKAGENT_AGENTS";

// One agent as a source describes it: how to reach it and the labels the
// source gives it (the agent's own GetAgentInfo labels come on top, see
// Probe). Paths are absolute or relative to the working directory.
struct AgentEndpoint {
  // Unique within a source; the inventory key, or the address for dns:.
  std::string name;
  // gRPC target, host:port.
  std::string address;
  std::map<std::string, std::string> labels;
  // TLS: on when `tls` is set; CA bundle (empty = system roots), client
  // certificate and key for mutual TLS, and the name the agent's certificate
  // carries when it differs from the address's host.
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  // A file whose first line is the bearer token (never logged) ...
  std::string token_file;
  // ... or the token itself (e.g. from sockctl's --token).
  std::string token;
};

// Every agent of `source` (see the file comment), in the source's order
// (inventory order; DNS order; list order). Errors: INVALID_ARGUMENT naming
// the source (and for a file, FILE:LINE:COLUMN and the key) for malformed
// input or a name given twice; NOT_FOUND for a missing file, an unset
// variable or a DNS name without records (with the resolver's message).
absl::StatusOr<std::vector<AgentEndpoint>> LoadAgents(absl::string_view source);

// The agents of $SOCKAGENT_AGENTS when `source` is empty, else of `source`.
// INVALID_ARGUMENT saying what to set when both are empty.
absl::StatusOr<std::vector<AgentEndpoint>> LoadAgentsOrEnv(
    absl::string_view source);

// An inventory file:
//
//   defaults:                 # optional, merged into every agent
//     port: 7700              # used when an address has no port
//     tls: {ca: ca.pem, cert: harness.pem, key: harness.key,
//           server_name: sockagent.example}
//     token_file: token       # or tls: false / no tls at all: plaintext
//     labels: {cluster: lab}
//   agents:
//     worker-1:
//       address: 10.0.0.1:7700
//       labels: {node: worker-1, zone: a}
//     worker-2: 10.0.0.2      # shorthand: just the address
//
// Relative paths are relative to the file's directory. Unknown keys are
// errors (with the closest known key), as are duplicate agent names.
absl::StatusOr<std::vector<AgentEndpoint>> LoadInventoryFile(
    const std::string& path);
absl::StatusOr<std::vector<AgentEndpoint>> ParseInventory(
    absl::string_view yaml, const std::string& source,
    const std::string& base_dir);

// Gives every agent of `agents` that has no security settings of its own
// (no tls, no token) those of `defaults`: a source that carries none, such
// as dns:, relies on the caller's flags.
void ApplyDefaults(const AgentEndpoint& defaults,
                   std::vector<AgentEndpoint>* agents);

// Security defaults from the environment, as sockctl reads them:
// SOCKAGENT_TLS_CA, SOCKAGENT_TLS_CERT, SOCKAGENT_TLS_KEY (TLS when any is
// set) and SOCKAGENT_TOKEN.
AgentEndpoint DefaultsFromEnvironment();

// AgentOptions that reach `endpoint` (target, TLS credentials, token).
// Errors: those of TlsCredentialsFromFiles; NOT_FOUND for an unreadable
// token file.
absl::StatusOr<AgentOptions> OptionsFor(const AgentEndpoint& endpoint);

}  // namespace fleet
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_FLEET_INVENTORY_H_
