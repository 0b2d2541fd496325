"""Agent.proxy: a real client (plain Python sockets) -> the agent's proxy ->
a real upstream server (plain Python sockets, in threads), loopback only.
Every wait is bounded; timings are only checked against wide bounds."""

import errno
import socket
import threading
import time

import pytest

import sockagent
from sockagent._stubs import pb

WAIT = 30.0


class TcpUpstream:
    """A TCP server on 127.0.0.1:0 running ``handler(conn)`` in a thread per
    connection; close() stops it and joins every thread."""

    def __init__(self, handler):
        self._handler = handler
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = self._listener.getsockname()
        self.errors = []
        self._threads = []
        self._acceptor = threading.Thread(target=self._accept_loop)
        self._acceptor.start()

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # shut down by close()
            thread = threading.Thread(target=self._serve, args=(conn,))
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(WAIT)
            try:
                self._handler(conn)
            except OSError as e:  # a reset passed on by the proxy
                self.errors.append(e)

    def close(self):
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        self._acceptor.join(WAIT)
        for thread in self._threads:
            thread.join(WAIT)
        assert not self._acceptor.is_alive()
        assert not any(t.is_alive() for t in self._threads)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def echo(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        conn.sendall(data)


def recv_all(sock):
    """Everything until EOF."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def connect(address):
    return socket.create_connection(address, timeout=WAIT)


def round_trip(sock, data=b"ping"):
    """Seconds for ``data`` to come back through an echo upstream."""
    start = time.monotonic()
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(len(data) - len(got))
        assert chunk, "EOF during a round trip"
        got += chunk
    assert got == data
    return time.monotonic() - start


# Bound and never listening, so a connect to their ports is refused; kept
# bound until the tests end, so no other process of a parallel run can take
# a port in between and answer.
_refusing = []


def free_closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _refusing.append(s)
    return s.getsockname()[1]


def session_sockets(agent):
    """The handles of the agent's sockets in this Agent's session."""
    response = agent._stub.ListSockets(pb.ListSocketsRequest(),
                                       metadata=agent._metadata, timeout=WAIT)
    return [s.handle for s in response.sockets]


def proxy_threads():
    return [t for t in threading.enumerate()
            if t.name.startswith("sockagent-proxy-")]


def test_data_passes_both_ways_with_half_close_in_order(sockagent_proxy):
    request = bytes(i % 251 for i in range(200000))

    def reply_after_eof(conn):
        received = recv_all(conn)  # the client's FIN arrived after its data
        conn.sendall(b"got %d bytes" % len(received))
        conn.sendall(received[::-1])
        conn.shutdown(socket.SHUT_WR)

    with TcpUpstream(reply_after_eof) as upstream:
        proxy = sockagent_proxy(("127.0.0.1", 0), upstream.address)
        assert proxy.address[0] == "127.0.0.1" and proxy.address[1] > 0
        with connect(proxy.address) as client:
            client.sendall(request)
            client.shutdown(socket.SHUT_WR)
            # Half-closed: the client still reads the whole reply, then EOF.
            reply = recv_all(client)
            client_address = client.getsockname()
        assert reply == b"got 200000 bytes" + request[::-1]
        (done,) = proxy.wait_connections(1, WAIT)
    assert done.end == "relayed" and done.error is None
    assert done.client == client_address
    assert (done.to_upstream.bytes_sent, done.to_client.bytes_sent) == \
        (len(request), len(reply))
    assert (done.to_upstream.end, done.to_client.end) == ("eof", "eof")
    assert done.id == 1 and proxy.accepted == 1


def test_latency_is_seen_in_the_round_trip(sockagent_proxy):
    with TcpUpstream(echo) as upstream:
        proxy = sockagent_proxy(("127.0.0.1", 0), upstream.address,
                                to_upstream={"send_delay": 0.2})
        with connect(proxy.address) as client:
            took = round_trip(client)
            client.shutdown(socket.SHUT_WR)
            assert recv_all(client) == b""
        assert 0.2 <= took < 0.2 + WAIT
        (done,) = proxy.wait_connections(1, WAIT)
        assert done.end == "relayed"


def test_set_faults_changes_live_and_later_connections(sockagent_proxy):
    with TcpUpstream(echo) as upstream:
        proxy = sockagent_proxy(("127.0.0.1", 0), upstream.address)
        with connect(proxy.address) as live:
            round_trip(live)  # relayed, no faults yet
            proxy.set_faults(to_client={"send_delay": 0.3})
            assert round_trip(live) >= 0.3  # the live connection
            with connect(proxy.address) as later:
                assert round_trip(later) >= 0.3  # and a new one
            # None leaves a direction as it is.
            proxy.set_faults(to_upstream={"send_delay": 0.2})
            assert proxy.faults == {"to_upstream": {"send_delay": 0.2},
                                    "to_client": {"send_delay": 0.3}}
            assert round_trip(live) >= 0.5
            proxy.set_faults(to_upstream={}, to_client={})
            assert proxy.faults == {"to_upstream": {}, "to_client": {}}
            live.shutdown(socket.SHUT_WR)
            assert recv_all(live) == b""
        done = proxy.wait_connections(2, WAIT)
    assert [c.end for c in done] == ["relayed", "relayed"]


def test_a_reset_fault_gives_the_client_connection_reset(sockagent_proxy):
    def send_plenty(conn):
        assert conn.recv(2) == b"go"
        conn.sendall(b"y" * 1000000)

    with TcpUpstream(send_plenty) as upstream:
        proxy = sockagent_proxy(
            ("127.0.0.1", 0), upstream.address,
            to_client={"close_after_bytes": 1000, "close_with_reset": True})
        with connect(proxy.address) as client:
            client.sendall(b"go")
            received = 0
            with pytest.raises(ConnectionResetError):
                while True:
                    data = client.recv(65536)
                    assert data, "EOF instead of a reset"
                    received += len(data)
        (done,) = proxy.wait_connections(1, WAIT)
    assert received <= 1000
    assert done.end == "fault"
    assert done.to_client.end == "fault"


def udp_lost(agent, proxies, seed, n=150):
    """Runs n numbered datagrams through a fresh udp proxy losing 30 % of
    what goes upstream (seeded); returns how many the upstream missed.
    n small datagrams fit in the default receive buffers (212992 bytes) even
    when a reader is descheduled, so only the fault drops any."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    server.bind(("127.0.0.1", 0))
    server.settimeout(WAIT)
    upstream = server.getsockname()
    seen = set()

    def serve():
        while True:
            data, source = server.recvfrom(2048)
            if data == b"quit":
                return
            if data == b"end":
                server.sendto(b"count %d" % len(seen), source)
            else:
                seen.add(int(data))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with agent.proxy(("127.0.0.1", 0), upstream, udp=True,
                         to_upstream={"loss_percent": 30, "seed": seed},
                         idle_timeout=30) as proxy:
            proxies.append(proxy)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(0.5)  # per marker; markers may be lost
                for i in range(n):
                    client.sendto(str(i).encode(), proxy.address)
                # Markers go after the numbered datagrams (no delay: in
                # order); the first answered one carries the count.
                count = None
                for _ in range(100):
                    client.sendto(b"end", proxy.address)
                    try:
                        data, _ = client.recvfrom(100)
                    except TimeoutError:
                        continue
                    count = int(data.split()[1])
                    break
                assert count is not None, "no marker came back"
    finally:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"quit", upstream)
        thread.join(WAIT)
        server.close()
    assert not thread.is_alive()
    return n - count


def test_udp_loss_with_a_seed_replays_exactly(sockagent_agent):
    proxies = []
    first = udp_lost(sockagent_agent, proxies, seed=7)
    second = udp_lost(sockagent_agent, proxies, seed=7)
    assert first == second
    # Binomial(150, 0.3): mean 45, sd 5.6; the seed fixes one draw, which
    # lies within 4 sd of the mean.
    assert 23 <= first <= 67
    assert session_sockets(sockagent_agent) == []
    assert proxy_threads() == []
    for proxy, lost in zip(proxies, (first, second)):
        (relay,) = proxy.connections  # recorded at stop, with its figures
        assert relay.client is None and relay.end == "stopped"
        assert relay.result is not None
        # The agent's own count: the numbered datagrams the upstream never
        # saw, plus any lost marker.
        assert relay.to_upstream.datagrams_lost >= lost
        assert relay.to_upstream.datagrams_received >= 150
        assert relay.clients == 1


def test_stop_leaves_no_socket_and_no_thread(sockagent_agent):
    assert session_sockets(sockagent_agent) == []
    with TcpUpstream(echo) as upstream:
        proxy = sockagent_agent.proxy(("127.0.0.1", 0), upstream.address)
        with connect(proxy.address) as client:
            round_trip(client)  # a live relay
            assert len(session_sockets(sockagent_agent)) == 3
            assert len(proxy_threads()) == 2  # accept + the connection
            proxy.stop()
            try:
                assert client.recv(10) == b""
            except ConnectionResetError:
                pass
        proxy.stop()  # idempotent
    assert session_sockets(sockagent_agent) == []
    assert proxy_threads() == []
    (cut,) = proxy.connections
    assert cut.end == "stopped" and cut.error is None
    with pytest.raises(OSError) as info:
        proxy.set_faults(to_client={})
    assert info.value.errno == errno.EBADF


def test_a_refused_upstream_is_reported_and_the_client_reset(
        sockagent_proxy):
    port = free_closed_port()
    proxy = sockagent_proxy(("127.0.0.1", 0), ("127.0.0.1", port))
    with connect(proxy.address) as client:
        try:
            assert client.recv(10) == b""
        except ConnectionResetError:
            pass
    (done,) = proxy.wait_connections(1, WAIT)
    assert done.end == "error"
    assert isinstance(done.error, ConnectionRefusedError)
    assert f"connect(('127.0.0.1', {port}))" in str(done.error)


def test_an_upstream_the_policy_denies_is_reported(secured_agent):
    with sockagent.Agent(secured_agent.target, tls=secured_agent.tls,
                         token=secured_agent.token) as agent:
        ended = []
        with agent.proxy(("127.0.0.1", 0), ("127.0.0.1", 1),
                         on_end=ended.append) as proxy:
            with connect(proxy.address) as client:
                try:
                    assert client.recv(10) == b""
                except ConnectionResetError:
                    pass
            (done,) = proxy.wait_connections(1, WAIT)
        assert ended == [done]
        assert done.end == "error"
        assert isinstance(done.error, sockagent.PolicyDeniedError)
        assert "policy" in str(done.error)


def test_bad_arguments_name_the_argument(sockagent_agent):
    agent = sockagent_agent
    up = ("127.0.0.1", 9)
    with pytest.raises(TypeError, match="listen"):
        agent.proxy(7000, up)
    with pytest.raises(ValueError, match="upstream"):
        agent.proxy(("127.0.0.1", 0), ("127.0.0.1", 70000))
    with pytest.raises(TypeError, match="to_upstream must be a dict"):
        agent.proxy(("127.0.0.1", 0), up, to_upstream="latency")
    with pytest.raises(TypeError, match="to_client: unknown fault 'latency'"):
        agent.proxy(("127.0.0.1", 0), up, to_client={"latency": 1})
    with pytest.raises(ValueError, match="idle_timeout"):
        agent.proxy(("127.0.0.1", 0), up, idle_timeout=5)
    with pytest.raises(ValueError, match="reset_as_fin"):
        agent.proxy(("127.0.0.1", 0), up, udp=True, reset_as_fin=True)
    with pytest.raises(TypeError, match="udp"):
        agent.proxy(("127.0.0.1", 0), up, udp="yes")
    # Faults the agent refuses: named, and nothing is left on the agent.
    with pytest.raises(sockagent.InvalidRequestError,
                       match="faults.loss_percent"):
        agent.proxy(("127.0.0.1", 0), up, to_upstream={"loss_percent": 5})
    with pytest.raises(sockagent.InvalidRequestError,
                       match="faults.slice_bytes"):
        agent.proxy(("127.0.0.1", 0), up, udp=True,
                    to_client={"slice_bytes": 10})
    assert session_sockets(agent) == []
    assert proxy_threads() == []
    with agent.proxy(("127.0.0.1", 0), up) as proxy:
        with pytest.raises(sockagent.InvalidRequestError,
                           match="faults.reorder_percent"):
            proxy.set_faults(to_client={"reorder_percent": 1})
        with pytest.raises(TypeError, match="to_upstream"):
            proxy.set_faults(to_upstream={"bogus": 1})
        assert proxy.faults == {"to_upstream": {}, "to_client": {}}


def test_the_readme_example_is_the_example_file():
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    intro = "From [`examples/python/test_proxy_faults.py`]"
    assert intro in readme
    block = readme.split(intro, 1)[1].split("```python\n", 1)[1]
    block = block.split("```", 1)[0]
    example = (root / "examples/python/test_proxy_faults.py").read_text()
    assert block.strip() and block in example


def test_the_asyncio_proxy(sockagent_agent):
    import asyncio
    import sockagent.aio

    def exchange(address):
        """A blocking client: a round trip, then half-close and EOF."""
        with connect(address) as client:
            took = round_trip(client)
            client.shutdown(socket.SHUT_WR)
            assert recv_all(client) == b""
            return took

    async def scenario(upstream):
        async with sockagent.aio.Agent(sockagent_agent.target) as agent:
            ended = []

            async def on_end(connection):
                ended.append(connection)

            proxy = await agent.proxy(("127.0.0.1", 0), upstream.address,
                                      to_upstream={"send_delay": 0.2},
                                      on_end=on_end)
            took = await asyncio.to_thread(exchange, proxy.address)
            assert took >= 0.2
            (first,) = await proxy.wait_connections(1, WAIT)
            assert first.end == "relayed" and ended == [first]
            assert first.to_upstream.bytes_sent == 4
            with pytest.raises(sockagent.InvalidRequestError,
                               match="faults.loss_percent"):
                await proxy.set_faults(to_client={"loss_percent": 1})
            await proxy.set_faults(to_upstream={},
                                   to_client={"send_delay": 0.3})
            assert await asyncio.to_thread(exchange, proxy.address) >= 0.3
            await proxy.wait_connections(2, WAIT)
            # A live connection cut by stop(); nothing left behind.
            client = await asyncio.to_thread(connect, proxy.address)
            await asyncio.to_thread(round_trip, client)
            assert proxy.accepted == 3
            await proxy.stop()
            await proxy.stop()
            client.close()
            assert [c.end for c in proxy.connections] == \
                ["relayed", "relayed", "stopped"]
            assert proxy._tasks == []
            response = await agent._stub.ListSockets(
                pb.ListSocketsRequest(), metadata=agent._metadata)
            assert list(response.sockets) == []
            # A refused upstream: reported, and Agent.close() stops it.
            refused = await agent.proxy(("127.0.0.1", 0),
                                        ("127.0.0.1", free_closed_port()))
            with await asyncio.to_thread(connect, refused.address) as c:
                try:
                    assert await asyncio.to_thread(c.recv, 10) == b""
                except ConnectionResetError:
                    pass
            (done,) = await refused.wait_connections(1, WAIT)
            assert isinstance(done.error, ConnectionRefusedError)
        assert refused.stopped

    with TcpUpstream(echo) as upstream:
        asyncio.run(asyncio.wait_for(scenario(upstream), 120))


def test_unix_stream_proxy_and_reset_as_fin(sockagent_proxy, tmp_path):
    # The upstream resets its connection; with reset_as_fin the client sees
    # an orderly EOF after the data instead of ECONNRESET.
    def reply_then_reset(conn):
        assert conn.recv(2) == b"hi"
        conn.sendall(b"bye")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        b"\1\0\0\0\0\0\0\0")  # l_onoff=1, l_linger=0: RST

    path = str(tmp_path / "upstream.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    listener.settimeout(WAIT)

    def serve():
        conn, _ = listener.accept()
        with conn:
            reply_then_reset(conn)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        proxy = sockagent_proxy(str(tmp_path / "proxy.sock"), path,
                                reset_as_fin=True)
        assert proxy.address == str(tmp_path / "proxy.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(WAIT)
            client.connect(proxy.address)
            client.sendall(b"hi")
            assert recv_all(client) == b"bye"  # EOF, not a reset
        (done,) = proxy.wait_connections(1, WAIT)
    finally:
        thread.join(WAIT)
        listener.close()
    assert done.end == "relayed"
    assert done.to_client.bytes_sent == 3


_LEFT_RUNNING = """
import socket, sys
import sockagent
agent = sockagent.Agent(sys.argv[1])
upstream = socket.create_server(("127.0.0.1", 0))
proxy = agent.proxy(("127.0.0.1", 0), upstream.getsockname(),
                    on_end=lambda c: print("ended", c.end, flush=True))
client = socket.create_connection(proxy.address, timeout=30)
conn, _ = upstream.accept()  # a live relay, and the proxy never stopped
client.sendall(b"x")
assert conn.recv(1) == b"x"
print(proxy.address[1], flush=True)
"""


def test_interpreter_exit_stops_a_running_proxy(sockagent_agent):
    import subprocess
    import sys
    child = subprocess.run(
        [sys.executable, "-c", _LEFT_RUNNING, sockagent_agent.target],
        capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert "Traceback" not in child.stderr, child.stderr
    port, ended = child.stdout.split("\n", 1)
    # Stopped at exit: the live connection was cut and reported.
    assert ended == "ended stopped\n"
    port = int(port)
    with pytest.raises(ConnectionRefusedError):  # the listener is gone
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()


def test_the_asyncio_udp_proxy_duplicates(sockagent_agent):
    import asyncio
    import sockagent.aio

    async def scenario(upstream):
        async with sockagent.aio.Agent(sockagent_agent.target) as agent:
            async with await agent.proxy(
                    ("127.0.0.1", 0), upstream.getsockname(), udp=True,
                    idle_timeout=5,
                    to_upstream={"duplicate_percent": 100}) as proxy:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                    c.sendto(b"once", proxy.address)
                    got = [await asyncio.to_thread(upstream.recvfrom, 10)
                           for _ in range(2)]
                assert [data for data, _ in got] == [b"once", b"once"]
                with pytest.raises(sockagent.InvalidRequestError,
                                   match="faults.slice_bytes"):
                    await proxy.set_faults(to_client={"slice_bytes": 3})
            assert [c.end for c in proxy.connections] == ["stopped"]

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.settimeout(WAIT)
        asyncio.run(asyncio.wait_for(scenario(upstream), 120))


def test_stop_with_many_connections_in_every_state(sockagent_agent):
    # Clients connect while stop() runs: accepted, connecting upstream,
    # relaying. stop() returns with every accepted connection reported and
    # nothing left on the agent or in this process.
    with TcpUpstream(echo) as upstream:
        proxy = sockagent_agent.proxy(("127.0.0.1", 0), upstream.address)
        address = proxy.address
        relaying = []
        for _ in range(10):
            client = connect(address)
            round_trip(client)
            relaying.append(client)
        go = threading.Event()
        outcomes = []

        def late_client():
            go.wait(WAIT)
            try:
                with connect(address) as client:
                    client.sendall(b"x")
                    outcomes.append(client.recv(10))
            except OSError as e:  # refused, reset: the proxy is stopping
                outcomes.append(type(e).__name__)

        clients = [threading.Thread(target=late_client) for _ in range(10)]
        for t in clients:
            t.start()
        go.set()
        proxy.stop()
        for t in clients:
            t.join(WAIT)
        assert not any(t.is_alive() for t in clients)
        for client in relaying:
            client.close()
    assert len(outcomes) == 10
    assert len(proxy.connections) == proxy.accepted >= 10
    assert sorted({c.id for c in proxy.connections}) == \
        list(range(1, proxy.accepted + 1))
    assert proxy_threads() == []
    assert session_sockets(sockagent_agent) == []
