"""pytest plugin: agents and remote sockets as fixtures.

Enabled by the ``pytest11`` entry point when the package is installed, or
with ``-p sockagent.pytest_plugin``.

Options (each also an environment variable):

  --sockagent NAME=HOST:PORT   an agent by name; repeatable
                               (SOCKAGENT_AGENTS="a=h:p,b=h:p"). A bare
                               HOST:PORT is named "default".
  --sockagent-token TOKEN      bearer token (SOCKAGENT_TOKEN)
  --sockagent-tls-ca FILE      TLS: verify agents against this CA
                               (SOCKAGENT_TLS_CA); with --sockagent-tls-cert
                               and --sockagent-tls-key, mutual TLS
  --sockagent-tls-server-name NAME  the name in the agents' certificates
  --sockagentd PATH            the agent binary started when no agent is
                               given (SOCKAGENTD; default: the build tree's
                               build/server/sockagentd, then PATH)

Fixtures:

  sockagent_agent    the default agent (a sockagent.Agent): "default", or
                     the only one given; with no --sockagent at all, a local
                     sockagentd started on a free loopback port for the test
                     session and stopped (by pid) at its end.
  sockagent_agents   a mapping name -> Agent of the agents given; with none
                     given, each name asked for gets its own local sockagentd.
  sockagent_socket   a factory: sockagent_socket(family, type, proto,
                     agent=None) -> RemoteSocket on the default (or given)
                     agent, closed when the test ends, pass or fail.
  sockagent_proxy    a factory: sockagent_proxy(listen, upstream, *,
                     agent=None, **options) -> sockagent.Proxy (see
                     Agent.proxy) on the default (or given) agent, stopped
                     when the test ends, pass or fail.
  sockagent_daemons  the local sockagentd processes started for the session
                     (name -> .pid, .target, .log_path).

Every Agent a test uses opens its own session and closes it at the test's
end, so the agent closes whatever the test left open. A failed socket call
reads like "agent 127.0.0.1:7700: connect(('127.0.0.1', 1)): [Errno 111]
Connection refused"; a failed test's report also lists the agents it used.
"""

import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


def pytest_addoption(parser):
    group = parser.getgroup("sockagent", "sockagent remote sockets")
    group.addoption("--sockagent", action="append", default=[],
                    metavar="NAME=HOST:PORT",
                    help="an agent by name (repeatable; env SOCKAGENT_AGENTS "
                         "'a=h:p,b=h:p'); a bare HOST:PORT is 'default'")
    group.addoption("--sockagent-token", default=None, metavar="TOKEN",
                    help="bearer token for the agents (env SOCKAGENT_TOKEN)")
    group.addoption("--sockagent-tls-ca", default=None, metavar="FILE",
                    help="TLS: CA bundle verifying the agents "
                         "(env SOCKAGENT_TLS_CA)")
    group.addoption("--sockagent-tls-cert", default=None, metavar="FILE",
                    help="mutual TLS: client certificate "
                         "(env SOCKAGENT_TLS_CERT)")
    group.addoption("--sockagent-tls-key", default=None, metavar="FILE",
                    help="mutual TLS: client key (env SOCKAGENT_TLS_KEY)")
    group.addoption("--sockagent-tls-server-name", default=None,
                    metavar="NAME",
                    help="TLS: the name the agents' certificates carry "
                         "(env SOCKAGENT_TLS_SERVER_NAME)")
    group.addoption("--sockagentd", default=None, metavar="PATH",
                    help="sockagentd to start when no agent is given "
                         "(env SOCKAGENTD)")


def pytest_configure(config):
    # Bad --sockagent values fail the run at once, not at the first fixture.
    _Targets(config)


def _parse_targets(entries):
    targets = {}
    for entry in entries:
        for item in entry.replace(",", " ").split():
            name, sep, target = item.partition("=")
            if not sep:
                name, target = "default", item
            if not name or not target or ":" not in target:
                raise pytest.UsageError(
                    f"--sockagent {item!r}: expected NAME=HOST:PORT")
            targets[name] = target
    return targets


def _option(config, name, env):
    value = config.getoption(name)
    return value if value is not None else os.environ.get(env)


class _LocalAgent:
    """A sockagentd process on a free loopback port, stopped by its pid."""

    def __init__(self, binary, name, extra_args=()):
        self.name = name
        self._dir = tempfile.mkdtemp(prefix=f"sockagent-{name}-")
        port_file = os.path.join(self._dir, "port")
        self.log_path = os.path.join(self._dir, "sockagentd.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [binary, "--listen", "127.0.0.1:0", "--port-file", port_file,
                 "--log-level", "warn", *extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                with open(port_file) as f:
                    port = f.read().strip()
                if port:
                    break
            except FileNotFoundError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self._log_tail()
                self.stop()
                raise RuntimeError(
                    f"sockagent: {binary} did not start "
                    f"(exit {self.process.returncode}); log:\n{log}")
            time.sleep(0.02)
        self.target = f"127.0.0.1:{port}"

    def _log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(_STOP_TIMEOUT)
        shutil.rmtree(self._dir, ignore_errors=True)


def _find_sockagentd(config):
    explicit = _option(config, "sockagentd", "SOCKAGENTD")
    if explicit:
        return os.path.join(str(config.invocation_params.dir), explicit)
    candidates = [pathlib.Path(str(config.rootpath)) / "build" / "server" /
                  "sockagentd",
                  pathlib.Path(__file__).resolve().parents[3] / "build" /
                  "server" / "sockagentd"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("sockagentd")
    if found:
        return found
    raise pytest.UsageError(
        "sockagent: no agent given (--sockagent NAME=HOST:PORT or "
        "SOCKAGENT_AGENTS) and no sockagentd to start: build it "
        "(ninja -C build sockagentd) or name it with --sockagentd PATH. "
        f"Looked in: {', '.join(str(c) for c in candidates)} and PATH")


class _Targets:
    """The session's agents: the configured targets, or local daemons
    started on first use (one per name)."""

    def __init__(self, config):
        self._config = config
        entries = list(config.getoption("sockagent"))
        if os.environ.get("SOCKAGENT_AGENTS"):
            entries.insert(0, os.environ["SOCKAGENT_AGENTS"])
        self.configured = _parse_targets(entries)
        self.local = {}

    def names(self):
        return list(self.configured or self.local)

    def default_name(self):
        if not self.configured:
            return "default"
        if "default" in self.configured:
            return "default"
        if len(self.configured) == 1:
            return next(iter(self.configured))
        raise pytest.UsageError(
            "sockagent: several agents given "
            f"({', '.join(sorted(self.configured))}) and none is named "
            "'default'; use sockagent_agents[NAME] or name one 'default'")

    def target(self, name):
        if self.configured:
            try:
                return self.configured[name]
            except KeyError:
                raise KeyError(
                    f"sockagent: no agent named {name!r}; given: "
                    f"{', '.join(sorted(self.configured))}") from None
        if name not in self.local:
            self.local[name] = _LocalAgent(_find_sockagentd(self._config),
                                           name)
        return self.local[name].target

    def stop(self):
        for agent in self.local.values():
            agent.stop()
        self.local.clear()


@pytest.fixture(scope="session")
def _sockagent_targets(request):
    targets = _Targets(request.config)
    yield targets
    targets.stop()


@pytest.fixture(scope="session")
def sockagent_daemons(_sockagent_targets):
    """The local sockagentd processes started for this session, by name
    (each with .pid, .target, .log_path); empty when agents are given."""
    return _sockagent_targets.local


class AgentMap:
    """name -> sockagent.Agent, connected on first use and closed (ending
    its session) at the end of the test."""

    def __init__(self, targets, config, test_name):
        self._targets = targets
        self._config = config
        self._label = f"pytest {test_name}"
        self._agents = {}

    def _connect(self, name):
        import sockagent
        target = self._targets.target(name)
        tls = None
        ca = _option(self._config, "sockagent_tls_ca", "SOCKAGENT_TLS_CA")
        cert = _option(self._config, "sockagent_tls_cert",
                       "SOCKAGENT_TLS_CERT")
        key = _option(self._config, "sockagent_tls_key", "SOCKAGENT_TLS_KEY")
        server_name = _option(self._config, "sockagent_tls_server_name",
                              "SOCKAGENT_TLS_SERVER_NAME")
        if ca or cert or key or server_name:
            tls = sockagent.TLS(ca_file=ca, cert_file=cert, key_file=key,
                                server_name=server_name)
        token = _option(self._config, "sockagent_token", "SOCKAGENT_TOKEN")
        return sockagent.Agent(target, tls=tls, token=token,
                               label=self._label)

    def __getitem__(self, name):
        agent = self._agents.get(name)
        if agent is None:
            agent = self._agents[name] = self._connect(name)
        return agent

    def __contains__(self, name):
        return name in self._agents or name in self._targets.names() \
            or not self._targets.configured

    def __iter__(self):
        return iter(self._targets.names())

    def __len__(self):
        return len(self._targets.names())

    def keys(self):
        return self._targets.names()

    def items(self):
        return [(name, self[name]) for name in self._targets.names()]

    def connected(self):
        return dict(self._agents)

    def close(self):
        errors = []
        for agent in self._agents.values():
            try:
                agent.close()
            except Exception as e:  # keep closing the others
                errors.append(e)
        self._agents.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def sockagent_agents(request, _sockagent_targets):
    agents = AgentMap(_sockagent_targets, request.config, request.node.nodeid)
    request.node._sockagent_agents = agents
    yield agents
    agents.close()


@pytest.fixture
def sockagent_agent(sockagent_agents, _sockagent_targets):
    return sockagent_agents[_sockagent_targets.default_name()]


@pytest.fixture
def sockagent_socket(sockagent_agent):
    import socket
    sockets = []

    def make(family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0, *,
             agent=None):
        sock = (agent or sockagent_agent).socket(family, type, proto)
        sockets.append(sock)
        return sock

    yield make
    for sock in sockets:
        try:
            sock.close()
        except Exception:  # the session's end closes it anyway
            pass


@pytest.fixture
def sockagent_proxy(sockagent_agents, _sockagent_targets):
    proxies = []

    def make(listen, upstream, *, agent=None, **options):
        # The default agent only when none is given: a suite of named
        # agents has none.
        if agent is None:
            agent = sockagent_agents[_sockagent_targets.default_name()]
        proxy = agent.proxy(listen, upstream, **options)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    agents = getattr(item, "_sockagent_agents", None)
    if report.failed and agents is not None and agents.connected():
        lines = [f"{name}: {agent.target} (session {agent.session_id})"
                 for name, agent in agents.connected().items()]
        report.sections.append(("sockagent agents", "\n".join(lines)))
