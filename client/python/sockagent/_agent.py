"""Agent: a connection to one sockagentd and a session on it.

    with sockagent.Agent("127.0.0.1:7700") as agent:
        with agent.socket() as s:
            s.connect(("127.0.0.1", 80))

The session is a lease on the agent: every socket created here belongs to it,
and the agent closes them all when the session ends: at close(), or as soon
as this process's connection is gone (the session is bound to it with a
HoldSession call, unless bind=False; a killed process's sockets go at once,
a hung one's within the agent's keepalive bound), or when the lease lapses.
A daemon thread renews the lease every ttl/3 while the Agent is open.
Thread-safe.
"""

import dataclasses
import os
import socket as _socket
import threading
import types
import weakref

import grpc
from google.protobuf import duration_pb2

from . import _address
from . import errors as _errors
from ._proxy import Proxy
from ._socket import RemoteSocket
from ._stubs import pb, sockagent_pb2_grpc

SESSION_METADATA_KEY = "sockagent-session"
# A payload may be max_send/max_recv bytes (4 MiB by default) plus framing:
# gRPC's default limit of exactly 4 MiB is too small.
_MAX_MESSAGE_BYTES = 64 << 20
_GLOBAL_DEFAULT_TIMEOUT = _socket._GLOBAL_DEFAULT_TIMEOUT
_MIN_RENEW_PERIOD = 0.1
_CLOSE_TIMEOUT = 2.0


@dataclasses.dataclass(frozen=True)
class TLS:
    """TLS for the channel: ``ca_file`` verifies the agent (None: the
    system's roots); ``cert_file`` + ``key_file`` present a client
    certificate (mutual TLS); ``server_name`` is the name the agent's
    certificate must carry when it differs from the target's host."""
    ca_file: str = None
    cert_file: str = None
    key_file: str = None
    server_name: str = None


@dataclasses.dataclass(frozen=True)
class AgentInfo:
    """What GetAgentInfo reports: versions, features, limits (a dict of
    sockagent.v1.Limits' fields, durations in seconds), the incarnation
    (changes on every start), the hostname and load statistics (a dict)."""
    agent_version: str
    api_version: str
    features: tuple
    limits: dict
    incarnation: str
    hostname: str
    stats: dict


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _credentials(tls):
    if tls is None or tls is False:
        return None, ()
    if tls is True:
        return grpc.ssl_channel_credentials(), ()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls, ()
    if isinstance(tls, dict):
        tls = TLS(**tls)
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ValueError("tls: cert_file and key_file go together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file) if tls.ca_file else None,
        private_key=_read(tls.key_file) if tls.key_file else None,
        certificate_chain=_read(tls.cert_file) if tls.cert_file else None)
    options = ()
    if tls.server_name:
        options = (("grpc.ssl_target_name_override", tls.server_name),)
    return credentials, options


def _message_to_dict(message):
    result = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if isinstance(value, duration_pb2.Duration):
            value = value.seconds + value.nanos / 1e9
        result[field.name] = value
    return result


class Agent:
    """A channel to the agent at ``target`` ("host:port") and a session.

    ``tls``: None (plaintext, the agent's loopback dev mode), True (TLS with
    the system's roots), a ``sockagent.TLS`` (or a dict of its fields) or a
    ``grpc.ChannelCredentials``. ``token``: sent as a bearer token on every
    call. ``ttl``: the lease in seconds (None: the agent's default).
    ``label``: shown in the agent's logs and session list.
    ``bind``: bind the session to this channel's connection (the default):
    the agent ends it as soon as the connection closes, so a killed test's
    sockets go at once; an agent without HoldSession keeps the lease only.
    ``connect_timeout``: how long to wait for the agent. ``call_timeout``:
    the deadline (seconds) of every call that does not wait for a socket;
    None (the default, as in the C++ client) sets none: an unreachable
    agent still fails at once (UNAVAILABLE), only a hung one is waited for.

    Raises AgentUnavailableError when the agent cannot be reached,
    AuthenticationError / PolicyDeniedError / QuotaExceededError when it
    refuses the session.
    """

    def __init__(self, target, *, tls=None, token=None, ttl=None, label="",
                 bind=True, connect_timeout=10.0, call_timeout=None):
        self.target = target
        self._call_timeout = call_timeout
        credentials, tls_options = _credentials(tls)
        options = [("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                   *tls_options]
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, credentials,
                                                options=options)
        self._closed = False
        self._lock = threading.Lock()
        self._proxies = weakref.WeakSet()  # stopped by close()
        self._stop = threading.Event()
        self._renewer = None
        self._hold = None
        self.bound = False
        self.session_id = ""
        try:
            grpc.channel_ready_future(self._channel).result(
                timeout=connect_timeout)
        except grpc.FutureTimeoutError:
            self._channel.close()
            raise _errors.AgentUnavailableError(
                f"agent {target}: cannot reach the agent within "
                f"{connect_timeout:g} s", agent=target) from None
        self._stub = sockagent_pb2_grpc.SocketAgentStub(self._channel)
        auth = (("authorization", f"Bearer {token}"),) if token else ()
        self._metadata = auth
        try:
            request = pb.CreateSessionRequest(
                label=label or f"python pid {os.getpid()}",
                bind_to_connection=bind)
            if ttl is not None:
                whole = int(ttl)
                request.ttl.seconds = whole
                request.ttl.nanos = int((ttl - whole) * 1e9)
            session = self._call(self._stub.CreateSession, request,
                                 "create_session")
            self.session_id = session.session_id
            self.incarnation = session.incarnation
            self.ttl = session.ttl.seconds + session.ttl.nanos / 1e9
            self._metadata = ((SESSION_METADATA_KEY, session.session_id),
                              *auth)
            limits = self._call(self._stub.GetAgentInfo,
                                pb.GetAgentInfoRequest(), "info").limits
            if bind:
                self._bind(connect_timeout)
        except BaseException:
            self._channel.close()
            raise
        self._max_send = limits.max_send_bytes or (4 << 20)
        self._max_recv = limits.max_recv_bytes or (4 << 20)
        self._renewer = threading.Thread(
            target=self._renew_loop, name=f"sockagent-renew-{target}",
            daemon=True)
        self._renewer.start()

    # --- session -----------------------------------------------------------

    def _bind(self, timeout):
        """Opens HoldSession and waits for the agent to confirm the binding.
        The request stream stays open until close(); the call then ends when
        the session does."""
        release = threading.Event()
        self._release = release

        def requests():
            release.wait()
            yield pb.HoldSessionRequest(release=True)

        hold = self._stub.HoldSession(requests(), metadata=self._metadata)
        try:
            first = next(hold)
        except grpc.RpcError as e:
            release.set()
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                return  # an older agent: lease only
            raise _errors.from_rpc_error(e, self.target, "hold_session()") \
                from None
        except StopIteration:
            release.set()
            raise _errors.AgentError(
                f"agent {self.target}: hold_session(): the agent ended the "
                f"call before binding the session", agent=self.target,
                call="hold_session()") from None
        self._hold = hold
        self.bound = first.session_id == self.session_id

    def _check_open(self, name):
        if self._closed:
            raise _errors.AgentError(
                f"agent {self.target}: {name}: the Agent is closed (its "
                f"session ended)", agent=self.target, call=name)

    def _call(self, method, request, name, timeout=None):
        self._check_open(f"{name}()")
        try:
            return method(request, metadata=self._metadata,
                          timeout=timeout or self._call_timeout)
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(e, self.target, f"{name}()") \
                from None

    def _renew_loop(self):
        while True:
            period = max(self.ttl / 3 if self.ttl > 0 else 10.0,
                         _MIN_RENEW_PERIOD)
            if self._stop.wait(period):
                return
            try:
                response = self._stub.KeepAlive(
                    pb.KeepAliveRequest(), metadata=self._metadata,
                    timeout=period)
                if response.HasField("ttl"):
                    self.ttl = response.ttl.seconds + response.ttl.nanos / 1e9
            except grpc.RpcError:
                # Retried at the next period; a lapsed session shows as
                # HandleNotFoundError on the next socket call.
                pass
            except ValueError:  # the channel was closed under us
                return

    def keepalive(self):
        """Renews the lease now; returns the granted ttl in seconds."""
        response = self._call(self._stub.KeepAlive, pb.KeepAliveRequest(),
                              "keepalive")
        self.ttl = response.ttl.seconds + response.ttl.nanos / 1e9
        return self.ttl

    def close(self):
        """Ends the session (the agent closes every socket of it) and the
        channel. Idempotent. Returns how many sockets the agent closed (None
        if it could not be told)."""
        with self._lock:
            if self._closed:
                return None
        # Before the session ends: a proxy closes its sockets and joins its
        # threads while the Agent can still reach them.
        for proxy in list(self._proxies):
            proxy.stop()
        with self._lock:
            if self._closed:
                return None
            self._closed = True
        self._stop.set()
        closed = None
        try:
            response = self._stub.CloseSession(
                pb.CloseSessionRequest(), metadata=self._metadata,
                timeout=_CLOSE_TIMEOUT)
            closed = response.sockets_closed
        except grpc.RpcError:
            pass
        if self._hold is not None:
            # CloseSession ended the hold (ABORTED); end our side too.
            self._hold.cancel()
            self._release.set()
        if self._renewer is not None and \
                self._renewer is not threading.current_thread():
            self._renewer.join()
        self._channel.close()
        return closed

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return (f"<sockagent.Agent {self.target!r} session="
                f"{self.session_id!r}{' closed' if self._closed else ''}>")

    # --- the host ----------------------------------------------------------

    def info(self):
        """The agent's version, features, limits, incarnation, hostname and
        load (an AgentInfo)."""
        r = self._call(self._stub.GetAgentInfo, pb.GetAgentInfoRequest(),
                       "info")
        return AgentInfo(agent_version=r.agent_version,
                         api_version=r.api_version,
                         features=tuple(r.features),
                         limits=_message_to_dict(r.limits),
                         incarnation=r.incarnation, hostname=r.hostname,
                         stats=_message_to_dict(r.stats))

    def gethostname(self):
        """socket.gethostname() on the agent's host."""
        return self._call(self._stub.GetHostname, pb.GetHostnameRequest(),
                          "gethostname").hostname

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        """socket.getaddrinfo() on the agent's host: a list of (family, type,
        proto, canonname, sockaddr) exactly as Python returns them."""
        args = (host, port, family, type, proto, flags)
        self._check_open("getaddrinfo()")
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("ascii")
        elif host is not None and not isinstance(host, str):
            raise TypeError("getaddrinfo() argument 1 must be string or None")
        if isinstance(port, int):
            port = str(port)
        elif isinstance(port, (bytes, bytearray)):
            port = bytes(port).decode("ascii")
        elif port is not None and not isinstance(port, str):
            raise OSError("Int or String expected")
        request = pb.GetAddrInfoRequest(
            host=host or "", port=port or "", family=family, type=type,
            protocol=proto, flags=flags)
        try:
            response = self._stub.GetAddrInfo(request,
                                              metadata=self._metadata,
                                              timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(
                e, self.target,
                f"getaddrinfo({', '.join(repr(a) for a in args)})") from None
        results = []
        for r in response.results:
            results.append((
                _enum(_socket.AddressFamily, r.family),
                _enum(_socket.SocketKind, r.type),
                r.protocol, r.canonical_name,
                _address.from_proto(r.address, r.family)))
        return results

    # --- sockets -----------------------------------------------------------

    def socket(self, family=_socket.AF_INET, type=_socket.SOCK_STREAM,
               proto=0):
        """socket.socket() on the agent: a RemoteSocket in this session."""
        return RemoteSocket(self, family, type, proto)

    def create_connection(self, address, timeout=_GLOBAL_DEFAULT_TIMEOUT,
                          source_address=None, *, all_errors=False):
        """socket.create_connection() with the sockets on the agent: resolves
        ``address`` there and tries each result in turn."""
        return _create_connection(self.socket, self.getaddrinfo, address,
                                  timeout, source_address, all_errors)

    def create_server(self, address, *, family=_socket.AF_INET, backlog=None,
                      reuse_port=False, dualstack_ipv6=False):
        """socket.create_server() on the agent: a listening RemoteSocket."""
        return _create_server(self.socket, address, family, backlog,
                              reuse_port, dualstack_ipv6)

    def proxy(self, listen, upstream, *, udp=False, to_upstream=None,
              to_client=None, reset_as_fin=False, idle_timeout=None,
              on_end=None):
        """A Toxiproxy-style proxy on the agent (a sockagent.Proxy, started):
        it listens on ``listen`` ((host, port), port 0: any; see
        ``.address``) and relays every accepted connection to ``upstream``
        inside the agent; ``udp=True`` relays every client's datagrams
        instead (one upstream socket per client, closed after
        ``idle_timeout`` seconds unused, 60 by default). ``to_upstream`` and
        ``to_client`` are the faults of each direction, dicts of
        RemoteSocket.set_faults() keyword arguments (``{"send_delay": 0.1}``),
        changed while it runs with ``.set_faults()``. ``reset_as_fin``
        passes a client's or upstream's RST on as FIN. ``on_end(connection)``
        runs on a proxy thread as each connection ends (see
        ``.connections``). Stop it with ``.stop()`` or a ``with`` block;
        the Agent's close() stops it too. Raises TypeError/ValueError for a
        bad argument, the socket calls' errors (bind: OSError), and
        sockagent.InvalidRequestError naming a fault the agent refuses."""
        return Proxy(self, listen, upstream, udp=udp,
                     to_upstream=to_upstream, to_client=to_client,
                     reset_as_fin=reset_as_fin, idle_timeout=idle_timeout,
                     on_end=on_end)

    def socket_module(self):
        """An object usable in place of the ``socket`` module whose sockets,
        name lookups and hostname are the agent's (see socket_module())."""
        return _socket_module(self)


def _enum(cls, value):
    try:
        return cls(value)
    except ValueError:
        return value


def _create_connection(make_socket, getaddrinfo, address, timeout,
                       source_address, all_errors):
    host, port = address
    errors = []
    for family, type_, proto, _, sockaddr in getaddrinfo(
            host, port, 0, _socket.SOCK_STREAM):
        sock = None
        try:
            sock = make_socket(family, type_, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            errors.clear()
            return sock
        except OSError as exc:
            if not all_errors:
                errors.clear()
            errors.append(exc)
            if sock is not None:
                sock.close()
    if errors:
        try:
            if not all_errors:
                raise errors[0]
            raise ExceptionGroup("create_connection failed", errors)
        finally:
            errors.clear()
    raise OSError("getaddrinfo returns an empty list")


def _create_server(make_socket, address, family, backlog, reuse_port,
                   dualstack_ipv6):
    if dualstack_ipv6 and family != _socket.AF_INET6:
        raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = make_socket(family, _socket.SOCK_STREAM)
    try:
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        except OSError:
            pass
        if reuse_port:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
        if family == _socket.AF_INET6:
            sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY,
                            0 if dualstack_ipv6 else 1)
        try:
            sock.bind(address)
        except OSError as err:
            if isinstance(err, _errors.AgentError) or err.errno is None:
                raise
            msg = (f"{err.strerror} (while attempting to bind on address "
                   f"{address!r})")
            raise _errors.remote_oserror(
                err.errno, msg,
                getattr(err, "sockagent_context", "")) from None
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise


# Names of the socket module that act on the local host and have no remote
# meaning here: calling them through socket_module() raises.
_LOCAL_ONLY = (
    "socketpair", "fromfd", "fromshare", "dup", "getfqdn", "gethostbyname_ex",
    "gethostbyaddr", "getnameinfo", "if_nameindex", "if_nametoindex",
    "if_indextoname", "sethostname", "send_fds", "recv_fds", "close",
    "getservbyname", "getservbyport", "getprotobyname",
)


def _socket_module(agent):
    module = types.ModuleType(
        "sockagent.socket_module",
        f"The socket module with the sockets of agent {agent.target}.")
    for name, value in vars(_socket).items():
        if not name.startswith("_"):
            setattr(module, name, value)
    module._GLOBAL_DEFAULT_TIMEOUT = _GLOBAL_DEFAULT_TIMEOUT

    def local_only(name):
        def unavailable(*args, **kwargs):
            raise NotImplementedError(
                f"socket.{name}() acts on the local host; it is not "
                f"available for agent {agent.target}")
        unavailable.__name__ = name
        return unavailable

    for name in _LOCAL_ONLY:
        if hasattr(_socket, name):
            setattr(module, name, local_only(name))

    class socket(RemoteSocket):
        """socket.socket on the agent (a RemoteSocket)."""

        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is not None:
                raise ValueError(
                    "a remote socket cannot wrap a local file descriptor")
            RemoteSocket.__init__(self, agent, family, type, proto)

    socket.__module__ = module.__name__
    module.socket = socket
    module.SocketType = socket
    module.agent = agent
    module.gethostname = agent.gethostname
    module.getaddrinfo = agent.getaddrinfo

    def gethostbyname(hostname):
        results = agent.getaddrinfo(hostname, None, _socket.AF_INET)
        return results[0][4][0]

    def create_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT,
                          source_address=None, *, all_errors=False):
        return _create_connection(socket, agent.getaddrinfo, address, timeout,
                                  source_address, all_errors)

    def create_server(address, *, family=_socket.AF_INET, backlog=None,
                      reuse_port=False, dualstack_ipv6=False):
        return _create_server(socket, address, family, backlog, reuse_port,
                              dualstack_ipv6)

    module.gethostbyname = gethostbyname
    module.create_connection = create_connection
    module.create_server = create_server
    return module
