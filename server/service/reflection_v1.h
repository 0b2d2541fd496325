#ifndef SOCKAGENT_SERVER_SERVICE_REFLECTION_V1_H_
#define SOCKAGENT_SERVER_SERVICE_REFLECTION_V1_H_

// grpc.reflection.v1.ServerReflection, which current tools (grpcurl, Postman,
// grpc_cli) ask for first. gRPC 1.51's reflection plugin serves only
// grpc.reflection.v1alpha; v1 has the same message shapes, and this service
// answers from the same place, the process's generated descriptor pool, so
// both versions give the same answers. Thread-safe: each stream has its own
// reactor; the service itself is immutable after construction.

#include <string>
#include <vector>

#include <grpcpp/support/server_callback.h>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace sockagent {

class ReflectionV1Service final
    : public grpc::reflection::v1::ServerReflection::CallbackService {
 public:
  // `services`: the full names list_services reports (the services the
  // server registers).
  explicit ReflectionV1Service(std::vector<std::string> services);

  grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                          grpc::reflection::v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* context) override;

  // The answer to one request: list_services, file_by_filename,
  // file_containing_symbol, file_containing_extension,
  // all_extension_numbers_of_type; an error_response with NOT_FOUND for an
  // unknown name, UNIMPLEMENTED for an empty request. A file comes with
  // every file it imports, transitively.
  grpc::reflection::v1::ServerReflectionResponse Answer(
      const grpc::reflection::v1::ServerReflectionRequest& request) const;

 private:
  const std::vector<std::string> services_;
};

}  // namespace sockagent

#endif  // SOCKAGENT_SERVER_SERVICE_REFLECTION_V1_H_
