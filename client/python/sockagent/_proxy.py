"""Proxy: a Toxiproxy-style proxy living on an agent (``Agent.proxy``).

    with agent.proxy(("127.0.0.1", 0), ("127.0.0.1", 5432),
                     to_upstream={"send_delay": 0.1}) as proxy:
        connect_the_system_under_test_to(proxy.address)
        proxy.set_faults(to_client={"close_after_bytes": 100,
                                    "close_with_reset": True})

The agent listens on ``listen`` and relays every accepted connection (with
``udp``, every client's datagrams, one upstream socket per client) to
``upstream`` inside the agent (Traffic's relay kind), exactly as the C++
``sockagent::Proxy``: the bytes never cross the control channel, and each
direction is shaped by the faults of the socket the agent sends on. Its
sockets belong to the Agent's session, so they go when the session ends.
Beyond the C++ Proxy: faults are checked by the agent (on a probe socket)
before anything starts or changes; set_faults() may leave a direction as it
is (None); SO_REUSEADDR is best effort. A UDP proxy's one relay is ended by
stop() with a close fault on its bound socket, so the agent reports its
figures: its entry reads "stopped" with them.

Threading: thread-safe. One thread waits in accept (udp: in the datagram
relay) and one per live connection waits in its relay; stop() (also the
Agent's close(), and interpreter exit) closes every socket and joins them.
"""

import atexit
import dataclasses
import errno
import inspect
import socket as _socket
import threading
import weakref

import grpc

from . import _address
from . import errors as _errors
from ._socket import faults_message
from ._stubs import pb

# The fault names, from the one builder RemoteSocket.set_faults() uses.
_FAULT_NAMES = frozenset(inspect.signature(faults_message).parameters)

# Proxies not yet stopped, stopped at interpreter exit so no proxy thread
# outlives it.
_RUNNING = weakref.WeakSet()


def _stop_all():
    for proxy in list(_RUNNING):
        proxy.stop()


atexit.register(_stop_all)


@dataclasses.dataclass(frozen=True)
class ProxyDirection:
    """What moved one way through a proxied connection (the agent's
    sockagent.v1.RelayDirection): bytes and datagrams read and sent (sent
    includes duplicates), datagrams the faults dropped, duplicated and
    reordered, bytes a blackhole swallowed, and how the direction ended:
    "eof" (passed on as FIN), "reset" (passed on), "fault" (a fault closed
    the sending side), "error" (sending failed), "duration", or
    "unspecified"."""
    bytes_received: int = 0
    datagrams_received: int = 0
    bytes_sent: int = 0
    datagrams_sent: int = 0
    datagrams_lost: int = 0
    datagrams_duplicated: int = 0
    datagrams_reordered: int = 0
    bytes_blackholed: int = 0
    end: str = "unspecified"

    @classmethod
    def _from_proto(cls, message):
        values = {field.name: getattr(message, field.name)
                  for field in dataclasses.fields(cls) if field.name != "end"}
        end = pb.RelayDirectionEnd.Name(message.end)
        return cls(end=end[len("RELAY_DIRECTION_END_"):].lower(), **values)


@dataclasses.dataclass(frozen=True)
class ProxyConnection:
    """One proxied connection that ended (udp: the whole datagram relay).

    ``id`` counts accepted connections from 1; ``client`` is the client's
    address (None for udp). ``end`` says how it ended: the relay's end
    ("relayed": both directions ended; "fault": a fault closed a side;
    "duration"), "error" (``error`` holds the exception: the upstream
    refused or the policy denied it, and the client was reset), or "stopped"
    (stop() or the session's end cut it; figures only for a UDP proxy's
    relay, which stop() ends with a close fault). ``to_upstream`` / ``to_client`` are the figures per direction;
    ``clients`` and ``refused_datagrams`` count a datagram relay's client
    addresses and the datagrams the policy refused. ``result`` is the
    relay's TrafficResult (None unless it ended on its own)."""
    id: int
    client: object
    end: str
    to_upstream: ProxyDirection = ProxyDirection()
    to_client: ProxyDirection = ProxyDirection()
    clients: int = 0
    refused_datagrams: int = 0
    error: BaseException = None
    result: object = None


def _family_of(address, name):
    """The socket family ``address`` needs: AF_UNIX for a path, AF_INET6 for
    a 4-tuple or a host with a colon, else AF_INET."""
    if isinstance(address, (str, bytes, bytearray)):
        return _socket.AF_UNIX
    if not isinstance(address, tuple):
        raise TypeError(f"proxy(): {name} must be a (host, port) tuple or an "
                        f"AF_UNIX path, not {type(address).__name__}")
    if len(address) == 4 or (len(address) >= 1 and
                             isinstance(address[0], str) and
                             ":" in address[0]):
        return _socket.AF_INET6
    return _socket.AF_INET


def _check_address(address, name):
    family = _family_of(address, name)
    try:
        _address.to_proto(address, family, "proxy")
    except TypeError as e:
        raise TypeError(f"proxy(): {name}: {e}") from None
    except (ValueError, OverflowError) as e:
        raise ValueError(f"proxy(): {name}: {e}") from None
    return family


def _check_faults(spec, name, call):
    """``spec`` as a dict of set_faults() keyword arguments (None stays
    None), checked by the same builder set_faults() uses."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise TypeError(f"{call}: {name} must be a dict of set_faults() "
                        f"keyword arguments (or None), not "
                        f"{type(spec).__name__}")
    unknown = sorted(set(spec) - _FAULT_NAMES)
    if unknown:
        raise TypeError(f"{call}: {name}: unknown fault {unknown[0]!r}; the "
                        f"faults are set_faults()'s keyword arguments: "
                        f"{', '.join(sorted(_FAULT_NAMES))}")
    try:
        faults_message(**spec)
    except TypeError as e:
        raise TypeError(f"{call}: {name}: {e}") from None
    except (ValueError, OverflowError) as e:
        raise ValueError(f"{call}: {name}: {e}") from None
    return dict(spec)


def _gone(error):
    """Whether a failed call only says the socket is already gone (its
    connection ended meanwhile)."""
    if isinstance(error, _errors.HandleNotFoundError):
        return True
    if isinstance(error, _errors.AgentError):
        return error.code is not None and error.code.name in (
            "FAILED_PRECONDITION", "ABORTED")
    return isinstance(error, OSError) and error.errno == errno.EBADF


def _close_quietly(sock):
    if sock is None:
        return
    try:
        sock.close()
    except Exception:  # already gone with its connection or session
        pass


@dataclasses.dataclass(frozen=True)
class _Arguments:
    listen_family: int
    upstream_family: int
    to_upstream: dict
    to_client: dict


def check_arguments(listen, upstream, udp, to_upstream, to_client,
                    reset_as_fin, idle_timeout, on_end):
    """proxy()'s arguments checked (TypeError / ValueError naming the
    argument); shared with sockagent.aio."""
    call = "proxy()"
    if not isinstance(udp, bool):
        raise TypeError(f"proxy(): udp must be a bool, not "
                        f"{type(udp).__name__}")
    if not isinstance(reset_as_fin, bool):
        raise TypeError(f"proxy(): reset_as_fin must be a bool, not "
                        f"{type(reset_as_fin).__name__}")
    if udp and reset_as_fin:
        raise ValueError("proxy(): reset_as_fin applies to streams only "
                         "(udp=False)")
    if idle_timeout is not None:
        if not udp:
            raise ValueError("proxy(): idle_timeout applies to udp=True only")
        if isinstance(idle_timeout, bool) or \
                not isinstance(idle_timeout, (int, float)):
            raise TypeError(f"proxy(): idle_timeout must be seconds (a "
                            f"number), not {type(idle_timeout).__name__}")
        if not idle_timeout > 0:
            raise ValueError(f"proxy(): idle_timeout must be positive, not "
                             f"{idle_timeout!r}")
    if on_end is not None and not callable(on_end):
        raise TypeError("proxy(): on_end must be callable")
    return _Arguments(
        listen_family=_check_address(listen, "listen"),
        upstream_family=_check_address(upstream, "upstream"),
        to_upstream=_check_faults(to_upstream, "to_upstream", call) or {},
        to_client=_check_faults(to_client, "to_client", call) or {})


def ended_connection(conn_id, client, result, error, stopped):
    """The ProxyConnection of a relay that returned ``result`` or raised
    ``error``; shared with sockagent.aio. A datagram relay that stop() ended
    (with a close fault, so the agent reports its figures) reads
    "stopped" with its figures."""
    if result is not None:
        relay = result.relay
        return ProxyConnection(
            id=conn_id, client=client,
            end="stopped" if stopped and result.end == "fault" else result.end,
            to_upstream=ProxyDirection._from_proto(relay.to_peer),
            to_client=ProxyDirection._from_proto(relay.from_peer),
            clients=relay.clients, refused_datagrams=relay.refused_datagrams,
            result=result)
    if stopped or (error is not None and _gone(error)):
        return ProxyConnection(id=conn_id, client=client, end="stopped")
    return ProxyConnection(id=conn_id, client=client, end="error",
                           error=error)


class _Live:
    """A connection being relayed: its two sockets."""
    __slots__ = ("client", "upstream")

    def __init__(self, client):
        self.client = client
        self.upstream = None


class Proxy:
    """A proxy on an agent; create it with ``agent.proxy(...)`` (see the
    module docstring and Agent.proxy)."""

    def __init__(self, agent, listen, upstream, *, udp=False,
                 to_upstream=None, to_client=None, reset_as_fin=False,
                 idle_timeout=None, on_end=None):
        options = check_arguments(listen, upstream, udp, to_upstream,
                                  to_client, reset_as_fin, idle_timeout,
                                  on_end)
        self._listen_family = options.listen_family
        self._upstream_family = options.upstream_family
        self._agent = agent
        self._upstream = upstream
        self._udp = udp
        self._reset_as_fin = reset_as_fin
        self._idle_timeout = idle_timeout
        self._on_end = on_end
        self._to_upstream = options.to_upstream
        self._to_client = options.to_client
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)
        self._set_lock = threading.Lock()  # one set_faults() at a time
        self._report_lock = threading.Lock()  # on_end calls one at a time
        self._stopped = False
        self._faults_generation = 0
        self._next_id = 0
        self._live = {}
        self._threads = []
        self._connections = []
        self._listener = None
        self._shaper = None
        self.address = None
        try:
            self._open(listen)
        except BaseException:
            self.stop()
            raise
        _RUNNING.add(self)
        agent._proxies.add(self)

    # --- starting ----------------------------------------------------------

    def _open(self, listen):
        agent = self._agent
        kind = _socket.SOCK_DGRAM if self._udp else _socket.SOCK_STREAM
        self._listener = agent.socket(self._listen_family, kind)
        if self._listener.gettimeout() is not None:
            self._listener.settimeout(None)  # accept waits for ever
        if not self._udp and self._listen_family != _socket.AF_UNIX:
            # The typed option, as the C++ Proxy (a policy may refuse raw
            # options). Best effort, as socket.create_server's: a policy
            # that grants no option still gets its proxy.
            try:
                agent._stub.SetSockOpt(pb.SetSockOptRequest(
                    handle=self._listener.handle, option=pb.OPT_SO_REUSEADDR,
                    value=pb.OptionValue(bool_value=True)),
                    metadata=agent._metadata, timeout=agent._call_timeout)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.PERMISSION_DENIED:
                    raise self._listener._fail(e, "setsockopt", (
                        _socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)) \
                        from None
        self._listener.bind(listen)
        self.address = self._listener.getsockname()
        if self._udp:
            # The shaper's faults shape what goes upstream (its descriptor
            # is not used); the bound socket's what goes to the clients.
            self._shaper = agent.socket(self._upstream_family, kind)
            self._apply(self._shaper, self._to_upstream, "to_upstream")
            self._apply(self._listener, self._to_client, "to_client")
            self._start_thread(self._run_datagrams, "udp")
            return
        self._check_on_probe(self._to_upstream, self._to_client)
        self._listener.listen()
        self._start_thread(self._accept_loop, "accept")

    def _start_thread(self, target, suffix, *args):
        port = self.address[1] if isinstance(self.address, tuple) else ""
        thread = threading.Thread(
            target=target, args=args, daemon=True,
            name=f"sockagent-proxy-{port}-{suffix}")
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _apply(self, sock, spec, name):
        """set_faults(**spec) on ``sock``; a refusal names the direction."""
        try:
            sock.set_faults(**spec)
        except _errors.InvalidRequestError as e:
            e.add_note(f"proxy {name}: {spec!r}")
            raise

    def _check_on_probe(self, to_upstream, to_client):
        """Has the agent check faults on a probe socket of the proxy's kind
        (a listening socket takes no send faults), so a fault it refuses
        fails here, before anything changed, and not at every
        connection."""
        if not to_upstream and not to_client:
            return
        kind = _socket.SOCK_DGRAM if self._udp else _socket.SOCK_STREAM
        with self._agent.socket(self._upstream_family, kind) as probe:
            if to_upstream:
                self._apply(probe, to_upstream, "to_upstream")
            if to_client:
                self._apply(probe, to_client, "to_client")

    # --- the relays --------------------------------------------------------

    def _accept_loop(self):
        while True:
            try:
                client, peer = self._listener.accept()
            except Exception:
                return  # closed by stop() (or the session ended)
            with self._lock:
                if self._stopped:
                    stopped = True
                else:
                    stopped = False
                    self._next_id += 1
                    conn_id = self._next_id
                    self._live[conn_id] = _Live(client)
            if stopped:
                _close_quietly(client)
                return
            self._start_thread(self._run_connection, str(conn_id), conn_id,
                               client, peer)

    def _run_connection(self, conn_id, client, peer):
        result = error = None
        relaying = False
        upstream = None
        try:
            upstream = self._agent.socket(self._upstream_family,
                                          _socket.SOCK_STREAM)
            with self._lock:
                live = self._live[conn_id]
                live.upstream = upstream
                stopped = self._stopped
            if not stopped:
                upstream.connect(self._upstream)
                self._apply_connection_faults(live)
                relaying = True
                result = client.traffic("relay", peer=upstream,
                                        reset_as_fin=self._reset_as_fin)
        except Exception as e:
            error = e
            if not relaying:
                # The upstream cannot be reached: the client sees a reset,
                # as through a proxy whose upstream refuses.
                try:
                    client.abort()
                except Exception:
                    pass
        finally:
            _close_quietly(client)
            _close_quietly(upstream)
        with self._lock:
            self._live.pop(conn_id, None)
            stopped = self._stopped
        self._report(conn_id, peer, result, error, stopped)

    def _apply_connection_faults(self, live):
        # Applied until no set_faults() ran meanwhile, so a change made while
        # this connection was being set up is never overwritten by the old.
        fresh = True  # new sockets have no faults: {} needs no call
        while True:
            with self._lock:
                generation = self._faults_generation
                to_upstream, to_client = self._to_upstream, self._to_client
            if to_upstream or not fresh:
                live.upstream.set_faults(**to_upstream)
            if to_client or not fresh:
                live.client.set_faults(**to_client)
            fresh = False
            with self._lock:
                if generation == self._faults_generation:
                    return

    def _run_datagrams(self):
        result = error = None
        try:
            result = self._listener.traffic(
                "relay", upstream=self._upstream, peer=self._shaper,
                idle_timeout=self._idle_timeout)
        except Exception as e:
            error = e
        with self._lock:
            stopped = self._stopped
        self._report(0, None, result, error, stopped)

    def _report(self, conn_id, client, result, error, stopped):
        connection = ended_connection(conn_id, client, result, error,
                                      stopped)
        with self._lock:
            self._connections.append(connection)
            self._ended.notify_all()
        if self._on_end is not None:
            with self._report_lock:
                self._on_end(connection)

    # --- control -----------------------------------------------------------

    @property
    def agent(self):
        """The Agent the proxy lives on."""
        return self._agent

    @property
    def upstream(self):
        return self._upstream

    @property
    def udp(self):
        return self._udp

    @property
    def faults(self):
        """The current faults: {"to_upstream": {...}, "to_client": {...}}."""
        with self._lock:
            return {"to_upstream": dict(self._to_upstream),
                    "to_client": dict(self._to_client)}

    @property
    def connections(self):
        """The connections that ended so far, oldest first (a list of
        ProxyConnection; udp: one entry, at stop)."""
        with self._lock:
            return list(self._connections)

    @property
    def accepted(self):
        """Connections accepted so far (0 for udp)."""
        with self._lock:
            return self._next_id

    @property
    def stopped(self):
        return self._stopped

    def wait_connections(self, count, timeout):
        """Waits until at least ``count`` connections ended; returns
        ``connections``. Raises TimeoutError after ``timeout`` seconds."""
        with self._lock:
            if not self._ended.wait_for(
                    lambda: len(self._connections) >= count, timeout):
                raise TimeoutError(
                    f"proxy {self.address}: {len(self._connections)} of "
                    f"{count} connections ended within {timeout:g} s")
            return list(self._connections)

    def set_faults(self, *, to_upstream=None, to_client=None):
        """Replaces the faults of one or both directions, on every live
        connection and on those to come: dicts of set_faults() keyword
        arguments; None leaves that direction as it is, {} clears it. A
        fault the agent refuses raises its error (sockagent.
        InvalidRequestError naming the fault) and changes nothing."""
        call = "set_faults()"
        to_upstream = _check_faults(to_upstream, "to_upstream", call)
        to_client = _check_faults(to_client, "to_client", call)
        with self._set_lock:
            if self._stopped:
                raise _errors.closed_error(
                    f"agent {self._agent.target}: proxy {self.address}: "
                    f"set_faults(): the proxy is stopped")
            self._check_on_probe(to_upstream, to_client)
            if self._udp:
                if to_upstream is not None:
                    self._apply_or_gone(self._shaper, to_upstream,
                                        "to_upstream")
                if to_client is not None:
                    self._apply_or_gone(self._listener, to_client,
                                        "to_client")
            with self._lock:
                if to_upstream is not None:
                    self._to_upstream = to_upstream
                if to_client is not None:
                    self._to_client = to_client
                self._faults_generation += 1
                live = [(c.client, c.upstream) for c in self._live.values()]
            if self._udp:
                return
            for client, upstream in live:
                if upstream is not None and to_upstream is not None:
                    self._apply_or_gone(upstream, to_upstream, "to_upstream")
                if to_client is not None:
                    self._apply_or_gone(client, to_client, "to_client")

    # How long stop() lets a datagram relay end with its figures (the agent
    # checks a close fault set while the relay idles every 0.1 s).
    _DATAGRAM_STOP_WAIT = 5.0

    def _end_datagrams(self):
        """Ends the datagram relay with a close fault on the bound socket,
        so the agent reports its figures, and waits (bounded) for it; the
        caller then closes whatever is left."""
        with self._lock:
            spec = dict(self._to_client or {})
            threads = [t for t in self._threads if t.name.endswith("udp")]
        spec["close_after_time"] = 0.001
        try:
            self._listener.set_faults(**spec)
        except Exception:
            return  # gone already: closing ends the relay
        for thread in threads:
            thread.join(self._DATAGRAM_STOP_WAIT)

    def _apply_or_gone(self, sock, spec, name):
        try:
            self._apply(sock, spec, name)
        except Exception as e:
            if not _gone(e):
                raise

    def stop(self):
        """Closes the listener and every connection, then joins the proxy's
        threads. Idempotent. Connections cut here are recorded with end
        "stopped"."""
        with self._lock:
            already = self._stopped
            self._stopped = True
            self._ended.notify_all()
        _RUNNING.discard(self)
        if not already and self._udp:
            self._end_datagrams()
        if not already:
            _close_quietly(self._listener)
            _close_quietly(self._shaper)
        me = threading.current_thread()
        while True:
            with self._lock:
                threads = [t for t in self._threads if t is not me]
                self._threads = [t for t in self._threads if t is me]
                live = list(self._live.values())
            # Connections accepted just before the stop may still be setting
            # up; closing their sockets again ends whatever they wait in.
            for connection in live:
                _close_quietly(connection.client)
                _close_quietly(connection.upstream)
            if not threads:
                return
            for thread in threads:
                thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = "stopped" if self._stopped else "running"
        kind = "udp " if self._udp else ""
        return (f"<sockagent.Proxy {kind}{self.address!r} -> "
                f"{self._upstream!r} on {self._agent.target} {state}>")
