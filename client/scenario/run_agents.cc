// Run's agents: those the file names and those a source (agents_from:)
// adds, selectors over them, their sessions (ConnectAgents) and the cleanup
// that closes what the steps left open and ends each session.

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/credentials.h"
#include "client/fleet/inventory.h"
#include "client/fleet/selector.h"
#include "client/scenario/expectations.h"
#include "client/scenario/run.h"
#include "client/vocab/addresses.h"

namespace sockagent {
namespace scenario {
namespace internal {
namespace {

// Deadline of the calls that do not wait for a socket.
constexpr absl::Duration kCallTimeout = absl::Seconds(10);

}  // namespace

bool Run::LoadSourcedAgents() {
  StepResult r;
  r.kind = "session";
  r.name = "agents_from";
  r.attempts = 1;
  absl::Status status;
  absl::StatusOr<std::string> source = Interpolate(model_.agents_from);
  absl::StatusOr<std::vector<fleet::AgentEndpoint>> endpoints =
      source.ok() ? fleet::LoadAgents(*source) : source.status();
  absl::StatusOr<fleet::Selector> selector =
      fleet::Selector::Parse(model_.select);
  if (!endpoints.ok()) status = endpoints.status();
  if (status.ok() && !selector.ok()) status = selector.status();
  int added = 0;
  if (status.ok()) {
    for (const fleet::AgentEndpoint& endpoint : *endpoints) {
      if (!selector->Matches(endpoint.name, endpoint.labels)) continue;
      if (std::any_of(specs_.begin(), specs_.end(), [&](const AgentSpec& s) {
            return s.name == endpoint.name;
          })) {
        status = absl::InvalidArgumentError(
            absl::StrCat("agent ", endpoint.name,
                         " is both under agents: and in ", model_.agents_from));
        break;
      }
      AgentSpec spec;
      spec.name = endpoint.name;
      spec.address = endpoint.address;
      if (endpoint.tls || !endpoint.token.empty() ||
          !endpoint.token_file.empty()) {
        // fleet::OptionsFor reads the token file.
        absl::StatusOr<AgentOptions> options = fleet::OptionsFor(endpoint);
        if (!options.ok()) {
          status = options.status();
          break;
        }
        spec.has_security = true;
        spec.tls = endpoint.tls;
        spec.token = options->token;
        spec.tls_ca = endpoint.tls_ca;
        spec.tls_cert = endpoint.tls_cert;
        spec.tls_key = endpoint.tls_key;
        spec.tls_server_name = endpoint.tls_server_name;
      }
      labels_[spec.name] = endpoint.labels;
      specs_.push_back(std::move(spec));
      ++added;
    }
  }
  if (status.ok() && added == 0) {
    status =
        absl::NotFoundError(absl::StrCat("no agent of ", model_.agents_from,
                                         " matches select: ", model_.select));
  }
  r.status = status.ok() ? StepStatus::kPassed : StepStatus::kError;
  r.message = status.ok()
                  ? absl::StrCat(added, " agent(s) from ", model_.agents_from)
                  : StatusText(status);
  Record(std::move(r));
  if (!status.ok()) Stop("agents_from failed", false);
  return status.ok();
}

std::vector<std::string> Run::Select(const std::string& text) const {
  std::vector<std::string> names;
  absl::StatusOr<fleet::Selector> selector = fleet::Selector::Parse(text);
  if (!selector.ok()) return names;  // checked by the parser
  for (const AgentSpec& spec : root_->specs_) {
    auto labels = root_->labels_.find(spec.name);
    if (selector->Matches(spec.name, labels == root_->labels_.end()
                                         ? std::map<std::string, std::string>()
                                         : labels->second)) {
      names.push_back(spec.name);
    }
  }
  return names;
}

Fields Run::AgentVar(const std::string& name) const {
  Fields fields;
  fields[""] = name;
  auto target = root_->targets_.find(name);
  if (target == root_->targets_.end()) return fields;
  const std::string& address = target->second;
  fields["address"] = address;
  const size_t colon = address.rfind(':');
  if (colon != std::string::npos) {
    std::string host = address.substr(0, colon);
    if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
      host = host.substr(1, host.size() - 2);
    }
    fields["host"] = host;
    fields["port"] = address.substr(colon + 1);
  }
  return fields;
}

void Run::ConnectAgents() {
  for (const AgentSpec& spec : specs_) {
    StepResult r;
    r.kind = "session";
    r.agent = spec.name;
    r.name = absl::StrCat("session on ", spec.name);
    if (stopping()) {
      // An earlier agent failed or the run was interrupted: the steps will
      // not run, so there is no point in waiting for this agent.
      r.status = StepStatus::kSkipped;
      {
        absl::MutexLock lock(&mu_);
        r.message = absl::StrCat("not connected: ", stop_reason_);
      }
      Record(std::move(r));
      continue;
    }
    r.attempts = 1;
    const absl::Time start = absl::Now();
    std::string env_name =
        absl::StrCat("SOCKAGENT_AGENT_", absl::AsciiStrToUpper(spec.name));
    for (char& c : env_name) {
      if (c == '-') c = '_';
    }
    std::string target;
    absl::Status status;
    if (auto it = options_.agent_targets.find(spec.name);
        it != options_.agent_targets.end()) {
      target = it->second;
    } else if (const char* env = std::getenv(env_name.c_str());
               env != nullptr && *env != '\0') {
      target = env;
    } else if (!spec.address.empty()) {
      absl::StatusOr<std::string> text = Interpolate(spec.address);
      if (text.ok()) {
        target = *text;
      } else {
        status = text.status();
      }
    }
    if (target.empty() && status.ok()) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "agent ", spec.name, " has no address: set address: in the file, ",
          env_name, ", or --agent-", spec.name, "=HOST:PORT"));
    }
    if (!target.empty() && status.ok()) {
      // The same rules as sockctl's --agent: no port means 7700.
      absl::StatusOr<std::string> normalized = vocab::AgentTarget(target);
      if (normalized.ok()) {
        target = *normalized;
      } else {
        status = absl::InvalidArgumentError(absl::StrCat(
            "agent ", spec.name, ": ",
            absl::StripPrefix(normalized.status().message(), "--agent ")));
      }
    }
    AgentOptions agent_options;
    agent_options.target = target;
    agent_options.fail_fast = options_.fail_fast;
    agent_options.session_ttl = spec.ttl;
    agent_options.session_label =
        absl::StrCat("scenario ", model_.name, " agent ", spec.name);
    agent_options.connect_timeout = options_.connect_timeout;
    agent_options.call_timeout = kCallTimeout;
    AgentSecurity security = options_.default_security;
    if (spec.has_security) {
      security = AgentSecurity();
      security.tls = spec.tls;
      for (auto [from, to] :
           std::vector<std::pair<const std::string*, std::string*>>{
               {&spec.tls_ca, &security.tls_ca},
               {&spec.tls_cert, &security.tls_cert},
               {&spec.tls_key, &security.tls_key},
               {&spec.tls_server_name, &security.tls_server_name},
               {&spec.token, &security.token}}) {
        absl::StatusOr<std::string> text = Interpolate(*from);
        if (!text.ok() && status.ok()) status = text.status();
        if (text.ok()) *to = *text;
      }
    }
    agent_options.token = security.token;
    agent_options.tls_server_name = security.tls_server_name;
    if (status.ok() &&
        (security.tls || !security.tls_ca.empty() ||
         !security.tls_cert.empty() || !security.tls_key.empty())) {
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
          TlsCredentialsFromFiles(security.tls_ca, security.tls_cert,
                                  security.tls_key);
      if (credentials.ok()) {
        agent_options.credentials = *credentials;
      } else {
        status = credentials.status();
      }
    }
    if (status.ok()) {
      absl::StatusOr<std::unique_ptr<Agent>> agent =
          Agent::Connect(agent_options);
      if (agent.ok()) {
        absl::MutexLock lock(&mu_);
        agents_[spec.name].agent = *std::move(agent);
      } else {
        status = agent.status();
      }
    }
    r.duration = absl::Now() - start;
    if (status.ok()) {
      targets_[spec.name] = target;
      r.status = StepStatus::kPassed;
      absl::MutexLock lock(&mu_);
      r.message = absl::StrCat(target, " session ",
                               agents_.at(spec.name).agent->session_id());
    } else {
      r.status = StepStatus::kError;
      r.message =
          absl::StrCat(target.empty() ? "" : target + ": ", StatusText(status));
      Stop(absl::StrCat("no session on agent ", spec.name), false);
    }
    Record(std::move(r));
  }
}

void Run::Cleanup() {
  for (const AgentSpec& spec : specs_) {
    auto it = agents_.find(spec.name);
    if (it == agents_.end() || it->second.agent == nullptr) continue;
    AgentState& state = it->second;
    StepResult r;
    r.kind = "cleanup";
    r.agent = spec.name;
    r.name = absl::StrCat("cleanup on ", spec.name);
    r.attempts = 1;
    const absl::Time start = absl::Now();
    // What steps started on this agent (proxies) ends first, while the
    // session still holds its sockets.
    std::vector<std::string> stopped;
    StopHeld(spec.name, &stopped, &r.figures);
    int closed = 0;
    std::vector<std::string> problems;
    std::vector<std::string> handles;
    {
      absl::MutexLock lock(&mu_);
      for (const std::string& handle : handles_[spec.name]) {
        if (closed_.count(handle) == 0) handles.push_back(handle);
      }
    }
    for (const std::string& handle : handles) {
      absl::Status status = state.agent->AttachSocket(handle).Close();
      if (status.ok()) {
        ++closed;
      } else if (!absl::IsNotFound(status)) {
        problems.push_back(
            absl::StrCat("close ", handle, ": ", StatusText(status)));
      }
      absl::MutexLock lock(&mu_);
      closed_.insert(handle);
    }
    absl::StatusOr<uint32_t> session_closed = state.agent->CloseSession();
    if (!session_closed.ok()) {
      problems.push_back(
          absl::StrCat("close session: ", StatusText(session_closed.status())));
    }
    r.duration = absl::Now() - start;
    r.status = problems.empty() ? StepStatus::kPassed : StepStatus::kError;
    r.message = problems.empty()
                    ? absl::StrCat("closed ", closed,
                                   " open handle(s); session closed (",
                                   *session_closed, " socket(s) left in it)")
                    : absl::StrJoin(problems, "; ");
    if (!stopped.empty()) {
      r.message = absl::StrCat(absl::StrJoin(stopped, "; "), "; ", r.message);
    }
    Record(std::move(r));
  }
}

}  // namespace internal
}  // namespace scenario
}  // namespace sockagent
