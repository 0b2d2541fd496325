#ifndef SOCKAGENT_CLIENT_CREDENTIALS_H_
#define SOCKAGENT_CLIENT_CREDENTIALS_H_

// Channel security for talking to an agent: TLS / mutual TLS credentials
// from PEM files, and a client interceptor that sends a bearer token on
// every call. The token is never logged.

#include <memory>
#include <string>

#include <grpcpp/security/credentials.h>
#include <grpcpp/support/client_interceptor.h>

#include "absl/status/statusor.h"

namespace sockagent {

// TLS verifying the agent against `ca_file` (empty: the system roots); with
// `cert_file` and `key_file` the client presents that certificate (mTLS).
// Errors: NOT_FOUND naming a file that cannot be read; INVALID_ARGUMENT when
// only one of cert and key is given.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
TlsCredentialsFromFiles(const std::string& ca_file,
                        const std::string& cert_file,
                        const std::string& key_file);

// Adds "authorization: Bearer <token>" to every call of the channel.
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
BearerTokenInterceptor(std::string token);

}  // namespace sockagent

#endif  // SOCKAGENT_CLIENT_CREDENTIALS_H_
