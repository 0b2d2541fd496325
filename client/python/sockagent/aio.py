"""sockagent.aio: the same client for asyncio, on grpc.aio.

    import sockagent.aio

    async with sockagent.aio.Agent("127.0.0.1:7700") as agent:
        server = await agent.create_server(("127.0.0.1", 0))
        client = await agent.create_connection(await server.getsockname())
        conn, peer = await server.accept()
        await client.sendall(b"ping")
        assert await conn.recv(4) == b"ping"

Every call that reaches the agent is a coroutine; gettimeout(),
getblocking() and the family/type/proto attributes are not. Addresses,
results, timeouts (the agent's, so a waiting call occupies no thread and no
task beyond the awaiting one) and exceptions are those of the synchronous
client (see sockagent.errors). The session is renewed by a task every ttl/3.
An Agent and its sockets belong to the event loop that opened the Agent.
"""

import asyncio
import os
import socket as _socket
import weakref

import grpc
import grpc.aio

from . import _address
from . import _proxy
from . import errors as _errors
from ._agent import (AgentInfo, SESSION_METADATA_KEY, _GLOBAL_DEFAULT_TIMEOUT,
                     _MAX_MESSAGE_BYTES, _MIN_RENEW_PERIOD, _CLOSE_TIMEOUT,
                     _credentials, _enum, _message_to_dict)
# Agent is here; its sockets and proxies live in _aio_socket.py and
# _aio_proxy.py, and are imported from here (__all__).
from ._aio_proxy import Proxy
from ._aio_socket import RemoteSocket
from ._socket import TrafficResult  # noqa: F401  (sockagent.aio.TrafficResult)
from ._stubs import pb, sockagent_pb2_grpc

__all__ = ["Agent", "RemoteSocket", "Proxy"]


class Agent:
    """asyncio twin of sockagent.Agent: ``async with Agent(target, ...)`` or
    ``agent = await Agent(target, ...).open()`` ... ``await agent.close()``.
    Same arguments and errors."""

    def __init__(self, target, *, tls=None, token=None, ttl=None, label="",
                 bind=True, connect_timeout=10.0, call_timeout=None):
        self.target = target
        self._bind_requested = bind
        self._hold = None
        self.bound = False
        self._tls = tls
        self._token = token
        self._requested_ttl = ttl
        self._label = label
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._channel = None
        self._renewer = None
        self._closed = False
        self._proxies = weakref.WeakSet()  # stopped by close()
        self.session_id = ""
        self.incarnation = ""
        self.ttl = 0.0

    async def open(self):
        """Connects and creates the session; returns the Agent."""
        credentials, tls_options = _credentials(self._tls)
        options = [("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                   *tls_options]
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(self.target,
                                                      options=options)
        else:
            self._channel = grpc.aio.secure_channel(self.target, credentials,
                                                    options=options)
        try:
            try:
                await asyncio.wait_for(self._channel.channel_ready(),
                                       self._connect_timeout)
            except asyncio.TimeoutError:
                raise _errors.AgentUnavailableError(
                    f"agent {self.target}: cannot reach the agent within "
                    f"{self._connect_timeout:g} s", agent=self.target) \
                    from None
            self._stub = sockagent_pb2_grpc.SocketAgentStub(self._channel)
            auth = ((("authorization", f"Bearer {self._token}"),)
                    if self._token else ())
            self._metadata = auth
            request = pb.CreateSessionRequest(
                label=self._label or f"python asyncio pid {os.getpid()}",
                bind_to_connection=self._bind_requested)
            if self._requested_ttl is not None:
                whole = int(self._requested_ttl)
                request.ttl.seconds = whole
                request.ttl.nanos = int((self._requested_ttl - whole) * 1e9)
            session = await self._call(self._stub.CreateSession, request,
                                       "create_session()")
            self.session_id = session.session_id
            self.incarnation = session.incarnation
            self.ttl = session.ttl.seconds + session.ttl.nanos / 1e9
            self._metadata = ((SESSION_METADATA_KEY, session.session_id),
                              *auth)
            limits = (await self._call(self._stub.GetAgentInfo,
                                       pb.GetAgentInfoRequest(),
                                       "info()")).limits
            if self._bind_requested:
                await self._bind()
        except BaseException:
            await self._channel.close()
            self._closed = True
            raise
        self._max_send = limits.max_send_bytes or (4 << 20)
        self._max_recv = limits.max_recv_bytes or (4 << 20)
        self._renewer = asyncio.get_running_loop().create_task(
            self._renew_loop(), name=f"sockagent-renew-{self.target}")
        return self

    async def __aenter__(self):
        return await self.open()

    async def __aexit__(self, *exc_info):
        await self.close()

    def __repr__(self):
        return (f"<sockagent.aio.Agent {self.target!r} session="
                f"{self.session_id!r}{' closed' if self._closed else ''}>")

    def _check_open(self, name):
        if self._closed or self._channel is None:
            raise _errors.AgentError(
                f"agent {self.target}: {name}: the Agent is "
                f"{'closed' if self._closed else 'not open'}",
                agent=self.target, call=name)

    async def _call(self, method, request, call, timeout=None):
        """Awaits a unary call; ``call`` names it in errors ("info()")."""
        self._check_open(call)
        try:
            return await method(request, metadata=self._metadata,
                                timeout=timeout or self._call_timeout)
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(e, self.target, call) from None

    async def _bind(self):
        """HoldSession, as sockagent.Agent: the session ends with this
        channel's connection. An agent without it keeps the lease only."""
        hold = self._stub.HoldSession(metadata=self._metadata)
        try:
            first = await hold.read()
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                return
            raise _errors.from_rpc_error(e, self.target, "hold_session()") \
                from None
        if first is grpc.aio.EOF:
            raise _errors.AgentError(
                f"agent {self.target}: hold_session(): the agent ended the "
                f"call before binding the session", agent=self.target,
                call="hold_session()")
        self._hold = hold
        self.bound = first.session_id == self.session_id

    async def _renew_loop(self):
        while True:
            period = max(self.ttl / 3 if self.ttl > 0 else 10.0,
                         _MIN_RENEW_PERIOD)
            await asyncio.sleep(period)
            try:
                response = await self._stub.KeepAlive(
                    pb.KeepAliveRequest(), metadata=self._metadata,
                    timeout=period)
                if response.HasField("ttl"):
                    self.ttl = response.ttl.seconds + response.ttl.nanos / 1e9
            except grpc.RpcError:
                pass  # retried at the next period

    async def keepalive(self):
        response = await self._call(self._stub.KeepAlive,
                                    pb.KeepAliveRequest(), "keepalive()")
        self.ttl = response.ttl.seconds + response.ttl.nanos / 1e9
        return self.ttl

    async def close(self):
        """Ends the session (the agent closes its sockets) and the channel.
        Idempotent; returns how many sockets the agent closed (or None)."""
        if self._closed or self._channel is None:
            return None
        # Before the session ends, while the proxies can reach their sockets.
        for proxy in list(self._proxies):
            await proxy.stop()
        if self._closed:
            return None
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
            try:
                await self._renewer
            except asyncio.CancelledError:
                pass
        closed = None
        try:
            response = await self._stub.CloseSession(
                pb.CloseSessionRequest(), metadata=self._metadata,
                timeout=_CLOSE_TIMEOUT)
            closed = response.sockets_closed
        except grpc.RpcError:
            pass
        if self._hold is not None:
            self._hold.cancel()  # CloseSession already ended it
        await self._channel.close()
        return closed

    @property
    def closed(self):
        return self._closed

    async def info(self):
        r = await self._call(self._stub.GetAgentInfo,
                             pb.GetAgentInfoRequest(), "info()")
        return AgentInfo(agent_version=r.agent_version,
                         api_version=r.api_version,
                         features=tuple(r.features),
                         limits=_message_to_dict(r.limits),
                         incarnation=r.incarnation, hostname=r.hostname,
                         stats=_message_to_dict(r.stats))

    async def gethostname(self):
        return (await self._call(self._stub.GetHostname,
                                 pb.GetHostnameRequest(),
                                 "gethostname()")).hostname

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0,
                          flags=0):
        args = (host, port, family, type, proto, flags)
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("ascii")
        if isinstance(port, int):
            port = str(port)
        elif isinstance(port, (bytes, bytearray)):
            port = bytes(port).decode("ascii")
        request = pb.GetAddrInfoRequest(
            host=host or "", port=port or "", family=family, type=type,
            protocol=proto, flags=flags)
        response = await self._call(
            self._stub.GetAddrInfo, request,
            f"getaddrinfo({', '.join(repr(a) for a in args)})")
        return [(_enum(_socket.AddressFamily, r.family),
                 _enum(_socket.SocketKind, r.type), r.protocol,
                 r.canonical_name, _address.from_proto(r.address, r.family))
                for r in response.results]

    async def socket(self, family=_socket.AF_INET, type=_socket.SOCK_STREAM,
                     proto=0):
        """A RemoteSocket on the agent (socket.socket's arguments)."""
        return await RemoteSocket._create(self, family, type, proto)

    async def proxy(self, listen, upstream, *, udp=False, to_upstream=None,
                    to_client=None, reset_as_fin=False, idle_timeout=None,
                    on_end=None):
        """A proxy on the agent (a started sockagent.aio.Proxy), as
        sockagent.Agent.proxy()."""
        options = _proxy.check_arguments(listen, upstream, udp, to_upstream,
                                         to_client, reset_as_fin,
                                         idle_timeout, on_end)
        self._check_open("proxy()")
        proxy = Proxy(self, listen, upstream, udp, reset_as_fin,
                      idle_timeout, on_end, options)
        try:
            await proxy._open()
        except BaseException:
            await proxy.stop()
            raise
        self._proxies.add(proxy)
        return proxy

    async def create_connection(self, address,
                                timeout=_GLOBAL_DEFAULT_TIMEOUT,
                                source_address=None, *, all_errors=False):
        host, port = address
        errors = []
        for family, type_, proto, _, sockaddr in await self.getaddrinfo(
                host, port, 0, _socket.SOCK_STREAM):
            sock = None
            try:
                sock = await self.socket(family, type_, proto)
                if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                    await sock.settimeout(timeout)
                if source_address:
                    await sock.bind(source_address)
                await sock.connect(sockaddr)
                return sock
            except OSError as exc:
                if not all_errors:
                    errors.clear()
                errors.append(exc)
                if sock is not None:
                    await sock.close()
        if errors:
            if not all_errors:
                raise errors[0]
            raise ExceptionGroup("create_connection failed", errors)
        raise OSError("getaddrinfo returns an empty list")

    async def create_server(self, address, *, family=_socket.AF_INET,
                            backlog=None, reuse_port=False,
                            dualstack_ipv6=False):
        if dualstack_ipv6 and family != _socket.AF_INET6:
            raise ValueError("dualstack_ipv6 requires AF_INET6 family")
        sock = await self.socket(family, _socket.SOCK_STREAM)
        try:
            try:
                await sock.setsockopt(_socket.SOL_SOCKET,
                                      _socket.SO_REUSEADDR, 1)
            except OSError:
                pass
            if reuse_port:
                await sock.setsockopt(_socket.SOL_SOCKET,
                                      _socket.SO_REUSEPORT, 1)
            if family == _socket.AF_INET6:
                await sock.setsockopt(_socket.IPPROTO_IPV6,
                                      _socket.IPV6_V6ONLY,
                                      0 if dualstack_ipv6 else 1)
            try:
                await sock.bind(address)
            except OSError as err:
                if isinstance(err, _errors.AgentError) or err.errno is None:
                    raise
                raise _errors.remote_oserror(
                    err.errno,
                    f"{err.strerror} (while attempting to bind on address "
                    f"{address!r})",
                    getattr(err, "sockagent_context", "")) from None
            await sock.listen(backlog)
            return sock
        except BaseException:
            await sock.close()
            raise
