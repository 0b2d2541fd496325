#ifndef SOCKAGENT_CLIENT_INTERNAL_CONNECTION_H_
#define SOCKAGENT_CLIENT_INTERNAL_CONNECTION_H_

// The layer between the public client types (Agent, Socket) and the gRPC
// stub: one channel, one stub, one session id, and the rule for deadlines.
// Agent and every Socket share it through std::shared_ptr, so a Socket stays
// usable (and its destructor safe) after its Agent is gone. Immutable after
// construction; thread-safe.

#include <memory>
#include <optional>
#include <string>

#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sockagent/v1/sockagent.grpc.pb.h"

namespace sockagent {
namespace internal {

// The request metadata key naming the session.
inline constexpr char kSessionMetadataKey[] = "sockagent-session";
// The request metadata key giving a waiting call's own deadline, as a
// duration from when the agent receives it ("250ms", "2s"; absl's syntax).
inline constexpr char kWaitTimeoutMetadataKey[] = "sockagent-wait-timeout";
// How much longer than a waiting call's own deadline its RPC may take: the
// agent ends the call at that deadline and the answer (data taken, or
// DEADLINE_EXCEEDED) still arrives, so no data is taken unseen.
inline constexpr absl::Duration kWaitAnswerGrace = absl::Seconds(5);

// Whether a call may wait for the socket (Accept, Recv, ...). Waiting calls
// get no deadline unless the caller gives one; the others get the
// connection's default call timeout.
enum class CallKind { kImmediate, kWaiting };

class Connection {
 public:
  // `session_id` may be empty for a connection used only for the calls that
  // need no session. `call_timeout` bounds kImmediate calls.
  Connection(std::shared_ptr<grpc::ChannelInterface> channel,
             std::unique_ptr<v1::SocketAgent::StubInterface> stub,
             std::string session_id, absl::Duration call_timeout);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  v1::SocketAgent::StubInterface& stub() const { return *stub_; }
  const std::string& session_id() const { return session_id_; }

  // A context carrying the session metadata and the deadline for a call of
  // `kind`: the earlier of `deadline` and (for kImmediate) now + the default
  // call timeout. An infinite result sets no deadline. A kWaiting call with
  // a deadline tells the agent to end the wait then
  // (kWaitTimeoutMetadataKey) and gets kWaitAnswerGrace more for the answer.
  std::unique_ptr<grpc::ClientContext> MakeContext(
      CallKind kind, absl::Time deadline = absl::InfiniteFuture()) const;

  // Runs a unary `method` with a context from MakeContext() and converts the
  // result with FromGrpcStatus, the one conversion point.
  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (v1::SocketAgent::StubInterface::*method)(
                        grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response,
                    CallKind kind = CallKind::kImmediate,
                    absl::Time deadline = absl::InfiniteFuture()) const {
    std::unique_ptr<grpc::ClientContext> context = MakeContext(kind, deadline);
    return Convert((stub_.get()->*method)(context.get(), request, response));
  }

  // FromGrpcStatus, exposed for the streaming calls.
  static absl::Status Convert(const grpc::Status& status);

 private:
  std::shared_ptr<grpc::ChannelInterface> channel_;
  std::unique_ptr<v1::SocketAgent::StubInterface> stub_;
  std::string session_id_;
  absl::Duration call_timeout_;
};

// Sets the deadline of `context` unless `deadline` is infinite.
void SetDeadline(grpc::ClientContext* context, absl::Time deadline);

}  // namespace internal
}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_INTERNAL_CONNECTION_H_
