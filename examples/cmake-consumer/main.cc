// The smallest harness: one agent, a TCP connection between two of its
// sockets, "hello" across it.   hello_agent [HOST:PORT]
#include <iostream>
#include <memory>
#include <string>

#include "client/address.h"
#include "client/agent.h"

int main(int argc, char** argv) {
  sockagent::AgentOptions options;
  options.target = argc > 1 ? argv[1] : "127.0.0.1:7700";
  auto agent = sockagent::Agent::Connect(options);
  if (!agent.ok()) {
    std::cerr << agent.status() << "\n";
    return 1;
  }
  auto server = (*agent)->CreateSocket(sockagent::v1::FAMILY_INET,
                                       sockagent::v1::SOCKET_TYPE_STREAM);
  if (!server.ok()) return 1;
  auto bound = server->Bind(sockagent::InetAddress("127.0.0.1", 0));
  if (!bound.ok() || !server->Listen().ok()) return 1;
  auto client = (*agent)->CreateConnection(*bound);
  auto accepted = server->Accept();
  if (!client.ok() || !accepted.ok() || !client->SendAll("hello").ok()) {
    return 1;
  }
  auto data = accepted->socket.Recv(1024);
  if (!data.ok()) {
    std::cerr << data.status() << "\n";
    return 1;
  }
  std::cout << *data << " via " << sockagent::FormatAddress(*bound) << "\n";
  return *data == "hello" ? 0 : 1;
}
