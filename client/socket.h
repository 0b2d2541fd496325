#ifndef SOCKAGENT_CLIENT_SOCKET_H_
#define SOCKAGENT_CLIENT_SOCKET_H_

// sockagent::Socket: a socket living on a remote agent, used like Python's
// socket object. Every method is one RPC on the agent's real kernel socket;
// failures are absl::Status values whose errno (if the kernel produced the
// error) is sockagent::GetErrno(status) from "proto/errno_status.h".
//
// Ownership: a Socket is move-only and owns its remote handle: the destructor
// closes it (best effort, bounded by a short deadline) unless it was released
// (Release()) or attached without ownership (Agent::AttachSocket). A Socket
// shares its Agent's connection, so it stays valid after the Agent object is
// gone (the agent still closes it when the session ends).
//
// Threading: distinct Sockets are independent. One Socket may be used from
// several threads at once (e.g. Recv in one thread, Send in another) as long
// as none of them moves, closes or destroys it concurrently.
//
// Deadlines: calls that wait for the socket (Accept, Connect, Send, Recv,
// RecvFrom, SendTo and the streams) take an optional `deadline`; by default
// they have none and only the socket's own timeout (SetTimeout) bounds them,
// or a per-Socket default set with set_wait_timeout(). All other calls use the
// Agent's call_timeout.

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sockagent/v1/sockagent.pb.h"

namespace grpc {
class ClientContext;
template <class R>
class ClientReaderInterface;
template <class W>
class ClientWriterInterface;
}  // namespace grpc

namespace sockagent {

namespace internal {
class Connection;

// A server-streaming call as the stream readers use it: started at
// construction (unless `error` says it may not run), read until its end, and
// if finished before the end, cancelled and drained. Read() and Finish() from
// one thread; Cancel() from any. Defined for the two stream responses only.
template <typename Response>
class ServerStream {
 public:
  using Start =
      absl::FunctionRef<std::unique_ptr<grpc::ClientReaderInterface<Response>>(
          const Connection&, grpc::ClientContext*)>;
  ServerStream(std::shared_ptr<const Connection> connection,
               absl::Time deadline, absl::Status error, Start start);
  // Finishes (cancelling) a stream that was not finished.
  ~ServerStream();
  ServerStream(const ServerStream&) = delete;
  ServerStream& operator=(const ServerStream&) = delete;

  // The next message into `*response`; false at the end of the stream.
  bool Read(Response* response);
  // The call's final status, computed once.
  absl::Status Finish();
  void Cancel();

 private:
  std::shared_ptr<const Connection> connection_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderInterface<Response>> reader_;
  absl::Status error_;
  bool ended_ = false;  // Read() saw the end of the stream.
  bool done_ = false;   // Finish() ran (or the stream never started).
};
}  // namespace internal

struct AcceptResult;
struct Datagram;
class RecvStreamReader;
class RecvFromStreamReader;
class SendStreamWriter;

class Socket {
 public:
  // An empty Socket: valid() is false and every call fails with
  // FAILED_PRECONDITION.
  Socket() = default;
  Socket(std::shared_ptr<const internal::Connection> connection,
         std::string handle, bool owned);
  Socket(Socket&& other) noexcept;
  // Closes the socket this one owned (best effort), then takes `other`'s.
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  // Closes the socket if owned and not yet closed; errors are ignored.
  ~Socket();

  bool valid() const { return connection_ != nullptr && !handle_.empty(); }
  const std::string& handle() const { return handle_; }
  // Gives up ownership: the destructor will not close the socket. Returns the
  // handle, which stays usable through Agent::AttachSocket.
  std::string Release();

  // Default bound for the waiting calls when no explicit deadline is given
  // (infinite by default). Not thread-safe against concurrent calls.
  void set_wait_timeout(absl::Duration timeout) { wait_timeout_ = timeout; }
  absl::Duration wait_timeout() const { return wait_timeout_; }

  // bind(2). Returns the bound address (port 0 replaced by the chosen port).
  absl::StatusOr<v1::Address> Bind(const v1::Address& address);
  // listen(2).
  absl::Status Listen(int backlog = 128);
  // accept(2): the new connection is owned by the returned Socket.
  absl::StatusOr<AcceptResult> Accept(
      absl::Time deadline = absl::InfiniteFuture());
  // connect(2), waiting for completion. Returns the local address.
  absl::StatusOr<v1::Address> Connect(
      const v1::Address& address, absl::Time deadline = absl::InfiniteFuture());

  // send(2) once: may send less than `data` (returns the count).
  absl::StatusOr<size_t> Send(absl::string_view data, int flags = 0,
                              absl::Time deadline = absl::InfiniteFuture());
  // Like Python's sendall: OK only when every byte was sent.
  absl::Status SendAll(absl::string_view data, int flags = 0,
                       absl::Time deadline = absl::InfiniteFuture());
  // recv(2) of at most `max_bytes` (bounded by the agent's max_recv_bytes).
  // An empty result means orderly EOF on a stream socket.
  absl::StatusOr<std::string> Recv(
      size_t max_bytes, int flags = 0,
      absl::Time deadline = absl::InfiniteFuture());
  // Streams received data to `on_data` until EOF or `limit_bytes` (0: no
  // limit) -> OK; `on_data` returning false stops early -> OK; an error, the
  // deadline or the handle being closed (ABORTED) -> that status.
  absl::Status RecvStream(absl::FunctionRef<bool(absl::string_view)> on_data,
                          uint64_t limit_bytes = 0, uint32_t chunk_bytes = 0,
                          absl::Time deadline = absl::InfiniteFuture());
  // The pull form of RecvStream. Never null.
  std::unique_ptr<RecvStreamReader> OpenRecvStream(
      uint64_t limit_bytes = 0, uint32_t chunk_bytes = 0,
      absl::Time deadline = absl::InfiniteFuture());
  // A writer sending each Write() completely and in order. Never null.
  std::unique_ptr<SendStreamWriter> OpenSendStream(
      absl::Time deadline = absl::InfiniteFuture());

  // sendto(2) of one datagram. Returns the bytes sent.
  absl::StatusOr<size_t> SendTo(absl::string_view data,
                                const v1::Address& address, int flags = 0,
                                absl::Time deadline = absl::InfiniteFuture());
  // recvfrom(2): one datagram (truncated to max_bytes) and its source.
  absl::StatusOr<Datagram> RecvFrom(
      size_t max_bytes, int flags = 0,
      absl::Time deadline = absl::InfiniteFuture());
  // One datagram per Next(), until `limit_datagrams` (0: unlimited).
  std::unique_ptr<RecvFromStreamReader> OpenRecvFromStream(
      uint32_t max_bytes = 0, uint64_t limit_datagrams = 0,
      absl::Time deadline = absl::InfiniteFuture());

  // Agent-side traffic: bytes flow between this socket and its peer inside
  // the agent, never over the control channel. Each call waits until the
  // traffic ends and returns what it did (bytes, datagrams, elapsed,
  // throughput, XXH3-64 checksum, why it ended). `request.handle` is
  // filled in. Errors: INVALID_ARGUMENT naming the field; ABORTED when the
  // socket is closed meanwhile; CANCELLED / DEADLINE_EXCEEDED; the errno of
  // a failing system call (e.g. ECONNRESET).
  absl::StatusOr<v1::TrafficResponse> Traffic(
      const v1::TrafficRequest& request,
      absl::Time deadline = absl::InfiniteFuture());
  // Sends back whatever arrives until EOF, `max_bytes` received (0: no
  // limit) or `duration` (nullopt: no limit).
  absl::StatusOr<v1::TrafficResponse> Echo(
      uint64_t max_bytes = 0,
      std::optional<absl::Duration> duration = std::nullopt,
      absl::Time deadline = absl::InfiniteFuture());
  // Reads and discards, counting and checksumming, until EOF, `max_bytes`
  // or `duration`.
  absl::StatusOr<v1::TrafficResponse> Sink(
      uint64_t max_bytes = 0,
      std::optional<absl::Duration> duration = std::nullopt,
      absl::Time deadline = absl::InfiniteFuture());
  // Sends `source.bytes` generated bytes, or for `duration` when bytes is 0.
  absl::StatusOr<v1::TrafficResponse> Source(
      const v1::SourceTraffic& source,
      std::optional<absl::Duration> duration = std::nullopt,
      absl::Time deadline = absl::InfiniteFuture());
  // Relays between this connected stream socket and `peer` (another of the
  // session) inside the agent until both directions end (EOF passed on in
  // order; an RST passed on as RST unless `reset_as_fin`); each socket's
  // faults shape what the agent sends on it. The figures per direction are
  // in the response's `relay`. ABORTED when either socket is closed.
  absl::StatusOr<v1::TrafficResponse> Relay(
      const std::string& peer_handle, bool reset_as_fin = false,
      std::optional<absl::Duration> duration = std::nullopt,
      absl::Time deadline = absl::InfiniteFuture());
  // Relays every client's datagrams arriving on this bound datagram socket
  // to `upstream`, one upstream socket per client (closed after
  // `idle_timeout` unused), and the replies back. The faults of
  // `shaper_handle` (a datagram socket of the session; "" for none) shape
  // what goes upstream; this socket's faults what goes to clients.
  absl::StatusOr<v1::TrafficResponse> RelayDatagrams(
      const v1::Address& upstream, const std::string& shaper_handle = "",
      std::optional<absl::Duration> idle_timeout = std::nullopt,
      std::optional<absl::Duration> duration = std::nullopt,
      absl::Time deadline = absl::InfiniteFuture());
  // Abortive close (SO_LINGER 0): a TCP peer sees RST. Afterwards valid() is
  // false, as after Close().
  absl::Status Abort();
  // Replaces the socket's fault profile (an empty Faults clears it); it
  // shapes every send path of this socket (Send, SendTo, SendStream,
  // Traffic, Relay), also calls already running. INVALID_ARGUMENT naming a
  // fault the socket cannot obey.
  absl::Status SetFaults(const v1::Faults& faults);

  absl::Status Shutdown(v1::ShutdownHow how);
  // Closes the remote socket. Afterwards valid() is false; closing an empty
  // or already closed Socket is OK. Closes even a non-owned socket.
  absl::Status Close();

  absl::StatusOr<v1::Address> GetSockName();
  absl::StatusOr<v1::Address> GetPeerName();

  // Typed socket options (the agent knows their level and type).
  absl::Status SetSockOpt(v1::SocketOption option, bool value);
  absl::Status SetSockOpt(v1::SocketOption option, int value);
  absl::Status SetSockOpt(v1::SocketOption option, const v1::Linger& value);
  absl::Status SetSockOpt(v1::SocketOption option, const v1::Membership& value);
  absl::Status SetSockOpt(v1::SocketOption option,
                          const v1::OptionValue& value);
  absl::StatusOr<v1::OptionValue> GetSockOpt(v1::SocketOption option);
  // The raw form: setsockopt(level, name, bytes) / getsockopt(level, name,
  // length).
  absl::Status SetSockOptRaw(int level, int name, absl::string_view value);
  absl::StatusOr<std::string> GetSockOptRaw(int level, int name,
                                            uint32_t length = 4);

  // Python's settimeout: nullopt = blocking, zero = non-blocking (EAGAIN),
  // positive = waits end with DEADLINE_EXCEEDED after that long.
  absl::Status SetTimeout(std::optional<absl::Duration> timeout);
  absl::StatusOr<std::optional<absl::Duration>> GetTimeout();

 private:
  absl::Status CheckValid() const;
  absl::Time WaitDeadline(absl::Time deadline) const;

  std::shared_ptr<const internal::Connection> connection_;
  std::string handle_;
  bool owned_ = false;
  absl::Duration wait_timeout_ = absl::InfiniteDuration();
};

struct AcceptResult {
  Socket socket;
  v1::Address peer;
};

struct Datagram {
  std::string data;
  v1::Address address;
};

// Pull form of Socket::RecvStream. Next() and Finish() are called from one
// thread; Cancel() may be called from any thread at any time.
class RecvStreamReader {
 public:
  // Stores the next chunk in `*data` and returns true, or returns false at
  // the end of the stream (then call Finish()).
  bool Next(std::string* data);
  // The final status: OK at EOF or the byte limit, CANCELLED after Cancel().
  // Cancels the stream first if it has not ended.
  absl::Status Finish();
  // Stops the stream; a blocked Next() returns false. The socket stays usable.
  void Cancel();

 private:
  friend class Socket;
  RecvStreamReader(std::shared_ptr<const internal::Connection> connection,
                   const v1::RecvStreamRequest& request, absl::Time deadline,
                   absl::Status error);

  internal::ServerStream<v1::RecvStreamResponse> stream_;
  // Parsed into again and again: its data buffer and the caller's trade
  // places on every Next(), so a steady stream allocates nothing per chunk.
  v1::RecvStreamResponse response_;
};

// Pull form of datagram reception. Same threading as RecvStreamReader.
class RecvFromStreamReader {
 public:
  bool Next(Datagram* datagram);
  absl::Status Finish();
  void Cancel();

 private:
  friend class Socket;
  RecvFromStreamReader(std::shared_ptr<const internal::Connection> connection,
                       const v1::RecvFromStreamRequest& request,
                       absl::Time deadline, absl::Status error);

  internal::ServerStream<v1::RecvFromStreamResponse> stream_;
};

// Bulk sending on one stream call. Not thread-safe except Cancel().
class SendStreamWriter {
 public:
  ~SendStreamWriter();
  // Queues `data` to be sent completely and in order. An error means the
  // stream has ended; Finish() gives the reason.
  absl::Status Write(absl::string_view data);
  // Half-closes the stream and returns the total bytes sent, or the error
  // that ended the stream.
  absl::StatusOr<uint64_t> Finish();
  void Cancel();

 private:
  friend class Socket;
  SendStreamWriter(std::shared_ptr<const internal::Connection> connection,
                   std::string handle, absl::Time deadline, absl::Status error);

  std::shared_ptr<const internal::Connection> connection_;
  std::string handle_;
  std::unique_ptr<grpc::ClientContext> context_;
  v1::SendStreamResponse response_;
  std::unique_ptr<grpc::ClientWriterInterface<v1::SendStreamRequest>> writer_;
  v1::SendStreamRequest request_;  // reused: its buffer keeps its capacity
  absl::Status error_;
  bool first_ = true;
  bool finished_ = false;
};

}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_SOCKET_H_
