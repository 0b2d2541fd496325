#include "client/proxy.h"

#include <utility>

namespace sockagent {
namespace {

// How long Stop lets live connections (and a datagram relay) end with their
// figures before it closes them.
constexpr absl::Duration kStopGrace = absl::Seconds(3);

// The socket family an address needs: Unix, or IPv6 for a host with a colon.
v1::Family FamilyOf(const v1::Address& address) {
  if (address.has_unix()) return v1::FAMILY_UNIX;
  if (address.inet().host().find(':') != std::string::npos) {
    return v1::FAMILY_INET6;
  }
  return v1::FAMILY_INET;
}

}  // namespace

Proxy::Proxy(Agent& agent, ProxyOptions options, OnEnd on_end)
    : agent_(agent), options_(std::move(options)), on_end_(std::move(on_end)) {
  to_upstream_ = options_.to_upstream;
  to_client_ = options_.to_client;
}

Proxy::~Proxy() { Stop(); }

absl::StatusOr<std::unique_ptr<Proxy>> Proxy::Start(Agent& agent,
                                                    ProxyOptions options,
                                                    OnEnd on_end) {
  std::unique_ptr<Proxy> proxy(
      new Proxy(agent, std::move(options), std::move(on_end)));
  if (absl::Status opened = proxy->Open(); !opened.ok()) return opened;
  return proxy;
}

absl::Status Proxy::Open() {
  const v1::SocketType type =
      options_.udp ? v1::SOCKET_TYPE_DGRAM : v1::SOCKET_TYPE_STREAM;
  absl::StatusOr<Socket> listener =
      agent_.CreateSocket(FamilyOf(options_.listen), type);
  if (!listener.ok()) return listener.status();
  if (!options_.udp) {
    if (absl::Status s = listener->SetSockOpt(v1::OPT_SO_REUSEADDR, true);
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<v1::Address> bound = listener->Bind(options_.listen);
  if (!bound.ok()) return bound.status();
  bound_ = *bound;
  listener_handle_ = listener->handle();
  if (options_.udp) {
    absl::StatusOr<Socket> shaper =
        agent_.CreateSocket(FamilyOf(options_.upstream), type);
    if (!shaper.ok()) return shaper.status();
    if (absl::Status s = shaper->SetFaults(options_.to_upstream); !s.ok()) {
      return s;
    }
    if (absl::Status s = listener->SetFaults(options_.to_client); !s.ok()) {
      return s;
    }
    shaper_handle_ = shaper->handle();
    absl::MutexLock lock(&mu_);
    datagrams_ended_ = false;
    threads_.emplace_back(
        [this, l = *std::move(listener), s = *std::move(shaper)]() mutable {
          RunDatagrams(std::move(l), std::move(s));
        });
    return absl::OkStatus();
  }
  // A stream socket that never connects checks every fault profile before
  // any connection gets it, so a fault the connections cannot obey is
  // refused by Start and SetFaults instead of resetting clients later.
  absl::StatusOr<Socket> checker =
      agent_.CreateSocket(FamilyOf(options_.upstream), type);
  if (!checker.ok()) return checker.status();
  checker_handle_ = checker->handle();
  checker_ = *std::move(checker);
  for (const v1::Faults* faults :
       {&options_.to_upstream, &options_.to_client}) {
    if (absl::Status s = checker_.SetFaults(*faults); !s.ok()) return s;
  }
  if (absl::Status s = listener->Listen(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  threads_.emplace_back(
      [this, l = *std::move(listener)]() mutable { AcceptLoop(std::move(l)); });
  return absl::OkStatus();
}

void Proxy::AcceptLoop(Socket listener) {
  for (;;) {
    absl::StatusOr<AcceptResult> accepted = listener.Accept();
    if (!accepted.ok()) return;  // closed by Stop (or the session ended)
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    const uint64_t id = ++next_id_;
    live_[id] = Live{accepted->socket.handle(), ""};
    threads_.emplace_back([this, id, client = std::move(accepted->socket),
                           peer = std::move(accepted->peer)]() mutable {
      RunConnection(id, std::move(client), std::move(peer));
    });
  }
}

void Proxy::RunConnection(uint64_t id, Socket client, v1::Address peer) {
  ProxyConnection done;
  done.id = id;
  done.client = peer;
  absl::StatusOr<Socket> upstream =
      agent_.CreateSocket(FamilyOf(options_.upstream), v1::SOCKET_TYPE_STREAM);
  {
    absl::MutexLock lock(&mu_);
    if (upstream.ok()) live_[id].upstream_handle = upstream->handle();
  }
  absl::Status ready = upstream.status();
  if (ready.ok()) ready = upstream->Connect(options_.upstream).status();
  // The faults of the moment; a SetFaults that ran meanwhile may have been
  // overwritten here by older ones, so they are applied again until no
  // change came in between.
  for (uint64_t applied = 0; ready.ok();) {
    v1::Faults to_upstream, to_client;
    {
      absl::MutexLock lock(&mu_);
      if (applied == faults_generation_ && applied != 0) break;
      applied = faults_generation_;
      to_upstream = to_upstream_;
      to_client = to_client_;
    }
    ready = upstream->SetFaults(to_upstream);
    if (ready.ok()) ready = client.SetFaults(to_client);
  }
  if (ready.ok()) {
    done.result = client.Relay(upstream->handle(), options_.reset_as_fin);
  } else {
    // The upstream cannot be reached: the client sees a reset, as through a
    // proxy whose upstream refuses.
    client.Abort().IgnoreError();
    done.result = ready;
  }
  {
    absl::MutexLock lock(&mu_);
    live_.erase(id);
  }
  Report(std::move(done));
}

void Proxy::RunDatagrams(Socket bound, Socket shaper) {
  ProxyConnection done;
  done.result = bound.RelayDatagrams(options_.upstream, shaper.handle(),
                                     options_.idle_timeout);
  {
    absl::MutexLock lock(&mu_);
    datagrams_ended_ = true;
  }
  Report(std::move(done));
}

void Proxy::Report(ProxyConnection connection) {
  if (!on_end_) return;
  absl::MutexLock lock(&report_mu_);
  on_end_(connection);
}

absl::Status Proxy::SetFaults(const v1::Faults& to_upstream,
                              const v1::Faults& to_client) {
  // Checked first: a fault the sockets cannot obey changes nothing.
  std::vector<std::pair<std::string, const v1::Faults*>> targets;
  if (options_.udp) {
    Socket shaper = agent_.AttachSocket(shaper_handle_);
    v1::Faults previous;
    {
      absl::MutexLock lock(&mu_);
      previous = to_upstream_;
    }
    if (absl::Status s = shaper.SetFaults(to_upstream); !s.ok()) return s;
    if (absl::Status s =
            agent_.AttachSocket(listener_handle_).SetFaults(to_client);
        !s.ok()) {
      shaper.SetFaults(previous).IgnoreError();
      return s;
    }
  } else {
    for (const v1::Faults* faults : {&to_upstream, &to_client}) {
      if (absl::Status s =
              agent_.AttachSocket(checker_handle_).SetFaults(*faults);
          !s.ok()) {
        return s;
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    to_upstream_ = to_upstream;
    to_client_ = to_client;
    ++faults_generation_;
    for (const auto& [id, live] : live_) {
      targets.emplace_back(live.client_handle, &to_client);
      if (!live.upstream_handle.empty()) {
        targets.emplace_back(live.upstream_handle, &to_upstream);
      }
    }
  }
  for (const auto& [handle, faults] : targets) {
    absl::Status s = agent_.AttachSocket(handle).SetFaults(*faults);
    // A connection that ended meanwhile has nothing left to shape.
    if (!s.ok() && !absl::IsNotFound(s) && !absl::IsFailedPrecondition(s)) {
      return s;
    }
  }
  return absl::OkStatus();
}

void Proxy::Stop() {
  std::vector<std::string> live;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    for (const auto& [id, connection] : live_) {
      live.push_back(connection.client_handle);
      live.push_back(connection.upstream_handle);
    }
  }
  if (options_.udp) {
    // A close fault on the bound socket ends the datagram relay with its
    // figures (the agent checks one set while the relay idles every 0.1 s);
    // closing the socket would end it ABORTED, without them.
    v1::Faults closing;
    {
      absl::MutexLock lock(&mu_);
      closing = to_client_;
    }
    closing.mutable_close_after_time()->set_nanos(1000000);
    if (agent_.AttachSocket(listener_handle_).SetFaults(closing).ok()) {
      absl::MutexLock lock(&mu_);
      auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return datagrams_ended_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ended), kStopGrace);
    }
  }
  // No new connection (a datagram relay not ended above ends ABORTED).
  for (const std::string* handle :
       {&listener_handle_, &shaper_handle_, &checker_handle_}) {
    if (!handle->empty()) agent_.AttachSocket(*handle).Close().IgnoreError();
  }
  // Live connections end as if both sides had closed: each relay passes
  // the EOFs on and reports its figures. One that cannot end so (a fault
  // that stops reading) is closed after kStopGrace.
  for (const std::string& handle : live) {
    if (!handle.empty()) {
      agent_.AttachSocket(handle).Shutdown(v1::SHUTDOWN_HOW_BOTH).IgnoreError();
    }
  }
  {
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return live_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&ended), kStopGrace);
  }
  // Threads started after the snapshot see stopped_ and end on their own;
  // join until none is left.
  for (;;) {
    std::vector<std::thread> threads;
    std::vector<std::string> handles;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
      // A connection accepted just before Stop may still be connecting.
      for (const auto& [id, connection] : live_) {
        handles.push_back(connection.client_handle);
        handles.push_back(connection.upstream_handle);
      }
    }
    if (threads.empty()) return;
    for (const std::string& handle : handles) {
      if (!handle.empty()) agent_.AttachSocket(handle).Close().IgnoreError();
    }
    for (std::thread& thread : threads) thread.join();
  }
}

uint64_t Proxy::accepted() const {
  absl::MutexLock lock(&mu_);
  return next_id_;
}

}  // namespace sockagent
