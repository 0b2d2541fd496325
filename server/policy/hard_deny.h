#ifndef SOCKAGENT_SERVER_POLICY_HARD_DENY_H_
#define SOCKAGENT_SERVER_POLICY_HARD_DENY_H_

// The hard-deny list: what no policy rule, report-only mode or missing policy
// can allow. Judged by what the kernel will do, not by how the caller spelt
// the address:
//   - cloud metadata and link-local ranges (the list and its sources are in
//     hard_deny.cc), also when embedded in an IPv6 address that a translator
//     or tunnel turns into IPv4: IPv4-mapped/compatible (folded by
//     Endpoint), NAT64 in every RFC 6052 layout of 64:ff9b::/96, the
//     local-use 64:ff9b:1::/48 and the operator's own prefixes, SIIT
//     (::ffff:0:a.b.c.d), 6to4, Teredo and ISATAP;
//   - the agent's own ports on any destination the kernel routes to this
//     host, asked of the kernel at check time (local_route.h);
//   - socket options that make packets visit other hops than their
//     destination (IPv4 source routes, IPv6 routing headers).
// Binds are held to the address classes, so a transparent bind cannot
// impersonate a metadata service. Thread-safe. No gRPC.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/policy/cidr.h"

namespace sockagent {

// Why a destination, bind address or option is refused.
struct HardDenial {
  std::string rule;    // "hard-deny:cloud-metadata", ...
  std::string reason;  // "100.100.100.200:80 is the Alibaba Cloud ..."
};

class HardDenyList {
 public:
  // Answers "does this destination reach this host?".
  using LocalOracle = std::function<absl::StatusOr<bool>(const Endpoint&)>;

  // Asks the kernel (IsLocalDestination).
  HardDenyList();
  // For tests: `oracle` stands in for the kernel's route lookup.
  explicit HardDenyList(LocalOracle oracle);

  // The agent's own ports (gRPC, health, metrics).
  void SetProtectedPorts(std::vector<uint16_t> ports);
  // The operator's NAT64 prefixes, each an IPv6 CIDR with one of RFC 6052's
  // lengths (32, 40, 48, 56, 64, 96). INVALID_ARGUMENT naming the entry
  // (`field`[i]); on error the previous prefixes stay.
  absl::Status SetNat64Prefixes(const std::vector<std::string>& prefixes,
                                absl::string_view field);

  // Connect and sendto destinations.
  std::optional<HardDenial> CheckDestination(const Endpoint& endpoint) const;
  // Bind addresses: the address classes (not the agent's ports: the kernel
  // refuses those with EADDRINUSE).
  std::optional<HardDenial> CheckBind(const Endpoint& endpoint) const;
  // Raw socket options that alter routing: IP_OPTIONS carrying a loose or
  // strict source route (or malformed), IPV6_RTHDR and its RFC 2292 forms.
  static std::optional<HardDenial> CheckRawOption(int level, int name,
                                                  absl::string_view value);

 private:
  std::optional<HardDenial> CheckAddress(const Endpoint& endpoint) const;

  const LocalOracle is_local_;
  mutable absl::Mutex mu_;
  std::vector<uint16_t> protected_ports_ ABSL_GUARDED_BY(mu_);
  std::vector<Cidr> nat64_prefixes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_POLICY_HARD_DENY_H_
