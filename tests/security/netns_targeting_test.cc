// Per-call network-namespace targeting (SocketRequest.network_namespace)
// through AgentCore on the real kernel, with real network namespaces this
// test makes (`ip netns add`, removed in TearDown; needs root, else the
// tests that need one skip): the socket lives in the target namespace (it
// binds an address that exists only there, and `ss` inside the namespace
// sees its listener), pid and pod targets (a containerd task directory this
// test writes, pointing at a real process in the namespace), the policy's
// network_namespaces with its protected namespaces, the audit line, bad
// input, and no descriptor left behind.

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "proto/errno_status.h"
#include "server/core/agent_core.h"
#include "server/policy/audit_log.h"
#include "server/policy/policy_engine.h"
#include "tests/common/wait.h"

namespace sockagent {
namespace {

using ::testing::HasSubstr;

constexpr char kOnlyThere[] = "10.233.7.1";  // exists in the test namespace

bool Shell(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

std::string ShellOutput(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    while (size_t n = ::fread(buffer, 1, sizeof(buffer), p)) {
      out.append(buffer, n);
    }
    ::pclose(p);
  }
  return out;
}

int OpenFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

class NetnsTargetingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = absl::StrCat("sa-nt-", ::getpid());
    char dir[] = "/tmp/sockagent_netns_XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    audit_path_ = dir_ + "/audit.jsonl";
    absl::StatusOr<std::unique_ptr<AuditLog>> audit =
        AuditLog::Open(audit_path_, 100000);
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = *std::move(audit);
  }

  void TearDown() override {
    core_.reset();
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    if (made_namespace_) Shell("ip netns del " + name_);
    Shell("rm -rf " + dir_);
  }

  // A network namespace with kOnlyThere on its loopback. Skips the test
  // when namespaces cannot be made (not root).
  bool MakeNamespace() {
    if (::geteuid() != 0 || !Shell("ip netns add " + name_)) return false;
    made_namespace_ = true;
    return Shell("ip -n " + name_ + " link set lo up") &&
           Shell(absl::StrCat("ip -n ", name_, " addr add ", kOnlyThere,
                              "/32 dev lo"));
  }

  void StartCore(bool allow) {
    AgentCore::Options options;
    options.policy = &policy_;
    options.audit = audit_.get();
    options.allow_network_namespaces = allow;
    options.netns.containerd_dir = dir_ + "/containerd";
    options.netns.crio_dir = dir_ + "/crio";
    // This test process stands for the host: its namespace is the
    // protected host namespace (pid 1's may not be openable here).
    options.netns.host_netns = "/proc/self/ns/net";
    absl::StatusOr<std::unique_ptr<AgentCore>> core =
        AgentCore::Create(options);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = *std::move(core);
    absl::StatusOr<v1::CreateSessionResponse> session =
        core_->CreateSession(ctx_, v1::CreateSessionRequest());
    ASSERT_TRUE(session.ok()) << session.status();
    ctx_.session_id = session->session_id();
  }

  void LoadPolicy(const std::string& text) {
    v1::Policy policy;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &policy));
    ASSERT_TRUE(policy_.Load(policy).ok());
  }

  // The harness's rule: TCP over IPv4, any bind, and the network
  // namespaces `grants` lists (quoted entries, comma-separated).
  static std::string HarnessRule(absl::string_view grants) {
    return absl::StrCat(R"pb(
                          rules {
                            name: "harness"
                            identities: "anonymous"
                            allow_rpcs: "*"
                            families: [ FAMILY_INET ]
                            types: [ SOCKET_TYPE_STREAM ]
                            bind_allow { cidr: "0.0.0.0/0" }
                            network_namespaces: [)pb",
                        grants, "] }");
  }

  absl::StatusOr<std::string> SocketIn(const v1::NetworkNamespace& netns) {
    v1::SocketRequest request;
    request.set_family(v1::FAMILY_INET);
    request.set_type(v1::SOCKET_TYPE_STREAM);
    *request.mutable_network_namespace() = netns;
    absl::StatusOr<v1::SocketResponse> response = core_->Socket(ctx_, request);
    if (!response.ok()) return response.status();
    return response->handle();
  }

  absl::StatusOr<v1::Address> BindOnlyThere(const std::string& handle) {
    v1::BindRequest request;
    request.set_handle(handle);
    request.mutable_address()->mutable_inet()->set_host(kOnlyThere);
    absl::StatusOr<v1::BindResponse> bound = core_->Bind(ctx_, request);
    if (!bound.ok()) return bound.status();
    return bound->address();
  }

  // A process (sleep) inside the test namespace; its pid.
  pid_t StartProcessInNamespace() {
    child_ = ::fork();
    if (child_ == 0) {
      ::execlp("ip", "ip", "netns", "exec", name_.c_str(), "sleep", "60",
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // `ip netns exec` enters the namespace, then execs sleep: wait
    // (bounded) until the pid's namespace is the test namespace's.
    const std::string pid_ns = absl::StrCat("/proc/", child_, "/ns/net");
    const std::string named = "/run/netns/" + name_;
    const bool entered = test::WaitFor(
        [&] {
          struct stat a {};
          struct stat b {};
          return ::stat(pid_ns.c_str(), &a) == 0 &&
                 ::stat(named.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
                 a.st_dev == b.st_dev;
        },
        absl::Seconds(10), "the child to enter the namespace");
    return entered ? child_ : -1;
  }

  // A containerd task directory for pod `uid` of Kubernetes namespace
  // `kube_namespace` whose init process is `pid`.
  void WriteContainerdTask(const std::string& uid,
                           const std::string& kube_namespace, pid_t pid) {
    const std::string task = dir_ + "/containerd/0123abcd";
    ASSERT_TRUE(Shell("mkdir -p " + task));
    std::ofstream(task + "/config.json")
        << R"({"ociVersion":"1.0.2","annotations":{)"
        << R"("io.kubernetes.cri.sandbox-uid":")" << uid << R"(",)"
        << R"("io.kubernetes.cri.sandbox-namespace":")" << kube_namespace
        << R"(",)"
        << R"("io.kubernetes.cri.sandbox-name":"web-0"}})";
    std::ofstream(task + "/init.pid") << pid << "\n";
  }

  std::string AuditText() {
    std::ifstream in(audit_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string name_;
  std::string dir_;
  std::string audit_path_;
  bool made_namespace_ = false;
  pid_t child_ = -1;
  PolicyEngine policy_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<AgentCore> core_;
  CallContext ctx_;
};

v1::NetworkNamespace Named(const std::string& name) {
  v1::NetworkNamespace netns;
  netns.set_name(name);
  return netns;
}

TEST_F(NetnsTargetingTest, OffByDefaultIsFailedPrecondition) {
  StartCore(/*allow=*/false);
  absl::StatusOr<std::string> socket = SocketIn(Named("anything"));
  EXPECT_EQ(socket.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(socket.status().message(),
              HasSubstr("--allow-network-namespaces"));
}

TEST_F(NetnsTargetingTest, ASocketMadeInANamedNamespaceLivesThere) {
  if (!MakeNamespace()) GTEST_SKIP() << "needs root to make a namespace";
  StartCore(/*allow=*/true);
  const int fds_before = OpenFds();
  absl::StatusOr<std::string> handle = SocketIn(Named(name_));
  ASSERT_TRUE(handle.ok()) << handle.status();
  // kOnlyThere exists only in the target namespace: binding it works.
  absl::StatusOr<v1::Address> bound = BindOnlyThere(*handle);
  ASSERT_TRUE(bound.ok()) << bound.status();
  v1::ListenRequest listen;
  listen.set_handle(*handle);
  ASSERT_TRUE(core_->Listen(ctx_, listen).ok());
  // The kernel shows the listener inside the namespace.
  const std::string listening =
      ShellOutput("ip netns exec " + name_ + " ss -Hltn");
  EXPECT_THAT(listening,
              HasSubstr(absl::StrCat(kOnlyThere, ":", bound->inet().port())));
  // The same bind from the agent's own namespace fails.
  v1::SocketRequest plain;
  plain.set_family(v1::FAMILY_INET);
  plain.set_type(v1::SOCKET_TYPE_STREAM);
  absl::StatusOr<v1::SocketResponse> own = core_->Socket(ctx_, plain);
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(GetErrno(BindOnlyThere(own->handle()).status())->number,
            EADDRNOTAVAIL);
  // Audited with the namespace, and listed with it.
  EXPECT_THAT(AuditText(),
              HasSubstr(absl::StrCat("\"remote\":\"netns ", name_, "\"")));
  absl::StatusOr<v1::ListSocketsResponse> listed = core_->ListSockets(ctx_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  for (const v1::SocketInfo& info : listed->sockets()) {
    EXPECT_EQ(info.network_namespace(),
              info.handle() == *handle ? absl::StrCat("netns ", name_) : "")
        << info.handle();
  }
  // Closing releases everything; no descriptor leaks through the helper
  // thread.
  for (const std::string& h : {*handle, own->handle()}) {
    v1::CloseRequest close;
    close.set_handle(h);
    ASSERT_TRUE(core_->Close(ctx_, close).ok());
  }
  EXPECT_TRUE(test::WaitFor([&] { return OpenFds() == fds_before; },
                            test::kDefaultWait, "the fd count"))
      << OpenFds() << " fds open, " << fds_before << " before";
}

TEST_F(NetnsTargetingTest, APidAndAPodTargetTheirProcessNamespace) {
  if (!MakeNamespace()) GTEST_SKIP() << "needs root to make a namespace";
  const pid_t pid = StartProcessInNamespace();
  ASSERT_GT(pid, 0);
  const std::string uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
  WriteContainerdTask(uid, "shop", pid);
  StartCore(/*allow=*/true);

  v1::NetworkNamespace by_pid;
  by_pid.set_pid(static_cast<uint32_t>(pid));
  absl::StatusOr<std::string> handle = SocketIn(by_pid);
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_TRUE(BindOnlyThere(*handle).ok());

  v1::NetworkNamespace by_pod;
  by_pod.set_pod_uid(uid);
  handle = SocketIn(by_pod);
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_TRUE(BindOnlyThere(*handle).ok());
  EXPECT_THAT(AuditText(),
              HasSubstr(absl::StrCat("pod ", uid, " (shop/web-0)")));

  by_pod.set_pod_uid("ffffffff-4b5a-6978-8796-a5b4c3d2e1f0");
  EXPECT_EQ(SocketIn(by_pod).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NetnsTargetingTest,
       ThePolicyGrantsNamespacesAndProtectsTheHostAndKubeSystem) {
  if (!MakeNamespace()) GTEST_SKIP() << "needs root to make a namespace";
  const pid_t pid = StartProcessInNamespace();
  ASSERT_GT(pid, 0);
  const std::string uid = "11111111-2222-3333-4444-555555555555";
  WriteContainerdTask(uid, "kube-system", pid);
  StartCore(/*allow=*/true);
  v1::NetworkNamespace host;
  host.set_pid(static_cast<uint32_t>(::getpid()));
  v1::NetworkNamespace pod;
  pod.set_pod_uid(uid);

  // Without a policy: any namespace but a protected one.
  EXPECT_TRUE(SocketIn(Named(name_)).ok());
  for (const v1::NetworkNamespace& target : {host, pod}) {
    absl::StatusOr<std::string> refused = SocketIn(target);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(refused.status().message(), HasSubstr("is protected"));
  }

  LoadPolicy(HarnessRule(R"("name:sa-nt-*", "pid:*", "pod:*", "k8s:kube-*")"));
  EXPECT_TRUE(SocketIn(Named(name_)).ok());
  // Wildcards never reach protected namespaces.
  absl::StatusOr<std::string> denied = SocketIn(host);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(),
              HasSubstr("harness.network_namespaces"));
  denied = SocketIn(pod);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(),
              HasSubstr("harness.network_namespaces"));

  // Named without a wildcard, they are granted.
  LoadPolicy(HarnessRule(
      R"("name:sa-nt-*", "pid:*", "pod:*", "k8s:kube-system", "host")"));
  EXPECT_TRUE(SocketIn(host).ok());
  EXPECT_TRUE(SocketIn(pod).ok());

  // A name the rule does not grant.
  LoadPolicy(HarnessRule(R"("name:other-*")"));
  denied = SocketIn(Named(name_));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(), HasSubstr("is not granted"));
  EXPECT_THAT(AuditText(), HasSubstr("\"decision\":\"deny\""));
}

TEST_F(NetnsTargetingTest,
       AReloadThatNoLongerGrantsTheNamespaceClosesItsSockets) {
  if (!MakeNamespace()) GTEST_SKIP() << "needs root to make a namespace";
  StartCore(/*allow=*/true);
  LoadPolicy(HarnessRule(R"("name:sa-nt-*")"));
  absl::StatusOr<std::string> there = SocketIn(Named(name_));
  ASSERT_TRUE(there.ok()) << there.status();
  ASSERT_TRUE(BindOnlyThere(*there).ok());
  v1::SocketRequest own_request;
  own_request.set_family(v1::FAMILY_INET);
  own_request.set_type(v1::SOCKET_TYPE_STREAM);
  absl::StatusOr<v1::SocketResponse> own = core_->Socket(ctx_, own_request);
  ASSERT_TRUE(own.ok()) << own.status();

  // Still granted (another wildcard that matches): both stay.
  LoadPolicy(HarnessRule(R"("name:sa-*")"));
  v1::GetSockNameRequest name;
  name.set_handle(*there);
  EXPECT_TRUE(core_->GetSockName(ctx_, name).ok());

  LoadPolicy(HarnessRule(R"("name:other-*")"));
  // Closed by the agent, as a connect a reload no longer allows is: calls on
  // the handle are EBADF, the audit log says why, the agent's own socket
  // stays.
  EXPECT_EQ(core_->GetSockName(ctx_, name).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(AuditText(), HasSubstr("\"close_reason\":\"policy_revoked\""));
  absl::StatusOr<v1::ListSocketsResponse> listed = core_->ListSockets(ctx_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->sockets_size(), 1);
  EXPECT_EQ(listed->sockets(0).handle(), own->handle());
}

TEST_F(NetnsTargetingTest, BadTargetsNameTheField) {
  StartCore(/*allow=*/true);
  const int fds_before = OpenFds();
  struct Case {
    v1::NetworkNamespace netns;
    absl::StatusCode code;
    const char* text;
  };
  std::vector<Case> cases;
  cases.push_back({Named("../../proc/1/ns/net"),
                   absl::StatusCode::kInvalidArgument,
                   "network_namespace.name"});
  cases.push_back({Named("/etc/passwd"), absl::StatusCode::kInvalidArgument,
                   "network_namespace.name"});
  cases.push_back({Named(""), absl::StatusCode::kInvalidArgument,
                   "network_namespace.name"});
  cases.push_back({Named("sa-nt-no-such-namespace"),
                   absl::StatusCode::kNotFound, "network_namespace.name"});
  v1::NetworkNamespace pid0;
  pid0.set_pid(0);
  cases.push_back(
      {pid0, absl::StatusCode::kInvalidArgument, "network_namespace.pid"});
  v1::NetworkNamespace bad_uid;
  bad_uid.set_pod_uid("../../x");
  cases.push_back({bad_uid, absl::StatusCode::kInvalidArgument,
                   "network_namespace.pod_uid"});
  cases.push_back({v1::NetworkNamespace(), absl::StatusCode::kInvalidArgument,
                   "network_namespace"});
  for (const Case& c : cases) {
    absl::StatusOr<std::string> socket = SocketIn(c.netns);
    EXPECT_EQ(socket.status().code(), c.code) << c.netns.ShortDebugString();
    EXPECT_THAT(socket.status().message(), HasSubstr(c.text))
        << c.netns.ShortDebugString();
  }
  EXPECT_TRUE(test::WaitFor([&] { return OpenFds() == fds_before; },
                            test::kDefaultWait, "the fd count"))
      << OpenFds() << " fds open, " << fds_before << " before";
}

TEST(NetnsPolicyTest, AMalformedNetworkNamespacesEntryIsRefusedAtLoad) {
  for (const char* entry : {"netns:x", "pid:", "hosts", ""}) {
    v1::Policy policy;
    v1::PolicyRule* rule = policy.add_rules();
    rule->set_name("harness");
    rule->add_identities("anonymous");
    rule->add_network_namespaces(entry);
    PolicyEngine engine;
    absl::Status loaded = engine.Load(policy);
    EXPECT_EQ(loaded.code(), absl::StatusCode::kInvalidArgument) << entry;
    EXPECT_THAT(loaded.message(), HasSubstr("harness: network_namespaces[0]"))
        << entry;
  }
  v1::Policy policy;
  v1::PolicyRule* rule = policy.add_rules();
  rule->add_identities("anonymous");
  for (const char* entry :
       {"*", "host", "name:fleet-*", "pid:42", "pod:*", "k8s:shop"}) {
    rule->add_network_namespaces(entry);
  }
  PolicyEngine engine;
  EXPECT_TRUE(engine.Load(policy).ok());
}

}  // namespace
}  // namespace sockagent
