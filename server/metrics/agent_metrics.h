#ifndef SOCKAGENT_SERVER_METRICS_AGENT_METRICS_H_
#define SOCKAGENT_SERVER_METRICS_AGENT_METRICS_H_

// Prometheus metrics of a running agent, served on their own port
// (GET /metrics). Two sources, so the core stays free of gRPC and Prometheus:
//  - a gRPC server interceptor (InterceptorFactory()) sees every RPC: calls
//    by method and code, latency histograms, active streams, socket errors by
//    errno (from the errno detail of the status), bytes and datagrams moved
//    by the data RPCs (from their responses);
//  - at scrape time, AgentCore's own stats (sessions, open sockets, waiting
//    operations) are read through GetAgentInfo().
// Thread-safe. The core passed to AttachCore() must outlive the metrics or be
// detached first.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "server/core/agent_core.h"

namespace sockagent {

class AgentMetrics {
 public:
  // Serves /metrics on `listen_address` (host:port, port 0 picks one).
  // UNAVAILABLE naming the address and the errno when it cannot be bound
  // ("cannot serve metrics on 127.0.0.1:9464: Address already in use
  // (EADDRINUSE)"); INVALID_ARGUMENT when it is not HOST:PORT.
  static absl::StatusOr<std::unique_ptr<AgentMetrics>> Start(
      const std::string& listen_address);
  ~AgentMetrics();

  // The bound port of the /metrics endpoint.
  int port() const { return port_; }

  // Creates one interceptor per RPC; hand it to the ServerBuilder.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  InterceptorFactory();

  // Reads `core`'s stats at every scrape; nullptr detaches.
  void AttachCore(AgentCore* core);

  // Used by the interceptor.
  void RecordCall(const std::string& service, const std::string& method,
                  const std::string& code, double seconds);
  void RecordErrno(const std::string& method, const std::string& errno_name);
  void AddBytes(bool in, uint64_t bytes);
  void AddDatagram(bool in);
  prometheus::Gauge& active_streams() { return *active_streams_; }

  // Refreshes the gauges read from the core (called by the scrape).
  void RefreshCoreGauges();
  // The families built from the core at each scrape: open sockets by
  // family/type/state and policy denials by rule. Empty without a core.
  std::vector<prometheus::MetricFamily> CoreFamilies();

 private:
  AgentMetrics() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  // Refreshes the core gauges at each scrape (the exposer holds it weakly).
  std::shared_ptr<prometheus::Collectable> refresher_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;

  prometheus::Family<prometheus::Counter>* rpcs_ = nullptr;
  prometheus::Family<prometheus::Histogram>* latency_ = nullptr;
  prometheus::Family<prometheus::Counter>* socket_errors_ = nullptr;
  prometheus::Counter* bytes_in_ = nullptr;
  prometheus::Counter* bytes_out_ = nullptr;
  prometheus::Counter* datagrams_in_ = nullptr;
  prometheus::Counter* datagrams_out_ = nullptr;
  prometheus::Gauge* active_streams_ = nullptr;
  prometheus::Gauge* sessions_ = nullptr;
  prometheus::Gauge* open_sockets_ = nullptr;
  prometheus::Gauge* waiting_ops_ = nullptr;
  // Security counters read from the core's stats at scrape time.
  prometheus::Counter* policy_reloads_rejected_ = nullptr;
  prometheus::Counter* refused_sources_ = nullptr;

  absl::Mutex core_mu_;
  AgentCore* core_ ABSL_GUARDED_BY(core_mu_) = nullptr;
  // What the counters above already count.
  uint64_t seen_reloads_rejected_ ABSL_GUARDED_BY(core_mu_) = 0;
  uint64_t seen_refused_sources_ ABSL_GUARDED_BY(core_mu_) = 0;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_METRICS_AGENT_METRICS_H_
