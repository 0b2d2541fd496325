// The proxy steps of a scenario: `proxy` starts a sockagent::Proxy on an
// agent and hands it to the run (RunControl::Hold) under its save_as name,
// `proxy_faults` changes its faults while it runs, `proxy_stop` stops it
// and reports each connection's figures. A proxy still running when the run
// (or its matrix/for_each scope) ends is stopped by the run.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/address.h"
#include "client/proxy.h"
#include "client/scenario/expectations.h"
#include "client/scenario/step_kinds.h"
#include "client/scenario/traffic_steps.h"
#include "client/vocab/json.h"
#include "client/vocab/words.h"
#include "proto/duration_codec.h"
#include "proto/units.h"

namespace sockagent::scenario {
namespace {

// A running proxy, its current faults and the connections that ended.
class HeldProxy : public Held {
 public:
  // What the proxy's on_end fills; outlives the proxy's threads.
  struct Log {
    absl::Mutex mu;
    std::vector<ProxyConnection> ended ABSL_GUARDED_BY(mu);
  };

  HeldProxy(std::string agent, std::unique_ptr<Proxy> proxy,
            std::shared_ptr<Log> log, const ProxyOptions& options)
      : agent_(std::move(agent)),
        proxy_(std::move(proxy)),
        log_(std::move(log)),
        to_upstream_(options.to_upstream),
        to_client_(options.to_client) {}

  // Replaces the faults of the directions `direction` names (both,
  // upstream, downstream); `clear` empties them.
  absl::Status Change(const std::string& direction, const v1::Faults& faults) {
    absl::MutexLock lock(&mu_);
    v1::Faults up = to_upstream_;
    v1::Faults down = to_client_;
    if (direction != "downstream") up = faults;
    if (direction != "upstream") down = faults;
    if (absl::Status s = proxy_->SetFaults(up, down); !s.ok()) return s;
    to_upstream_ = up;
    to_client_ = down;
    return absl::OkStatus();
  }

  std::string Stop(std::vector<std::string>* figures) override {
    proxy_->Stop();
    absl::MutexLock stop_lock(&mu_);
    if (stopped_) return fields_[""];
    stopped_ = true;
    absl::MutexLock lock(&log_->mu);
    uint64_t to_upstream = 0, to_client = 0, datagrams_up = 0,
             datagrams_down = 0, errors = 0;
    for (const ProxyConnection& c : log_->ended) {
      vocab::JsonObject object;
      object.AddInt("connection", static_cast<int64_t>(c.id));
      if (c.client.has_inet() || c.client.has_unix()) {
        object.AddString("client", FormatAddress(c.client));
      }
      if (c.result.ok()) {
        const v1::RelayFigures& relay = c.result->relay();
        to_upstream += relay.to_peer().bytes_sent();
        to_client += relay.from_peer().bytes_sent();
        datagrams_up += relay.to_peer().datagrams_sent();
        datagrams_down += relay.from_peer().datagrams_sent();
        object.AddString("end", vocab::TrafficEndName(c.result->end()))
            .AddRaw("relay", vocab::MessageJson(relay));
      } else {
        ++errors;
        object.AddString("error", StatusText(c.result.status()));
      }
      if (figures != nullptr) figures->push_back(object.Build());
    }
    fields_["connections"] = absl::StrCat(log_->ended.size());
    fields_["errors"] = absl::StrCat(errors);
    fields_["bytes_to_upstream"] = absl::StrCat(to_upstream);
    fields_["bytes_to_client"] = absl::StrCat(to_client);
    fields_["datagrams_to_upstream"] = absl::StrCat(datagrams_up);
    fields_["datagrams_to_client"] = absl::StrCat(datagrams_down);
    std::string summary =
        absl::StrCat(log_->ended.size(), " connection(s), ", to_upstream,
                     " bytes to upstream, ", to_client, " bytes to client");
    if (datagrams_up != 0 || datagrams_down != 0) {
      absl::StrAppend(&summary, ", ", datagrams_up, "/", datagrams_down,
                      " datagrams");
    }
    if (errors != 0) absl::StrAppend(&summary, ", ", errors, " error(s)");
    fields_[""] = summary;
    return summary;
  }

  // The name of the agent it runs on.
  const std::string& agent() const { return agent_; }

  // Waits until at least `n` connections ended; false at `deadline`.
  bool AwaitEnded(uint64_t n, absl::Time deadline) {
    absl::MutexLock lock(&log_->mu);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log_->mu) {
      return log_->ended.size() >= n;
    };
    return log_->mu.AwaitWithDeadline(absl::Condition(&enough), deadline);
  }

  // The figures of Stop, as result fields.
  Fields fields() {
    absl::MutexLock lock(&mu_);
    return fields_;
  }

 private:
  const std::string agent_;
  std::unique_ptr<Proxy> proxy_;
  std::shared_ptr<Log> log_;
  absl::Mutex mu_;  // serializes Change and Stop
  v1::Faults to_upstream_ ABSL_GUARDED_BY(mu_);
  v1::Faults to_client_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  Fields fields_ ABSL_GUARDED_BY(mu_);
};

// The faults of the step and the direction they apply to.
absl::StatusOr<v1::Faults> StepFaults(const StepCall& call) {
  return FaultsFromArgs(call.args);
}

Outcome StartProxy(const StepCall& call) {
  ProxyOptions options;
  absl::StatusOr<v1::Address> listen = ParseAddress(call.Arg("listen"));
  if (!listen.ok()) return StepCall::Bad("listen", listen.status());
  absl::StatusOr<v1::Address> upstream = ParseAddress(call.Arg("upstream"));
  if (!upstream.ok()) return StepCall::Bad("upstream", upstream.status());
  options.listen = *listen;
  options.upstream = *upstream;
  for (const auto& [key, out] :
       {std::pair{"udp", &options.udp},
        std::pair{"reset_as_fin", &options.reset_as_fin}}) {
    if (!call.Has(key)) continue;
    absl::StatusOr<bool> on = ParseBool(call.Arg(key));
    if (!on.ok()) return StepCall::Bad(key, on.status());
    *out = *on;
  }
  if (call.Has("idle_timeout")) {
    absl::StatusOr<absl::Duration> idle =
        ParseDurationText(call.Arg("idle_timeout"));
    if (!idle.ok()) return StepCall::Bad("idle_timeout", idle.status());
    options.idle_timeout = *idle;
  }
  absl::StatusOr<v1::Faults> faults = StepFaults(call);
  if (!faults.ok()) {
    Outcome out;
    out.runner_error = faults.status();
    return out;
  }
  const std::string direction = call.Arg("direction", "both");
  if (direction != "downstream") options.to_upstream = *faults;
  if (direction != "upstream") options.to_client = *faults;

  auto log = std::make_shared<HeldProxy::Log>();
  Outcome out;
  absl::StatusOr<std::unique_ptr<Proxy>> proxy = Proxy::Start(
      *call.agent, options, [log](const ProxyConnection& connection) {
        absl::MutexLock lock(&log->mu);
        log->ended.push_back(connection);
      });
  if (!proxy.ok()) {
    out.status = proxy.status();
    return out;
  }
  const v1::Address bound = (*proxy)->bound();
  auto held = std::make_shared<HeldProxy>(call.agent_name, *std::move(proxy),
                                          log, options);
  out.status = call.run.Hold(call.step.save_as, call.agent_name, held);
  if (!out.status.ok()) {
    held->Stop(nullptr);
    return out;
  }
  AddressFields(bound, "", &out.fields);
  out.fields[""] = out.fields["address"];
  return out;
}

// The proxy a step names: NOT_FOUND (a runner error) when none runs.
std::shared_ptr<HeldProxy> Named(const StepCall& call, bool release,
                                 Outcome* out) {
  const std::string name = call.Arg("proxy");
  std::shared_ptr<Held> held =
      release ? call.run.Release(name) : call.run.Find(name);
  auto proxy = std::dynamic_pointer_cast<HeldProxy>(held);
  if (proxy != nullptr) out->agent = proxy->agent();
  if (proxy == nullptr) {
    out->runner_error = absl::InvalidArgumentError(absl::StrCat(
        "proxy: \"", name,
        "\" is not a running proxy (its proxy step did not run, failed or "
        "was stopped)"));
  }
  return proxy;
}

Outcome ProxyFaults(const StepCall& call) {
  Outcome out;
  std::shared_ptr<HeldProxy> proxy = Named(call, false, &out);
  if (proxy == nullptr) return out;
  absl::StatusOr<v1::Faults> faults = StepFaults(call);
  if (!faults.ok()) {
    out.runner_error = faults.status();
    return out;
  }
  bool clear = false;
  if (call.Has("clear")) {
    absl::StatusOr<bool> on = ParseBool(call.Arg("clear"));
    if (!on.ok()) return StepCall::Bad("clear", on.status());
    clear = *on;
  }
  if (clear) *faults = v1::Faults();
  out.status = proxy->Change(call.Arg("direction", "both"), *faults);
  return out;
}

Outcome StopProxy(const StepCall& call) {
  Outcome out;
  uint64_t connections = 0;
  if (call.Has("connections")) {
    absl::StatusOr<uint64_t> n = ParseUint(call.Arg("connections"));
    if (!n.ok()) return StepCall::Bad("connections", n.status());
    connections = *n;
  }
  std::shared_ptr<HeldProxy> proxy = Named(call, true, &out);
  if (proxy == nullptr) return out;
  // Waiting is bounded by the step's deadline and ends when the run stops;
  // the proxy stops either way.
  while (!proxy->AwaitEnded(
      connections,
      std::min(call.deadline, absl::Now() + absl::Milliseconds(50)))) {
    if (absl::Now() >= call.deadline) {
      out.status = absl::DeadlineExceededError(absl::StrCat(
          "proxy_stop: fewer than ", connections, " connection(s) ended"));
      break;
    }
    if (!call.run.SleepUnlessStopped(absl::ZeroDuration())) {
      out.status = absl::CancelledError("run stopped");
      break;
    }
  }
  proxy->Stop(&out.figures);
  out.fields = proxy->fields();
  return out;
}

// clear: takes no fault argument with it.
absl::Status ClearAlone(const Fields& args) {
  auto clear = args.find("clear");
  if (clear == args.end()) return absl::OkStatus();
  for (const auto& [key, value] : args) {
    if (key != "clear" && key != "proxy" && key != "direction") {
      return absl::InvalidArgumentError(
          absl::StrCat("clear: takes no fault argument (", key, ":)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void AddProxySteps(std::vector<StepKind>* kinds) {
  using T = ArgType;
  StepKind start("proxy", StartProxy);
  start.Required("listen", T::kAddress)
      .Required("upstream", T::kAddress)
      .Optional("udp", T::kBool)
      .Optional("reset_as_fin", T::kBool)
      .Optional("idle_timeout", T::kDuration)
      .Optional("direction", T::kDirection);
  AddFaultArgs(start);
  kinds->push_back(std::move(start.NeedsAgent().NeedsSaveAs()));

  StepKind faults("proxy_faults", ProxyFaults);
  faults.Required("proxy", T::kString)
      .Optional("direction", T::kDirection)
      .Optional("clear", T::kBool);
  AddFaultArgs(faults);
  kinds->push_back(std::move(faults.Checked(ClearAlone).Coordinates()));

  kinds->push_back(StepKind("proxy_stop", StopProxy)
                       .Required("proxy", T::kString)
                       .Optional("connections", T::kUint)
                       .Shorthand("proxy")
                       .Coordinates());
}

}  // namespace sockagent::scenario
