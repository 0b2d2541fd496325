#include "server/policy/local_route.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sockagent {
namespace {

absl::Status NetlinkError(int error, const char* what) {
  return absl::UnavailableError(
      absl::StrCat("route lookup: ", what, ": ", std::strerror(error)));
}

}  // namespace

absl::StatusOr<bool> IsLocalDestination(const Endpoint& endpoint) {
  if (endpoint.family != AF_INET && endpoint.family != AF_INET6) {
    return absl::InvalidArgumentError("route lookup: not an IP endpoint");
  }
  const int address_bytes = endpoint.family == AF_INET ? 4 : 16;
  struct {
    nlmsghdr header;
    rtmsg route;
    char attributes[RTA_SPACE(16)];
  } request{};
  request.header.nlmsg_len =
      NLMSG_LENGTH(sizeof(rtmsg)) + RTA_LENGTH(address_bytes);
  request.header.nlmsg_type = RTM_GETROUTE;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.header.nlmsg_seq = 1;
  request.route.rtm_family = static_cast<unsigned char>(endpoint.family);
  request.route.rtm_dst_len = static_cast<unsigned char>(address_bytes * 8);
  auto* destination = reinterpret_cast<rtattr*>(
      reinterpret_cast<char*>(&request) + NLMSG_LENGTH(sizeof(rtmsg)));
  destination->rta_type = RTA_DST;
  destination->rta_len = RTA_LENGTH(address_bytes);
  std::memcpy(RTA_DATA(destination), endpoint.bytes, address_bytes);

  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return NetlinkError(errno, "socket");
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, &request, request.header.nlmsg_len, 0,
               reinterpret_cast<const sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    return NetlinkError(errno, "send");
  }
  alignas(nlmsghdr) char reply[8192];
  ssize_t n;
  do {
    n = ::recv(fd, reply, sizeof(reply), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return NetlinkError(errno, "recv");
  for (auto* message = reinterpret_cast<nlmsghdr*>(reply);
       NLMSG_OK(message, static_cast<unsigned int>(n));
       message = NLMSG_NEXT(message, n)) {
    if (message->nlmsg_type == NLMSG_ERROR) {
      const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(message));
      // No route at all (ENETUNREACH, EHOSTUNREACH...): not this host.
      if (error->error == -ENETUNREACH || error->error == -EHOSTUNREACH) {
        return false;
      }
      return NetlinkError(-error->error, "RTM_GETROUTE");
    }
    if (message->nlmsg_type == RTM_NEWROUTE) {
      const auto* route = static_cast<const rtmsg*>(NLMSG_DATA(message));
      return route->rtm_type == RTN_LOCAL;
    }
  }
  return absl::UnavailableError("route lookup: no answer from the kernel");
}

}  // namespace sockagent
