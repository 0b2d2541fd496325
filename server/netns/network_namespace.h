#ifndef SOCKAGENT_SERVER_NETNS_NETWORK_NAMESPACE_H_
#define SOCKAGENT_SERVER_NETNS_NETWORK_NAMESPACE_H_

// Per-call network-namespace targeting: which namespace a SocketRequest
// names (NetnsResolver), and running socket() inside it (RunInNetns). No
// gRPC; thread-safe.
//
// Supported targets (v1::NetworkNamespace):
//   name     a file under the netns directory (/var/run/netns/NAME, as
//            `ip netns add NAME` makes); a full path must lie below it.
//   pid      /proc/PID/ns/net.
//   pod_uid  a Kubernetes pod: found through the container runtime's state
//            on the node. containerd (CRI, namespace k8s.io): every task
//            dir under /run/containerd/io.containerd.runtime.v2.task/k8s.io
//            has config.json (OCI spec; annotations
//            io.kubernetes.cri.sandbox-uid / -namespace / -name) and
//            init.pid. CRI-O: /run/containers/storage/overlay-containers/
//            ID/userdata/{config.json,pidfile} (annotations
//            io.kubernetes.pod.uid / .namespace / .name). The pod's
//            sandbox or any container of it gives the namespace (they
//            share it). Other runtimes: target the pod by pid.

#include <cstdint>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/io/scoped_fd.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

// A resolved namespace: an open nsfs file and what it is.
struct NetnsTarget {
  ScopedFd fd;
  // "name", "pid" or "pod".
  std::string kind;
  // The name, pid or pod UID as the request gave it.
  std::string value;
  // For pods: the Kubernetes namespace and pod name ("" when unknown).
  std::string kube_namespace;
  std::string pod_name;
  // The namespace is the host's (Options::host_netns, that of pid 1 in the
  // agent's view of /proc): only a policy entry naming it ("host") grants
  // it. When host_netns cannot be opened nothing counts as the host's.
  bool host = false;
  // Human-readable: "netns fleet-3", "pid 1234", "pod UID (ns/name)".
  std::string description;
};

class NetnsResolver {
 public:
  struct Options {
    std::string netns_dir = "/var/run/netns";
    std::string proc_dir = "/proc";
    std::string containerd_dir =
        "/run/containerd/io.containerd.runtime.v2.task/k8s.io";
    std::string crio_dir = "/run/containers/storage/overlay-containers";
    // The host's own network namespace (protected: see PolicyEngine).
    std::string host_netns = "/proc/1/ns/net";
  };
  NetnsResolver() : NetnsResolver(Options()) {}
  explicit NetnsResolver(Options options) : options_(std::move(options)) {}

  // Opens the namespace `target` names. Errors: INVALID_ARGUMENT naming
  // the field (network_namespace.name with '..' or outside the netns
  // directory, a pid of 0, a malformed pod UID, none set); NOT_FOUND for a
  // namespace, process or pod that does not exist (with the path tried);
  // the errno of open(2) otherwise (EACCES: the agent may not open it).
  absl::StatusOr<NetnsTarget> Resolve(const v1::NetworkNamespace& target) const;

 private:
  absl::StatusOr<NetnsTarget> OpenPid(uint32_t pid) const;
  // The pid of a process of pod `uid`, with its namespace and name.
  absl::StatusOr<NetnsTarget> FindPod(const std::string& uid) const;
  bool IsHost(int fd) const;

  Options options_;
};

// Runs `fn` on a thread of its own that enters the network namespace of
// `ns_fd` (setns(2), CLONE_NEWNET), then returns to the agent's own
// namespace and ends: the calling thread never changes namespace and no
// other work ever runs in the target one. A socket `fn` creates stays in the
// target namespace for its whole life. Errors: setns's errno (EPERM without
// CAP_SYS_ADMIN, EINVAL for a file that is no network namespace) with
// syscall "setns"; `fn` is then not called.
absl::Status RunInNetns(int ns_fd, absl::FunctionRef<void()> fn);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_NETNS_NETWORK_NAMESPACE_H_
