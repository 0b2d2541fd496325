#ifndef SOCKAGENT_SERVER_POLICY_NETWORK_NAMESPACE_QUERY_H_
#define SOCKAGENT_SERVER_POLICY_NETWORK_NAMESPACE_QUERY_H_

// A network namespace as the policy judges it (policy.proto's
// network_namespaces): what a Socket call named, resolved. A socket made
// there keeps its query, so a policy reload can judge it again.

#include <string>

namespace sockagent {

struct NetworkNamespaceQuery {
  std::string kind;   // "name", "pid" or "pod"
  std::string value;  // the name, pid or pod UID
  std::string kube_namespace;
  // The host's own namespace: protected, like kube-system's pods.
  bool host = false;
  // For reasons, the audit log and ListSockets: "netns NAME", "pid 42",
  // "pod UID (kube-namespace/name)".
  std::string description;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_POLICY_NETWORK_NAMESPACE_QUERY_H_
