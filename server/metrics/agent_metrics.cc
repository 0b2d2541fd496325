#include "server/metrics/agent_metrics.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "prometheus/collectable.h"
#include "proto/errno_status.h"
#include "proto/status_codec.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {
namespace {

// Whether `listen_address` ("host:port", "[v6]:port") can be bound, tried
// the way the HTTP server binds it (SO_REUSEADDR). The reason otherwise,
// e.g. "Address already in use (EADDRINUSE)": CivetServer itself only says
// "null context when constructing CivetServer".
absl::Status CanBind(const std::string& listen_address) {
  std::string host = listen_address;
  std::string port;
  const size_t colon = listen_address.rfind(':');
  if (colon != std::string::npos) {
    host = listen_address.substr(0, colon);
    port = listen_address.substr(colon + 1);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (port.empty()) return absl::InvalidArgumentError("expected HOST:PORT");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                             port.c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(::gai_strerror(rc));
  }
  absl::Status status = absl::OkStatus();
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                      ai->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      const int err = errno;
      status = absl::UnavailableError(
          absl::StrCat(std::strerror(err), " (", ErrnoName(err), ")"));
    }
    ::close(fd);
    break;
  }
  ::freeaddrinfo(found);
  return status;
}

using grpc::experimental::InterceptionHookPoints;

// Refreshes the core gauges when the exposer collects, and reports the
// families whose label sets come from the core (sockets by kind, denials by
// rule); registered before the registry so a scrape sees fresh values.
class CoreRefresher : public prometheus::Collectable {
 public:
  explicit CoreRefresher(AgentMetrics* metrics) : metrics_(metrics) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    metrics_->RefreshCoreGauges();
    return metrics_->CoreFamilies();
  }

 private:
  AgentMetrics* metrics_;
};

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

// Which payload a data RPC's responses carry.
enum class Payload {
  kNone,
  kRecv,
  kRecvStream,
  kRecvFrom,
  kRecvFromStream,
  kSend,
  kSendStream,
  kSendTo,
  kTraffic
};

Payload PayloadOf(const std::string& method) {
  if (method == "Recv") return Payload::kRecv;
  if (method == "RecvStream") return Payload::kRecvStream;
  if (method == "RecvFrom") return Payload::kRecvFrom;
  if (method == "RecvFromStream") return Payload::kRecvFromStream;
  if (method == "Send") return Payload::kSend;
  if (method == "SendStream") return Payload::kSendStream;
  if (method == "SendTo") return Payload::kSendTo;
  if (method == "Traffic") return Payload::kTraffic;
  return Payload::kNone;
}

// One per RPC; gRPC owns and deletes it when the RPC ends.
class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(grpc::experimental::ServerRpcInfo* info,
                     AgentMetrics* metrics)
      : metrics_(metrics),
        streaming_(info->type() !=
                   grpc::experimental::ServerRpcInfo::Type::UNARY),
        start_(std::chrono::steady_clock::now()) {
    // "/sockagent.v1.SocketAgent/Recv" -> service, method.
    std::vector<std::string> parts =
        absl::StrSplit(info->method() == nullptr ? "" : info->method(), '/',
                       absl::SkipEmpty());
    if (parts.size() == 2) {
      service_ = parts[0];
      method_ = parts[1];
    } else {
      method_ = info->method() == nullptr ? "unknown" : info->method();
    }
    if (service_ == "sockagent.v1.SocketAgent") payload_ = PayloadOf(method_);
    if (streaming_) metrics_->active_streams().Increment();
  }
  ~MetricsInterceptor() override {
    if (streaming_) metrics_->active_streams().Decrement();
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (payload_ != Payload::kNone &&
        methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      CountPayload(methods->GetSendMessage());
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const double seconds = std::chrono::duration<double>(
                                 std::chrono::steady_clock::now() - start_)
                                 .count();
      metrics_->RecordCall(service_, method_, CodeName(status.error_code()),
                           seconds);
      if (!status.ok()) {
        if (std::optional<ErrnoInfo> err = GetErrno(FromGrpcStatus(status))) {
          metrics_->RecordErrno(method_, err->name);
        }
      }
    }
    methods->Proceed();
  }

 private:
  void CountPayload(const void* message) {
    if (message == nullptr) return;
    switch (payload_) {
      case Payload::kRecv:
        metrics_->AddBytes(
            true, static_cast<const v1::RecvResponse*>(message)->data().size());
        break;
      case Payload::kRecvStream:
        metrics_->AddBytes(
            true,
            static_cast<const v1::RecvStreamResponse*>(message)->data().size());
        break;
      case Payload::kRecvFrom:
        metrics_->AddBytes(
            true,
            static_cast<const v1::RecvFromResponse*>(message)->data().size());
        metrics_->AddDatagram(true);
        break;
      case Payload::kRecvFromStream:
        metrics_->AddBytes(
            true, static_cast<const v1::RecvFromStreamResponse*>(message)
                      ->data()
                      .size());
        metrics_->AddDatagram(true);
        break;
      case Payload::kSend:
        metrics_->AddBytes(
            false, static_cast<const v1::SendResponse*>(message)->bytes_sent());
        break;
      case Payload::kSendStream:
        metrics_->AddBytes(
            false,
            static_cast<const v1::SendStreamResponse*>(message)->bytes_sent());
        break;
      case Payload::kSendTo:
        metrics_->AddBytes(
            false,
            static_cast<const v1::SendToResponse*>(message)->bytes_sent());
        metrics_->AddDatagram(false);
        break;
      case Payload::kTraffic: {
        // Agent-side traffic: counted when it ends, in both directions.
        const auto* traffic = static_cast<const v1::TrafficResponse*>(message);
        metrics_->AddBytes(true, traffic->bytes_received());
        metrics_->AddBytes(false, traffic->bytes_sent());
        break;
      }
      case Payload::kNone:
        break;
    }
  }

  AgentMetrics* const metrics_;
  const bool streaming_;
  const std::chrono::steady_clock::time_point start_;
  std::string service_;
  std::string method_;
  Payload payload_ = Payload::kNone;
};

class MetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(AgentMetrics* metrics)
      : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info, metrics_);
  }

 private:
  AgentMetrics* metrics_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AgentMetrics>> AgentMetrics::Start(
    const std::string& listen_address) {
  std::unique_ptr<AgentMetrics> metrics(new AgentMetrics());
  metrics->registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Registry& r = *metrics->registry_;
  metrics->rpcs_ = &prometheus::BuildCounter()
                        .Name("sockagent_rpcs_total")
                        .Help("Finished RPCs by service, method and code")
                        .Register(r);
  metrics->latency_ =
      &prometheus::BuildHistogram()
           .Name("sockagent_rpc_duration_seconds")
           .Help("RPC latency from arrival to status, by service and method")
           .Register(r);
  metrics->socket_errors_ =
      &prometheus::BuildCounter()
           .Name("sockagent_socket_errors_total")
           .Help("Failed RPCs that carry an errno, by method and errno name")
           .Register(r);
  auto& bytes = prometheus::BuildCounter()
                    .Name("sockagent_bytes_total")
                    .Help(
                        "Payload bytes received from (in) or sent to (out) "
                        "sockets by the data RPCs")
                    .Register(r);
  metrics->bytes_in_ = &bytes.Add({{"direction", "in"}});
  metrics->bytes_out_ = &bytes.Add({{"direction", "out"}});
  auto& datagrams = prometheus::BuildCounter()
                        .Name("sockagent_datagrams_total")
                        .Help("Datagrams received (in) or sent (out)")
                        .Register(r);
  metrics->datagrams_in_ = &datagrams.Add({{"direction", "in"}});
  metrics->datagrams_out_ = &datagrams.Add({{"direction", "out"}});
  metrics->active_streams_ = &prometheus::BuildGauge()
                                  .Name("sockagent_active_streams")
                                  .Help("Streaming RPCs in progress")
                                  .Register(r)
                                  .Add({});
  metrics->sessions_ = &prometheus::BuildGauge()
                            .Name("sockagent_sessions")
                            .Help("Open sessions")
                            .Register(r)
                            .Add({});
  metrics->open_sockets_ = &prometheus::BuildGauge()
                                .Name("sockagent_open_sockets")
                                .Help("Sockets held by all sessions")
                                .Register(r)
                                .Add({});
  metrics->waiting_ops_ =
      &prometheus::BuildGauge()
           .Name("sockagent_waiting_operations")
           .Help("Calls waiting for a socket to become ready")
           .Register(r)
           .Add({});
  metrics->policy_reloads_rejected_ =
      &prometheus::BuildCounter()
           .Name("sockagent_policy_reloads_rejected_total")
           .Help(
               "Invalid policy files rejected (the last valid policy "
               "stayed in force)")
           .Register(r)
           .Add({});
  metrics->refused_sources_ =
      &prometheus::BuildCounter()
           .Name("sockagent_refused_sources_total")
           .Help(
               "Connections closed and datagrams dropped by the policy's "
               "accept_allow / accept_deny")
           .Register(r)
           .Add({});
  prometheus::BuildGauge()
      .Name("sockagent_build_info")
      .Help("Always 1; the labels name the build")
      .Register(r)
      .Add({{"version", kAgentVersion}, {"api", kApiVersion}})
      .Set(1);

  if (absl::Status bindable = CanBind(listen_address); !bindable.ok()) {
    return absl::Status(bindable.code(),
                        absl::StrCat("cannot serve metrics on ", listen_address,
                                     ": ", bindable.message()));
  }
  try {
    metrics->exposer_ =
        std::make_unique<prometheus::Exposer>(listen_address, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", listen_address,
                     ": the HTTP server did not start (", e.what(), ")"));
  }
  std::vector<int> ports = metrics->exposer_->GetListeningPorts();
  metrics->port_ = ports.empty() ? 0 : ports.front();
  metrics->refresher_ = std::make_shared<CoreRefresher>(metrics.get());
  metrics->exposer_->RegisterCollectable(metrics->refresher_);
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  return metrics;
}

AgentMetrics::~AgentMetrics() {
  exposer_.reset();  // no scrape runs past this point
  AttachCore(nullptr);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
AgentMetrics::InterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

void AgentMetrics::AttachCore(AgentCore* core) {
  absl::MutexLock lock(&core_mu_);
  core_ = core;
}

void AgentMetrics::RecordCall(const std::string& service,
                              const std::string& method,
                              const std::string& code, double seconds) {
  rpcs_->Add({{"service", service}, {"method", method}, {"code", code}})
      .Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
  latency_->Add({{"service", service}, {"method", method}}, kBuckets)
      .Observe(seconds);
}

void AgentMetrics::RecordErrno(const std::string& method,
                               const std::string& errno_name) {
  socket_errors_->Add({{"method", method}, {"errno", errno_name}}).Increment();
}

void AgentMetrics::AddBytes(bool in, uint64_t bytes) {
  (in ? bytes_in_ : bytes_out_)->Increment(static_cast<double>(bytes));
}

void AgentMetrics::AddDatagram(bool in) {
  (in ? datagrams_in_ : datagrams_out_)->Increment();
}

namespace {

// "FAMILY_INET" -> "inet", "SOCKET_STATE_LISTENING" -> "listening"; a value
// without a name (a raw number) is printed as that number.
std::string EnumLabel(const std::string& name, absl::string_view prefix,
                      int value) {
  if (name.empty()) return absl::StrCat(value);
  return absl::AsciiStrToLower(absl::StripPrefix(name, prefix));
}

prometheus::ClientMetric Sample(
    std::vector<prometheus::ClientMetric::Label> labels,
    prometheus::MetricType type, double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return metric;
}

}  // namespace

std::vector<prometheus::MetricFamily> AgentMetrics::CoreFamilies() {
  absl::MutexLock lock(&core_mu_);
  if (core_ == nullptr) return {};
  prometheus::MetricFamily sockets;
  sockets.name = "sockagent_open_sockets_by_kind";
  sockets.help = "Sockets held by all sessions, by family, type and state";
  sockets.type = prometheus::MetricType::Gauge;
  for (const AgentCore::SocketKindCount& kind : core_->CountSocketsByKind()) {
    const std::string family =
        EnumLabel(v1::Family_Name(kind.family), "FAMILY_", kind.family);
    const std::string state = EnumLabel(v1::SocketState_Name(kind.state),
                                        "SOCKET_STATE_", kind.state);
    const std::string type =
        EnumLabel(v1::SocketType_Name(kind.type), "SOCKET_TYPE_", kind.type);
    sockets.metric.push_back(
        Sample({{"family", family}, {"state", state}, {"type", type}},
               sockets.type, static_cast<double>(kind.count)));
  }
  prometheus::MetricFamily denials;
  denials.name = "sockagent_policy_denials_total";
  denials.help =
      "Policy decisions that denied (decision=deny) or in report-only mode "
      "would have denied (decision=would_deny), by the deciding rule";
  denials.type = prometheus::MetricType::Counter;
  for (const auto& [key, count] : core_->DenialCounts()) {
    denials.metric.push_back(
        Sample({{"decision", key.second}, {"rule", key.first}}, denials.type,
               static_cast<double>(count)));
  }
  std::sort(
      denials.metric.begin(), denials.metric.end(),
      [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
        return a.label < b.label;
      });
  std::vector<prometheus::MetricFamily> families;
  families.push_back(std::move(sockets));
  families.push_back(std::move(denials));
  return families;
}

void AgentMetrics::RefreshCoreGauges() {
  absl::MutexLock lock(&core_mu_);
  if (core_ == nullptr) return;
  const v1::GetAgentInfoResponse info = core_->GetAgentInfo();
  sessions_->Set(info.stats().sessions());
  open_sockets_->Set(static_cast<double>(info.stats().open_sockets()));
  waiting_ops_->Set(static_cast<double>(info.stats().waiting_operations()));
  auto advance = [](prometheus::Counter* counter, uint64_t now,
                    uint64_t* seen) {
    if (now > *seen) counter->Increment(static_cast<double>(now - *seen));
    *seen = now;
  };
  advance(policy_reloads_rejected_, info.stats().policy_reloads_rejected(),
          &seen_reloads_rejected_);
  advance(refused_sources_, info.stats().refused_sources(),
          &seen_refused_sources_);
}

}  // namespace sockagent
