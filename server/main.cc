// sockagentd: performs socket operations for remote callers over gRPC.

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/labels.h"
#include "server/config/config_file.h"
#include "server/config/logging.h"
#include "server/metrics/agent_metrics.h"
#include "server/policy/audit_log.h"
#include "server/policy/policy_engine.h"
#include "server/policy/policy_reloader.h"
#include "server/service/agent_server.h"
#include "spdlog/spdlog.h"

namespace {

constexpr char kDescription[] =
    R"(sockagentd - use this host's sockets from another host.

Serves the sockagent.v1.SocketAgent gRPC API: callers (sockctl, the C++
client library, any gRPC client) create sockets, bind, listen, accept,
connect, send and receive on this host's real kernel sockets. Every socket
belongs to a session that its client keeps alive; when the lease lapses the
agent closes everything the session held. The gRPC health service and server
reflection are on.

Without TLS the agent listens only on loopback (127.0.0.0/8, ::1) unless
--insecure-allow-non-loopback-without-tls is given. With --tls-cert/--tls-key
it serves TLS (files re-read every 10 s), with --tls-client-ca and
--require-client-cert mutual TLS; --token-file adds bearer tokens. --policy
installs a deny-by-default policy per identity (reloaded on SIGHUP and when
the file changes); --audit-log records every decision and socket close.

Signals: SIGTERM/SIGINT drain (health NOT_SERVING, waiting calls end with
UNAVAILABLE, every socket closed) and exit 0.

SIGHUP re-reads the log level from --config (unless --log-level is given).

--allow-network-namespaces lets callers create a socket inside another
network namespace (SocketRequest.network_namespace: a /var/run/netns name, a
pid, a Kubernetes pod UID), as far as the policy grants; every use is
audited.

--label KEY=VALUE (repeatable) says what this agent is (node, pod, namespace,
zone); GetAgentInfo reports the labels and harnesses select agents by them.

Every flag can also come from a config file (--config FILE): a
sockagent.v1.AgentConfig in protobuf text format or JSON, one field per flag
(max_session_ttl: "10s"); flags on the command line win.

Example:
  sockagentd --listen 127.0.0.1:7700 --session-ttl 10s
  sockagentd --config /etc/sockagent/sockagentd.textproto
  sockagentd --check-config /etc/sockagent/sockagentd.textproto
)";

// True when `flag` (e.g. "--log-level") is on the command line itself.
bool OnCommandLine(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == flag || arg.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

// The file of --config FILE / --config=FILE / --check-config FILE (the
// last one given), or "".
std::string ConfigPathOf(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    for (const std::string flag : {"--config", "--check-config"}) {
      if (arg == flag && i + 1 < argc) {
        path = argv[i + 1];
      } else if (arg.rfind(flag + "=", 0) == 0) {
        path = arg.substr(flag.size() + 1);
      }
    }
  }
  return path;
}

// A command-line error as sockagentd reports it. A bad value that came from
// the config file (CLI11 names the flag: "--session-ttl: not a positive
// duration ...") is placed in the file: "FILE:LINE: session_ttl: ...".
std::string DescribeParseError(const std::string& message, int argc,
                               char** argv, const std::string& config_path,
                               const std::string& config_text) {
  if (config_path.empty() || message.rfind("--", 0) != 0) return message;
  const size_t colon = message.find(':');
  if (colon == std::string::npos) return message;
  const std::string flag = message.substr(0, colon);
  if (OnCommandLine(argc, argv, flag)) return message;
  std::string field = flag.substr(2);
  std::replace(field.begin(), field.end(), '-', '_');
  const int line = sockagent::ConfigFieldLine(config_text, field);
  if (line == 0) return message;
  return absl::StrCat(config_path, ":", line, ": ", field,
                      message.substr(colon));
}

// Accepts Go/absl-style durations: "500ms", "5s", "10m", "1h30m".
CLI::Validator DurationValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::Duration d;
        if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
          return "not a positive duration like 500ms, 5s, 10m: " + text;
        }
        return "";
      },
      "DURATION");
}

absl::Duration ParseDurationOrDie(const std::string& text) {
  absl::Duration d;
  absl::ParseDuration(text, &d);  // validated by DurationValidator
  return d;
}

// --io-threads' default: one engine thread per hardware thread, at most 4
// (the two ends of a transfer need two; more rarely pay on a shared host).
int DefaultIoThreads() {
  const unsigned hardware = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(hardware, 1u, 4u));
}

// Lets the agent hold many sockets: raise the soft descriptor limit to the
// hard one.
void RaiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Abseil's Mutex deadlock detection (on in Debian's libabsl) updates a
  // global lock graph on every Lock() and Mutex destruction, gRPC's own
  // mutexes included. Only Debug builds (no NDEBUG) keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  // glibc's defaults return freed memory to the kernel eagerly: every
  // per-thread arena shrinks (madvise) once 128 KiB at its top are free, and
  // blocks from 128 KiB up are mmapped and unmapped per allocation. Stream
  // chunks (up to 4 MiB) and gRPC's read buffers are allocated and freed at
  // that size all the time, so each one was faulted in again: 400,000 page
  // faults for 768 MiB of SendStream (bench/NOTES.md). Keep up to 32 MiB
  // per arena and serve blocks below 4 MiB from the heap.
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  CLI::App app(kDescription, "sockagentd");
  app.get_formatter()->column_width(36);
  sockagent::ServerOptions options;
  std::string session_ttl = "5s";
  std::string max_session_ttl = "24h";
  std::string drain_timeout = "5s";
  std::string log_level = "info";
  std::string log_format = "text";
  std::string metrics_listen;
  std::string check_config;
  std::string port_file;
  size_t max_sessions = options.core.sessions.max_sessions;
  size_t max_sockets = options.core.max_sockets_per_session;
  size_t max_message = options.core.max_send_bytes;
  app.add_option("--listen", options.listen_address,
                 "host:port to serve on; port 0 picks a free port")
      ->capture_default_str();
  app.add_option("--session-ttl", session_ttl,
                 "lease of a session whose client asks for none")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_option("--max-session-ttl", max_session_ttl,
                 "longest lease a client may ask for")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_option("--max-sessions", max_sessions, "sessions at once")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-sockets-per-session", max_sockets,
                 "sockets one session may hold")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-message-bytes", max_message,
                 "largest payload of one Send/Recv call")
      ->check(CLI::Range(1024, 64 << 20))
      ->capture_default_str();
  options.core.io_threads = DefaultIoThreads();
  app.add_option("--io-threads", options.core.io_threads,
                 "engine threads (epoll loops) sharing out the sockets, so "
                 "both ends of a transfer can run at once; 1 = one loop "
                 "for everything (default: hardware threads, at most 4)")
      ->check(CLI::Range(1, sockagent::Engine::kMaxShards))
      ->capture_default_str();
  app.add_option("--drain-timeout", drain_timeout,
                 "on SIGTERM, how long calls may take to finish")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--port-file", port_file,
                 "write the bound port here once serving (for scripts)");
  app.add_option("--log-format", log_format,
                 "text|json (json: one object per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "serve Prometheus /metrics on host:port (off when empty)");
  app.add_option("--health-listen", options.health_listen,
                 "also serve plaintext grpc.health.v1 (health only) on "
                 "host:port, for kubelet gRPC probes (off when empty)");
  std::string nat64_prefixes;
  app.add_option("--nat64-prefixes", nat64_prefixes,
                 "your NAT64 prefixes, comma-separated IPv6 CIDRs of length "
                 "32/40/48/56/64/96: IPv4 embedded in them meets the "
                 "hard-deny list (64:ff9b::/96 and 64:ff9b:1::/48 always do)");
  std::vector<std::string> labels;
  app.add_option("--label", labels,
                 "KEY=VALUE reported by GetAgentInfo, repeatable (e.g. "
                 "node=worker-3, zone=eu-1); harnesses select agents by it")
      ->each([](const std::string& text) {
        if (absl::StatusOr<std::pair<std::string, std::string>> label =
                sockagent::ParseLabel(text, "--label");
            !label.ok()) {
          throw CLI::ValidationError(std::string(label.status().message()));
        }
      })
      ->allow_extra_args(false);
  std::string host_root = "/";
  app.add_flag("--allow-network-namespaces",
               options.core.allow_network_namespaces,
               "let callers create sockets inside other network namespaces "
               "(a netns name, a pid, a Kubernetes pod UID) as far as the "
               "policy's network_namespaces grants; needs CAP_SYS_ADMIN");
  app.add_option("--host-root", host_root,
                 "the host's / as this agent sees it, for /var/run/netns and "
                 "the container runtime's state (pods)")
      ->capture_default_str();
  std::string policy_file;
  std::string audit_log;
  std::string policy_reload_interval = "2s";
  bool insecure_non_loopback = false;
  app.add_option("--tls-cert", options.tls.cert_file,
                 "server certificate chain (PEM); enables TLS");
  app.add_option("--tls-key", options.tls.key_file, "server private key (PEM)");
  app.add_option("--tls-client-ca", options.tls.client_ca_file,
                 "verify client certificates against this CA bundle (PEM)");
  app.add_flag("--require-client-cert", options.tls.require_client_cert,
               "mutual TLS: refuse clients without a valid certificate");
  app.add_option("--token-file", options.token_file,
                 "bearer tokens, lines 'TOKEN IDENTITY'; tokens are never "
                 "logged");
  app.add_option("--policy", policy_file,
                 "authorization policy (sockagent.v1.Policy, text or JSON); "
                 "deny-by-default");
  app.add_option("--policy-reload-interval", policy_reload_interval,
                 "how often the policy file is checked for changes")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_option("--audit-log", audit_log,
                 "JSON audit lines to FILE ('-' = stderr; off when empty)");
  app.add_option("--max-concurrent-streams", options.max_concurrent_streams,
                 "HTTP/2 streams per connection")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  std::string max_connection_idle = "10m";
  std::string keepalive_time = "5s";
  std::string keepalive_timeout = "5s";
  int64_t fd_reserve = -1;
  std::string max_connection_age = "24h";
  std::string max_connection_age_grace = "5m";
  app.add_option("--max-connections", options.max_connections,
                 "concurrent connections to the gRPC port (0 = no cap); "
                 "beyond it a connection may only ask for health")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--connection-health-headroom", options.health_headroom,
                 "connections beyond --max-connections still accepted for "
                 "health checks; the rest are closed at once")
      ->check(CLI::Range(0, 1 << 16))
      ->capture_default_str();
  app.add_option("--keepalive-time", keepalive_time,
                 "ping a connection after this long without traffic")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_option("--keepalive-timeout", keepalive_timeout,
                 "close a connection whose ping is not answered within this; "
                 "a hung client's calls end and its sessions with them")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_option("--fd-reserve", fd_reserve,
                 "descriptors kept free of callers' sockets for connections "
                 "and the agent itself; callers may hold RLIMIT_NOFILE less "
                 "this (-1 = max-connections + headroom + 64, at most half)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-connection-idle", max_connection_idle,
                 "close a connection without calls for this long")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_option("--max-connection-age", max_connection_age,
                 "GOAWAY to connections older than this (0s = never)")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_option("--max-connection-age-grace", max_connection_age_grace,
                 "how long calls may finish after the age GOAWAY")
      ->check(DurationValidator())
      ->capture_default_str();
  app.add_flag("--insecure-allow-non-loopback-without-tls",
               insecure_non_loopback,
               "DANGEROUS: serve plaintext on a non-loopback address");
  app.config_formatter(std::make_shared<sockagent::ProtoConfigFormatter>());
  app.allow_config_extras(CLI::config_extras_mode::error);
  CLI::Option* config_option = app.set_config(
      "--config", "", "read flags from FILE (AgentConfig, text or JSON)");
  app.add_option_function<std::string>(
         "--check-config",
         [&](const std::string& file) {
           check_config = file;
           config_option->add_result(file);
         },
         "validate FILE as --config would, then exit (0 = valid)")
      ->trigger_on_parse();
  // The config file is parsed first, so that its errors name the file, the
  // line and what is wrong (exit 2, as every configuration error).
  const std::string config_path = ConfigPathOf(argc, argv);
  std::string config_text;
  if (!config_path.empty()) {
    if (absl::StatusOr<sockagent::v1::AgentConfig> loaded =
            sockagent::LoadAgentConfig(config_path);
        !loaded.ok()) {
      std::fprintf(stderr, "sockagentd: %s\n",
                   std::string(loaded.status().message()).c_str());
      return 2;
    }
    std::ifstream in(config_path);
    config_text.assign(std::istreambuf_iterator<char>(in),
                       std::istreambuf_iterator<char>());
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(
        stderr, "sockagentd: %s\n",
        DescribeParseError(e.what(), argc, argv, config_path, config_text)
            .c_str());
    return 2;
  }

  if (absl::Status logging = sockagent::SetUpLogging(log_format, log_level);
      !logging.ok()) {
    std::fprintf(stderr, "sockagentd: %s\n", logging.ToString().c_str());
    return 2;
  }

  if (!sockagent::IsLoopbackListenAddress(options.listen_address) &&
      options.tls.cert_file.empty()) {
    if (!insecure_non_loopback) {
      spdlog::error(
          "refusing to listen on {}: without TLS the agent serves only "
          "loopback addresses (127.0.0.0/8, ::1), because whoever reaches it "
          "gets this host's place on the network; give --tls-cert and "
          "--tls-key (and --tls-client-ca --require-client-cert), or "
          "--insecure-allow-non-loopback-without-tls",
          options.listen_address);
      return 2;
    }
    spdlog::warn(
        "INSECURE: serving plaintext gRPC on non-loopback {} "
        "(--insecure-allow-non-loopback-without-tls): anyone who reaches it "
        "can use this host's network",
        options.listen_address);
  }
  if (!check_config.empty()) {
    std::printf("%s: valid\n", check_config.c_str());
    return 0;
  }
  const std::string config_file =
      config_option->count() > 0 ? config_option->as<std::string>() : "";
  const bool log_level_flag = OnCommandLine(argc, argv, "--log-level");
  options.core.sessions.default_ttl = ParseDurationOrDie(session_ttl);
  options.core.sessions.max_ttl = ParseDurationOrDie(max_session_ttl);
  options.core.sessions.max_sessions = max_sessions;
  options.core.max_sockets_per_session = max_sockets;
  options.core.max_send_bytes = max_message;
  {
    std::string root(absl::StripSuffix(host_root, "/"));
    options.core.netns.netns_dir = root + "/var/run/netns";
    options.core.netns.containerd_dir =
        root + "/run/containerd/io.containerd.runtime.v2.task/k8s.io";
    options.core.netns.crio_dir =
        root + "/run/containers/storage/overlay-containers";
  }
  for (const std::string& text : labels) {
    options.core.labels.insert(*sockagent::ParseLabel(text, "--label"));
  }
  options.core.max_recv_bytes = max_message;
  options.drain_timeout = ParseDurationOrDie(drain_timeout);
  options.max_connection_idle = ParseDurationOrDie(max_connection_idle);
  options.keepalive_time = ParseDurationOrDie(keepalive_time);
  options.keepalive_timeout = ParseDurationOrDie(keepalive_timeout);
  options.fd_reserve = fd_reserve;
  options.max_connection_age = ParseDurationOrDie(max_connection_age);
  options.max_connection_age_grace =
      ParseDurationOrDie(max_connection_age_grace);

  sockagent::PolicyEngine policy;
  options.core.policy = &policy;
  std::unique_ptr<sockagent::PolicyReloader> policy_reloader;
  if (!policy_file.empty()) {
    policy_reloader = std::make_unique<sockagent::PolicyReloader>(
        &policy, policy_file, ParseDurationOrDie(policy_reload_interval));
    if (!policy_reloader->Reload().ok()) return 2;
  }
  std::unique_ptr<sockagent::AuditLog> audit;
  if (!audit_log.empty()) {
    absl::StatusOr<std::unique_ptr<sockagent::AuditLog>> opened =
        sockagent::AuditLog::Open(audit_log);
    if (!opened.ok()) {
      spdlog::error("{}", opened.status().ToString());
      return 2;
    }
    audit = *std::move(opened);
    options.core.audit = audit.get();
  }

  // Signals go to one sigwait loop, never to a handler: gRPC's shutdown is
  // not async-signal-safe. Block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  RaiseFileLimit();

  for (absl::string_view prefix :
       absl::StrSplit(nat64_prefixes, ',', absl::SkipWhitespace())) {
    options.nat64_prefixes.emplace_back(absl::StripAsciiWhitespace(prefix));
  }
  std::unique_ptr<sockagent::AgentMetrics> metrics;
  if (!metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<sockagent::AgentMetrics>> started =
        sockagent::AgentMetrics::Start(metrics_listen);
    if (!started.ok()) {
      spdlog::error("{}", std::string(started.status().message()));
      return 1;
    }
    metrics = *std::move(started);
    options.protected_ports.push_back(static_cast<uint16_t>(metrics->port()));
    options.interceptors = [m = metrics.get()] {
      std::vector<std::unique_ptr<
          grpc::experimental::ServerInterceptorFactoryInterface>>
          factories;
      factories.push_back(m->InterceptorFactory());
      return factories;
    };
  }

  absl::StatusOr<std::unique_ptr<sockagent::AgentServer>> server =
      sockagent::AgentServer::Start(options);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  if (metrics != nullptr) {
    metrics->AttachCore(&(*server)->core());
    spdlog::info("metrics on {} (port {})", metrics_listen, metrics->port());
  }
  if ((*server)->health_port() != 0) {
    spdlog::info("health on {} (port {})", options.health_listen,
                 (*server)->health_port());
  }
  const std::string incarnation = (*server)->core().incarnation();
  spdlog::info(
      "sockagentd {} serving on {} (port {}), incarnation {}, {} io threads",
      sockagent::kAgentVersion, options.listen_address, (*server)->port(),
      incarnation, options.core.io_threads);
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << (*server)->port() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }

  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal == SIGHUP) {
      if (policy_reloader != nullptr) policy_reloader->Reload().IgnoreError();
      if (absl::Status tokens = (*server)->authenticator().Reload();
          !tokens.ok()) {
        spdlog::error("SIGHUP: keeping the previous tokens: {}",
                      std::string(tokens.message()));
      }
      spdlog::info("SIGHUP: reloaded the policy and the tokens");
      if (config_file.empty() || log_level_flag) continue;
      absl::StatusOr<sockagent::v1::AgentConfig> config =
          sockagent::LoadAgentConfig(config_file);
      if (!config.ok()) {
        spdlog::error("SIGHUP: keeping the running config: {}",
                      config.status().ToString());
        continue;
      }
      const std::string level =
          config->has_log_level() ? config->log_level() : "info";
      if (!sockagent::IsLogLevel(level)) {
        spdlog::error("SIGHUP: keeping the running config: log_level '{}'",
                      level);
        continue;
      }
      // Logged before the change, so it shows even when the level rises.
      spdlog::info("SIGHUP: reloaded {}: log level {}", config_file, level);
      (void)sockagent::SetLogLevel(level);
      continue;
    }
    spdlog::info("{}: draining (deadline {})",
                 signal == SIGTERM ? "SIGTERM" : "SIGINT",
                 absl::FormatDuration(options.drain_timeout));
    break;
  }
  policy_reloader.reset();
  (*server)->Drain();
  if (metrics != nullptr) metrics->AttachCore(nullptr);
  server->reset();
  spdlog::info("exit 0");
  return 0;
}
