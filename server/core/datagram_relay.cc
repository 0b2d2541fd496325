// The datagram relay: one socket faces the clients; each client address gets
// its own upstream socket connected to RelayOptions.upstream (closed after
// idle_timeout). Clients -> upstream is shaped by the peer's Faults (when a
// peer is given), upstream -> clients by the socket's own: loss,
// duplication, reordering, delay, rate, blackhole, close after time or
// bytes.

#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/time/clock.h"
#include "server/core/faults.h"
#include "server/core/relay_run.h"

namespace sockagent {
namespace internal {
namespace {

class DatagramRelay final : public RelayRun {
 public:
  using RelayRun::RelayRun;

 private:
  // One client address and its upstream socket.
  struct Mapping {
    SockAddr client;
    std::shared_ptr<IoSocket> io;
    Slot reader;
    absl::Time last_used;
    bool closed = false;
  };

  // A datagram on its way, sent at `due` (ties in arrival order).
  struct Pending {
    std::string data;
    std::shared_ptr<Mapping> mapping;
  };

  // One direction: clients -> upstream (0) or upstream -> clients (1).
  struct Direction {
    std::multimap<absl::Time, Pending> queue;
    std::optional<Pending> held;  // reordered: goes after the next one
    absl::Time held_due;
    Slot writer;
    std::shared_ptr<IoSocket> writer_io;
    bool writer_idle_wait = false;
    RatePacer pacer;
    v1::RelayDirection figures;
  };

  static std::string Key(const SockAddr& address) {
    return std::string(reinterpret_cast<const char*>(&address.storage),
                       address.length);
  }

  void Begin() override {
    // Every op's deadline includes the request's end, and the client
    // reader always waits, so the duration ends the relay when idle too.
    ReadClients();
  }

  void Stop() override {
    reader_.Cancel();
    for (Direction& d : directions_) {
      d.writer.Cancel();
      d.queue.clear();
      d.held.reset();
    }
    for (auto& [key, mapping] : mappings_) {
      mapping->reader.Cancel();
      if (!mapping->closed) engine_.Close(*mapping->io);
      mapping->closed = true;
    }
    mappings_.clear();
  }

  void Fill(v1::TrafficResponse& response) override {
    response.set_bytes_received(directions_[0].figures.bytes_received());
    response.set_datagrams_received(
        directions_[0].figures.datagrams_received());
    response.set_bytes_sent(directions_[1].figures.bytes_sent());
    response.set_datagrams_sent(directions_[1].figures.datagrams_sent());
    v1::RelayFigures* relay = response.mutable_relay();
    *relay->mutable_to_peer() = directions_[0].figures;
    *relay->mutable_from_peer() = directions_[1].figures;
    relay->set_clients(clients_);
    relay->set_refused_datagrams(refused_);
  }

  void OnAbnormal(const IoResult& result) {
    if (absl::IsAborted(result.status) ||
        absl::IsFailedPrecondition(result.status)) {
      return Fail(ClosedError());
    }
    if (!result.status.ok()) return Fail(result.status);
  }

  // The socket whose faults shape direction `d`.
  ManagedSocket* Shaper(int d) {
    return d == 0 ? options_.peer.get() : socket_.get();
  }

  // When a shaper's close_after_time closes it (InfiniteFuture: never).
  static absl::Time CloseAt(const ManagedSocket& shaper,
                            const v1::Faults& faults) {
    const absl::Duration after = ToAbsl(faults.close_after_time());
    return after > absl::ZeroDuration() ? shaper.faults_set_at() + after
                                        : absl::InfiniteFuture();
  }

  // close_after_time and close_after_bytes, as a stream relay obeys them: the
  // shaper whose fault fires is closed and the relay ends (TRAFFIC_END_FAULT)
  // with its figures. Returns true when the relay ended.
  bool CloseFaultFired() {
    const absl::Time now = absl::Now();
    for (int d = 0; d < 2; ++d) {
      ManagedSocket* shaper = Shaper(d);
      if (shaper == nullptr) continue;
      const v1::Faults faults = shaper->faults();
      const bool time_up = now >= CloseAt(*shaper, faults);
      const bool bytes_up =
          faults.close_after_bytes() != 0 &&
          shaper->bytes_since_faults() >= faults.close_after_bytes();
      if (!time_up && !bytes_up) continue;
      std::shared_ptr<ManagedSocket> owned = d == 0 ? options_.peer : socket_;
      if (hooks_.close) {
        hooks_.close(owned, faults.close_with_reset());
      } else {
        engine_.Close(*owned->io());
      }
      End(v1::TRAFFIC_END_FAULT);
      return true;
    }
    return false;
  }

  // The client reader's wake-up: the next close_after_time, polled so that
  // one set while the relay runs is seen.
  absl::Time NextFaultCheck() {
    absl::Time at = absl::Now() + kIdleFaultPoll;
    for (int d = 0; d < 2; ++d) {
      if (ManagedSocket* shaper = Shaper(d); shaper != nullptr) {
        at = std::min(at, CloseAt(*shaper, shaper->faults()));
      }
    }
    return at;
  }

  void ReadClients() {
    if (finished_ || reader_.busy || CloseFaultFired()) return;
    if (socket_->faults().stop_reading()) {
      Submit(reader_, socket_->io(), Interest::kRead,
             MakeOp(OpKind::kWait,
                    [this](IoResult result) {
                      reader_.busy = false;
                      bool timer = false;
                      if (!Usable(result, &timer) && !timer) {
                        if (!finished_) OnAbnormal(result);
                        return;
                      }
                      ReadClients();
                    }),
             absl::Now() + kStopReadingPoll);
      return;
    }
    std::unique_ptr<RelayOp> op = MakeOp(
        OpKind::kRecvFrom,
        [this](IoResult result) { OnClientDatagram(std::move(result)); });
    op->set_datagram();
    Submit(reader_, socket_->io(), Interest::kRead, std::move(op),
           NextFaultCheck());
  }

  void OnClientDatagram(IoResult result) {
    reader_.busy = false;
    bool timer = false;
    if (!Usable(result, &timer)) {
      if (!timer && !finished_) OnAbnormal(result);
      if (timer) ReadClients();
      return;
    }
    if (result.error != 0 || result.from.length <= sizeof(sa_family_t)) {
      // ICMP errors from earlier replies, or an unnamed sender: skip.
      return ReadClients();
    }
    if (hooks_.accept_source &&
        !hooks_.accept_source(result.from.get(), result.from.length)) {
      ++refused_;
      return ReadClients();
    }
    const size_t n = result.bytes;
    Direction& up = directions_[0];
    up.figures.set_bytes_received(up.figures.bytes_received() + n);
    up.figures.set_datagrams_received(up.figures.datagrams_received() + 1);
    socket_->bytes_received += n;
    checksum_.Update(absl::string_view(result.buffer.data(), n));
    std::shared_ptr<Mapping> mapping = MappingFor(result.from);
    if (mapping == nullptr) return ReadClients();  // could not open: dropped
    mapping->last_used = absl::Now();
    result.buffer.resize(n);
    Enqueue(0, Pending{std::move(result.buffer), mapping});
    ReadClients();
  }

  std::shared_ptr<Mapping> MappingFor(const SockAddr& client) {
    const std::string key = Key(client);
    auto it = mappings_.find(key);
    if (it != mappings_.end()) return it->second;
    if (hooks_.admit_upstream_socket) {
      if (!hooks_.admit_upstream_socket().ok()) return nullptr;
    }
    const SockAddr& upstream = *options_.upstream;
    SysCallInt fd = ops_.Socket(upstream.family(), SOCK_DGRAM, 0);
    if (!fd.ok()) return nullptr;
    ScopedFd owned(fd.value);
    if (!ops_.Connect(owned.get(), upstream.get(), upstream.length).ok()) {
      return nullptr;
    }
    absl::StatusOr<std::shared_ptr<IoSocket>> io =
        engine_.Register(std::move(owned), upstream.family(), SOCK_DGRAM, 0);
    if (!io.ok()) return nullptr;
    auto mapping = std::make_shared<Mapping>();
    mapping->client = client;
    mapping->io = *std::move(io);
    mapping->last_used = absl::Now();
    mappings_.emplace(key, mapping);
    ++clients_;
    ReadUpstream(mapping);
    return mapping;
  }

  void ReadUpstream(const std::shared_ptr<Mapping>& mapping) {
    if (finished_ || mapping->closed || mapping->reader.busy) return;
    std::unique_ptr<RelayOp> op =
        MakeOp(OpKind::kRecv, [this, mapping](IoResult result) {
          OnUpstreamDatagram(mapping, std::move(result));
        });
    op->set_datagram();
    Submit(mapping->reader, mapping->io, Interest::kRead, std::move(op),
           mapping->last_used + options_.idle_timeout);
  }

  void CloseMapping(const std::shared_ptr<Mapping>& mapping) {
    if (mapping->closed) return;
    mapping->closed = true;
    engine_.Close(*mapping->io);
    mappings_.erase(Key(mapping->client));
  }

  void OnUpstreamDatagram(const std::shared_ptr<Mapping>& mapping,
                          IoResult result) {
    mapping->reader.busy = false;
    if (finished_ || mapping->closed) return;
    bool timer = false;
    if (!Usable(result, &timer)) {
      if (finished_) return;
      if (timer) {
        if (absl::Now() - mapping->last_used >= options_.idle_timeout) {
          return CloseMapping(mapping);
        }
        return ReadUpstream(mapping);
      }
      return CloseMapping(mapping);  // closed under us: forget the client
    }
    if (result.error != 0) {
      // ECONNREFUSED from an earlier datagram's ICMP: keep the mapping.
      return ReadUpstream(mapping);
    }
    const size_t n = result.bytes;
    Direction& down = directions_[1];
    down.figures.set_bytes_received(down.figures.bytes_received() + n);
    down.figures.set_datagrams_received(down.figures.datagrams_received() + 1);
    mapping->last_used = absl::Now();
    result.buffer.resize(n);
    Enqueue(1, Pending{std::move(result.buffer), mapping});
    ReadUpstream(mapping);
  }

  void Enqueue(int d, Pending pending) {
    Direction& dir = directions_[d];
    const absl::Time now = absl::Now();
    ManagedSocket* shaper = Shaper(d);
    DatagramFate fate;
    if (shaper != nullptr) {
      const v1::Faults faults = shaper->faults();
      FaultDice dice(faults.seed(), shaper->TakeFaultDraws(4));
      fate = DrawDatagramFate(faults, dice);
      if (faults.blackhole()) {
        dir.figures.set_bytes_blackholed(dir.figures.bytes_blackholed() +
                                         pending.data.size());
        return;
      }
    }
    if (fate.lost) {
      dir.figures.set_datagrams_lost(dir.figures.datagrams_lost() + 1);
      return;
    }
    const absl::Time due = now + fate.delay;
    if (fate.duplicated) {
      dir.figures.set_datagrams_duplicated(dir.figures.datagrams_duplicated() +
                                           1);
      dir.queue.emplace(due, Pending{pending.data, pending.mapping});
    }
    if (fate.reordered && !dir.held.has_value()) {
      dir.figures.set_datagrams_reordered(dir.figures.datagrams_reordered() +
                                          1);
      dir.held = std::move(pending);
      dir.held_due = due;
      return PumpWriter(d);  // an idle writer waits out the hold limit
    }
    dir.queue.emplace(due, std::move(pending));
    if (dir.held.has_value()) {
      // The held datagram goes right after this one.
      dir.queue.emplace(std::max(due, dir.held_due), *std::move(dir.held));
      dir.held.reset();
    }
    if (dir.writer.busy && dir.writer_idle_wait) dir.writer.Cancel();
    PumpWriter(d);
  }

  void PumpWriter(int d) {
    Direction& dir = directions_[d];
    if (finished_ || dir.writer.busy) return;
    if (dir.queue.empty() && dir.held.has_value()) {
      // No next datagram came: the held one goes alone once the hold limit
      // passes (a new datagram cancels this wait and goes first).
      const std::shared_ptr<Mapping>& mapping = dir.held->mapping;
      const absl::Time release = dir.held_due + kReorderHoldLimit;
      if (mapping->closed) {
        dir.held.reset();
      } else if (absl::Now() < release) {
        dir.writer_idle_wait = true;
        return WriterWait(d, d == 0 ? mapping->io : socket_->io(), release);
      } else {
        dir.queue.emplace(release, *std::move(dir.held));
        dir.held.reset();
      }
    }
    while (!dir.queue.empty()) {
      auto it = dir.queue.begin();
      const std::shared_ptr<Mapping>& mapping = it->second.mapping;
      if (mapping->closed) {
        dir.queue.erase(it);
        continue;
      }
      const absl::Time now = absl::Now();
      const std::shared_ptr<IoSocket>& io =
          d == 0 ? mapping->io : socket_->io();
      if (it->first > now) return WriterWait(d, io, it->first);
      uint64_t rate = 0;
      if (ManagedSocket* shaper = Shaper(d); shaper != nullptr) {
        rate = shaper->faults().send_rate_bytes_per_second();
      }
      if (rate != 0 && dir.pacer.ready_at() > now) {
        return WriterWait(d, io, dir.pacer.ready_at());
      }
      std::unique_ptr<RelayOp> op =
          MakeOp(OpKind::kSend, [this, d, now, rate](IoResult result) {
            OnDatagramSent(d, now, rate, std::move(result));
          });
      op->set_send(it->second.data.data(), it->second.data.size(),
                   d == 0 ? nullptr : &mapping->client);
      dir.writer_idle_wait = false;
      return Submit(dir.writer, io, Interest::kWrite, std::move(op));
    }
  }

  void WriterWait(int d, const std::shared_ptr<IoSocket>& io,
                  absl::Time until) {
    Direction& dir = directions_[d];
    Submit(dir.writer, io, Interest::kWrite,
           MakeOp(OpKind::kWait,
                  [this, d](IoResult result) {
                    directions_[d].writer.busy = false;
                    directions_[d].writer_idle_wait = false;
                    bool timer = false;
                    if (!Usable(result, &timer) && !timer) {
                      // The mapping closed under the wait: its datagrams
                      // are dropped by PumpWriter.
                      if (finished_) return;
                      if (d == 1) return OnAbnormal(result);
                    }
                    PumpWriter(d);
                  }),
           until);
  }

  void OnDatagramSent(int d, absl::Time started, uint64_t rate,
                      IoResult result) {
    Direction& dir = directions_[d];
    dir.writer.busy = false;
    bool timer = false;
    if (!Usable(result, &timer)) {
      if (finished_) return;
      if (!timer && d == 1) return OnAbnormal(result);
      // An upstream socket closed under the send: drop that datagram.
      if (!dir.queue.empty() && !timer) dir.queue.erase(dir.queue.begin());
      return PumpWriter(d);
    }
    auto it = dir.queue.begin();
    if (it == dir.queue.end()) return PumpWriter(d);
    if (result.error == 0) {
      const size_t n = result.bytes;
      dir.figures.set_bytes_sent(dir.figures.bytes_sent() + n);
      dir.figures.set_datagrams_sent(dir.figures.datagrams_sent() + 1);
      // The shaper's counters: its close_after_bytes counts what it shaped.
      if (d == 1) {
        socket_->bytes_sent += n;
      } else if (options_.peer != nullptr) {
        options_.peer->bytes_sent += n;
      }
      dir.pacer.Sent(n, rate, started);
      it->second.mapping->last_used = absl::Now();
    }
    // A datagram that failed (ECONNREFUSED, EMSGSIZE) is dropped, as the
    // network would.
    dir.queue.erase(it);
    if (CloseFaultFired()) return;
    PumpWriter(d);
  }

  Slot reader_;
  Direction directions_[2];
  absl::flat_hash_map<std::string, std::shared_ptr<Mapping>> mappings_;
  uint64_t clients_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace

std::shared_ptr<RelayRun> MakeDatagramRelay(RelayStart start) {
  return std::make_shared<DatagramRelay>(std::move(start));
}

}  // namespace internal
}  // namespace sockagent
