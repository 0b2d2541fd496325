// A worked example of the sockagent client library: one agent plays both
// ends of a TCP connection on its own loopback interface.
//
//   echo_example [AGENT]     (default: $SOCKAGENT_AGENT, else 127.0.0.1:7700)

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/address.h"
#include "client/agent.h"
#include "client/socket.h"

namespace {

absl::Status Run(const std::string& target) {
  sockagent::AgentOptions options;
  options.target = target;
  options.session_label = "echo_example";
  absl::StatusOr<std::unique_ptr<sockagent::Agent>> agent =
      sockagent::Agent::Connect(options);
  if (!agent.ok()) return agent.status();

  // A listening socket on the agent's loopback, on a port the kernel picks.
  absl::StatusOr<sockagent::Socket> server = (*agent)->CreateSocket(
      sockagent::v1::FAMILY_INET, sockagent::v1::SOCKET_TYPE_STREAM);
  if (!server.ok()) return server.status();
  absl::StatusOr<sockagent::v1::Address> bound =
      server->Bind(sockagent::InetAddress("127.0.0.1", 0));
  if (!bound.ok()) return bound.status();
  if (absl::Status s = server->Listen(); !s.ok()) return s;

  // A second agent socket connects to it; the agent accepts.
  absl::StatusOr<sockagent::Socket> client = (*agent)->CreateConnection(*bound);
  if (!client.ok()) return client.status();
  absl::StatusOr<sockagent::AcceptResult> accepted = server->Accept();
  if (!accepted.ok()) return accepted.status();

  if (absl::Status s = client->SendAll("hello"); !s.ok()) return s;
  absl::StatusOr<std::string> data = accepted->socket.Recv(1024);
  if (!data.ok()) return data.status();
  std::cout << "received \"" << *data << "\" from "
            << sockagent::FormatAddress(accepted->peer) << " via "
            << sockagent::FormatAddress(*bound) << "\n";

  // Closing is optional: Socket and Agent destructors clean up too.
  if (absl::Status s = client->Close(); !s.ok()) return s;
  return accepted->socket.Close();
}

}  // namespace

int main(int argc, char** argv) {
  std::string target = "127.0.0.1:7700";
  if (const char* env = std::getenv("SOCKAGENT_AGENT")) target = env;
  if (argc > 1) target = argv[1];
  absl::Status status = Run(target);
  if (!status.ok()) {
    std::cerr << "echo_example: " << status << "\n";
    return 1;
  }
  return 0;
}
