"""sockagent.aio's RemoteSocket (imported from sockagent.aio): a socket on
the agent, each call a coroutine on grpc.aio."""

import errno
import io
import socket as _socket

import grpc

from . import _address
from . import errors as _errors
from ._agent import _enum
from ._socket import (TrafficResult, _SHUT, _STREAM, _TYPE_FLAGS,
                      _as_bytes, _check_timeout, faults_message,
                      getsockopt_buflen, getsockopt_value, listen_backlog,
                      setsockopt_bytes, timeout_request, traffic_request)
from ._stubs import pb


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
