#include "server/auth/authenticator.h"

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/string_ref.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace sockagent {
namespace {

std::string FirstProperty(const grpc::AuthContext& auth, const char* name) {
  for (const grpc::string_ref& value : auth.FindPropertyValues(name)) {
    return std::string(value.data(), value.size());
  }
  return "";
}

}  // namespace

absl::StatusOr<absl::flat_hash_map<std::string, std::string>>
Authenticator::ParseTokens(const std::string& text) {
  absl::flat_hash_map<std::string, std::string> tokens;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      // The line may hold a token: never quote it.
      return absl::InvalidArgumentError(absl::StrCat(
          "token file line ", number, ": expected 'TOKEN IDENTITY'"));
    }
    if (fields[0].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token file line ", number, ": token shorter than 16 characters"));
    }
    tokens[std::string(fields[0])] = std::string(fields[1]);
  }
  return tokens;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    Options options) {
  std::unique_ptr<Authenticator> auth(new Authenticator(std::move(options)));
  if (absl::Status loaded = auth->Reload(); !loaded.ok()) return loaded;
  return auth;
}

absl::Status Authenticator::Reload() {
  if (options_.token_file.empty()) return absl::OkStatus();
  std::ifstream in(options_.token_file);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("token file ", options_.token_file, ": cannot be opened"));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto tokens = ParseTokens(text.str());
  if (!tokens.ok()) {
    return absl::Status(
        tokens.status().code(),
        absl::StrCat(options_.token_file, ": ", tokens.status().message()));
  }
  absl::MutexLock lock(&mu_);
  tokens_ = *std::move(tokens);
  return absl::OkStatus();
}

std::string Authenticator::CertificateIdentity(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) return "";
  for (const char* property :
       {GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME,
        GRPC_PEER_DNS_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    std::string value = FirstProperty(auth, property);
    if (!value.empty()) return value;
  }
  return "";
}

absl::StatusOr<std::string> Authenticator::Identify(
    const grpc::ServerContextBase& context) const {
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    absl::string_view value(it->second.data(), it->second.size());
    if (!absl::ConsumePrefix(&value, "Bearer ")) {
      return absl::UnauthenticatedError(
          "authorization: expected 'Bearer <token>'");
    }
    absl::MutexLock lock(&mu_);
    auto token = tokens_.find(value);
    if (token == tokens_.end()) {
      return absl::UnauthenticatedError("invalid bearer token");
    }
    return token->second;
  }
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr) {
    std::string identity = CertificateIdentity(*auth);
    if (!identity.empty()) return identity;
  }
  if (options_.require_authentication) {
    return absl::UnauthenticatedError(
        "this agent requires a bearer token or a client certificate");
  }
  return std::string(kAnonymousIdentity);
}

}  // namespace sockagent
