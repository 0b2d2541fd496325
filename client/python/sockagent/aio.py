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
import errno
import inspect
import io
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
from ._socket import (TrafficResult, _SHUT, _STREAM, _TYPE_FLAGS,
                      _as_bytes, _check_timeout, faults_message,
                      getsockopt_buflen, getsockopt_value, listen_backlog,
                      setsockopt_bytes, timeout_request, traffic_request)
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


class RemoteSocket:
    """asyncio twin of sockagent.RemoteSocket: the same methods, as
    coroutines (gettimeout/getblocking and the attributes are plain)."""

    @classmethod
    async def _create(cls, agent, family, type, proto):
        if family == -1:
            family = _socket.AF_INET
        if type == -1:
            type = _STREAM
        if proto == -1:
            proto = 0
        nonblocking = bool(type & _socket.SOCK_NONBLOCK)
        base_type = type & ~_TYPE_FLAGS
        response = await agent._call(
            agent._stub.Socket,
            pb.SocketRequest(family=family, type=base_type, protocol=proto),
            f"socket({family!r}, {type!r}, {proto!r})")
        sock = cls(agent, response.handle, family, base_type, proto)
        timeout = 0.0 if nonblocking else _socket.getdefaulttimeout()
        if timeout is not None:
            try:
                await sock.settimeout(timeout)
            except BaseException:
                await sock.close()
                raise
        return sock

    def __init__(self, agent, handle, family, type, proto):
        """Internal: use ``await agent.socket()``."""
        self._agent = agent
        self._stub = agent._stub
        self._md = agent._metadata
        self._handle = handle
        self._family = family
        self._type = type
        self._proto = proto
        self._timeout = None
        self._closed = False

    # --- plumbing ----------------------------------------------------------

    def _context(self, name, args):
        return (f"agent {self._agent.target}: "
                f"{name}({', '.join(repr(a) for a in args)})")

    def _check_open(self, name, args=()):
        if self._closed or self._agent._closed:
            raise _errors.closed_error(self._context(name, args))

    async def _call(self, method, request, name, args=(), waiting=False):
        self._check_open(name, args)
        try:
            return await method(
                request, metadata=self._md,
                timeout=None if waiting else self._agent._call_timeout)
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(
                e, self._agent.target,
                f"{name}({', '.join(repr(a) for a in args)})",
                waiting=waiting) from None

    # --- attributes --------------------------------------------------------

    family = property(lambda self: _enum(_socket.AddressFamily,
                                         self._family))
    type = property(lambda self: _enum(_socket.SocketKind, self._type))
    proto = property(lambda self: self._proto)
    timeout = property(lambda self: self._timeout)
    agent = property(lambda self: self._agent)
    handle = property(lambda self: self._handle)

    def fileno(self):
        raise io.UnsupportedOperation(
            f"fileno(): this socket is remote: it lives on the agent "
            f"{self._agent.target} (handle {self._handle}) and has no local "
            f"file descriptor")

    def __repr__(self):
        state = " [closed]" if self._closed else ""
        return (f"<sockagent.aio.RemoteSocket{state} agent="
                f"{self._agent.target!r} family={self.family!r}, "
                f"type={self.type!r}, proto={self._proto}, "
                f"handle={self._handle!r}>")

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    # --- timeouts ----------------------------------------------------------

    async def settimeout(self, value):
        value = _check_timeout(value)
        await self._call(self._stub.SetTimeout,
                         timeout_request(self._handle, value), "settimeout",
                         (value,))
        self._timeout = value

    def gettimeout(self):
        return self._timeout

    async def setblocking(self, flag):
        await self.settimeout(None if flag else 0.0)

    def getblocking(self):
        return self._timeout != 0.0

    # --- connection setup --------------------------------------------------

    async def bind(self, address):
        self._check_open("bind", (address,))
        await self._call(self._stub.Bind, pb.BindRequest(
            handle=self._handle,
            address=_address.to_proto(address, self._family, "bind")),
            "bind", (address,))

    async def listen(self, backlog=None):
        backlog = listen_backlog(backlog)
        await self._call(self._stub.Listen,
                         pb.ListenRequest(handle=self._handle,
                                          backlog=backlog),
                         "listen", (backlog,))

    async def accept(self):
        response = await self._call(self._stub.Accept,
                                    pb.AcceptRequest(handle=self._handle),
                                    "accept", waiting=True)
        sock = type(self)(self._agent, response.handle, self._family,
                          self._type, self._proto)
        default = _socket.getdefaulttimeout()
        if default is not None:
            try:
                await sock.settimeout(default)
            except BaseException:
                await sock.close()
                raise
        return sock, _address.from_proto(response.peer, self._family)

    async def connect(self, address):
        self._check_open("connect", (address,))
        await self._call(self._stub.Connect, pb.ConnectRequest(
            handle=self._handle,
            address=_address.to_proto(address, self._family, "connect")),
            "connect", (address,), waiting=True)

    async def connect_ex(self, address):
        try:
            await self.connect(address)
        except (_socket.gaierror, _errors.AgentError):
            raise
        except TimeoutError:
            return errno.EAGAIN
        except OSError as e:
            if e.errno is None:
                raise
            return e.errno
        return 0

    async def shutdown(self, how):
        self._check_open("shutdown", (how,))
        how_proto = _SHUT.get(how)
        if how_proto is None:
            raise _errors.remote_oserror(errno.EINVAL, "Invalid argument",
                                         self._context("shutdown", (how,)))
        await self._call(self._stub.Shutdown,
                         pb.ShutdownRequest(handle=self._handle,
                                            how=how_proto),
                         "shutdown", (how,))

    async def close(self):
        """Closes the remote socket; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._agent._closed:
            return
        try:
            await self._stub.Close(pb.CloseRequest(handle=self._handle),
                                   metadata=self._md,
                                   timeout=self._agent._call_timeout)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise _errors.from_rpc_error(e, self._agent.target,
                                             "close()") from None

    async def abort(self):
        """Abortive close: a TCP peer sees RST (ECONNRESET)."""
        self._check_open("abort")
        self._closed = True
        try:
            await self._stub.Abort(pb.AbortRequest(handle=self._handle),
                                   metadata=self._md,
                                   timeout=self._agent._call_timeout)
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(e, self._agent.target,
                                         "abort()") from None

    # --- addresses and options ---------------------------------------------

    async def getsockname(self):
        response = await self._call(
            self._stub.GetSockName, pb.GetSockNameRequest(handle=self._handle),
            "getsockname")
        return _address.from_proto(response.address, self._family)

    async def getpeername(self):
        response = await self._call(
            self._stub.GetPeerName, pb.GetPeerNameRequest(handle=self._handle),
            "getpeername")
        return _address.from_proto(response.address, self._family)

    async def setsockopt(self, level, optname, value, optlen=None):
        args = (level, optname, value) if optlen is None else \
            (level, optname, value, optlen)
        self._check_open("setsockopt", args)
        await self._call(self._stub.SetSockOpt, pb.SetSockOptRequest(
            handle=self._handle,
            raw_option=pb.RawOption(level=level, name=optname),
            value=pb.OptionValue(raw=setsockopt_bytes(value, optlen))),
            "setsockopt", args)

    async def getsockopt(self, level, optname, buflen=None):
        args = (level, optname) if buflen is None else (level, optname,
                                                        buflen)
        self._check_open("getsockopt", args)
        buflen = getsockopt_buflen(buflen)
        response = await self._call(self._stub.GetSockOpt,
                                    pb.GetSockOptRequest(
                                        handle=self._handle,
                                        raw_option=pb.RawOption(
                                            level=level, name=optname),
                                        raw_length=buflen or 4),
                                    "getsockopt", args)
        return getsockopt_value(response.value.raw, buflen)

    # --- data --------------------------------------------------------------

    async def recv(self, bufsize, flags=0):
        args = (bufsize, flags) if flags else (bufsize,)
        self._check_open("recv", args)
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0 and self._type == _STREAM:
            return b""
        response = await self._call(
            self._stub.Recv,
            pb.RecvRequest(handle=self._handle,
                           max_bytes=min(bufsize, self._agent._max_recv),
                           flags=flags),
            "recv", args, waiting=True)
        return response.data

    async def recv_into(self, buffer, nbytes=0, flags=0):
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        view = memoryview(buffer).cast("B")
        if nbytes == 0:
            nbytes = len(view)
        elif nbytes > len(view):
            raise ValueError("buffer too small for requested bytes")
        data = await self.recv(nbytes, flags)
        view[:len(data)] = data
        return len(data)

    async def recvfrom(self, bufsize, flags=0):
        args = (bufsize, flags) if flags else (bufsize,)
        self._check_open("recvfrom", args)
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        response = await self._call(
            self._stub.RecvFrom,
            pb.RecvFromRequest(handle=self._handle,
                               max_bytes=min(bufsize, self._agent._max_recv),
                               flags=flags),
            "recvfrom", args, waiting=True)
        return (response.data,
                _address.from_proto(response.address, self._family))

    async def recvfrom_into(self, buffer, nbytes=0, flags=0):
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom_into")
        view = memoryview(buffer).cast("B")
        if nbytes == 0:
            nbytes = len(view)
        elif nbytes > len(view):
            raise ValueError("nbytes is greater than the length of the buffer")
        data, address = await self.recvfrom(nbytes, flags)
        view[:len(data)] = data
        return len(data), address

    async def send(self, data, flags=0):
        data = _as_bytes(data)
        args = (f"<{len(data)} bytes>",)
        self._check_open("send", args)
        data = data[:self._agent._max_send]  # beyond: a partial send
        response = await self._call(
            self._stub.Send,
            pb.SendRequest(handle=self._handle, data=data, flags=flags),
            "send", args, waiting=True)
        return response.bytes_sent

    async def sendall(self, data, flags=0):
        data = _as_bytes(data)
        args = (f"<{len(data)} bytes>",)
        self._check_open("sendall", args)
        limit = self._agent._max_send
        offset = 0
        while True:
            chunk = data[offset:offset + limit]
            await self._call(
                self._stub.Send,
                pb.SendRequest(handle=self._handle, data=chunk, flags=flags,
                               send_all=True),
                "sendall", args, waiting=True)
            offset += len(chunk)
            if offset >= len(data):
                return None

    async def sendto(self, data, flags_or_address, address=None):
        if address is None:
            flags, address = 0, flags_or_address
        else:
            flags = flags_or_address
        data = _as_bytes(data)
        args = (f"<{len(data)} bytes>", address)
        self._check_open("sendto", args)
        response = await self._call(self._stub.SendTo, pb.SendToRequest(
            handle=self._handle, data=data, flags=flags,
            address=_address.to_proto(address, self._family, "sendto")),
            "sendto", args, waiting=True)
        return response.bytes_sent

    # --- beyond the socket module ------------------------------------------

    async def recv_stream(self, chunk_bytes=0, limit_bytes=0):
        """Async iterator over the arriving data (one RecvStream call) until
        EOF or ``limit_bytes``; leaving it early cancels the stream."""
        self._check_open("recv_stream")
        call = self._stub.RecvStream(
            pb.RecvStreamRequest(handle=self._handle, chunk_bytes=chunk_bytes,
                                 limit_bytes=limit_bytes),
            metadata=self._md)
        try:
            async for response in call:
                yield response.data
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(
                e, self._agent.target,
                f"recv_stream({chunk_bytes!r}, {limit_bytes!r})",
                waiting=True) from None
        finally:
            call.cancel()

    async def send_stream(self, chunks):
        """Sends every chunk of ``chunks`` (an iterable or async iterable)
        on one SendStream call; returns the total bytes sent."""
        self._check_open("send_stream")
        handle = self._handle

        async def requests():
            first = True
            if hasattr(chunks, "__aiter__"):
                async for chunk in chunks:
                    yield pb.SendStreamRequest(
                        handle=handle if first else "", data=_as_bytes(chunk))
                    first = False
            else:
                for chunk in chunks:
                    yield pb.SendStreamRequest(
                        handle=handle if first else "", data=_as_bytes(chunk))
                    first = False
            if first:
                yield pb.SendStreamRequest(handle=handle)

        try:
            response = await self._stub.SendStream(requests(),
                                                   metadata=self._md)
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(e, self._agent.target,
                                         "send_stream()", waiting=True) \
                from None
        return response.bytes_sent

    async def traffic(self, mode, *, timeout=None, **kwargs):
        """Agent-side traffic, as sockagent.RemoteSocket.traffic()."""
        self._check_open("traffic", (mode,))
        request = traffic_request(self._handle, self._family, mode, **kwargs)
        try:
            response = await self._stub.Traffic(request, metadata=self._md,
                                                timeout=timeout)
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(e, self._agent.target,
                                         f"traffic({mode!r})",
                                         waiting=True) from None
        return TrafficResult(response)

    async def set_faults(self, **kwargs):
        """The fault profile, as sockagent.RemoteSocket.set_faults()."""
        await self._call(self._stub.SetFaults, pb.SetFaultsRequest(
            handle=self._handle, faults=faults_message(**kwargs)),
            "set_faults")


class Proxy:
    """asyncio twin of sockagent.Proxy: ``proxy = await agent.proxy(...)``,
    ``await proxy.set_faults(...)``, ``await proxy.stop()`` (or ``async
    with``). The same arguments, figures (sockagent.ProxyConnection) and
    errors; one task waits in accept (udp: in the datagram relay) and one
    per live connection in its relay, all awaited by stop(). The Agent's
    close() stops it too. ``on_end`` may be a coroutine function."""

    def __init__(self, agent, listen, upstream, udp, reset_as_fin,
                 idle_timeout, on_end, options):
        """Internal: use ``await agent.proxy(...)``."""
        self._agent = agent
        self._listen = listen
        self._upstream = upstream
        self._udp = udp
        self._reset_as_fin = reset_as_fin
        self._idle_timeout = idle_timeout
        self._on_end = on_end
        self._listen_family = options.listen_family
        self._upstream_family = options.upstream_family
        self._to_upstream = options.to_upstream
        self._to_client = options.to_client
        self._ended = asyncio.Condition()
        self._set_lock = asyncio.Lock()  # one set_faults() at a time
        self._stopped = False
        self._faults_generation = 0
        self._next_id = 0
        self._live = {}
        self._tasks = []
        self._connections = []
        self._listener = None
        self._shaper = None
        self.address = None

    # --- starting ----------------------------------------------------------

    async def _open(self):
        agent = self._agent
        kind = _socket.SOCK_DGRAM if self._udp else _socket.SOCK_STREAM
        self._listener = await agent.socket(self._listen_family, kind)
        if self._listener.gettimeout() is not None:
            await self._listener.settimeout(None)  # accept waits for ever
        if not self._udp and self._listen_family != _socket.AF_UNIX:
            # As sockagent.Proxy: the typed option, best effort.
            try:
                await agent._stub.SetSockOpt(pb.SetSockOptRequest(
                    handle=self._listener.handle, option=pb.OPT_SO_REUSEADDR,
                    value=pb.OptionValue(bool_value=True)),
                    metadata=agent._metadata, timeout=agent._call_timeout)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.PERMISSION_DENIED:
                    raise _errors.from_rpc_error(
                        e, agent.target, "setsockopt(1, 2, 1)") from None
        await self._listener.bind(self._listen)
        self.address = await self._listener.getsockname()
        if self._udp:
            self._shaper = await agent.socket(self._upstream_family, kind)
            await self._apply(self._shaper, self._to_upstream, "to_upstream")
            await self._apply(self._listener, self._to_client, "to_client")
            self._start_task(self._run_datagrams(), "udp")
            return
        await self._check_on_probe(self._to_upstream, self._to_client)
        await self._listener.listen()
        self._start_task(self._accept_loop(), "accept")

    def _start_task(self, coroutine, suffix):
        port = self.address[1] if isinstance(self.address, tuple) else ""
        self._tasks.append(asyncio.get_running_loop().create_task(
            coroutine, name=f"sockagent-proxy-{port}-{suffix}"))

    async def _apply(self, sock, spec, name):
        try:
            await sock.set_faults(**spec)
        except _errors.InvalidRequestError as e:
            e.add_note(f"proxy {name}: {spec!r}")
            raise

    async def _apply_or_gone(self, sock, spec, name):
        try:
            await self._apply(sock, spec, name)
        except Exception as e:
            if not _proxy._gone(e):
                raise

    async def _check_on_probe(self, to_upstream, to_client):
        # As sockagent.Proxy: the agent checks the faults on a probe socket.
        if not to_upstream and not to_client:
            return
        kind = _socket.SOCK_DGRAM if self._udp else _socket.SOCK_STREAM
        async with await self._agent.socket(self._upstream_family,
                                            kind) as probe:
            if to_upstream:
                await self._apply(probe, to_upstream, "to_upstream")
            if to_client:
                await self._apply(probe, to_client, "to_client")

    # --- the relays --------------------------------------------------------

    async def _accept_loop(self):
        while True:
            try:
                client, peer = await self._listener.accept()
            except Exception:
                return  # closed by stop() (or the session ended)
            if self._stopped:
                await _close_quietly(client)
                return
            self._next_id += 1
            self._live[self._next_id] = _proxy._Live(client)
            self._start_task(self._run_connection(self._next_id, client,
                                                  peer), str(self._next_id))

    async def _run_connection(self, conn_id, client, peer):
        result = error = None
        relaying = False
        upstream = None
        live = self._live[conn_id]
        try:
            upstream = await self._agent.socket(self._upstream_family,
                                                _socket.SOCK_STREAM)
            live.upstream = upstream
            if not self._stopped:
                await upstream.connect(self._upstream)
                await self._apply_connection_faults(live)
                relaying = True
                result = await client.traffic(
                    "relay", peer=upstream, reset_as_fin=self._reset_as_fin)
        except Exception as e:
            error = e
            if not relaying:  # the client sees a reset, as sockagent.Proxy
                try:
                    await client.abort()
                except Exception:
                    pass
        finally:
            await _close_quietly(client)
            await _close_quietly(upstream)
            self._live.pop(conn_id, None)
        await self._report(conn_id, peer, result, error)

    async def _apply_connection_faults(self, live):
        fresh = True  # new sockets have no faults: {} needs no call
        while True:
            generation = self._faults_generation
            to_upstream, to_client = self._to_upstream, self._to_client
            if to_upstream or not fresh:
                await live.upstream.set_faults(**to_upstream)
            if to_client or not fresh:
                await live.client.set_faults(**to_client)
            fresh = False
            if generation == self._faults_generation:
                return

    async def _run_datagrams(self):
        result = error = None
        try:
            result = await self._listener.traffic(
                "relay", upstream=self._upstream, peer=self._shaper,
                idle_timeout=self._idle_timeout)
        except Exception as e:
            error = e
        await self._report(0, None, result, error)

    async def _report(self, conn_id, client, result, error):
        connection = _proxy.ended_connection(conn_id, client, result, error,
                                             self._stopped)
        async with self._ended:
            self._connections.append(connection)
            self._ended.notify_all()
        if self._on_end is not None:
            outcome = self._on_end(connection)
            if inspect.isawaitable(outcome):
                await outcome

    # --- control -----------------------------------------------------------

    agent = property(lambda self: self._agent)
    upstream = property(lambda self: self._upstream)
    udp = property(lambda self: self._udp)
    stopped = property(lambda self: self._stopped)
    accepted = property(lambda self: self._next_id)

    @property
    def faults(self):
        return {"to_upstream": dict(self._to_upstream),
                "to_client": dict(self._to_client)}

    @property
    def connections(self):
        return list(self._connections)

    async def wait_connections(self, count, timeout):
        """Waits until at least ``count`` connections ended; returns
        ``connections``. Raises TimeoutError after ``timeout`` seconds."""
        async def ended():
            async with self._ended:
                await self._ended.wait_for(
                    lambda: len(self._connections) >= count)
        try:
            await asyncio.wait_for(ended(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"proxy {self.address}: {len(self._connections)} of "
                f"{count} connections ended within {timeout:g} s") from None
        return list(self._connections)

    async def set_faults(self, *, to_upstream=None, to_client=None):
        """As sockagent.Proxy.set_faults()."""
        call = "set_faults()"
        to_upstream = _proxy._check_faults(to_upstream, "to_upstream", call)
        to_client = _proxy._check_faults(to_client, "to_client", call)
        async with self._set_lock:
            if self._stopped:
                raise _errors.closed_error(
                    f"agent {self._agent.target}: proxy {self.address}: "
                    f"set_faults(): the proxy is stopped")
            await self._check_on_probe(to_upstream, to_client)
            if self._udp:
                if to_upstream is not None:
                    await self._apply_or_gone(self._shaper, to_upstream,
                                              "to_upstream")
                if to_client is not None:
                    await self._apply_or_gone(self._listener, to_client,
                                              "to_client")
            if to_upstream is not None:
                self._to_upstream = to_upstream
            if to_client is not None:
                self._to_client = to_client
            self._faults_generation += 1
            if self._udp:
                return
            for live in list(self._live.values()):
                if live.upstream is not None and to_upstream is not None:
                    await self._apply_or_gone(live.upstream, to_upstream,
                                              "to_upstream")
                if to_client is not None:
                    await self._apply_or_gone(live.client, to_client,
                                              "to_client")

    async def stop(self):
        """Closes the listener and every connection and awaits the proxy's
        tasks. Idempotent."""
        already = self._stopped
        self._stopped = True
        if not already and self._udp:
            await self._end_datagrams()
        if not already:
            await _close_quietly(self._listener)
            await _close_quietly(self._shaper)
        me = asyncio.current_task()
        while True:
            tasks = [t for t in self._tasks if t is not me]
            self._tasks = [t for t in self._tasks if t is me]
            for live in list(self._live.values()):
                await _close_quietly(live.client)
                await _close_quietly(live.upstream)
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _end_datagrams(self):
        """As sockagent.Proxy's: a close fault on the bound socket ends the
        datagram relay with its figures; awaited for at most
        _proxy.Proxy._DATAGRAM_STOP_WAIT seconds."""
        spec = dict(self._to_client or {})
        spec["close_after_time"] = 0.001
        try:
            await self._listener.set_faults(**spec)
        except Exception:
            return  # gone already: closing ends the relay
        udp = [t for t in self._tasks if t.get_name().endswith("udp")]
        if udp:
            await asyncio.wait(udp, timeout=_proxy.Proxy._DATAGRAM_STOP_WAIT)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.stop()

    def __repr__(self):
        state = "stopped" if self._stopped else "running"
        kind = "udp " if self._udp else ""
        return (f"<sockagent.aio.Proxy {kind}{self.address!r} -> "
                f"{self._upstream!r} on {self._agent.target} {state}>")


async def _close_quietly(sock):
    if sock is None:
        return
    try:
        await sock.close()
    except Exception:  # already gone with its connection or session
        pass
