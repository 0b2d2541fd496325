"""RemoteSocket: a socket living on an agent, used as Python's socket.socket.

Every method is one call to the agent on its real kernel socket (sendall of
more than one message's worth is several). Results and exceptions are
Python's: addresses are Python's tuples (or str/bytes for AF_UNIX), failures
the OSError subclass of the errno, TimeoutError ("timed out") when the
socket's timeout expires (see sockagent.errors).

Timeouts follow Python: a new socket takes socket.getdefaulttimeout();
settimeout()/setblocking() set the agent-side timeout; gettimeout() and
getblocking() answer without a call. The agent enforces the timeout, so a
waiting call holds no client thread beyond the one calling.

Threading: one RemoteSocket may be used from several threads (recv in one,
send in another) as Python's socket may; close() while another thread waits
ends that wait with OSError(EBADF).
"""

import errno
import io
import socket as _socket
import struct

import grpc
from google.protobuf import duration_pb2

from . import _address
from . import errors as _errors
from ._stubs import pb

_STREAM = _socket.SOCK_STREAM
_TYPE_FLAGS = _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC
_SHUT = {_socket.SHUT_RD: pb.SHUTDOWN_HOW_READ,
         _socket.SHUT_WR: pb.SHUTDOWN_HOW_WRITE,
         _socket.SHUT_RDWR: pb.SHUTDOWN_HOW_BOTH}
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


def _seconds_to_duration(seconds):
    whole = int(seconds)
    return duration_pb2.Duration(
        seconds=whole, nanos=int(round((seconds - whole) * 1e9)))


def _duration_to_seconds(duration):
    return duration.seconds + duration.nanos / 1e9


def _check_timeout(value):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError("Timeout value must be int, float or None") from None
    if value != value or value < 0:  # NaN or negative
        raise ValueError("Timeout value out of range")
    return value


def _as_bytes(data):
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        raise TypeError("a bytes-like object is required, not 'str'")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not "
                        f"'{type(data).__name__}'") from None


def _enum(cls, value):
    try:
        return cls(value)
    except ValueError:
        return value


# --- argument checks and requests shared with sockagent.aio ----------------


def listen_backlog(backlog):
    """The backlog Python's listen() passes: its default when None, negative
    values as 0, OverflowError beyond a C int."""
    if backlog is None:
        return min(_socket.SOMAXCONN, 128)
    backlog = int(backlog)
    if not _INT_MIN <= backlog <= _INT_MAX:
        raise OverflowError(
            "signed integer is greater than maximum" if backlog > 0
            else "signed integer is less than minimum")
    return max(backlog, 0)


def setsockopt_bytes(value, optlen):
    """The option bytes of setsockopt(level, name, value[, optlen]) as Python
    builds them: an int as a C int, a buffer as is, None with optlen."""
    if optlen is not None:
        if value is not None:
            raise TypeError("setsockopt() value must be None with optlen")
        return b"\0" * optlen  # Python passes a NULL buffer of optlen
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise OverflowError("Python int too large to convert to C int")
        return struct.pack("i", value)
    return _as_bytes(value)


def getsockopt_buflen(buflen):
    """None for "return an int" (Python's buflen None or 0), else buflen,
    checked as Python checks it."""
    if not buflen:
        return None
    if not 0 < buflen <= 1024:
        raise OSError("getsockopt buflen out of range")
    return buflen


def getsockopt_value(raw, buflen):
    if buflen is None:
        return struct.unpack("i", raw[:4].ljust(4, b"\0"))[0]
    return raw


def traffic_request(handle, family, mode, *, max_bytes=0, bytes=0,
                    duration=None, pattern="sequence", seed=0, rate=0,
                    shutdown_write=False, datagram_bytes=0, destination=None,
                    peer=None, upstream=None, idle_timeout=None,
                    reset_as_fin=False):
    request = pb.TrafficRequest(handle=handle)
    if mode == "relay":
        relay = request.relay
        if peer is not None:
            relay.peer = peer if isinstance(peer, str) else peer._handle
        if upstream is not None:
            relay.upstream.CopyFrom(_address.to_proto(
                upstream, family, "relay"))
        if idle_timeout is not None:
            relay.idle_timeout.CopyFrom(_seconds_to_duration(idle_timeout))
        relay.reset_as_fin = reset_as_fin
    elif mode == "echo":
        request.echo.max_bytes = max_bytes
    elif mode == "sink":
        request.sink.max_bytes = max_bytes
    elif mode == "source":
        source = request.source
        source.bytes = bytes
        source.pattern = pb.TrafficPattern.Value(
            "TRAFFIC_PATTERN_" + pattern.upper())
        source.seed = seed
        source.rate_bytes_per_second = rate
        source.shutdown_write_at_end = shutdown_write
        source.datagram_bytes = datagram_bytes
        if destination is not None:
            source.destination.CopyFrom(_address.to_proto(
                destination, family, "traffic"))
    else:
        raise ValueError(f"traffic(): mode must be 'echo', 'sink', "
                         f"'source' or 'relay', not {mode!r}")
    if duration is not None:
        request.duration.CopyFrom(_seconds_to_duration(duration))
    return request


def faults_message(send_delay=None, send_rate=0, slice_bytes=0,
                   slice_delay=None, close_after_bytes=0,
                   close_with_reset=False, stop_reading=False, *,
                   send_delay_jitter=None, slice_bytes_variation=0,
                   close_delay=None, blackhole=False, close_after_time=None,
                   loss_percent=0.0, duplicate_percent=0.0,
                   reorder_percent=0.0, seed=0):
    faults = pb.Faults(send_rate_bytes_per_second=send_rate,
                       slice_bytes=slice_bytes,
                       close_after_bytes=close_after_bytes,
                       close_with_reset=close_with_reset,
                       stop_reading=stop_reading,
                       slice_bytes_variation=slice_bytes_variation,
                       blackhole=blackhole, loss_percent=loss_percent,
                       duplicate_percent=duplicate_percent,
                       reorder_percent=reorder_percent, seed=seed)
    for value, field in ((send_delay, faults.send_delay),
                         (slice_delay, faults.slice_delay),
                         (send_delay_jitter, faults.send_delay_jitter),
                         (close_delay, faults.close_delay),
                         (close_after_time, faults.close_after_time)):
        if value is not None:
            field.CopyFrom(_seconds_to_duration(value))
    return faults


def timeout_request(handle, value):
    request = pb.SetTimeoutRequest(handle=handle)
    if value is not None:
        request.timeout.CopyFrom(_seconds_to_duration(value))
    return request


class TrafficResult:
    """What an agent-side traffic run did (see RemoteSocket.traffic)."""

    __slots__ = ("bytes_received", "bytes_sent", "datagrams_received",
                 "datagrams_sent", "elapsed", "bytes_per_second", "checksum",
                 "end", "relay")

    def __init__(self, response):
        self.bytes_received = response.bytes_received
        self.bytes_sent = response.bytes_sent
        self.datagrams_received = response.datagrams_received
        self.datagrams_sent = response.datagrams_sent
        self.elapsed = _duration_to_seconds(response.elapsed)
        self.bytes_per_second = response.bytes_per_second
        self.checksum = response.checksum
        #: "eof", "bytes", "duration" or "fault".
        self.end = pb.TrafficEnd.Name(response.end)[len("TRAFFIC_END_"):] \
            .lower()
        #: A relay's RelayFigures message (to_peer, from_peer, clients,
        #: refused_datagrams); None for the other modes.
        self.relay = response.relay if response.HasField("relay") else None

    def __repr__(self):
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"TrafficResult({fields})"


class RemoteSocket:
    """A socket on an agent; see the module docstring. Create it with
    ``agent.socket(...)`` (or ``agent.socket_module().socket(...)``)."""

    def __init__(self, agent, family=_socket.AF_INET, type=_STREAM, proto=0):
        if family == -1:
            family = _socket.AF_INET
        if type == -1:
            type = _STREAM
        if proto == -1:
            proto = 0
        nonblocking = bool(type & _socket.SOCK_NONBLOCK)
        base_type = type & ~_TYPE_FLAGS
        call = f"socket({family!r}, {type!r}, {proto!r})"
        agent._check_open(call)
        try:
            response = agent._stub.Socket(
                pb.SocketRequest(family=family, type=base_type,
                                 protocol=proto),
                metadata=agent._metadata, timeout=agent._call_timeout)
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(e, agent.target, call) from None
        self._setup(agent, response.handle, family, base_type, proto)
        timeout = 0.0 if nonblocking else _socket.getdefaulttimeout()
        if timeout is not None:
            try:
                self.settimeout(timeout)
            except BaseException:
                self.close()
                raise

    @classmethod
    def _from_handle(cls, agent, handle, family, type, proto):
        sock = cls.__new__(cls)
        sock._setup(agent, handle, family, type, proto)
        return sock

    def _setup(self, agent, handle, family, type, proto):
        self._agent = agent
        self._stub = agent._stub
        self._md = agent._metadata
        self._call_timeout = agent._call_timeout
        self._handle = handle
        self._family = family
        self._type = type
        self._proto = proto
        self._timeout = None
        self._closed = False    # close() was called
        self._released = False  # the remote handle is closed
        self._io_refs = 0       # makefile() objects still open
        # Built once: the two address queries are the hottest small calls.
        self._sockname_request = pb.GetSockNameRequest(handle=handle)
        self._peername_request = pb.GetPeerNameRequest(handle=handle)

    # --- plumbing ----------------------------------------------------------

    def _context(self, name, args):
        return f"{name}({', '.join(repr(a) for a in args)})"

    def _fail(self, error, name, args, waiting=False):
        return _errors.from_rpc_error(error, self._agent.target,
                                      self._context(name, args),
                                      waiting=waiting)

    def _check_open(self, name, args=()):
        if self._closed or self._agent._closed:
            raise _errors.closed_error(
                f"agent {self._agent.target}: {self._context(name, args)}")

    # --- attributes --------------------------------------------------------

    @property
    def family(self):
        return _enum(_socket.AddressFamily, self._family)

    @property
    def type(self):
        return _enum(_socket.SocketKind, self._type)

    @property
    def proto(self):
        return self._proto

    @property
    def timeout(self):
        return self._timeout

    @property
    def agent(self):
        """The Agent this socket lives on."""
        return self._agent

    @property
    def handle(self):
        """The agent's opaque handle of this socket."""
        return self._handle

    def fileno(self):
        raise io.UnsupportedOperation(
            f"fileno(): this socket is remote: it lives on the agent "
            f"{self._agent.target} (handle {self._handle}) and has no local "
            f"file descriptor; select()/selectors/asyncio cannot wait on it")

    def __repr__(self):
        state = " [closed]" if self._closed else ""
        return (f"<sockagent.RemoteSocket{state} agent={self._agent.target!r}"
                f" family={self.family!r}, type={self.type!r}, "
                f"proto={self._proto}, handle={self._handle!r}>")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __getstate__(self):
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    # --- timeouts ----------------------------------------------------------

    def settimeout(self, value):
        value = _check_timeout(value)
        self._check_open("settimeout", (value,))
        request = timeout_request(self._handle, value)
        try:
            self._stub.SetTimeout(request, metadata=self._md,
                                  timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "settimeout", (value,)) from None
        self._timeout = value

    def gettimeout(self):
        return self._timeout

    def setblocking(self, flag):
        self.settimeout(None if flag else 0.0)

    def getblocking(self):
        return self._timeout != 0.0

    # --- connection setup --------------------------------------------------

    def bind(self, address):
        self._check_open("bind", (address,))
        request = pb.BindRequest(
            handle=self._handle,
            address=_address.to_proto(address, self._family, "bind"))
        try:
            self._stub.Bind(request, metadata=self._md,
                            timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "bind", (address,)) from None

    def listen(self, backlog=None):
        self._check_open("listen", () if backlog is None else (backlog,))
        backlog = listen_backlog(backlog)
        request = pb.ListenRequest(handle=self._handle, backlog=backlog)
        try:
            self._stub.Listen(request, metadata=self._md,
                              timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "listen", (backlog,)) from None

    def accept(self):
        self._check_open("accept")
        try:
            response = self._stub.Accept(
                pb.AcceptRequest(handle=self._handle), metadata=self._md)
        except grpc.RpcError as e:
            raise self._fail(e, "accept", (), waiting=True) from None
        sock = type(self)._from_handle(self._agent, response.handle,
                                       self._family, self._type, self._proto)
        # Python: the new socket takes the default timeout.
        default = _socket.getdefaulttimeout()
        if default is not None:
            try:
                sock.settimeout(default)
            except BaseException:
                sock.close()
                raise
        return sock, _address.from_proto(response.peer, self._family)

    def connect(self, address):
        self._check_open("connect", (address,))
        request = pb.ConnectRequest(
            handle=self._handle,
            address=_address.to_proto(address, self._family, "connect"))
        try:
            self._stub.Connect(request, metadata=self._md)
        except grpc.RpcError as e:
            raise self._fail(e, "connect", (address,), waiting=True) from None

    def connect_ex(self, address):
        try:
            self.connect(address)
        except (_socket.gaierror, _errors.AgentError):
            raise
        except TimeoutError:
            return errno.EAGAIN  # EWOULDBLOCK, as Python's connect_ex
        except OSError as e:
            if e.errno is None:
                raise
            return e.errno
        return 0

    def shutdown(self, how):
        self._check_open("shutdown", (how,))
        how_proto = _SHUT.get(how)
        if how_proto is None:
            raise _errors.remote_oserror(
                errno.EINVAL, "Invalid argument",
                f"agent {self._agent.target}: shutdown({how!r})")
        try:
            self._stub.Shutdown(
                pb.ShutdownRequest(handle=self._handle, how=how_proto),
                metadata=self._md, timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "shutdown", (how,)) from None

    # --- closing -----------------------------------------------------------

    def _decref_socketios(self):
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def _real_close(self):
        if self._released:
            return
        self._released = True
        if self._agent._closed:
            return  # the session's end closed it on the agent
        try:
            self._stub.Close(pb.CloseRequest(handle=self._handle),
                             metadata=self._md, timeout=self._call_timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return  # already gone with its session
            raise self._fail(e, "close", ()) from None

    def close(self):
        """Closes the remote socket. Idempotent, as Python's close(); while
        makefile() objects are open the remote close waits for the last."""
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def abort(self):
        """Abortive close (SO_LINGER 0): a TCP peer sees RST, so its next
        call fails with ECONNRESET. The socket is closed afterwards."""
        self._check_open("abort")
        self._closed = True
        self._released = True
        try:
            self._stub.Abort(pb.AbortRequest(handle=self._handle),
                             metadata=self._md, timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "abort", ()) from None

    def detach(self):
        raise io.UnsupportedOperation(
            "detach(): a remote socket has no file descriptor")

    # --- addresses and options ---------------------------------------------

    def getsockname(self):
        self._check_open("getsockname")
        try:
            response = self._stub.GetSockName(
                self._sockname_request, metadata=self._md,
                timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "getsockname", ()) from None
        return _address.from_proto(response.address, self._family)

    def getpeername(self):
        self._check_open("getpeername")
        try:
            response = self._stub.GetPeerName(
                self._peername_request, metadata=self._md,
                timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "getpeername", ()) from None
        return _address.from_proto(response.address, self._family)

    def setsockopt(self, level, optname, value, optlen=None):
        """setsockopt(level, option, value: int | buffer) or
        setsockopt(level, option, None, optlen), as Python's."""
        args = (level, optname, value) if optlen is None else \
            (level, optname, value, optlen)
        self._check_open("setsockopt", args)
        raw = setsockopt_bytes(value, optlen)
        request = pb.SetSockOptRequest(
            handle=self._handle,
            raw_option=pb.RawOption(level=level, name=optname),
            value=pb.OptionValue(raw=raw))
        try:
            self._stub.SetSockOpt(request, metadata=self._md,
                                  timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "setsockopt", args) from None

    def getsockopt(self, level, optname, buflen=None):
        args = (level, optname) if buflen is None else (level, optname,
                                                        buflen)
        self._check_open("getsockopt", args)
        buflen = getsockopt_buflen(buflen)
        request = pb.GetSockOptRequest(
            handle=self._handle,
            raw_option=pb.RawOption(level=level, name=optname),
            raw_length=4 if buflen is None else buflen)
        try:
            response = self._stub.GetSockOpt(request, metadata=self._md,
                                             timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "getsockopt", args) from None
        return getsockopt_value(response.value.raw, buflen)

    # --- data --------------------------------------------------------------

    def recv(self, bufsize, flags=0):
        self._check_open("recv", (bufsize, flags) if flags else (bufsize,))
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0 and self._type == _STREAM:
            return b""
        limit = self._agent._max_recv
        try:
            response = self._stub.Recv(
                pb.RecvRequest(handle=self._handle,
                               max_bytes=min(bufsize, limit), flags=flags),
                metadata=self._md)
        except grpc.RpcError as e:
            raise self._fail(e, "recv", (bufsize, flags) if flags else
                             (bufsize,), waiting=True) from None
        return response.data

    def recv_into(self, buffer, nbytes=0, flags=0):
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        view = memoryview(buffer).cast("B")
        if nbytes == 0:
            nbytes = len(view)
        elif nbytes > len(view):
            raise ValueError("buffer too small for requested bytes")
        data = self.recv(nbytes, flags)
        view[:len(data)] = data
        return len(data)

    def recvfrom(self, bufsize, flags=0):
        self._check_open("recvfrom", (bufsize, flags) if flags else
                         (bufsize,))
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        limit = self._agent._max_recv
        try:
            response = self._stub.RecvFrom(
                pb.RecvFromRequest(handle=self._handle,
                                   max_bytes=min(bufsize, limit), flags=flags),
                metadata=self._md)
        except grpc.RpcError as e:
            raise self._fail(e, "recvfrom", (bufsize, flags) if flags else
                             (bufsize,), waiting=True) from None
        return (response.data,
                _address.from_proto(response.address, self._family))

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom_into")
        view = memoryview(buffer).cast("B")
        if nbytes == 0:
            nbytes = len(view)
        elif nbytes > len(view):
            raise ValueError("nbytes is greater than the length of the buffer")
        data, address = self.recvfrom(nbytes, flags)
        view[:len(data)] = data
        return len(data), address

    def send(self, data, flags=0):
        data = _as_bytes(data)
        self._check_open("send", (f"<{len(data)} bytes>",))
        limit = self._agent._max_send
        if len(data) > limit:
            data = data[:limit]  # a partial send, as the kernel's would be
        try:
            response = self._stub.Send(
                pb.SendRequest(handle=self._handle, data=data, flags=flags),
                metadata=self._md)
        except grpc.RpcError as e:
            raise self._fail(e, "send", (f"<{len(data)} bytes>",),
                             waiting=True) from None
        return response.bytes_sent

    def sendall(self, data, flags=0):
        data = _as_bytes(data)
        self._check_open("sendall", (f"<{len(data)} bytes>",))
        limit = self._agent._max_send
        view = memoryview(data)
        offset = 0
        while True:
            chunk = view[offset:offset + limit].tobytes() \
                if len(data) > limit else data
            try:
                self._stub.Send(
                    pb.SendRequest(handle=self._handle, data=chunk,
                                   flags=flags, send_all=True),
                    metadata=self._md)
            except grpc.RpcError as e:
                raise self._fail(e, "sendall", (f"<{len(data)} bytes>",),
                                 waiting=True) from None
            offset += len(chunk)
            if offset >= len(data):
                return None

    def sendto(self, data, flags_or_address, address=None):
        if address is None:
            flags, address = 0, flags_or_address
        else:
            flags = flags_or_address
        data = _as_bytes(data)
        args = (f"<{len(data)} bytes>", address)
        self._check_open("sendto", args)
        request = pb.SendToRequest(
            handle=self._handle, data=data, flags=flags,
            address=_address.to_proto(address, self._family, "sendto"))
        try:
            response = self._stub.SendTo(request, metadata=self._md)
        except grpc.RpcError as e:
            raise self._fail(e, "sendto", args, waiting=True) from None
        return response.bytes_sent

    def makefile(self, mode="r", buffering=None, *, encoding=None,
                 errors=None, newline=None):
        """A file object on the socket, as Python's makefile()."""
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        assert reading or writing
        binary = "b" in mode
        rawmode = ""
        if reading:
            rawmode += "r"
        if writing:
            rawmode += "w"
        raw = _socket.SocketIO(self, rawmode)
        self._io_refs += 1
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        encoding = io.text_encoding(encoding)
        text = io.TextIOWrapper(buffer, encoding, errors, newline)
        text.mode = mode
        return text

    # --- beyond the socket module ------------------------------------------

    def recv_stream(self, chunk_bytes=0, limit_bytes=0):
        """Iterates over the data arriving on the socket (one RecvStream
        call) until EOF or ``limit_bytes`` (0: no limit). Closing the
        iterator early (``break`` out of a ``for``) cancels the stream; data
        the agent had read for it is then lost (use limit_bytes to hand the
        socket on to recv() without loss)."""
        self._check_open("recv_stream")
        call = self._stub.RecvStream(
            pb.RecvStreamRequest(handle=self._handle, chunk_bytes=chunk_bytes,
                                 limit_bytes=limit_bytes),
            metadata=self._md)
        return self._iterate(call, "recv_stream",
                             (chunk_bytes, limit_bytes))

    def _iterate(self, call, name, args):
        try:
            for response in call:
                yield response.data
        except grpc.RpcError as e:
            raise self._fail(e, name, args, waiting=True) from None
        finally:
            call.cancel()

    def send_stream(self, chunks):
        """Sends every chunk of the iterable ``chunks`` completely and in
        order on one SendStream call; returns the total bytes sent."""
        self._check_open("send_stream")
        handle = self._handle

        def requests():
            first = True
            for chunk in chunks:
                yield pb.SendStreamRequest(handle=handle if first else "",
                                           data=_as_bytes(chunk))
                first = False
            if first:
                yield pb.SendStreamRequest(handle=handle)

        try:
            response = self._stub.SendStream(requests(), metadata=self._md)
        except grpc.RpcError as e:
            raise self._fail(e, "send_stream", (), waiting=True) from None
        return response.bytes_sent

    def traffic(self, mode, *, max_bytes=0, bytes=0, duration=None,
                pattern="sequence", seed=0, rate=0, shutdown_write=False,
                datagram_bytes=0, destination=None, peer=None, upstream=None,
                idle_timeout=None, reset_as_fin=False, timeout=None):
        """Runs agent-side traffic on the socket and waits until it ends;
        bytes never cross the control channel. ``mode``: ``"echo"`` (send
        back what arrives; ends at EOF or after ``max_bytes``), ``"sink"``
        (read and discard, counting and checksumming), ``"source"`` (send
        ``bytes`` generated bytes of ``pattern`` "sequence", "random" (from
        ``seed``) or "zero", at most ``rate`` bytes/s; ``shutdown_write``
        half-closes after the last byte; datagram sockets send
        ``datagram_bytes``-sized datagrams to ``destination``). ``duration``
        (seconds) ends any mode. Returns a TrafficResult (bytes, datagrams,
        elapsed, bytes_per_second, checksum, end): the checksum is XXH3-64
        as 16 hex digits, ``xxhash.xxh3_64_hexdigest(data)`` of the bytes.
        ``"relay"`` joins this socket to ``peer`` (another connected stream
        RemoteSocket or handle of the session) and moves data both ways until
        both directions end (``reset_as_fin``: pass an RST on as FIN); on a
        bound datagram socket it relays every client's datagrams to
        ``upstream`` (one upstream socket per client, closed after
        ``idle_timeout`` seconds unused; ``peer``, optional, is a datagram
        socket whose faults shape what goes upstream). Each socket's faults
        shape what the agent sends on it; ``result.relay`` has the figures
        per direction."""
        self._check_open("traffic", (mode,))
        request = traffic_request(
            self._handle, self._family, mode, max_bytes=max_bytes,
            bytes=bytes, duration=duration, pattern=pattern, seed=seed,
            rate=rate, shutdown_write=shutdown_write,
            datagram_bytes=datagram_bytes, destination=destination,
            peer=peer, upstream=upstream, idle_timeout=idle_timeout,
            reset_as_fin=reset_as_fin)
        try:
            response = self._stub.Traffic(request, metadata=self._md,
                                          timeout=timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "traffic", (mode,), waiting=True) from None
        return TrafficResult(response)

    def set_faults(self, *, send_delay=None, send_rate=0, slice_bytes=0,
                   slice_delay=None, close_after_bytes=0,
                   close_with_reset=False, stop_reading=False, **more):
        """Replaces the socket's fault profile (no argument clears it). It
        shapes every send path of this socket (send, sendto, send_stream,
        traffic, relays): ``send_delay`` seconds before each send (plus or
        minus ``send_delay_jitter``), at most ``send_rate`` bytes/s, sends
        cut into ``slice_bytes`` (plus or minus ``slice_bytes_variation``)
        with ``slice_delay`` seconds between them, the socket closed after
        ``close_after_bytes`` or ``close_after_time`` seconds (with RST if
        ``close_with_reset``), ``close_delay`` seconds before a relayed FIN,
        ``blackhole`` to swallow what is sent, ``stop_reading`` to stop
        reading; datagram sockets: ``loss_percent``, ``duplicate_percent``,
        ``reorder_percent``. Random choices come from ``seed``. A fault the
        socket cannot obey raises sockagent.InvalidRequestError naming it."""
        self._check_open("set_faults")
        faults = faults_message(send_delay, send_rate, slice_bytes,
                                slice_delay, close_after_bytes,
                                close_with_reset, stop_reading, **more)
        try:
            self._stub.SetFaults(
                pb.SetFaultsRequest(handle=self._handle, faults=faults),
                metadata=self._md, timeout=self._call_timeout)
        except grpc.RpcError as e:
            raise self._fail(e, "set_faults", ()) from None
