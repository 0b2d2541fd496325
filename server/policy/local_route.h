#ifndef SOCKAGENT_SERVER_POLICY_LOCAL_ROUTE_H_
#define SOCKAGENT_SERVER_POLICY_LOCAL_ROUTE_H_

// "Is this destination this host?", answered by the kernel at the moment of
// the question: a route lookup (rtnetlink RTM_GETROUTE) in the calling
// thread's network namespace whose route type is RTN_LOCAL. Unlike a list of
// interface addresses taken at startup, it sees addresses added later and
// AnyIP `local` routes (`ip route add local 10.9.0.0/16 dev lo`).
// Thread-safe (one netlink socket per question). No gRPC.

#include "absl/status/statusor.h"
#include "server/policy/cidr.h"

namespace sockagent {

// True when the kernel would deliver a packet to `endpoint` to this host.
// Errors: the errno of the netlink exchange (the caller should then treat
// the destination as local: fail closed), INVALID_ARGUMENT for a non-IP
// endpoint.
absl::StatusOr<bool> IsLocalDestination(const Endpoint& endpoint);

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_POLICY_LOCAL_ROUTE_H_
