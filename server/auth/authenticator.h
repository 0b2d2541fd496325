#ifndef SOCKAGENT_SERVER_AUTH_AUTHENTICATOR_H_
#define SOCKAGENT_SERVER_AUTH_AUTHENTICATOR_H_

// Who is calling: the one place where a call's credentials become an
// identity. Thread-safe; Reload() swaps the token table atomically.
//
// Order: a bearer token (request metadata "authorization: Bearer <token>"),
// when present, must be in the token file and names the identity; otherwise
// the verified client certificate names it (SPIFFE ID, else the first URI
// SAN, else the first DNS SAN, else the subject CN); otherwise the caller is
// "anonymous" -- refused with UNAUTHENTICATED when authentication is
// required (a token file or a required client certificate is configured).
// Tokens are never logged or echoed: errors say "invalid bearer token".

#include <memory>
#include <string>

#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace sockagent {

inline constexpr char kAnonymousIdentity[] = "anonymous";

class Authenticator {
 public:
  struct Options {
    // Lines "TOKEN IDENTITY"; '#' starts a comment. Empty: no tokens.
    std::string token_file;
    // Refuse callers without a token or a certificate identity.
    bool require_authentication = false;
  };

  // Errors: the token file's (NOT_FOUND, INVALID_ARGUMENT naming the line).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(Options options);

  // Re-reads the token file; on error the old tokens stay in force.
  absl::Status Reload();

  // The caller's identity, or UNAUTHENTICATED.
  absl::StatusOr<std::string> Identify(
      const grpc::ServerContextBase& context) const;

  // The identity in a verified peer certificate, or "" (no certificate).
  static std::string CertificateIdentity(const grpc::AuthContext& auth);

  // Parses a token file's text. INVALID_ARGUMENT naming the line.
  static absl::StatusOr<absl::flat_hash_map<std::string, std::string>>
  ParseTokens(const std::string& text);

 private:
  explicit Authenticator(Options options) : options_(std::move(options)) {}

  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_AUTH_AUTHENTICATOR_H_
