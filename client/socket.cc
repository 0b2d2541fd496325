#include "client/socket.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include "absl/strings/str_cat.h"
#include "client/internal/connection.h"
#include "proto/duration_codec.h"

namespace sockagent {
namespace {

using internal::CallKind;
using Stub = v1::SocketAgent::StubInterface;

// How long a destructor waits for its best-effort Close.
constexpr absl::Duration kDestructorCloseTimeout = absl::Seconds(2);

}  // namespace

Socket::Socket(std::shared_ptr<const internal::Connection> connection,
               std::string handle, bool owned)
    : connection_(std::move(connection)),
      handle_(std::move(handle)),
      owned_(owned) {}

Socket::Socket(Socket&& other) noexcept
    : connection_(std::move(other.connection_)),
      handle_(std::move(other.handle_)),
      owned_(std::exchange(other.owned_, false)),
      wait_timeout_(other.wait_timeout_) {
  other.handle_.clear();
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (owned_ && valid()) Close().IgnoreError();
    connection_ = std::move(other.connection_);
    handle_ = std::exchange(other.handle_, std::string());
    owned_ = std::exchange(other.owned_, false);
    wait_timeout_ = other.wait_timeout_;
  }
  return *this;
}

Socket::~Socket() {
  if (!owned_ || !valid()) return;
  v1::CloseRequest request;
  request.set_handle(handle_);
  v1::CloseResponse response;
  connection_
      ->Call(&Stub::Close, request, &response, CallKind::kImmediate,
             absl::Now() + kDestructorCloseTimeout)
      .IgnoreError();
}

std::string Socket::Release() {
  owned_ = false;
  return handle_;
}

absl::Status Socket::CheckValid() const {
  if (valid()) return absl::OkStatus();
  return absl::FailedPreconditionError("socket is closed or empty");
}

absl::Time Socket::WaitDeadline(absl::Time deadline) const {
  if (wait_timeout_ == absl::InfiniteDuration()) return deadline;
  return std::min(deadline, absl::Now() + wait_timeout_);
}

absl::StatusOr<v1::Address> Socket::Bind(const v1::Address& address) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::BindRequest request;
  request.set_handle(handle_);
  *request.mutable_address() = address;
  v1::BindResponse response;
  absl::Status status = connection_->Call(&Stub::Bind, request, &response);
  if (!status.ok()) return status;
  return std::move(*response.mutable_address());
}

absl::Status Socket::Listen(int backlog) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::ListenRequest request;
  request.set_handle(handle_);
  request.set_backlog(backlog);
  v1::ListenResponse response;
  return connection_->Call(&Stub::Listen, request, &response);
}

absl::StatusOr<AcceptResult> Socket::Accept(absl::Time deadline) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::AcceptRequest request;
  request.set_handle(handle_);
  v1::AcceptResponse response;
  absl::Status status =
      connection_->Call(&Stub::Accept, request, &response, CallKind::kWaiting,
                        WaitDeadline(deadline));
  if (!status.ok()) return status;
  AcceptResult result{Socket(connection_, response.handle(), /*owned=*/true),
                      std::move(*response.mutable_peer())};
  return result;
}

absl::StatusOr<v1::Address> Socket::Connect(const v1::Address& address,
                                            absl::Time deadline) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::ConnectRequest request;
  request.set_handle(handle_);
  *request.mutable_address() = address;
  v1::ConnectResponse response;
  absl::Status status =
      connection_->Call(&Stub::Connect, request, &response, CallKind::kWaiting,
                        WaitDeadline(deadline));
  if (!status.ok()) return status;
  return std::move(*response.mutable_local());
}

absl::StatusOr<size_t> Socket::Send(absl::string_view data, int flags,
                                    absl::Time deadline) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::SendRequest request;
  request.set_handle(handle_);
  request.set_data(std::string(data));
  request.set_flags(flags);
  v1::SendResponse response;
  absl::Status status =
      connection_->Call(&Stub::Send, request, &response, CallKind::kWaiting,
                        WaitDeadline(deadline));
  if (!status.ok()) return status;
  return static_cast<size_t>(response.bytes_sent());
}

absl::Status Socket::SendAll(absl::string_view data, int flags,
                             absl::Time deadline) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::SendRequest request;
  request.set_handle(handle_);
  request.set_data(std::string(data));
  request.set_flags(flags);
  request.set_send_all(true);
  v1::SendResponse response;
  absl::Status status =
      connection_->Call(&Stub::Send, request, &response, CallKind::kWaiting,
                        WaitDeadline(deadline));
  if (!status.ok()) return status;
  if (response.bytes_sent() != data.size()) {
    return absl::InternalError(absl::StrCat("sendall: agent sent ",
                                            response.bytes_sent(), " of ",
                                            data.size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Socket::Recv(size_t max_bytes, int flags,
                                         absl::Time deadline) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::RecvRequest request;
  request.set_handle(handle_);
  request.set_max_bytes(static_cast<uint32_t>(
      std::min<size_t>(max_bytes, std::numeric_limits<uint32_t>::max())));
  request.set_flags(flags);
  v1::RecvResponse response;
  absl::Status status =
      connection_->Call(&Stub::Recv, request, &response, CallKind::kWaiting,
                        WaitDeadline(deadline));
  if (!status.ok()) return status;
  return std::move(*response.mutable_data());
}

absl::Status Socket::RecvStream(
    absl::FunctionRef<bool(absl::string_view)> on_data, uint64_t limit_bytes,
    uint32_t chunk_bytes, absl::Time deadline) {
  std::unique_ptr<RecvStreamReader> reader =
      OpenRecvStream(limit_bytes, chunk_bytes, deadline);
  std::string chunk;
  while (reader->Next(&chunk)) {
    if (!on_data(chunk)) {
      reader->Cancel();
      reader->Finish().IgnoreError();
      return absl::OkStatus();
    }
  }
  return reader->Finish();
}

std::unique_ptr<RecvStreamReader> Socket::OpenRecvStream(uint64_t limit_bytes,
                                                         uint32_t chunk_bytes,
                                                         absl::Time deadline) {
  v1::RecvStreamRequest request;
  request.set_handle(handle_);
  request.set_limit_bytes(limit_bytes);
  request.set_chunk_bytes(chunk_bytes);
  return std::unique_ptr<RecvStreamReader>(new RecvStreamReader(
      connection_, request, WaitDeadline(deadline), CheckValid()));
}

std::unique_ptr<SendStreamWriter> Socket::OpenSendStream(absl::Time deadline) {
  return std::unique_ptr<SendStreamWriter>(new SendStreamWriter(
      connection_, handle_, WaitDeadline(deadline), CheckValid()));
}

absl::StatusOr<size_t> Socket::SendTo(absl::string_view data,
                                      const v1::Address& address, int flags,
                                      absl::Time deadline) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::SendToRequest request;
  request.set_handle(handle_);
  request.set_data(std::string(data));
  *request.mutable_address() = address;
  request.set_flags(flags);
  v1::SendToResponse response;
  absl::Status status =
      connection_->Call(&Stub::SendTo, request, &response, CallKind::kWaiting,
                        WaitDeadline(deadline));
  if (!status.ok()) return status;
  return static_cast<size_t>(response.bytes_sent());
}

absl::StatusOr<Datagram> Socket::RecvFrom(size_t max_bytes, int flags,
                                          absl::Time deadline) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::RecvFromRequest request;
  request.set_handle(handle_);
  request.set_max_bytes(static_cast<uint32_t>(
      std::min<size_t>(max_bytes, std::numeric_limits<uint32_t>::max())));
  request.set_flags(flags);
  v1::RecvFromResponse response;
  absl::Status status =
      connection_->Call(&Stub::RecvFrom, request, &response, CallKind::kWaiting,
                        WaitDeadline(deadline));
  if (!status.ok()) return status;
  return Datagram{std::move(*response.mutable_data()),
                  std::move(*response.mutable_address())};
}

std::unique_ptr<RecvFromStreamReader> Socket::OpenRecvFromStream(
    uint32_t max_bytes, uint64_t limit_datagrams, absl::Time deadline) {
  v1::RecvFromStreamRequest request;
  request.set_handle(handle_);
  request.set_max_bytes(max_bytes);
  request.set_limit_datagrams(limit_datagrams);
  return std::unique_ptr<RecvFromStreamReader>(new RecvFromStreamReader(
      connection_, request, WaitDeadline(deadline), CheckValid()));
}

absl::StatusOr<v1::TrafficResponse> Socket::Traffic(
    const v1::TrafficRequest& request, absl::Time deadline) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::TrafficRequest call = request;
  call.set_handle(handle_);
  v1::TrafficResponse response;
  absl::Status status =
      connection_->Call(&Stub::Traffic, call, &response, CallKind::kWaiting,
                        WaitDeadline(deadline));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::TrafficResponse> Socket::Echo(
    uint64_t max_bytes, std::optional<absl::Duration> duration,
    absl::Time deadline) {
  v1::TrafficRequest request;
  request.mutable_echo()->set_max_bytes(max_bytes);
  if (duration.has_value())
    SetProtoDuration(*duration, request.mutable_duration());
  return Traffic(request, deadline);
}

absl::StatusOr<v1::TrafficResponse> Socket::Sink(
    uint64_t max_bytes, std::optional<absl::Duration> duration,
    absl::Time deadline) {
  v1::TrafficRequest request;
  request.mutable_sink()->set_max_bytes(max_bytes);
  if (duration.has_value())
    SetProtoDuration(*duration, request.mutable_duration());
  return Traffic(request, deadline);
}

absl::StatusOr<v1::TrafficResponse> Socket::Relay(
    const std::string& peer_handle, bool reset_as_fin,
    std::optional<absl::Duration> duration, absl::Time deadline) {
  v1::TrafficRequest request;
  request.mutable_relay()->set_peer(peer_handle);
  request.mutable_relay()->set_reset_as_fin(reset_as_fin);
  if (duration.has_value())
    SetProtoDuration(*duration, request.mutable_duration());
  return Traffic(request, deadline);
}

absl::StatusOr<v1::TrafficResponse> Socket::RelayDatagrams(
    const v1::Address& upstream, const std::string& shaper_handle,
    std::optional<absl::Duration> idle_timeout,
    std::optional<absl::Duration> duration, absl::Time deadline) {
  v1::TrafficRequest request;
  *request.mutable_relay()->mutable_upstream() = upstream;
  request.mutable_relay()->set_peer(shaper_handle);
  if (idle_timeout.has_value()) {
    SetProtoDuration(*idle_timeout,
                     request.mutable_relay()->mutable_idle_timeout());
  }
  if (duration.has_value())
    SetProtoDuration(*duration, request.mutable_duration());
  return Traffic(request, deadline);
}

absl::StatusOr<v1::TrafficResponse> Socket::Source(
    const v1::SourceTraffic& source, std::optional<absl::Duration> duration,
    absl::Time deadline) {
  v1::TrafficRequest request;
  *request.mutable_source() = source;
  if (duration.has_value())
    SetProtoDuration(*duration, request.mutable_duration());
  return Traffic(request, deadline);
}

absl::Status Socket::Abort() {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::AbortRequest request;
  request.set_handle(handle_);
  v1::AbortResponse response;
  absl::Status status = connection_->Call(&Stub::Abort, request, &response);
  handle_.clear();
  owned_ = false;
  return status;
}

absl::Status Socket::SetFaults(const v1::Faults& faults) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::SetFaultsRequest request;
  request.set_handle(handle_);
  *request.mutable_faults() = faults;
  v1::SetFaultsResponse response;
  return connection_->Call(&Stub::SetFaults, request, &response);
}

absl::Status Socket::Shutdown(v1::ShutdownHow how) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::ShutdownRequest request;
  request.set_handle(handle_);
  request.set_how(how);
  v1::ShutdownResponse response;
  return connection_->Call(&Stub::Shutdown, request, &response);
}

absl::Status Socket::Close() {
  if (!valid()) return absl::OkStatus();
  v1::CloseRequest request;
  request.set_handle(handle_);
  v1::CloseResponse response;
  absl::Status status = connection_->Call(&Stub::Close, request, &response);
  handle_.clear();
  owned_ = false;
  return status;
}

absl::StatusOr<v1::Address> Socket::GetSockName() {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::GetSockNameRequest request;
  request.set_handle(handle_);
  v1::GetSockNameResponse response;
  absl::Status status =
      connection_->Call(&Stub::GetSockName, request, &response);
  if (!status.ok()) return status;
  return std::move(*response.mutable_address());
}

absl::StatusOr<v1::Address> Socket::GetPeerName() {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::GetPeerNameRequest request;
  request.set_handle(handle_);
  v1::GetPeerNameResponse response;
  absl::Status status =
      connection_->Call(&Stub::GetPeerName, request, &response);
  if (!status.ok()) return status;
  return std::move(*response.mutable_address());
}

absl::Status Socket::SetSockOpt(v1::SocketOption option, bool value) {
  v1::OptionValue v;
  v.set_bool_value(value);
  return SetSockOpt(option, v);
}

absl::Status Socket::SetSockOpt(v1::SocketOption option, int value) {
  v1::OptionValue v;
  v.set_int_value(value);
  return SetSockOpt(option, v);
}

absl::Status Socket::SetSockOpt(v1::SocketOption option,
                                const v1::Linger& value) {
  v1::OptionValue v;
  *v.mutable_linger() = value;
  return SetSockOpt(option, v);
}

absl::Status Socket::SetSockOpt(v1::SocketOption option,
                                const v1::Membership& value) {
  v1::OptionValue v;
  *v.mutable_membership() = value;
  return SetSockOpt(option, v);
}

absl::Status Socket::SetSockOpt(v1::SocketOption option,
                                const v1::OptionValue& value) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::SetSockOptRequest request;
  request.set_handle(handle_);
  request.set_option(option);
  *request.mutable_value() = value;
  v1::SetSockOptResponse response;
  return connection_->Call(&Stub::SetSockOpt, request, &response);
}

absl::StatusOr<v1::OptionValue> Socket::GetSockOpt(v1::SocketOption option) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::GetSockOptRequest request;
  request.set_handle(handle_);
  request.set_option(option);
  v1::GetSockOptResponse response;
  absl::Status status =
      connection_->Call(&Stub::GetSockOpt, request, &response);
  if (!status.ok()) return status;
  return std::move(*response.mutable_value());
}

absl::Status Socket::SetSockOptRaw(int level, int name,
                                   absl::string_view value) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::SetSockOptRequest request;
  request.set_handle(handle_);
  request.mutable_raw_option()->set_level(level);
  request.mutable_raw_option()->set_name(name);
  request.mutable_value()->set_raw(std::string(value));
  v1::SetSockOptResponse response;
  return connection_->Call(&Stub::SetSockOpt, request, &response);
}

absl::StatusOr<std::string> Socket::GetSockOptRaw(int level, int name,
                                                  uint32_t length) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::GetSockOptRequest request;
  request.set_handle(handle_);
  request.mutable_raw_option()->set_level(level);
  request.mutable_raw_option()->set_name(name);
  request.set_raw_length(length);
  v1::GetSockOptResponse response;
  absl::Status status =
      connection_->Call(&Stub::GetSockOpt, request, &response);
  if (!status.ok()) return status;
  return std::move(*response.mutable_value()->mutable_raw());
}

absl::Status Socket::SetTimeout(std::optional<absl::Duration> timeout) {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  if (timeout.has_value() && *timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must not be negative");
  }
  v1::SetTimeoutRequest request;
  request.set_handle(handle_);
  if (timeout.has_value()) {
    *request.mutable_timeout() = ToProtoDuration(*timeout);
  }
  v1::SetTimeoutResponse response;
  return connection_->Call(&Stub::SetTimeout, request, &response);
}

absl::StatusOr<std::optional<absl::Duration>> Socket::GetTimeout() {
  if (absl::Status s = CheckValid(); !s.ok()) return s;
  v1::GetTimeoutRequest request;
  request.set_handle(handle_);
  v1::GetTimeoutResponse response;
  absl::Status status =
      connection_->Call(&Stub::GetTimeout, request, &response);
  if (!status.ok()) return status;
  if (!response.has_timeout()) return std::optional<absl::Duration>();
  return std::optional<absl::Duration>(FromProtoDuration(response.timeout()));
}

// ServerStream --------------------------------------------------------------

namespace internal {

template <typename Response>
ServerStream<Response>::ServerStream(
    std::shared_ptr<const Connection> connection, absl::Time deadline,
    absl::Status error, Start start)
    : connection_(std::move(connection)), error_(std::move(error)) {
  if (!error_.ok()) {
    done_ = true;
    return;
  }
  context_ = connection_->MakeContext(CallKind::kWaiting, deadline);
  reader_ = start(*connection_, context_.get());
}

template <typename Response>
ServerStream<Response>::~ServerStream() {
  if (!done_) Finish().IgnoreError();
}

template <typename Response>
bool ServerStream<Response>::Read(Response* response) {
  if (done_) return false;
  if (!reader_->Read(response)) {
    ended_ = true;
    return false;
  }
  return true;
}

template <typename Response>
absl::Status ServerStream<Response>::Finish() {
  if (done_) return error_;
  done_ = true;
  if (!ended_) {
    // Stopped early: cancel, then drain what is already in flight.
    context_->TryCancel();
    Response ignored;
    while (reader_->Read(&ignored)) {
    }
  }
  error_ = Connection::Convert(reader_->Finish());
  return error_;
}

template <typename Response>
void ServerStream<Response>::Cancel() {
  if (context_ != nullptr) context_->TryCancel();
}

template class ServerStream<v1::RecvStreamResponse>;
template class ServerStream<v1::RecvFromStreamResponse>;

}  // namespace internal

// RecvStreamReader ----------------------------------------------------------

RecvStreamReader::RecvStreamReader(
    std::shared_ptr<const internal::Connection> connection,
    const v1::RecvStreamRequest& request, absl::Time deadline,
    absl::Status error)
    : stream_(std::move(connection), deadline, std::move(error),
              [&](const internal::Connection& c, grpc::ClientContext* context) {
                return c.stub().RecvStream(context, request);
              }) {}

bool RecvStreamReader::Next(std::string* data) {
  if (!stream_.Read(&response_)) return false;
  data->swap(*response_.mutable_data());
  return true;
}

absl::Status RecvStreamReader::Finish() { return stream_.Finish(); }

void RecvStreamReader::Cancel() { stream_.Cancel(); }

// RecvFromStreamReader ------------------------------------------------------

RecvFromStreamReader::RecvFromStreamReader(
    std::shared_ptr<const internal::Connection> connection,
    const v1::RecvFromStreamRequest& request, absl::Time deadline,
    absl::Status error)
    : stream_(std::move(connection), deadline, std::move(error),
              [&](const internal::Connection& c, grpc::ClientContext* context) {
                return c.stub().RecvFromStream(context, request);
              }) {}

bool RecvFromStreamReader::Next(Datagram* datagram) {
  v1::RecvFromStreamResponse response;
  if (!stream_.Read(&response)) return false;
  datagram->data = std::move(*response.mutable_data());
  datagram->address = std::move(*response.mutable_address());
  return true;
}

absl::Status RecvFromStreamReader::Finish() { return stream_.Finish(); }

void RecvFromStreamReader::Cancel() { stream_.Cancel(); }

// SendStreamWriter ----------------------------------------------------------

SendStreamWriter::SendStreamWriter(
    std::shared_ptr<const internal::Connection> connection, std::string handle,
    absl::Time deadline, absl::Status error)
    : connection_(std::move(connection)),
      handle_(std::move(handle)),
      error_(std::move(error)) {
  if (!error_.ok()) {
    finished_ = true;
    return;
  }
  context_ = connection_->MakeContext(CallKind::kWaiting, deadline);
  writer_ = connection_->stub().SendStream(context_.get(), &response_);
}

SendStreamWriter::~SendStreamWriter() {
  if (!finished_) {
    context_->TryCancel();
    Finish().IgnoreError();
  }
}

absl::Status SendStreamWriter::Write(absl::string_view data) {
  if (finished_) {
    return error_.ok() ? absl::FailedPreconditionError("stream is finished")
                       : error_;
  }
  if (first_) {
    request_.set_handle(handle_);
  } else {
    request_.clear_handle();
  }
  request_.mutable_data()->assign(data.data(), data.size());
  first_ = false;
  if (!writer_->Write(request_)) {
    return absl::UnavailableError(
        "send stream ended early; Finish() gives the reason");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SendStreamWriter::Finish() {
  if (finished_) {
    if (!error_.ok()) return error_;
    return response_.bytes_sent();
  }
  if (first_) {
    v1::SendStreamRequest request;
    request.set_handle(handle_);
    first_ = false;
    writer_->Write(request);
  }
  finished_ = true;
  writer_->WritesDone();
  error_ = internal::Connection::Convert(writer_->Finish());
  if (!error_.ok()) return error_;
  return response_.bytes_sent();
}

void SendStreamWriter::Cancel() {
  if (context_ != nullptr) context_->TryCancel();
}

}  // namespace sockagent
