#ifndef SOCKAGENT_CLIENT_PROXY_H_
#define SOCKAGENT_CLIENT_PROXY_H_

// sockagent::Proxy: a Toxiproxy-style proxy living on an agent. It listens
// there and relays every accepted connection (or, with `udp`, every client's
// datagrams) to an upstream inside the agent (Traffic's relay kind), with
// faults per direction that can be changed while it runs. Its sockets
// belong to the Agent's session, so they go when the session ends.
//
// Threading: thread-safe. One thread waits in Accept and one per live
// connection waits in its relay; Stop() (or the destructor) closes every
// socket and joins them.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/agent.h"
#include "client/socket.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

struct ProxyOptions {
  // Where the agent listens (port 0: the kernel picks; see bound()).
  v1::Address listen;
  // Where every connection (or client's datagrams) goes.
  v1::Address upstream;
  // Datagrams instead of streams.
  bool udp = false;
  // What the agent sends to the upstream, and to the clients.
  v1::Faults to_upstream;
  v1::Faults to_client;
  // Streams: pass an RST on as a FIN.
  bool reset_as_fin = false;
  // Datagrams: a client's upstream socket closes after this long unused
  // (unset: the agent's default of 60 s).
  std::optional<absl::Duration> idle_timeout;
};

// One relayed connection (or, for udp, the whole datagram relay) that ended.
struct ProxyConnection {
  uint64_t id = 0;
  v1::Address client;  // unset for udp
  // The relay's figures, or why it ended otherwise (ABORTED when the proxy
  // stopped a connection that did not end in time; the upstream's errno
  // when connecting to it failed).
  absl::StatusOr<v1::TrafficResponse> result;
};

class Proxy {
 public:
  using OnEnd = std::function<void(const ProxyConnection&)>;

  // Binds and listens on the agent and starts relaying. `on_end` (may be
  // empty) runs on a proxy thread as each connection ends. Errors: those of
  // Socket, Bind and Listen; INVALID_ARGUMENT naming a fault the sockets
  // cannot obey.
  static absl::StatusOr<std::unique_ptr<Proxy>> Start(Agent& agent,
                                                      ProxyOptions options,
                                                      OnEnd on_end = nullptr);

  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;
  ~Proxy();

  // The address the agent listens on.
  const v1::Address& bound() const { return bound_; }

  // Replaces the faults of every live connection and of those to come.
  // INVALID_ARGUMENT naming a fault the sockets cannot obey (nothing
  // changes then).
  absl::Status SetFaults(const v1::Faults& to_upstream,
                         const v1::Faults& to_client);

  // Closes the listener, ends every live connection as if both sides had
  // closed (shutdown both ways, so each reports its figures; one that does
  // not end within 3 s is closed and reports ABORTED), then waits for the
  // relays to end. A udp proxy's relay is ended by a close fault on its
  // bound socket, so it reports its figures (end TRAFFIC_END_FAULT).
  // Idempotent.
  void Stop();

  // Connections accepted so far (udp: clients are counted by the relay).
  uint64_t accepted() const;

 private:
  struct Live {
    std::string client_handle;
    std::string upstream_handle;
  };

  Proxy(Agent& agent, ProxyOptions options, OnEnd on_end);
  absl::Status Open();
  void AcceptLoop(Socket listener);
  void RunConnection(uint64_t id, Socket client, v1::Address peer);
  void RunDatagrams(Socket bound, Socket shaper);
  void Report(ProxyConnection connection);

  Agent& agent_;
  const ProxyOptions options_;
  const OnEnd on_end_;
  v1::Address bound_;
  std::string listener_handle_;
  std::string shaper_handle_;
  // Streams: an unconnected socket that checks fault profiles (Open).
  Socket checker_;
  std::string checker_handle_;

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  v1::Faults to_upstream_ ABSL_GUARDED_BY(mu_);
  v1::Faults to_client_ ABSL_GUARDED_BY(mu_);
  // Counts SetFaults calls from 1, so a connection being set up can tell
  // whether the faults it applied are still the current ones.
  uint64_t faults_generation_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  // False while the datagram relay runs (udp).
  bool datagrams_ended_ ABSL_GUARDED_BY(mu_) = true;
  std::map<uint64_t, Live> live_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  absl::Mutex report_mu_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_PROXY_H_
