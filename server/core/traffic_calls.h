#ifndef SOCKAGENT_SERVER_CORE_TRAFFIC_CALLS_H_
#define SOCKAGENT_SERVER_CORE_TRAFFIC_CALLS_H_

// The calls about agent-side traffic: Traffic (echo, sink, source; the
// engine side is traffic.h) and SetFaults (the fault profile a socket's
// traffic obeys). Resolves the socket through the SessionRegistry and wires
// the PolicyGate's checks into the traffic's hooks. Thread-safe. No gRPC.

#include <memory>

#include "server/core/call_context.h"
#include "server/core/policy_gate.h"
#include "server/core/session_registry.h"
#include "server/io/engine.h"
#include "server/io/socket_ops.h"
#include "sockagent/v1/sockagent.pb.h"

namespace sockagent {

class TrafficCalls {
 public:
  // Not owned; all must outlive the calls.
  TrafficCalls(SocketOps& ops, Engine& engine, SessionRegistry& sessions,
               PolicyGate& gate)
      : ops_(ops), engine_(engine), sessions_(sessions), gate_(gate) {}

  // See AgentCore::Traffic.
  void Traffic(const CallContext& ctx, const v1::TrafficRequest& request,
               Callback<v1::TrafficResponse> done);
  // Replaces the socket's fault profile; every send path picks it up at
  // its next step. INVALID_ARGUMENT naming the field for a bad value or a
  // fault the socket cannot obey (faults.h CheckFaultsApply).
  absl::StatusOr<v1::SetFaultsResponse> SetFaults(
      const CallContext& ctx, const v1::SetFaultsRequest& request);

 private:
  // Traffic's relay kind (relay.h).
  void Relay(const CallContext& ctx, const v1::TrafficRequest& request,
             ResolvedSocket call, Callback<v1::TrafficResponse> done);

  SocketOps& ops_;
  Engine& engine_;
  SessionRegistry& sessions_;
  PolicyGate& gate_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_CORE_TRAFFIC_CALLS_H_
