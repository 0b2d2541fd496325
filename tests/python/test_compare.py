"""The same steps on Python's socket module and on a RemoteSocket (through
agent.socket_module()): results, exception classes and errno must match.
Loopback only (127.0.0.1, ::1, Unix sockets in a private directory)."""

import errno
import os
import socket
import struct
import threading

import sockagent
from sockcompare import outcome


def closed_port(env, family=socket.AF_INET, host="127.0.0.1"):
    """A loopback port nobody listens on: bound (so nobody else takes it)
    but not listening, so a connect is refused."""
    holder = env.sock(family)
    holder.bind((host, 0))
    return holder.getsockname()[1]


# --- TCP ---------------------------------------------------------------------


def test_tcp_exchange_addresses_and_eof(compare):
    def scenario(env):
        server, client, conn = env.tcp_pair()
        payload = bytes(range(256)) * 400
        client.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = conn.recv(65536)
            assert chunk
            got += chunk
        client.shutdown(socket.SHUT_WR)
        return [got == payload, conn.recv(10),
                conn.getpeername() == client.getsockname(),
                client.getpeername() == server.getsockname(),
                client.getsockname()[0], len(server.getsockname()),
                client.family, client.type, client.proto,
                repr(client.family), str(client.type),
                client.gettimeout(), client.getblocking(),
                conn.gettimeout()]
    result = compare(scenario)
    assert result[0] is True and result[1] == b""


def test_tcp_connect_refused_and_connect_ex(compare):
    def scenario(env):
        port = closed_port(env)
        return [outcome(env.sock().connect, ("127.0.0.1", port)),
                env.sock().connect_ex(("127.0.0.1", port))]
    assert compare(scenario) == [("raise", "ConnectionRefusedError",
                                  errno.ECONNREFUSED), errno.ECONNREFUSED]


def test_tcp_reset_by_peer(compare):
    def scenario(env):
        _, client, conn = env.tcp_pair()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        conn.close()
        return outcome(client.recv, 10)
    assert compare(scenario) == ("raise", "ConnectionResetError",
                                 errno.ECONNRESET)


def test_tcp_send_after_peer_closed_is_broken_pipe_or_reset(compare):
    def scenario(env):
        _, client, conn = env.tcp_pair()
        conn.close()
        first = outcome(client.recv, 10)  # EOF arrives first
        results = []
        for _ in range(3):  # the first send provokes the RST
            results.append(outcome(client.send, b"x" * 1000))
        return [first, results[-1]]
    first, last = compare(scenario)
    assert first == ("ok", b"")
    assert last[0] == "raise" and last[2] in (errno.EPIPE, errno.ECONNRESET)


def test_tcp_flags_peek_dontwait_waitall(compare):
    def scenario(env):
        _, client, conn = env.tcp_pair()
        empty = outcome(conn.recv, 10, socket.MSG_DONTWAIT)
        client.sendall(b"hello")
        peeked = conn.recv(5, socket.MSG_PEEK)
        read = conn.recv(5)
        client.sendall(b"abc")
        sender = threading.Timer(0.05, client.sendall, (b"defghij",))
        sender.start()
        try:
            waitall = conn.recv(10, socket.MSG_WAITALL)
        finally:
            sender.join()
        return [empty, peeked, read, waitall]
    assert compare(scenario) == [("raise", "BlockingIOError", errno.EAGAIN),
                                 b"hello", b"hello", b"abcdefghij"]


def test_recv_variants(compare):
    def scenario(env):
        _, client, conn = env.tcp_pair()
        client.sendall(b"0123456789")
        buf = bytearray(4)
        n = conn.recv_into(buf)
        buf2 = bytearray(10)
        n2 = conn.recv_into(buf2, 3)
        data, address = conn.recvfrom(2)
        buf3 = bytearray(8)
        n3, address3 = conn.recvfrom_into(buf3)
        return [n, bytes(buf), n2, bytes(buf2), data, address, n3,
                bytes(buf3), address3, conn.recv(0),
                outcome(conn.recv, -1), outcome(conn.recv_into, buf, 5),
                outcome(conn.recv_into, buf, -1)]
    result = compare(scenario)
    assert result[:4] == [4, b"0123", 3, b"456" + bytes(7)]


def test_recv_above_agent_maximum_returns_what_is_there(compare):
    def scenario(env):
        _, client, conn = env.tcp_pair()
        client.sendall(b"x" * 1000)
        got = b""
        while len(got) < 1000:
            got += conn.recv(64 << 20)
        return got
    assert compare(scenario) == b"x" * 1000


def test_makefile_lines(compare):
    def scenario(env):
        _, client, conn = env.tcp_pair()
        writer = client.makefile("wb")
        writer.write(b"line one\nline two\n")
        writer.flush()
        writer.close()
        reader = conn.makefile("r", encoding="ascii")
        lines = [reader.readline(), reader.readline()]
        client.close()  # closes after the makefile objects are done
        rest = reader.read()
        reader.close()
        return lines + [rest]
    assert compare(scenario) == ["line one\n", "line two\n", ""]


def test_timeouts_and_blocking(compare):
    def scenario(env):
        server, client, conn = env.tcp_pair()
        conn.settimeout(0.1)
        timed = outcome(conn.recv, 1)
        server.settimeout(0.1)
        accept_timed = outcome(server.accept)
        conn.setblocking(False)
        nonblocking = outcome(conn.recv, 1)
        state = [conn.gettimeout(), conn.getblocking(), conn.timeout]
        conn.setblocking(True)
        state += [conn.gettimeout(), conn.getblocking()]
        return [timed, accept_timed, nonblocking, state,
                outcome(conn.settimeout, -1), outcome(conn.settimeout, "x"),
                outcome(conn.settimeout, float("nan"))]
    result = compare(scenario)
    assert result[0] == ("raise", "TimeoutError", None)
    assert result[2] == ("raise", "BlockingIOError", errno.EAGAIN)


def test_setdefaulttimeout_applies_to_new_and_accepted_sockets(compare):
    def scenario(env):
        server = env.keep(env.mod.create_server(("127.0.0.1", 0)))
        socket.setdefaulttimeout(0.25)
        try:
            fresh = env.sock()
            client = env.keep(env.mod.create_connection(
                server.getsockname()))
            conn, _ = server.accept()
            env.keep(conn)
        finally:
            socket.setdefaulttimeout(None)
        return [fresh.gettimeout(), client.gettimeout(), conn.gettimeout(),
                server.gettimeout(), outcome(conn.recv, 1)]
    assert compare(scenario) == [0.25, 0.25, 0.25, None,
                                 ("raise", "TimeoutError", None)]


def test_sock_nonblock_in_type_means_timeout_zero(compare):
    def scenario(env):
        s = env.sock(socket.AF_INET,
                     socket.SOCK_STREAM | socket.SOCK_NONBLOCK |
                     socket.SOCK_CLOEXEC)
        return [s.type, s.gettimeout(), s.getblocking()]
    assert compare(scenario) == [socket.SOCK_STREAM, 0.0, False]


def test_closed_socket(compare):
    def scenario(env):
        s = env.sock()
        s.bind(("127.0.0.1", 0))
        s.close()
        return [outcome(s.close), outcome(s.getsockname),
                outcome(s.send, b"x"), outcome(s.recv, 1),
                outcome(s.connect, ("127.0.0.1", 1)),
                outcome(s.settimeout, 1.0)]
    result = compare(scenario)
    assert result[0] == ("ok", None)
    assert result[1] == ("raise", "OSError", errno.EBADF)


def test_socket_errors(compare):
    def scenario(env):
        a = env.sock()
        a.bind(("127.0.0.1", 0))
        b = env.sock()
        udp = env.sock(socket.AF_INET, socket.SOCK_DGRAM)
        fresh = env.sock()
        return [outcome(b.bind, a.getsockname()),
                outcome(udp.listen),
                outcome(fresh.getpeername),
                outcome(fresh.send, b"x"),
                outcome(fresh.shutdown, socket.SHUT_RDWR),
                outcome(fresh.shutdown, 7),
                outcome(a.bind, ("127.0.0.1", 0)),
                outcome(fresh.accept)]
    assert compare(scenario)[0] == ("raise", "OSError", errno.EADDRINUSE)


def test_bad_arguments_fail_like_python(compare):
    def scenario(env):
        s = env.sock()
        six = env.sock(socket.AF_INET6)
        return [outcome(s.connect, "127.0.0.1"),
                outcome(s.connect, ("127.0.0.1",)),
                outcome(s.connect, ("127.0.0.1", "x")),
                outcome(s.bind, ("127.0.0.1", 70000)),
                outcome(s.bind, ("127.0.0.1", -1)),
                outcome(six.bind, ("::1", 0, 1 << 20, 0)),
                outcome(six.bind, ("::1", 65536)),
                outcome(s.listen, 1 << 31),
                outcome(s.send, "text"),
                outcome(s.getsockopt, socket.SOL_SOCKET, socket.SO_TYPE, 0)]
    result = compare(scenario)
    assert result[3] == ("raise", "OverflowError", None)
    assert result[5] == ("raise", "OverflowError", None)
    assert result[7] == ("raise", "OverflowError", None)


def test_socket_options(compare):
    def scenario(env):
        s = env.sock()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 3))
        return [s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE),
                s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8),
                s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR),
                outcome(s.setsockopt, socket.SOL_SOCKET, 9999, 1)]
    result = compare(scenario)
    assert result[0] == 1 and result[3] == socket.SOCK_STREAM


def test_create_connection_errors_and_source_address(compare):
    def scenario(env):
        port = closed_port(env)
        single = outcome(env.mod.create_connection, ("127.0.0.1", port))
        try:
            env.mod.create_connection(("127.0.0.1", port), all_errors=True)
            group = None
        except ExceptionGroup as eg:  # noqa: F821 (3.11)
            group = [(sockagent.builtin_type(e).__name__, e.errno)
                     for e in eg.exceptions]
        server = env.keep(env.mod.create_server(("127.0.0.1", 0)))
        client = env.keep(env.mod.create_connection(
            server.getsockname(), source_address=("127.0.0.2", 0)))
        return [single, group, client.getsockname()[0]]
    assert compare(scenario) == [
        ("raise", "ConnectionRefusedError", errno.ECONNREFUSED),
        [("ConnectionRefusedError", errno.ECONNREFUSED)], "127.0.0.2"]


def test_create_server_bind_error_message(compare):
    def scenario(env):
        server = env.keep(env.mod.create_server(("127.0.0.1", 0)))
        try:
            env.mod.create_server(server.getsockname())
        except OSError as e:
            return [e.errno, e.strerror.replace(
                str(server.getsockname()[1]), "PORT")]
    assert compare(scenario)[0] == errno.EADDRINUSE


# --- UDP ---------------------------------------------------------------------


def test_udp_exchange(compare):
    def scenario(env):
        a = env.sock(socket.AF_INET, socket.SOCK_DGRAM)
        b = env.sock(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.settimeout(5)
        b.settimeout(5)
        sent = b.sendto(b"datagram one", a.getsockname())
        data, source = a.recvfrom(100)
        b.sendto(b"0123456789", 0, a.getsockname())
        truncated = a.recv(4)  # the rest of the datagram is dropped
        a.connect(b.getsockname())
        a.send(b"reply")
        buf = bytearray(16)
        n, source2 = b.recvfrom_into(buf)
        b.sendto(b"peek", a.getsockname())
        peeked = a.recv(10, socket.MSG_PEEK)
        again = a.recv(10)
        return [sent, data, source == b.getsockname(), truncated,
                bytes(buf[:n]), source2 == a.getsockname(), peeked, again,
                a.type]
    result = compare(scenario)
    assert result[:4] == [12, b"datagram one", True, b"0123"]


def test_udp_connected_to_closed_port_is_refused(compare):
    def scenario(env):
        # No socket can hold a UDP port closed (a bound one would take the
        # datagram; closed_port's TCP holder leaves the UDP port free), so
        # the port is one the kernel has just freed. Another process of a
        # parallel run may bind it before the datagram comes, and then
        # nothing is refused (seen once in the full suite): try another.
        for _ in range(5):
            probe = env.sock(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()
            u = env.sock(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(2)
            u.connect(("127.0.0.1", port))
            u.send(b"anyone?")
            result = outcome(u.recv, 10)
            if result[:2] != ("raise", "TimeoutError"):
                return result
        return result
    assert compare(scenario) == ("raise", "ConnectionRefusedError",
                                 errno.ECONNREFUSED)


# --- Unix --------------------------------------------------------------------


def test_unix_stream_paths(compare):
    def scenario(env):
        path = env.path("server.sock")
        server = env.sock(socket.AF_UNIX)
        unbound = server.getsockname()
        server.bind(path)
        server.listen()
        client = env.sock(socket.AF_UNIX)
        client.connect(path)
        conn, peer = server.accept()
        env.keep(conn)
        client.sendall(b"over unix")
        return [unbound, server.getsockname() == path, peer,
                client.getsockname(), client.getpeername() == path,
                conn.recv(100), outcome(env.sock(socket.AF_UNIX).connect,
                                        env.path("missing.sock")),
                outcome(env.sock(socket.AF_UNIX).bind, path),
                outcome(client.connect, ("127.0.0.1", 1))]
    result = compare(scenario)
    assert result[5] == b"over unix"
    assert result[6] == ("raise", "FileNotFoundError", errno.ENOENT)


def test_unix_abstract_and_datagram(compare):
    def scenario(env):
        name = b"\0sockagent-test-" + env.path("x").encode()[-24:]
        a = env.sock(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.bind(name)
        b = env.sock(socket.AF_UNIX, socket.SOCK_DGRAM)
        b.bind(env.path("b.sock"))
        b.sendto(b"abstract", name)
        data, source = a.recvfrom(100)
        return [a.getsockname() == name, data,
                source == env.path("b.sock"), type(source).__name__]
    assert compare(scenario)[1] == b"abstract"


def test_unix_autobind(compare):
    def scenario(env):
        s = env.sock(socket.AF_UNIX)
        s.bind("")
        name = s.getsockname()
        return [type(name).__name__, name[:1], len(name)]
    assert compare(scenario)[1] == b"\0"


def test_unix_path_not_utf8(compare):
    def scenario(env):
        path = env.path("").encode() + b"\xff.sock"
        s = env.sock(socket.AF_UNIX)
        s.bind(path)
        name = s.getsockname()
        return [type(name).__name__, name == os.fsdecode(path)]
    assert compare(scenario) == ["str", True]


# --- IPv6 --------------------------------------------------------------------


def test_ipv6_loopback_exchange(compare):
    def scenario(env):
        server, client, conn = env.tcp_pair(socket.AF_INET6, "::1")
        client.sendall(b"six")
        name = server.getsockname()
        return [conn.recv(10), len(name), name[0], name[2:],
                client.getpeername() == name, client.family,
                server.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)]
    assert compare(scenario)[:3] == [b"six", 4, "::1"]


def test_ipv6_dualstack_server(compare):
    def scenario(env):
        server = env.keep(env.mod.create_server(
            ("::1", 0), family=socket.AF_INET6, dualstack_ipv6=True))
        return [server.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY),
                outcome(env.mod.create_server, ("127.0.0.1", 0),
                        dualstack_ipv6=True)]
    # Linux sets IPV6_V6ONLY itself on a socket bound to a specific IPv6
    # address, so ::1 reads 1 even after create_server asked for 0.
    assert compare(scenario) == [1, ("raise", "ValueError", None)]


def test_ipv6_udp_and_refused(compare):
    def scenario(env):
        a = env.sock(socket.AF_INET6, socket.SOCK_DGRAM)
        a.bind(("::1", 0))
        a.settimeout(5)
        b = env.sock(socket.AF_INET6, socket.SOCK_DGRAM)
        b.sendto(b"v6", a.getsockname())
        data, source = a.recvfrom(10)
        port = closed_port(env, socket.AF_INET6, "::1")
        return [data, len(source), source[0],
                outcome(env.sock(socket.AF_INET6).connect, ("::1", port))]
    assert compare(scenario)[0] == b"v6"


def test_ipv6_scoped_loopback_is_refused(compare):
    def scenario(env):
        return outcome(env.sock(socket.AF_INET6).bind, ("::1%lo", 0))
    assert compare(scenario)[0] == "raise"


# --- names -------------------------------------------------------------------


def test_getaddrinfo_and_gethostname(compare):
    def scenario(env):
        return [env.mod.gethostname(),
                env.mod.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM),
                env.mod.getaddrinfo("::1", "80", socket.AF_INET6,
                                    socket.SOCK_DGRAM),
                env.mod.getaddrinfo("localhost", 7, socket.AF_INET,
                                    socket.SOCK_STREAM,
                                    flags=socket.AI_CANONNAME),
                outcome(env.mod.getaddrinfo, "not a host", 80,
                        flags=socket.AI_NUMERICHOST),
                outcome(env.mod.getaddrinfo, "127.0.0.1", "no-such-service",
                        type=socket.SOCK_STREAM)]
    result = compare(scenario)
    assert result[1] == [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                          ("127.0.0.1", 80))]
    assert result[4] == ("raise", "gaierror", socket.EAI_NONAME)


def test_getaddrinfo_without_type(compare):
    compare(lambda env: env.mod.getaddrinfo("127.0.0.1", 80))


def test_getaddrinfo_none_none(compare):
    compare(lambda env: outcome(env.mod.getaddrinfo, None, None))


def test_inet_aton_forms(compare):
    def scenario(env):
        results = []
        for form in ("127.1", "127.0.1", "2130706433", "0x7f.1"):
            server = env.keep(env.mod.create_server(("127.0.0.1", 0)))
            c = env.sock()
            results.append(outcome(c.connect,
                                   (form, server.getsockname()[1])))
        return results
    assert compare(scenario) == [("ok", None)] * 4


def test_nonblocking_connect_and_accept(compare):
    def scenario(env):
        server = env.keep(env.mod.create_server(("127.0.0.1", 0)))
        server.setblocking(False)
        empty = outcome(server.accept)
        c = env.sock()
        c.setblocking(False)
        return [empty, outcome(c.connect, server.getsockname())]
    assert compare(scenario) == [
        ("raise", "BlockingIOError", errno.EAGAIN),
        ("raise", "BlockingIOError", errno.EINPROGRESS)]


def test_unix_seqpacket_keeps_message_boundaries(compare):
    def scenario(env):
        path = env.path("seq.sock")
        server = env.sock(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        server.bind(path)
        server.listen()
        client = env.sock(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        client.connect(path)
        conn, _ = server.accept()
        env.keep(conn)
        client.send(b"first")
        client.send(b"second message")
        return [conn.recv(100), conn.recv(3), conn.type,
                outcome(conn.recv, 10, socket.MSG_DONTWAIT)]
    assert compare(scenario)[:2] == [b"first", b"sec"]


def test_tcp_out_of_band_byte(compare):
    def scenario(env):
        _, client, conn = env.tcp_pair()
        client.send(b"!", socket.MSG_OOB)
        client.sendall(b"in band")
        return [conn.recv(1, socket.MSG_OOB),
                conn.recv(7, socket.MSG_WAITALL)]
    assert compare(scenario) == [b"!", b"in band"]


def test_udp_recv_msg_trunc_returns_the_real_length(compare):
    def scenario(env):
        a = env.sock(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b = env.sock(socket.AF_INET, socket.SOCK_DGRAM)
        b.sendto(b"0123456789", a.getsockname())
        return len(a.recv(4, socket.MSG_TRUNC))
    assert compare(scenario) == 10


def test_dontwait_on_a_socket_with_timeout(compare):
    def scenario(env):
        a = env.sock(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        a.settimeout(0.1)
        return outcome(a.recv, 10, socket.MSG_DONTWAIT)
    assert compare(scenario) == ("raise", "TimeoutError", None)
