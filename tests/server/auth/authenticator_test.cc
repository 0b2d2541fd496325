// Authenticator's token file: parsing (comments, blank lines, errors naming
// the line and never quoting a token), loading, and Reload() keeping the old
// tokens when the new file is bad.

#include "server/auth/authenticator.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/slice.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kAlice[] = "alice-token-0123456789";
constexpr char kBob[] = "bob-token-abcdefghijkl";

TEST(AuthenticatorTest, TokenLinesMapTokensToIdentitiesSkippingComments) {
  auto tokens = Authenticator::ParseTokens(std::string("# harness tokens\n\n") +
                                           kAlice + " alice\n  " + kBob +
                                           "\tspiffe://example.org/bob  \n");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_THAT(*tokens,
              UnorderedElementsAre(Pair(kAlice, "alice"),
                                   Pair(kBob, "spiffe://example.org/bob")));
}

TEST(AuthenticatorTest, ALineWithoutAnIdentityNamesTheLineNotTheToken) {
  auto tokens = Authenticator::ParseTokens(std::string(kAlice) + " alice\n" +
                                           kBob + "\n");
  ASSERT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(tokens.status().message());
  EXPECT_THAT(message, HasSubstr("line 2"));
  EXPECT_THAT(message, Not(HasSubstr(kBob)));
}

TEST(AuthenticatorTest, ATokenShorterThanSixteenCharactersIsRefused) {
  auto tokens = Authenticator::ParseTokens("short-token alice\n");
  ASSERT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tokens.status().message()),
              HasSubstr("line 1: token shorter than 16 characters"));
  EXPECT_THAT(std::string(tokens.status().message()),
              Not(HasSubstr("short-token")));
}

TEST(AuthenticatorTest, AnEmptyFileHasNoTokens) {
  auto tokens = Authenticator::ParseTokens("# nobody\n");
  ASSERT_TRUE(tokens.ok());
  EXPECT_TRUE(tokens->empty());
}

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/authenticator_test.XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = path;
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  void Write(const std::string& text) {
    std::ofstream out(path_, std::ios::trunc);
    out << text;
  }
  std::string path_;
};

TEST_F(TokenFileTest, CreateWithoutATokenFileNeedsNoFile) {
  auto auth = Authenticator::Create({});
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->Reload().ok());
}

TEST_F(TokenFileTest, CreateWithAMissingTokenFileIsNotFoundNamingIt) {
  Authenticator::Options options;
  options.token_file = path_ + ".missing";
  auto auth = Authenticator::Create(options);
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(auth.status().message()),
              HasSubstr(options.token_file));
}

TEST_F(TokenFileTest, CreateWithABadTokenFileNamesTheFileAndTheLine) {
  Write("# tokens\nonly-one-field-here\n");
  Authenticator::Options options;
  options.token_file = path_;
  auto auth = Authenticator::Create(options);
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auth.status().message()),
              HasSubstr(path_ + ": token file line 2"));
}

// A real gRPC server on 127.0.0.1:0 whose every method answers with the
// caller's identity as Authenticator::Identify sees it: OK with trailing
// metadata "identity", or the error Identify returned.
class IdentifyServer {
 public:
  explicit IdentifyServer(const Authenticator* auth) : service_(auth) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterCallbackGenericService(&service_);
    server_ = builder.BuildAndStart();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                   grpc::InsecureChannelCredentials());
  }
  ~IdentifyServer() { server_->Shutdown(); }

  bool started() const { return server_ != nullptr && port_ > 0; }

  // Calls with `authorization` metadata unless it is empty.
  absl::StatusOr<std::string> Identify(const std::string& authorization) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
    grpc::GenericStub stub(channel_);
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(&ctx, "/test.Identify/Who", grpc::StubOptions(), &request,
                   &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
      return absl::DeadlineExceededError("test: no answer");
    }
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    auto identity = ctx.GetServerTrailingMetadata().find("identity");
    if (identity == ctx.GetServerTrailingMetadata().end()) {
      return absl::InternalError("test: no identity in the trailers");
    }
    return std::string(identity->second.data(), identity->second.size());
  }

 private:
  class Service : public grpc::CallbackGenericService {
   public:
    explicit Service(const Authenticator* auth) : auth_(auth) {}
    grpc::ServerGenericBidiReactor* CreateReactor(
        grpc::GenericCallbackServerContext* ctx) override {
      return new Reactor(auth_, ctx);
    }

   private:
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      Reactor(const Authenticator* auth,
              grpc::GenericCallbackServerContext* ctx) {
        absl::StatusOr<std::string> identity = auth->Identify(*ctx);
        if (!identity.ok()) {
          Finish(grpc::Status(
              static_cast<grpc::StatusCode>(identity.status().code()),
              std::string(identity.status().message())));
          return;
        }
        ctx->AddTrailingMetadata("identity", *identity);
        Finish(grpc::Status::OK);
      }
      void OnDone() override { delete this; }
    };
    const Authenticator* const auth_;
  };

  Service service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(TokenFileTest, ABearerTokenFromTheFileNamesItsIdentity) {
  Write(std::string(kAlice) + " alice\n" + kBob + " bob\n");
  Authenticator::Options options;
  options.token_file = path_;
  auto auth = Authenticator::Create(options);
  ASSERT_TRUE(auth.ok()) << auth.status();
  IdentifyServer server(auth->get());
  ASSERT_TRUE(server.started());
  EXPECT_EQ(server.Identify(std::string("Bearer ") + kAlice).value_or("?"),
            "alice");
  EXPECT_EQ(server.Identify(std::string("Bearer ") + kBob).value_or("?"),
            "bob");
}

TEST_F(TokenFileTest, AnUnknownTokenIsUnauthenticatedAndNeverEchoed) {
  Write(std::string(kAlice) + " alice\n");
  Authenticator::Options options;
  options.token_file = path_;
  auto auth = Authenticator::Create(options);
  ASSERT_TRUE(auth.ok()) << auth.status();
  IdentifyServer server(auth->get());
  ASSERT_TRUE(server.started());
  const std::string wrong = "wrong-token-that-is-long-enough";
  absl::StatusOr<std::string> identity = server.Identify("Bearer " + wrong);
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(identity.status().message()), Not(HasSubstr(wrong)));
  identity = server.Identify("Basic dXNlcjpwYXNz");
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenFileTest, WithoutCredentialsTheCallerIsAnonymousUnlessRequired) {
  auto open = Authenticator::Create({});
  ASSERT_TRUE(open.ok());
  IdentifyServer open_server(open->get());
  ASSERT_TRUE(open_server.started());
  EXPECT_EQ(open_server.Identify("").value_or("?"), kAnonymousIdentity);

  Authenticator::Options options;
  options.require_authentication = true;
  auto required = Authenticator::Create(options);
  ASSERT_TRUE(required.ok());
  IdentifyServer required_server(required->get());
  ASSERT_TRUE(required_server.started());
  EXPECT_EQ(required_server.Identify("").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenFileTest, AFailedReloadKeepsTheOldTokensAndAGoodOneReplacesThem) {
  Write(std::string(kAlice) + " alice\n");
  Authenticator::Options options;
  options.token_file = path_;
  auto auth = Authenticator::Create(options);
  ASSERT_TRUE(auth.ok()) << auth.status();
  IdentifyServer server(auth->get());
  ASSERT_TRUE(server.started());
  const std::string alice = std::string("Bearer ") + kAlice;
  const std::string bob = std::string("Bearer ") + kBob;

  Write("garbage\n");
  EXPECT_EQ((*auth)->Reload().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.Identify(alice).value_or("?"), "alice");
  ::unlink(path_.c_str());
  EXPECT_EQ((*auth)->Reload().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(server.Identify(alice).value_or("?"), "alice");

  Write(std::string(kBob) + " bob\n");
  ASSERT_TRUE((*auth)->Reload().ok());
  EXPECT_EQ(server.Identify(bob).value_or("?"), "bob");
  EXPECT_EQ(server.Identify(alice).status().code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace sockagent
