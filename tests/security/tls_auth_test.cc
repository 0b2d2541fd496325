// The agent over real gRPC channels on loopback with TLS, mutual TLS and
// bearer tokens. A throwaway CA and certificates are made with openssl at
// test time (nothing secret is committed).

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include "absl/strings/str_cat.h"
#include "client/address.h"
#include "client/agent.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "server/service/agent_server.h"
#include "sockagent/v1/sockagent.grpc.pb.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

constexpr char kHarness[] = "spiffe://sockagent.test/harness";
constexpr char kStranger[] = "spiffe://sockagent.test/stranger";
constexpr char kToken[] = "tok-0123456789abcdef0123";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Makes ca, server (DNS localhost), harness and stranger clients (SPIFFE
// URI SANs), and a client from another CA, in a fresh directory.
class Pki {
 public:
  Pki() {
    char dir[] = "/tmp/sockagent_pki_XXXXXX";
    dir_ = ::mkdtemp(dir);
    const std::string script = absl::StrCat("set -e; cd ", dir_, R"(
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { key "$1.key"; openssl req -x509 -new -key "$1.key" -subj "/CN=$1" -days 1 -out "$1.pem" 2>/dev/null; }
leaf() { # name ca san
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 1 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
ca ca; ca otherca
leaf server ca DNS:localhost
leaf harness ca URI:spiffe://sockagent.test/harness
leaf stranger ca URI:spiffe://sockagent.test/stranger
leaf foreign otherca URI:spiffe://sockagent.test/harness
)");
    ok_ = std::system(script.c_str()) == 0;
  }
  ~Pki() { std::system(absl::StrCat("rm -rf ", dir_).c_str()); }
  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const {
    return absl::StrCat(dir_, "/", name);
  }
  std::string Pem(const std::string& name) const {
    return ReadFile(Path(name));
  }

 private:
  std::string dir_;
  bool ok_ = false;
};

class TlsAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new Pki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(pki_->ok()) << "openssl failed"; }

  void StartAgent(bool tls, bool mtls, bool tokens, const std::string& policy) {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    if (tls) {
      options.tls.cert_file = pki_->Path("server.pem");
      options.tls.key_file = pki_->Path("server.key");
    }
    if (mtls) {
      options.tls.client_ca_file = pki_->Path("ca.pem");
      options.tls.require_client_cert = true;
    }
    if (tokens) {
      options.token_file = pki_->Path("tokens");
      std::ofstream(options.token_file) << "# test tokens\n"
                                        << kToken << " token-harness\n";
    }
    if (!policy.empty()) {
      v1::Policy parsed;
      ASSERT_TRUE(
          google::protobuf::TextFormat::ParseFromString(policy, &parsed));
      ASSERT_TRUE(policy_.Load(parsed).ok());
      options.core.policy = &policy_;
    }
    absl::StatusOr<std::unique_ptr<AgentServer>> server =
        AgentServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<v1::SocketAgent::Stub> Stub(
      std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    return v1::SocketAgent::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", server_->port()), credentials, args));
  }

  std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& client) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pki_->Pem("ca.pem");
    if (!client.empty()) {
      ssl.pem_cert_chain = pki_->Pem(client + ".pem");
      ssl.pem_private_key = pki_->Pem(client + ".key");
    }
    return grpc::SslCredentials(ssl);
  }

  static std::unique_ptr<grpc::ClientContext> Context(
      const std::string& token = "", const std::string& session = "") {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    if (!token.empty()) {
      context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    }
    if (!session.empty()) context->AddMetadata("sockagent-session", session);
    return context;
  }

  grpc::Status CreateSession(v1::SocketAgent::Stub& stub,
                             const std::string& token = "",
                             std::string* session = nullptr) {
    v1::CreateSessionResponse response;
    grpc::Status status = stub.CreateSession(
        Context(token).get(), v1::CreateSessionRequest(), &response);
    if (session != nullptr) *session = response.session_id();
    return status;
  }

  static Pki* pki_;
  PolicyEngine policy_;
  std::unique_ptr<AgentServer> server_;
};

Pki* TlsAuthTest::pki_ = nullptr;

constexpr char kHarnessOnly[] = R"pb(
  rules {
    name: "harness"
    identities: [ "spiffe://sockagent.test/harness", "token-harness" ]
    allow_rpcs: "*"
    families: FAMILY_INET
    types: [ SOCKET_TYPE_STREAM, SOCKET_TYPE_DGRAM ]
    connect_allow { cidr: "127.0.0.1" }
    connect_deny { cidr: "127.0.0.1" port_min: 1 port_max: 1023 }
  }
)pb";

TEST_F(TlsAuthTest, MutualTlsRefusesClientsWithoutAValidCertificate) {
  StartAgent(/*tls=*/true, /*mtls=*/true, /*tokens=*/false, "");
  struct Case {
    const char* what;
    std::shared_ptr<grpc::ChannelCredentials> credentials;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"no client certificate", Tls("")},
           {"certificate from another CA", Tls("foreign")},
           {"plaintext to the TLS port", grpc::InsecureChannelCredentials()},
       }) {
    std::unique_ptr<v1::SocketAgent::Stub> stub = Stub(c.credentials);
    grpc::Status status = CreateSession(*stub);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << c.what << ": " << status.error_message();
  }
  EXPECT_EQ(server_->core().session_count(), 0u) << "nothing was created";
  std::unique_ptr<v1::SocketAgent::Stub> good = Stub(Tls("harness"));
  EXPECT_TRUE(CreateSession(*good).ok());
  EXPECT_EQ(server_->core().session_count(), 1u);
}

TEST_F(TlsAuthTest, CertificateIdentityIsWhatThePolicySees) {
  StartAgent(true, true, false, kHarnessOnly);
  std::unique_ptr<v1::SocketAgent::Stub> harness = Stub(Tls("harness"));
  std::string session;
  ASSERT_TRUE(CreateSession(*harness, "", &session).ok());

  // A valid certificate whose identity no rule names: PERMISSION_DENIED on
  // every RPC, streams included.
  std::unique_ptr<v1::SocketAgent::Stub> stranger = Stub(Tls("stranger"));
  grpc::Status denied = CreateSession(*stranger);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr(kStranger));
  v1::GetAgentInfoResponse info;
  EXPECT_EQ(
      stranger->GetAgentInfo(Context().get(), v1::GetAgentInfoRequest(), &info)
          .error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  v1::RecvStreamRequest stream_request;
  stream_request.set_handle("x");
  std::unique_ptr<grpc::ClientContext> stream_context = Context();
  auto reader = stranger->RecvStream(stream_context.get(), stream_request);
  v1::RecvStreamResponse chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The stranger cannot use the harness's session either.
  v1::KeepAliveResponse kept;
  EXPECT_EQ(
      stranger
          ->KeepAlive(Context("", session).get(), v1::KeepAliveRequest(), &kept)
          .error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(
      harness
          ->KeepAlive(Context("", session).get(), v1::KeepAliveRequest(), &kept)
          .ok());
  (void)kHarness;
}

TEST_F(TlsAuthTest, BearerTokensAreCheckedAndNeverEchoed) {
  StartAgent(/*tls=*/false, false, /*tokens=*/true, kHarnessOnly);
  std::unique_ptr<v1::SocketAgent::Stub> stub =
      Stub(grpc::InsecureChannelCredentials());
  EXPECT_TRUE(CreateSession(*stub, kToken).ok());
  grpc::Status missing = CreateSession(*stub);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const std::string wrong = "tok-wrong-wrong-wrong-wrong";
  grpc::Status bad = CreateSession(*stub, wrong);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(bad.error_message(), ::testing::Not(HasSubstr(wrong)));
  EXPECT_EQ(server_->core().session_count(), 1u);
}

TEST_F(TlsAuthTest,
       DeniedSendToReachesTheClientAsPermissionDeniedAndSendsNothing) {
  StartAgent(false, false, true, kHarnessOnly);
  // A canary on 127.0.0.2, which the harness rule does not allow.
  int canary = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(0x7f000002);
  ASSERT_EQ(
      ::bind(canary, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      0);
  socklen_t length = sizeof(address);
  ::getsockname(canary, reinterpret_cast<sockaddr*>(&address), &length);

  std::unique_ptr<v1::SocketAgent::Stub> stub =
      Stub(grpc::InsecureChannelCredentials());
  std::string session;
  ASSERT_TRUE(CreateSession(*stub, kToken, &session).ok());
  v1::SocketRequest socket_request;
  socket_request.set_family(v1::FAMILY_INET);
  socket_request.set_type(v1::SOCKET_TYPE_DGRAM);
  v1::SocketResponse socket;
  ASSERT_TRUE(
      stub->Socket(Context(kToken, session).get(), socket_request, &socket)
          .ok());
  v1::SendToRequest send;
  send.set_handle(socket.handle());
  send.mutable_address()->mutable_inet()->set_host("127.0.0.2");
  send.mutable_address()->mutable_inet()->set_port(ntohs(address.sin_port));
  send.set_data("must not arrive");
  v1::SendToResponse sent;
  grpc::Status status =
      stub->SendTo(Context(kToken, session).get(), send, &sent);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("harness.default-deny"));
  // A Socket of a family the rule does not grant.
  socket_request.set_family(v1::FAMILY_INET6);
  EXPECT_EQ(
      stub->Socket(Context(kToken, session).get(), socket_request, &socket)
          .error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  char buffer[64];
  EXPECT_LT(::recv(canary, buffer, sizeof(buffer), 0), 0) << "nothing arrived";
  ::close(canary);
}

// Every RPC x identity class (admin, harness, read-only, unknown): denied
// exactly when the table says so. "Allowed" means anything but
// PERMISSION_DENIED (empty requests fail validation later, which is fine).
TEST_F(TlsAuthTest, EveryRpcForEveryIdentityClassMatchesTheTable) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.token_file = pki_->Path("matrix-tokens");
  std::ofstream(options.token_file) << "tok-admin-000000000000 admin\n"
                                    << "tok-harness-0000000000 harness\n"
                                    << "tok-readonly-000000000 readonly\n"
                                    << "tok-unknown-0000000000 unknown\n";
  v1::Policy policy;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        rules { name: "admin" identities: "admin" admin: true allow_rpcs: "*" }
        rules {
          name: "harness"
          identities: "harness"
          allow_rpcs: [
            "CreateSession", "KeepAlive",   "CloseSession",   "Socket",
            "Bind",          "Listen",      "Accept",         "Connect",
            "Send",          "SendStream",  "Recv",           "RecvStream",
            "SendTo",        "RecvFrom",    "RecvFromStream", "Shutdown",
            "Close",         "GetSockName", "GetPeerName",    "SetSockOpt",
            "GetSockOpt",    "SetTimeout",  "GetTimeout",     "GetHostname",
            "GetAddrInfo",   "ListSockets", "GetAgentInfo",   "Traffic",
            "Abort",         "SetFaults",   "ListSessions"
          ]
        }
        rules {
          name: "readonly"
          identities: "readonly"
          allow_rpcs: [
            "GetAgentInfo",
            "GetHostname",
            "ListSockets",
            "ListSessions"
          ]
        }
      )pb",
      &policy));
  ASSERT_TRUE(policy_.Load(policy).ok());
  options.core.policy = &policy_;
  absl::StatusOr<std::unique_ptr<AgentServer>> server =
      AgentServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  std::unique_ptr<v1::SocketAgent::Stub> stub =
      Stub(grpc::InsecureChannelCredentials());

  using Call =
      std::function<grpc::Status(v1::SocketAgent::Stub&, grpc::ClientContext*)>;
  const std::vector<std::pair<std::string, Call>> rpcs = {
      {"CreateSession",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::CreateSessionRequest request;
         v1::CreateSessionResponse response;
         return stub.CreateSession(context, request, &response);
       }},
      {"KeepAlive",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::KeepAliveRequest request;
         v1::KeepAliveResponse response;
         return stub.KeepAlive(context, request, &response);
       }},
      {"CloseSession",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::CloseSessionRequest request;
         v1::CloseSessionResponse response;
         return stub.CloseSession(context, request, &response);
       }},
      {"ListSessions",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::ListSessionsRequest request;
         v1::ListSessionsResponse response;
         return stub.ListSessions(context, request, &response);
       }},
      {"Socket",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::SocketRequest request;
         v1::SocketResponse response;
         return stub.Socket(context, request, &response);
       }},
      {"Bind",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::BindRequest request;
         v1::BindResponse response;
         return stub.Bind(context, request, &response);
       }},
      {"Listen",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::ListenRequest request;
         v1::ListenResponse response;
         return stub.Listen(context, request, &response);
       }},
      {"Accept",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::AcceptRequest request;
         v1::AcceptResponse response;
         return stub.Accept(context, request, &response);
       }},
      {"Connect",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::ConnectRequest request;
         v1::ConnectResponse response;
         return stub.Connect(context, request, &response);
       }},
      {"Send",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::SendRequest request;
         v1::SendResponse response;
         return stub.Send(context, request, &response);
       }},
      {"Recv",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::RecvRequest request;
         v1::RecvResponse response;
         return stub.Recv(context, request, &response);
       }},
      {"SendTo",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::SendToRequest request;
         v1::SendToResponse response;
         return stub.SendTo(context, request, &response);
       }},
      {"RecvFrom",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::RecvFromRequest request;
         v1::RecvFromResponse response;
         return stub.RecvFrom(context, request, &response);
       }},
      {"Shutdown",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::ShutdownRequest request;
         v1::ShutdownResponse response;
         return stub.Shutdown(context, request, &response);
       }},
      {"Close",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::CloseRequest request;
         v1::CloseResponse response;
         return stub.Close(context, request, &response);
       }},
      {"GetSockName",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::GetSockNameRequest request;
         v1::GetSockNameResponse response;
         return stub.GetSockName(context, request, &response);
       }},
      {"GetPeerName",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::GetPeerNameRequest request;
         v1::GetPeerNameResponse response;
         return stub.GetPeerName(context, request, &response);
       }},
      {"SetSockOpt",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::SetSockOptRequest request;
         v1::SetSockOptResponse response;
         return stub.SetSockOpt(context, request, &response);
       }},
      {"GetSockOpt",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::GetSockOptRequest request;
         v1::GetSockOptResponse response;
         return stub.GetSockOpt(context, request, &response);
       }},
      {"SetTimeout",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::SetTimeoutRequest request;
         v1::SetTimeoutResponse response;
         return stub.SetTimeout(context, request, &response);
       }},
      {"GetTimeout",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::GetTimeoutRequest request;
         v1::GetTimeoutResponse response;
         return stub.GetTimeout(context, request, &response);
       }},
      {"GetHostname",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::GetHostnameRequest request;
         v1::GetHostnameResponse response;
         return stub.GetHostname(context, request, &response);
       }},
      {"GetAddrInfo",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::GetAddrInfoRequest request;
         v1::GetAddrInfoResponse response;
         return stub.GetAddrInfo(context, request, &response);
       }},
      {"ListSockets",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::ListSocketsRequest request;
         v1::ListSocketsResponse response;
         return stub.ListSockets(context, request, &response);
       }},
      {"GetAgentInfo",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::GetAgentInfoRequest request;
         v1::GetAgentInfoResponse response;
         return stub.GetAgentInfo(context, request, &response);
       }},
      {"Traffic",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::TrafficRequest request;
         v1::TrafficResponse response;
         return stub.Traffic(context, request, &response);
       }},
      {"Abort",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::AbortRequest request;
         v1::AbortResponse response;
         return stub.Abort(context, request, &response);
       }},
      {"SetFaults",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::SetFaultsRequest request;
         v1::SetFaultsResponse response;
         return stub.SetFaults(context, request, &response);
       }},
      {"SendStream",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         v1::SendStreamResponse response;
         auto writer = stub.SendStream(context, &response);
         writer->WritesDone();
         return writer->Finish();
       }},
      {"RecvStream",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         auto reader = stub.RecvStream(context, v1::RecvStreamRequest());
         v1::RecvStreamResponse response;
         while (reader->Read(&response)) {
         }
         return reader->Finish();
       }},
      {"RecvFromStream",
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         auto reader =
             stub.RecvFromStream(context, v1::RecvFromStreamRequest());
         v1::RecvFromStreamResponse response;
         while (reader->Read(&response)) {
         }
         return reader->Finish();
       }},
      {"HoldSession",  // authorized as CreateSession
       [](v1::SocketAgent::Stub& stub, grpc::ClientContext* context) {
         auto stream = stub.HoldSession(context);
         stream->WritesDone();
         v1::HoldSessionEvent event;
         while (stream->Read(&event)) {
         }
         return stream->Finish();
       }},
  };
  ASSERT_EQ(rpcs.size(), 32u) << "every RPC of the service";
  ASSERT_EQ(static_cast<size_t>(v1::TrafficRequest::descriptor()
                                    ->file()
                                    ->FindServiceByName("SocketAgent")
                                    ->method_count()),
            rpcs.size())
      << "a new RPC must join this table";
  const std::vector<std::string> read_only = {"GetAgentInfo", "GetHostname",
                                              "ListSockets", "ListSessions"};
  for (const char* identity : {"admin", "harness", "readonly", "unknown"}) {
    const std::string id = identity;
    // The token file's tokens: "tok-<identity>-" padded with '0' to 22.
    const std::string padded =
        absl::StrCat("tok-", id, "-", std::string(22 - 5 - id.size(), '0'));
    for (const auto& [method, call] : rpcs) {
      bool expect_allowed = false;
      if (id == "admin" || id == "harness") {
        expect_allowed = true;
      } else if (id == "readonly") {
        expect_allowed = std::find(read_only.begin(), read_only.end(),
                                   method) != read_only.end();
      }
      std::unique_ptr<grpc::ClientContext> context = Context(padded);
      grpc::Status status = call(*stub, context.get());
      EXPECT_EQ(status.error_code() != grpc::StatusCode::PERMISSION_DENIED,
                expect_allowed)
          << identity << " " << method << ": " << status.error_code() << " "
          << status.error_message();
      EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << identity << " " << method;
    }
  }
}

// The client library's ListSessions / CloseSession(id) over a real channel:
// a harness sees only its own session and may not close the admin's; the
// admin sees both and closes the harness's, whose socket is gone.
TEST_F(TlsAuthTest, AdminListsAndClosesSessionsThroughTheClientLibrary) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.token_file = pki_->Path("admin-tokens");
  std::ofstream(options.token_file) << "tok-admin-000000000000 admin\n"
                                    << "tok-harness-0000000000 harness\n";
  v1::Policy policy;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        rules { name: "admin" identities: "admin" admin: true allow_rpcs: "*" }
        rules {
          name: "harness"
          identities: "harness"
          allow_rpcs: "*"
          families: FAMILY_INET
          types: SOCKET_TYPE_DGRAM
          bind_allow { cidr: "127.0.0.0/8" }
        }
      )pb",
      &policy));
  ASSERT_TRUE(policy_.Load(policy).ok());
  options.core.policy = &policy_;
  absl::StatusOr<std::unique_ptr<AgentServer>> server =
      AgentServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  auto connect = [&](const std::string& token) {
    AgentOptions agent_options;
    agent_options.target = absl::StrCat("127.0.0.1:", server_->port());
    agent_options.token = token;
    agent_options.keepalive = false;
    return Agent::Connect(agent_options);
  };
  absl::StatusOr<std::unique_ptr<Agent>> admin =
      connect("tok-admin-000000000000");
  ASSERT_TRUE(admin.ok()) << admin.status();
  absl::StatusOr<std::unique_ptr<Agent>> harness =
      connect("tok-harness-0000000000");
  ASSERT_TRUE(harness.ok()) << harness.status();
  absl::StatusOr<Socket> socket =
      (*harness)->CreateSocket(v1::FAMILY_INET, v1::SOCKET_TYPE_DGRAM);
  ASSERT_TRUE(socket.ok()) << socket.status();
  ASSERT_TRUE(socket->Bind(InetAddress("127.0.0.1", 0)).ok());

  absl::StatusOr<std::vector<v1::SessionInfo>> own = (*harness)->ListSessions();
  ASSERT_TRUE(own.ok()) << own.status();
  ASSERT_EQ(own->size(), 1u);
  EXPECT_EQ((*own)[0].session_id(), (*harness)->session_id());
  EXPECT_EQ((*own)[0].identity(), "harness");
  EXPECT_THAT((*own)[0].peer(), HasSubstr("127.0.0.1"));
  EXPECT_EQ((*own)[0].socket_count(), 1u);
  EXPECT_GT((*own)[0].lease_expiry().seconds(), 0);

  absl::StatusOr<uint32_t> denied =
      (*harness)->CloseSession((*admin)->session_id());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(), HasSubstr("harness.admin"));

  absl::StatusOr<std::vector<v1::SessionInfo>> all = (*admin)->ListSessions();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), 2u);
  absl::StatusOr<uint32_t> closed =
      (*admin)->CloseSession((*harness)->session_id());
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(*closed, 1u);
  EXPECT_EQ(server_->core().session_count(), 1u);
  EXPECT_EQ(socket->GetSockName().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TlsAuthTest, IdleConnectionFloodDoesNotStopAnAuthorizedClient) {
  StartAgent(true, true, false, "");
  constexpr int kIdle = 500;
  std::vector<int> idle;
  sockaddr_in agent{};
  agent.sin_family = AF_INET;
  agent.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  agent.sin_port = htons(static_cast<uint16_t>(server_->port()));
  for (int i = 0; i < kIdle; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&agent), sizeof(agent)),
              0);
    idle.push_back(fd);  // never sends a byte: no TLS handshake
  }
  std::unique_ptr<v1::SocketAgent::Stub> good = Stub(Tls("harness"));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(CreateSession(*good).ok());
  std::cout << "authorized call amid " << kIdle << " idle connections took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count()
            << " ms" << std::endl;
  // The agent closes every pre-handshake connection at the handshake
  // timeout (10 s): each read ends with EOF or a reset, bounded at 20 s.
  int closed = 0;
  for (int fd : idle) {
    timeval timeout{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    char byte;
    const ssize_t got = ::recv(fd, &byte, 1, 0);
    if (got == 0 || (got < 0 && errno == ECONNRESET)) ++closed;
    ::close(fd);
  }
  EXPECT_EQ(closed, kIdle);
}

}  // namespace
}  // namespace sockagent
