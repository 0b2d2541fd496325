"""sockagent.aio: the asyncio client on grpc.aio, against a real agent.
Each test runs its own event loop (asyncio.run); loopback only."""

import asyncio
import errno
import socket

import pytest

import sockagent
import sockagent.aio


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def test_tcp_exchange_errors_and_timeouts(sockagent_agent):
    holder, port = closed_port()

    async def scenario():
        async with sockagent.aio.Agent(sockagent_agent.target) as agent:
            assert agent.bound  # the session ends with the connection
            server = await agent.create_server(("127.0.0.1", 0))
            client = await agent.create_connection(await server.getsockname(),
                                                   timeout=5)
            conn, peer = await server.accept()
            assert peer == await client.getsockname()
            await client.sendall(b"over asyncio")
            assert await conn.recv(100) == b"over asyncio"
            buf = bytearray(8)
            await conn.send(b"x" * 3)
            assert await client.recv_into(buf) == 3
            await conn.settimeout(0.05)
            assert conn.gettimeout() == 0.05 and conn.getblocking()
            with pytest.raises(socket.timeout):
                await conn.recv(1)
            await conn.setblocking(False)
            with pytest.raises(BlockingIOError):
                await conn.recv(1)
            refused = await agent.socket()
            with pytest.raises(ConnectionRefusedError) as info:
                await refused.connect(("127.0.0.1", port))
            assert str(info.value) == (
                f"agent {agent.target}: connect(('127.0.0.1', {port})): "
                "[Errno 111] Connection refused")
            assert await refused.connect_ex(("127.0.0.1", port)) == \
                errno.ECONNREFUSED
            await client.close()
            await client.close()  # idempotent
            with pytest.raises(OSError) as info:
                await client.send(b"x")
            assert info.value.errno == errno.EBADF
            with pytest.raises(OverflowError):
                await refused.connect(("127.0.0.1", 70000))
            assert (await agent.getaddrinfo("127.0.0.1", 80, type=socket.
                                            SOCK_STREAM))[0][4] == \
                ("127.0.0.1", 80)
            assert await agent.gethostname() == socket.gethostname()
            with pytest.raises(socket.gaierror):
                await agent.getaddrinfo("not a host", 80,
                                        flags=socket.AI_NUMERICHOST)
            return await agent.close()
    try:
        assert run(scenario()) == 3  # server, conn, refused
    finally:
        holder.close()


def test_udp_and_concurrent_waits(sockagent_agent):
    async def scenario():
        async with sockagent.aio.Agent(sockagent_agent.target) as agent:
            a = await agent.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = await agent.socket(socket.AF_INET, socket.SOCK_DGRAM)
            await a.bind(("127.0.0.1", 0))
            await b.sendto(b"datagram", await a.getsockname())
            data, source = await a.recvfrom(100)
            assert (data, source[0]) == (b"datagram", "127.0.0.1")
            # 20 receivers wait at once in one event loop, then all get data.
            server = await agent.create_server(("127.0.0.1", 0))
            address = await server.getsockname()
            pairs = []
            for _ in range(20):
                client = await agent.create_connection(address)
                conn, _ = await server.accept()
                pairs.append((client, conn))
            waits = [asyncio.ensure_future(conn.recv(10))
                     for _, conn in pairs]
            for i, (client, _) in enumerate(pairs):
                await client.send(b"%d" % i)
            got = await asyncio.gather(*waits)
            assert got == [b"%d" % i for i in range(20)]
    run(scenario())


def test_streams_traffic_faults_and_abort(sockagent_agent):
    async def scenario():
        async with sockagent.aio.Agent(sockagent_agent.target) as agent:
            server = await agent.create_server(("127.0.0.1", 0))
            client = await agent.create_connection(await server.getsockname())
            conn, _ = await server.accept()

            async def chunks():
                for i in range(5):
                    yield bytes([i]) * 1000

            assert await client.send_stream(chunks()) == 5000
            got = b""
            async for data in conn.recv_stream(limit_bytes=5000):
                got += data
            assert got == b"".join(bytes([i]) * 1000 for i in range(5))
            sink = asyncio.ensure_future(client.traffic("sink"))
            source = await conn.traffic("source", bytes=50000,
                                        shutdown_write=True)
            sink = await sink
            assert (sink.bytes_received, sink.checksum) == (
                50000, source.checksum)
            await conn.set_faults(stop_reading=False)  # clears the profile
            client2 = await agent.create_connection(
                await server.getsockname())
            conn2, _ = await server.accept()
            await conn2.abort()
            with pytest.raises(ConnectionResetError):
                await client2.recv(10)
    run(scenario())


def test_agent_errors():
    holder, port = closed_port()

    async def scenario():
        with pytest.raises(sockagent.AgentUnavailableError):
            await sockagent.aio.Agent(f"127.0.0.1:{port}",
                                      connect_timeout=0.3).open()
    try:
        run(scenario())
    finally:
        holder.close()


def test_closed_agent_is_an_agent_error(sockagent_agent):
    async def scenario():
        agent = await sockagent.aio.Agent(sockagent_agent.target).open()
        s = await agent.socket()
        assert await agent.close() == 1
        assert await agent.close() is None
        with pytest.raises(sockagent.AgentError, match="closed"):
            await agent.socket()
        with pytest.raises(OSError):
            await s.getsockname()
        await s.close()
    run(scenario())
