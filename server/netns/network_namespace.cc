#include "server/netns/network_namespace.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proto/errno_status.h"

namespace sockagent {
namespace {

absl::StatusOr<ScopedFd> OpenNamespace(const std::string& path,
                                       absl::string_view field) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat(field, ": no network namespace at ", path));
    }
    return OsError(err, absl::StrCat("open ", path));
  }
  return ScopedFd(fd);
}

bool SameFile(int a, int b) {
  struct stat sa {};
  struct stat sb {};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 &&
         sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A pod UID: 36 characters of hex digits and dashes (a UUID).
bool IsPodUid(absl::string_view uid) {
  if (uid.size() != 36) return false;
  for (char c : uid) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

struct PodProcess {
  uint32_t pid = 0;
  std::string kube_namespace;
  std::string pod_name;
};

// Scans DIR/*/CONFIG (an OCI config.json) for the annotation UID_KEY == uid
// and reads the pid from DIR/*/PIDFILE.
bool ScanRuntime(const std::string& dir, const std::string& config,
                 const std::string& pidfile, const char* uid_key,
                 const char* namespace_key, const char* name_key,
                 const std::string& uid, PodProcess* found) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool ok = false;
  while (dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    const std::string base = absl::StrCat(dir, "/", name, "/");
    const nlohmann::json spec =
        nlohmann::json::parse(ReadFile(base + config), nullptr, false);
    if (spec.is_discarded() || !spec.is_object()) continue;
    const auto annotations = spec.find("annotations");
    if (annotations == spec.end() || !annotations->is_object()) continue;
    const auto pod_uid = annotations->find(uid_key);
    if (pod_uid == annotations->end() || !pod_uid->is_string() ||
        pod_uid->get<std::string>() != uid) {
      continue;
    }
    uint32_t pid = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(base + pidfile)),
                          &pid) ||
        pid == 0) {
      continue;
    }
    found->pid = pid;
    auto text = [&](const char* key) {
      const auto it = annotations->find(key);
      return it != annotations->end() && it->is_string()
                 ? it->get<std::string>()
                 : std::string();
    };
    found->kube_namespace = text(namespace_key);
    found->pod_name = text(name_key);
    ok = true;
    break;
  }
  ::closedir(d);
  return ok;
}

}  // namespace

bool NetnsResolver::IsHost(int fd) const {
  absl::StatusOr<ScopedFd> host =
      OpenNamespace(options_.host_netns, "network_namespace");
  return host.ok() && SameFile(fd, host->get());
}

absl::StatusOr<NetnsTarget> NetnsResolver::OpenPid(uint32_t pid) const {
  NetnsTarget target;
  absl::StatusOr<ScopedFd> fd =
      OpenNamespace(absl::StrCat(options_.proc_dir, "/", pid, "/ns/net"),
                    "network_namespace.pid");
  if (!fd.ok()) return fd.status();
  target.fd = *std::move(fd);
  return target;
}

absl::StatusOr<NetnsTarget> NetnsResolver::FindPod(
    const std::string& uid) const {
  PodProcess process;
  if (!ScanRuntime(options_.containerd_dir, "config.json", "init.pid",
                   "io.kubernetes.cri.sandbox-uid",
                   "io.kubernetes.cri.sandbox-namespace",
                   "io.kubernetes.cri.sandbox-name", uid, &process) &&
      !ScanRuntime(options_.crio_dir, "userdata/config.json",
                   "userdata/pidfile", "io.kubernetes.pod.uid",
                   "io.kubernetes.pod.namespace", "io.kubernetes.pod.name", uid,
                   &process)) {
    return absl::NotFoundError(absl::StrCat(
        "network_namespace.pod_uid: no pod ", uid, " on this node (looked in ",
        options_.containerd_dir, " and ", options_.crio_dir, ")"));
  }
  absl::StatusOr<NetnsTarget> target = OpenPid(process.pid);
  if (!target.ok()) return target.status();
  target->kube_namespace = std::move(process.kube_namespace);
  target->pod_name = std::move(process.pod_name);
  return target;
}

absl::StatusOr<NetnsTarget> NetnsResolver::Resolve(
    const v1::NetworkNamespace& request) const {
  absl::StatusOr<NetnsTarget> target;
  switch (request.target_case()) {
    case v1::NetworkNamespace::kName: {
      const std::string& name = request.name();
      std::string path = name;
      if (!absl::StartsWith(name, "/")) {
        path = absl::StrCat(options_.netns_dir, "/", name);
      }
      if (name.empty() || absl::StrContains(name, "..") ||
          !absl::StartsWith(path, options_.netns_dir + "/") ||
          path.size() == options_.netns_dir.size() + 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("network_namespace.name: '", name,
                         "' is not a name under ", options_.netns_dir));
      }
      absl::StatusOr<ScopedFd> fd =
          OpenNamespace(path, "network_namespace.name");
      if (!fd.ok()) return fd.status();
      target = NetnsTarget();
      target->fd = *std::move(fd);
      {
        target->kind = "name";
        target->value = path.substr(options_.netns_dir.size() + 1);
        target->description = absl::StrCat("netns ", target->value);
      }
      break;
    }
    case v1::NetworkNamespace::kPid:
      if (request.pid() == 0) {
        return absl::InvalidArgumentError(
            "network_namespace.pid: 0 is not a process");
      }
      target = OpenPid(request.pid());
      if (target.ok()) {
        target->kind = "pid";
        target->value = absl::StrCat(request.pid());
        target->description = absl::StrCat("pid ", request.pid());
      }
      break;
    case v1::NetworkNamespace::kPodUid:
      if (!IsPodUid(request.pod_uid())) {
        return absl::InvalidArgumentError(
            absl::StrCat("network_namespace.pod_uid: '", request.pod_uid(),
                         "' is not a pod UID (36 hex digits and dashes)"));
      }
      target = FindPod(absl::AsciiStrToLower(request.pod_uid()));
      if (target.ok()) {
        target->kind = "pod";
        target->value = request.pod_uid();
        target->description =
            absl::StrCat("pod ", request.pod_uid(), " (",
                         target->kube_namespace, "/", target->pod_name, ")");
      }
      break;
    case v1::NetworkNamespace::TARGET_NOT_SET:
      return absl::InvalidArgumentError(
          "network_namespace: set one of name, pid, pod_uid");
  }
  if (!target.ok()) return target.status();
  target->host = IsHost(target->fd.get());
  return target;
}

absl::Status RunInNetns(int ns_fd, absl::FunctionRef<void()> fn) {
  absl::Status status;
  std::thread worker([&] {
    const int own = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own < 0) {
      status = OsError(errno, "open /proc/thread-self/ns/net");
      return;
    }
    if (::setns(ns_fd, CLONE_NEWNET) != 0) {
      status = OsError(errno, "setns");
      ::close(own);
      return;
    }
    fn();
    // The thread ends right after; returning keeps the rule that no thread
    // of the agent outlives a call inside another namespace.
    if (::setns(own, CLONE_NEWNET) != 0) {
      status = OsError(errno, "setns back");
    }
    ::close(own);
  });
  worker.join();
  return status;
}

}  // namespace sockagent
