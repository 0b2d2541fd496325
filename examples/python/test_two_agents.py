"""sockagent from pytest: a suite to copy.

Run against two agents (hosts, pods, namespaces):

    /usr/bin/python3 -m pytest examples/python \\
        --sockagent a=10.0.0.5:7700 --sockagent b=10.0.0.6:7700

With no --sockagent, the plugin starts one local sockagentd per name on
loopback, so the suite runs as is on a laptop or in CI. The plugin loads by
its entry point once installed (deploy/install-python.sh); from a source
tree add `-p sockagent.pytest_plugin` and PYTHONPATH=client/python.

Agent "a" listens on the address its agent is reached at (the host of its
target), agent "b" connects to it. Every socket is closed when the test ends.
"""

import socket

import pytest


def host_of(agent):
    """The address agent `agent` is reached at: its target's host."""
    return agent.target.rsplit(":", 1)[0].strip("[]")


@pytest.fixture
def a(sockagent_agents):
    return sockagent_agents["a"]


@pytest.fixture
def b(sockagent_agents):
    return sockagent_agents["b"]


def test_tcp_exchange(a, b):
    with a.create_server((host_of(a), 0)) as server:
        with b.create_connection(server.getsockname(), timeout=5) as client:
            conn, peer = server.accept()
            with conn:
                conn.settimeout(2)  # "must arrive within 2 s"
                client.sendall(b"hello from b")
                assert conn.recv(100) == b"hello from b"
                conn.sendall(b"hello from a")
                assert client.recv(100) == b"hello from a"
                assert peer == client.getsockname()


def test_udp_exchange(a, b):
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            b.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind((host_of(a), 0))
        receiver.settimeout(2)
        sender.settimeout(2)
        sender.sendto(b"ping", receiver.getsockname())
        data, source = receiver.recvfrom(1500)
        assert data == b"ping"
        receiver.sendto(b"pong", source)
        assert sender.recvfrom(1500)[0] == b"pong"


def test_connection_reset(a, b):
    with a.create_server((host_of(a), 0)) as server:
        with b.create_connection(server.getsockname(), timeout=5) as client:
            conn, _ = server.accept()
            conn.abort()  # close with RST instead of FIN
            with pytest.raises(ConnectionResetError):
                client.recv(100)


def test_fault_resets_the_connection_after_1000_bytes(a, b):
    with a.create_server((host_of(a), 0)) as server:
        with b.create_connection(server.getsockname(), timeout=5) as client:
            conn, _ = server.accept()
            # a echoes inside its agent; the fault cuts the connection with
            # RST once 1000 bytes have passed.
            conn.set_faults(close_after_bytes=1000, close_with_reset=True)
            client.sendall(b"x" * 4000)
            result = conn.traffic("echo", duration=10)
            assert result.end == "fault"
            echoed = 0
            with pytest.raises(ConnectionResetError):
                while True:
                    data = client.recv(65536)
                    assert data, "expected a reset, not an orderly close"
                    echoed += len(data)
            assert echoed <= 1000
