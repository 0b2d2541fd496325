"""What only a RemoteSocket has: the agent in error messages, fileno(),
partial sends above one call's maximum, the session, agent-side traffic and
faults, streams, the socket_module() object, and AgentError for failures
that are not the socket's (unreachable agent, credentials, policy)."""

import errno
import io
import os
import socket
import threading
import time

import pytest
import xxhash

import sockagent


def pair(agent):
    server = agent.create_server(("127.0.0.1", 0))
    client = agent.create_connection(server.getsockname())
    conn, _ = server.accept()
    return server, client, conn


# Bound and never listening, so a connect to their ports is refused; kept
# bound until the tests end, so no other process of a parallel run can take
# a port in between and answer.
_refusing = []


def free_closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _refusing.append(s)
    return s.getsockname()[1]


def test_errors_name_the_agent_the_call_and_the_errno(sockagent_agent):
    holder = sockagent_agent.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    s = sockagent_agent.socket()
    with pytest.raises(ConnectionRefusedError) as info:
        s.connect(("127.0.0.1", port))
    e = info.value
    assert str(e) == (f"agent {sockagent_agent.target}: connect(('127.0.0.1',"
                      f" {port})): [Errno 111] Connection refused")
    assert (e.errno, e.strerror, e.args) == (
        errno.ECONNREFUSED, "Connection refused",
        (errno.ECONNREFUSED, "Connection refused"))
    assert sockagent.builtin_type(e) is ConnectionRefusedError
    s.settimeout(0.05)
    server = sockagent_agent.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    with pytest.raises(socket.timeout) as info:
        server.accept()
    assert str(info.value) == f"agent {sockagent_agent.target}: accept(): " \
                              "timed out"


def test_fileno_says_the_socket_is_remote(sockagent_agent):
    s = sockagent_agent.socket()
    with pytest.raises(io.UnsupportedOperation, match="remote.*agent"):
        s.fileno()
    assert s.handle and repr(s).startswith("<sockagent.RemoteSocket")


def test_send_above_one_call_is_partial_and_sendall_is_complete(
        sockagent_agent):
    limit = sockagent_agent.info().limits["max_send_bytes"]
    _, client, conn = pair(sockagent_agent)
    received = []

    def reader(total):
        got = 0
        while got < total:
            data = conn.recv(1 << 20)
            assert data
            got += len(data)
            received.append(data)

    big = os.urandom(limit + 1000)
    t = threading.Thread(target=reader, args=(limit * 3 + 1000 * 3,))
    t.start()
    try:
        sent = client.send(big)
        assert 0 < sent <= limit
        client.sendall(big[sent:])
        client.sendall(memoryview(big + big))
    finally:
        t.join(60)
    assert not t.is_alive()
    assert b"".join(received) == big + big + big


def test_closing_the_agent_ends_the_session_and_its_sockets(sockagent_agents):
    observer = sockagent_agents["default"]
    agent = sockagent.Agent(observer.target, ttl=30)
    before = observer.info().stats["open_sockets"]
    server, client, conn = pair(agent)
    assert observer.info().stats["open_sockets"] == before + 3
    assert agent.close() == 3
    assert agent.close() is None  # idempotent
    assert observer.info().stats["open_sockets"] == before
    with pytest.raises(OSError) as info:
        client.send(b"x")
    assert info.value.errno == errno.EBADF
    client.close()  # no error: already closed with the session
    with pytest.raises(sockagent.AgentError, match="Agent is closed"):
        agent.socket()
    with pytest.raises(sockagent.AgentError, match="Agent is closed"):
        agent.gethostname()


def test_keepalive_renews_a_short_lease(sockagent_agent):
    agent = sockagent.Agent(sockagent_agent.target, ttl=1.0)
    try:
        s = agent.socket()
        s.bind(("127.0.0.1", 0))
        # Wait until three leases have passed; the socket must still be
        # there because the renewal thread kept the session alive.
        lapse = time.monotonic() + 3 * agent.ttl
        while time.monotonic() < lapse:
            agent._stop.wait(lapse - time.monotonic())
        assert s.getsockname()[0] == "127.0.0.1"
        assert agent.keepalive() == pytest.approx(1.0)
    finally:
        agent.close()


def test_socket_module_is_a_drop_in(sockagent_agent):
    mod = sockagent_agent.socket_module()
    server = mod.create_server(("127.0.0.1", 0))
    client = mod.create_connection(server.getsockname())
    conn, _ = server.accept()
    with server, client, conn:
        assert isinstance(conn, mod.socket)
        assert isinstance(conn, sockagent.RemoteSocket)
        assert mod.AF_INET == socket.AF_INET and mod.timeout is socket.timeout
        assert mod.gethostname() == sockagent_agent.gethostname()
        assert mod.gethostbyname("localhost") == "127.0.0.1"
        with pytest.raises(NotImplementedError, match="local host"):
            mod.socketpair()
        with pytest.raises(ValueError):
            mod.socket(fileno=3)


def test_recv_stream_send_stream_and_traffic(sockagent_agent):
    _, client, conn = pair(sockagent_agent)
    chunks = [bytes([i]) * 1000 for i in range(10)]
    assert client.send_stream(iter(chunks)) == 10000
    got = b"".join(conn.recv_stream(chunk_bytes=4096, limit_bytes=10000))
    assert got == b"".join(chunks)
    # Agent-side: conn sends 100 kB generated bytes, client sinks them.
    results = {}
    t = threading.Thread(target=lambda: results.update(
        sink=client.traffic("sink")))
    t.start()
    source = conn.traffic("source", bytes=100000, shutdown_write=True)
    t.join(60)
    assert not t.is_alive()
    assert (source.bytes_sent, source.end) == (100000, "bytes")
    sink = results["sink"]
    assert (sink.bytes_received, sink.end) == (100000, "eof")
    assert sink.checksum == source.checksum
    # The checksum is XXH3-64: Python computes the same value from the bytes
    # (the default SEQUENCE pattern is position mod 256).
    sent = bytes(i % 256 for i in range(100000))
    assert source.checksum == xxhash.xxh3_64_hexdigest(sent)


def test_fault_closes_after_bytes_with_reset_and_abort(sockagent_agent):
    _, client, conn = pair(sockagent_agent)
    conn.set_faults(close_after_bytes=1000, close_with_reset=True)
    results = {}
    t = threading.Thread(target=lambda: results.update(
        echo=conn.traffic("echo")))
    t.start()
    client.sendall(b"x" * 5000)
    t.join(60)
    assert results["echo"].end == "fault"
    with pytest.raises(ConnectionResetError):
        while client.recv(65536):
            pass
    _, client2, conn2 = pair(sockagent_agent)
    conn2.abort()
    with pytest.raises(ConnectionResetError):
        client2.recv(10)
    with pytest.raises(OSError) as info:
        conn2.send(b"x")
    assert info.value.errno == errno.EBADF


def test_unreachable_agent_is_an_agent_error():
    port = free_closed_port()
    with pytest.raises(sockagent.AgentUnavailableError, match="cannot reach"):
        sockagent.Agent(f"127.0.0.1:{port}", connect_timeout=0.3)


def test_policy_denial_is_a_permission_error(secured_agent):
    with sockagent.Agent(secured_agent.target, tls=secured_agent.tls,
                         token=secured_agent.token) as agent:
        s = agent.socket()
        with pytest.raises(sockagent.PolicyDeniedError) as info:
            s.connect(("127.0.0.1", 1))
        assert isinstance(info.value, PermissionError)
        assert info.value.errno == errno.EACCES
        assert "policy" in str(info.value)
        with pytest.raises(PermissionError):
            agent.socket(socket.AF_INET, socket.SOCK_DGRAM)


def test_bad_token_is_an_authentication_error(secured_agent):
    with pytest.raises(sockagent.AuthenticationError):
        sockagent.Agent(secured_agent.target, tls=secured_agent.tls,
                        token="wrong-token-of-some-length")


def test_mutual_tls_with_a_client_certificate(secured_agent):
    tls = sockagent.TLS(ca_file=secured_agent.ca, cert_file=secured_agent.cert,
                        key_file=secured_agent.key, server_name="localhost")
    with sockagent.Agent(secured_agent.target, tls=tls) as agent:
        s = agent.socket()
        s.bind(("127.0.0.1", 0))
        assert s.getsockname()[0] == "127.0.0.1"
    with pytest.raises(ValueError, match="go together"):
        sockagent.Agent(secured_agent.target, tls={
            "ca_file": secured_agent.ca, "cert_file": secured_agent.cert})


def test_session_lapse_is_handle_not_found(sockagent_agent):
    sessions = sockagent_agent.info().stats["sessions"]
    # Unbound: a bound session lives as long as its connection.
    agent = sockagent.Agent(sockagent_agent.target, ttl=0.3, bind=False)
    try:
        agent._stop.set()  # no more renewals: the lease lapses
        agent._renewer.join()
        s = agent.socket()
        # Wait (bounded) until the agent reaped the session; the observer's
        # calls do not renew it.
        deadline = time.monotonic() + 20
        while sockagent_agent.info().stats["sessions"] > sessions:
            assert time.monotonic() < deadline, "the session never lapsed"
        with pytest.raises(sockagent.HandleNotFoundError,
                           match="unknown session"):
            s.getsockname()
    finally:
        agent.close()


_KILLED_CLIENT = """
import sys
import sockagent
agent = sockagent.Agent(sys.argv[1], ttl=60)
server = agent.create_server(("127.0.0.1", 0))
print(agent.bound, server.getsockname()[1], flush=True)
sys.stdin.read()
"""


def test_a_killed_clients_sockets_go_with_its_connection(sockagent_agent):
    # The session's lease is 60 s: only the binding can end it sooner.
    import signal
    import subprocess
    import sys
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CLIENT, sockagent_agent.target],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        bound, port = child.stdout.readline().split()
        assert bound == "True"
        with socket.create_connection(("127.0.0.1", int(port))):
            pass  # the child's listener is there
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", int(port))).close()
            except ConnectionRefusedError:
                break  # the agent closed the killed client's listener
            except ConnectionResetError:
                pass  # it closed during this handshake: look once more
            assert time.monotonic() < deadline, \
                "the killed client's socket outlived its connection"
            time.sleep(0.05)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_close_from_another_thread_ends_a_waiting_accept(sockagent_agent):
    server = sockagent_agent.create_server(("127.0.0.1", 0))
    errors = []

    def waiter():
        try:
            server.accept()
        except OSError as e:
            errors.append(e)

    before = sockagent_agent.info().stats["waiting_operations"]
    t = threading.Thread(target=waiter)
    t.start()
    for _ in range(400):  # bounded: until the accept waits on the agent
        if sockagent_agent.info().stats["waiting_operations"] > before:
            break
    server.close()
    t.join(30)
    assert not t.is_alive()
    assert [e.errno for e in errors] == [errno.EBADF]


def test_relay_joins_two_sockets_with_faults_per_direction(sockagent_agent):
    # client -> (agent: down relay up) -> server, all through the agent.
    _, client, down = pair(sockagent_agent)
    _, up, server = pair(sockagent_agent)
    up.set_faults(send_delay=0.2)  # what the agent sends toward the server
    results = {}
    t = threading.Thread(target=lambda: results.update(
        relay=down.traffic("relay", peer=up)))
    t.start()
    start = time.monotonic()
    client.sendall(b"ping")
    assert server.recv(4) == b"ping"
    assert time.monotonic() - start >= 0.2
    server.sendall(b"pong")
    server.shutdown(socket.SHUT_WR)
    client.shutdown(socket.SHUT_WR)
    assert client.recv(4) == b"pong"
    t.join(60)
    assert not t.is_alive()
    relay = results["relay"]
    assert relay.end == "relayed"
    assert (relay.relay.to_peer.bytes_sent,
            relay.relay.from_peer.bytes_sent) == (4, 4)
    assert relay.checksum == xxhash.xxh3_64_hexdigest(b"ping")


def test_faults_a_socket_cannot_obey_are_refused_by_name(sockagent_agent):
    _, client, _ = pair(sockagent_agent)
    with pytest.raises(sockagent.InvalidRequestError,
                       match="faults.loss_percent"):
        client.set_faults(loss_percent=5)
