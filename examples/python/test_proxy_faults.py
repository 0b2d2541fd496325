"""A proxy with faults between two parts of a system under test.

Agent "b" runs the proxy (sockagent.Proxy); the "database" listens on agent
"a" and the "service" connects from agent "a" through the proxy, so the
faults sit on the path between them. Run as test_two_agents.py is (with no
--sockagent, one local sockagentd per name). The proxy is stopped when the
test ends, pass or fail.
"""

import time

import pytest


def host_of(agent):
    return agent.target.rsplit(":", 1)[0].strip("[]")


@pytest.fixture
def a(sockagent_agents):
    return sockagent_agents["a"]


@pytest.fixture
def b(sockagent_agents):
    return sockagent_agents["b"]


def test_latency_then_a_reset(a, b, sockagent_proxy):
    with a.create_server((host_of(a), 0)) as database:
        proxy = sockagent_proxy((host_of(b), 0), database.getsockname(),
                                agent=b, to_upstream={"send_delay": 0.2})
        with a.create_connection(proxy.address, timeout=10) as service:
            conn, _ = database.accept()
            start = time.monotonic()
            service.sendall(b"SELECT 1")
            assert conn.recv(100) == b"SELECT 1"
            assert time.monotonic() - start >= 0.2  # the latency, one way

            # Mid-test, on the live connection: the reply is cut after its
            # first byte by a reset.
            proxy.set_faults(to_upstream={},
                             to_client={"close_after_bytes": 1,
                                        "close_with_reset": True})
            conn.sendall(b"1 row")
            with pytest.raises(ConnectionResetError):
                while service.recv(100):
                    pass
            conn.close()
        (ended,) = proxy.wait_connections(1, timeout=10)
        assert ended.end == "fault"
