// libFuzzer target: the hard-deny check of raw socket options
// (HardDenyList::CheckRawOption), against what the kernel makes of them.
//
// Input: one selector byte (bit 0: an AF_INET6 socket, else AF_INET; bit 1:
// TCP, else UDP), then the IP_OPTIONS value. Whenever CheckRawOption lets a
// value through and the kernel accepts it (setsockopt on a real socket in a
// private network namespace), the options the kernel stored (getsockopt)
// must hold no source route (LSRR or SSRR): a source route would send
// packets through hops the policy never checks. IPv6 routing headers are
// always refused.

#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"
#include "server/policy/hard_deny.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_util.h"

namespace sockagent {
namespace {

// True when the IPv4 options `options` (as the kernel returns them) carry a
// loose or strict source route.
bool HasSourceRoute(const uint8_t* options, size_t length) {
  size_t at = 0;
  while (at < length) {
    const uint8_t type = options[at];
    if (type == IPOPT_END) return false;
    if (type == IPOPT_NOOP) {
      ++at;
      continue;
    }
    if (type == IPOPT_LSRR || type == IPOPT_SSRR) return true;
    if (at + 1 >= length || options[at + 1] < 2) return false;
    at += options[at + 1];
  }
  return false;
}

int Socket(uint8_t selector) {
  static int sockets[4] = {-1, -1, -1, -1};
  int& fd = sockets[selector & 3];
  if (fd < 0) {
    fd =
        ::socket((selector & 1) ? AF_INET6 : AF_INET,
                 ((selector & 2) ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
  }
  return fd;
}

}  // namespace
}  // namespace sockagent

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  sockagent::fuzz::IsolateNetworkOrDie();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sockagent::HardDenyList;
  if (size == 0) return 0;
  const absl::string_view value(reinterpret_cast<const char*>(data) + 1,
                                size - 1);
  for (int name : {IPV6_RTHDR, IPV6_2292RTHDR, IPV6_2292PKTOPTIONS}) {
    FUZZ_CHECK(
        HardDenyList::CheckRawOption(IPPROTO_IPV6, name, value).has_value());
  }
  if (HardDenyList::CheckRawOption(IPPROTO_IP, IP_OPTIONS, value).has_value()) {
    return 0;
  }
  const int fd = sockagent::Socket(data[0]);
  if (::setsockopt(fd, IPPROTO_IP, IP_OPTIONS, value.data(),
                   static_cast<socklen_t>(value.size())) != 0) {
    return 0;
  }
  uint8_t stored[64] = {};
  socklen_t length = sizeof(stored);
  FUZZ_CHECK(::getsockopt(fd, IPPROTO_IP, IP_OPTIONS, stored, &length) == 0);
  if (sockagent::HasSourceRoute(stored, length)) {
    std::fprintf(stderr,
                 "CheckRawOption allowed IP_OPTIONS that the kernel stored "
                 "with a source route\n");
    FUZZ_CHECK(false);
  }
  // Leave the socket without options for the next input.
  FUZZ_CHECK(::setsockopt(fd, IPPROTO_IP, IP_OPTIONS, nullptr, 0) == 0);
  return 0;
}
