#include "client/scenario/step_kinds.h"

#include "absl/strings/str_cat.h"
#include "client/address.h"
#include "proto/traffic_data.h"

namespace sockagent::scenario {

const StepKinds& StepKinds::Get() {
  static const StepKinds* registry = [] {
    auto* r = new StepKinds;
    AddSocketSteps(&r->kinds_);
    AddTrafficSteps(&r->kinds_);
    AddControlSteps(&r->kinds_);
    AddProxySteps(&r->kinds_);
    return r;
  }();
  return *registry;
}

const StepKind* StepKinds::Find(absl::string_view name) const {
  if (name == "recv_all") name = "recv_stream";
  for (const StepKind& kind : kinds_) {
    if (name == kind.name) return &kind;
  }
  return nullptr;
}

std::string StepCall::Arg(absl::string_view key,
                          absl::string_view fallback) const {
  auto it = args.find(std::string(key));
  return it == args.end() ? std::string(fallback) : it->second;
}

bool StepCall::Has(absl::string_view key) const {
  return args.count(std::string(key)) != 0;
}

Outcome StepCall::Bad(absl::string_view key, const absl::Status& why) {
  Outcome failed;
  failed.runner_error =
      absl::InvalidArgumentError(absl::StrCat(key, ": ", why.message()));
  return failed;
}

void DataFields(absl::string_view data, Fields* fields) {
  StreamChecksum sum;
  sum.Update(data);
  (*fields)["bytes"] = absl::StrCat(data.size());
  (*fields)["checksum"] = sum.Hex();
}

void AddressFields(const v1::Address& address, absl::string_view prefix,
                   Fields* fields) {
  (*fields)[absl::StrCat(prefix, prefix.empty() ? "address" : "")] =
      FormatAddress(address);
  if (address.has_inet()) {
    (*fields)[absl::StrCat(prefix, prefix.empty() ? "" : "_", "host")] =
        address.inet().host();
    (*fields)[absl::StrCat(prefix, prefix.empty() ? "" : "_", "port")] =
        absl::StrCat(address.inet().port());
  }
}

}  // namespace sockagent::scenario
