// echo_floor_server: the gRPC floor of the benchmarks. A bare callback-API
// service (bench.v1.Echo) with the same server arguments as sockagentd, so
// that the agent's figures can be read as "the agent's cost above gRPC".
//
//   echo_floor_server PORT_FILE   listens on 127.0.0.1:0, writes the port to
//                                 PORT_FILE, serves until SIGTERM/SIGINT.
#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <grpc/grpc.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include "absl/synchronization/mutex.h"
#include "echo.grpc.pb.h"

namespace {

class DownloadReactor final
    : public grpc::ServerWriteReactor<bench::v1::Chunk> {
 public:
  explicit DownloadReactor(const bench::v1::DownloadRequest& request)
      : total_(request.total_bytes()) {
    const uint32_t chunk =
        request.chunk_bytes() == 0 ? 64 * 1024 : request.chunk_bytes();
    chunk_.mutable_data()->assign(chunk, 'x');
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (total_ != 0 && sent_ >= total_) {
      Finish(grpc::Status::OK);
      return;
    }
    sent_ += chunk_.data().size();
    StartWrite(&chunk_);
  }
  const uint64_t total_;
  uint64_t sent_ = 0;
  bench::v1::Chunk chunk_;
};

class UploadReactor final : public grpc::ServerReadReactor<bench::v1::Chunk> {
 public:
  explicit UploadReactor(bench::v1::UploadResponse* response)
      : response_(response) {
    StartRead(&chunk_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      response_->set_bytes(bytes_);
      Finish(grpc::Status::OK);
      return;
    }
    bytes_ += chunk_.data().size();
    StartRead(&chunk_);
  }
  void OnDone() override { delete this; }

 private:
  bench::v1::UploadResponse* const response_;
  uint64_t bytes_ = 0;
  bench::v1::Chunk chunk_;
};

class EchoService final : public bench::v1::Echo::CallbackService {
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx,
                                 const bench::v1::PingRequest* request,
                                 bench::v1::PingResponse* response) override {
    response->set_payload(request->payload());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerWriteReactor<bench::v1::Chunk>* Download(
      grpc::CallbackServerContext* /*ctx*/,
      const bench::v1::DownloadRequest* request) override {
    return new DownloadReactor(*request);
  }
  grpc::ServerReadReactor<bench::v1::Chunk>* Upload(
      grpc::CallbackServerContext* /*ctx*/,
      bench::v1::UploadResponse* response) override {
    return new UploadReactor(response);
  }
};

}  // namespace

int main(int argc, char** argv) {
  // As sockagentd does in release builds: no lock-graph upkeep on every
  // Mutex operation (gRPC's own mutexes are absl::Mutex too).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // And sockagentd's malloc settings (server/main.cc): measured alone, they
  // make this floor's client streaming 1.5-2x faster, so the floor keeps them
  // too and the ratios stay the agent's own cost above gRPC.
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  if (argc != 2) {
    std::fprintf(stderr, "usage: echo_floor_server PORT_FILE\n");
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  EchoService service;
  grpc::ServerBuilder builder;
  // The same arguments as sockagentd (server/service/agent_server.cc).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10 * 1000);
  builder.SetMaxReceiveMessageSize(16 * 1024 * 1024 + 64 * 1024);
  builder.SetMaxSendMessageSize(4 * 1024 * 1024 + 64 * 1024);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "echo_floor_server: cannot listen\n");
    return 1;
  }
  {
    std::ofstream out(std::string(argv[1]) + ".tmp");
    out << port << "\n";
  }
  std::rename((std::string(argv[1]) + ".tmp").c_str(), argv[1]);
  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
