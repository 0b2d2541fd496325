"""sockagent.aio's Proxy (imported from sockagent.aio): a proxy with
faults on the agent, driven by asyncio tasks."""

import asyncio
import inspect
import socket as _socket

import grpc

from . import _proxy
from . import errors as _errors
from ._stubs import pb


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
