"""Real peer processes for proxy_test.sh: the system under test's server and
client, talking through `sockctl proxy`. Loopback only; every wait bounded.

  proxy_peers.py tcp-server PORTFILE      echo-ish TCP server (see Handle)
  proxy_peers.py udp-server PORTFILE      counts datagrams; "end" -> count
  proxy_peers.py CASE HOST:PORT [ARGS]    one client case; prints a result
"""

import errno
import socket
import socketserver
import sys
import threading
import time

WAIT = 20.0


def write_port(path, port):
    with open(path + ".tmp", "w") as f:
        f.write(str(port))
    import os
    os.rename(path + ".tmp", path)


class Handle(socketserver.BaseRequestHandler):
    """One line in: 'echo' -> echoes until EOF; 'send N' -> N bytes then
    close; 'yyyy' style fixed replies for the reset case."""

    def handle(self):
        conn = self.request
        conn.settimeout(WAIT)
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                return
            line += chunk
        words = line.decode().split()
        if words[0] == "echo":
            while True:
                data = conn.recv(65536)
                if not data:
                    conn.shutdown(socket.SHUT_WR)
                    return
                conn.sendall(data)
        elif words[0] == "send":
            conn.sendall(b"b" * int(words[1]))
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def tcp_server(portfile):
    server = Server(("127.0.0.1", 0), Handle)
    write_port(portfile, server.server_address[1])
    server.serve_forever()


def udp_server(portfile):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    write_port(portfile, s.getsockname()[1])
    seen = set()
    while True:
        data, source = s.recvfrom(2048)
        if data == b"end":
            s.sendto(("count %d" % len(seen)).encode(), source)
            seen = set()
        elif data.startswith(b"ping"):
            s.sendto(b"pong", source)
        else:
            seen.add(int(data))


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def connect(target, source_host=None):
    s = socket.socket()
    s.settimeout(WAIT)
    if source_host:
        s.bind((source_host, 0))
    s.connect(address(target))
    return s


def case_rtt(target):
    """Seconds for a 4-byte round trip through an echo."""
    s = connect(target)
    s.sendall(b"echo\n")
    start = time.monotonic()
    s.sendall(b"ping")
    got = b""
    while len(got) < 4:
        chunk = s.recv(4 - len(got))
        if not chunk:
            break
        got += chunk
    elapsed = time.monotonic() - start
    assert got == b"ping", got
    s.shutdown(socket.SHUT_WR)
    assert s.recv(10) == b""  # the server's FIN passed on after ours
    print("%.3f" % elapsed)


def case_download(target, n):
    """Seconds to receive N bytes (then EOF)."""
    n = int(n)
    s = connect(target)
    s.sendall(b"send %d\n" % n)
    start = time.monotonic()
    got = 0
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    elapsed = time.monotonic() - start
    assert got == n, (got, n)
    print("%.3f" % elapsed)


def case_reset(target):
    """What arrives before the connection ends, and how it ends. A reset
    can come before connect() returns (a denied upstream) or before the
    request is written: both count as the connection's end."""
    got = b""
    try:
        s = connect(target)
        s.sendall(b"send 4\n")
        while True:
            chunk = s.recv(65536)
            if not chunk:
                print(got.decode() + " eof")
                return
            got += chunk
    except ConnectionResetError:
        print(got.decode() + " ECONNRESET")
    except BrokenPipeError:
        print(got.decode() + " EPIPE")


def case_refused_source(target):
    """A client from 127.0.0.2 (refused by the policy): how it ends."""
    try:
        s = connect(target, "127.0.0.2")
        s.sendall(b"echo\n")
        s.sendall(b"x")
        data = s.recv(10)
        print("eof" if data == b"" else "data")
    except ConnectionResetError:
        print("ECONNRESET")
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e)))


def case_udp_loss(target, n):
    """Datagrams 0..N-1 then markers; prints how many arrived upstream.
    The proxy's loss is cleared (by the test) when 'ready' appears in the
    file named by argv[4] is not needed: markers repeat until one answers."""
    n = int(n)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    to = address(target)
    for i in range(n):
        s.sendto(str(i).encode(), to)
    for _ in range(200):
        s.sendto(b"end", to)
        try:
            data, _ = s.recvfrom(100)
        except socket.timeout:
            continue  # this marker was lost: another one
        if data.startswith(b"count "):
            print(int(data.split()[1]))
            return
    print("no-answer")


def case_udp_ping(target):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(WAIT)
    s.sendto(b"ping", address(target))
    data, _ = s.recvfrom(100)
    print(data.decode())


def case_hold(target, ready_file):
    """Echoes one message through the proxy, says so in READY_FILE, then
    holds the connection until the proxy ends it; prints how it ended."""
    s = connect(target)
    s.sendall(b"echo\nabc")
    got = b""
    while len(got) < 3:
        chunk = s.recv(3 - len(got))
        if not chunk:
            print("eof-early")
            return
        got += chunk
    write_port(ready_file, 1)
    try:
        rest = s.recv(100)
        print("eof" if not rest else "data")
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e)))


def case_partition(target):
    """Through an echo, sends a numbered line every 20 ms and reads the
    echoes, until some lines were lost (a partition swallowed them) and 5
    later ones came back (healed); then closes in order. Connects as soon as
    the proxy listens (bounded). Prints "lost=N after=M echoed=K"."""
    import select
    deadline = time.monotonic() + 60
    while True:
        try:
            s = connect(target)
            break
        except OSError:
            if time.monotonic() > deadline:
                print("no-proxy")
                return
            time.sleep(0.05)
    s.sendall(b"echo\n")
    sent, got, buf, i = set(), set(), b"", 0
    next_send = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() >= next_send:
            s.sendall(b"%d\n" % i)
            sent.add(i)
            i += 1
            next_send += 0.02
        ready, _, _ = select.select([s], [], [], 0.02)
        if ready:
            data = s.recv(65536)
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            got.update(int(l) for l in lines if l.isdigit())
        if got:
            lost = [n for n in sent if n < max(got) and n not in got]
            if lost and len([n for n in got if n > max(lost)]) >= 5:
                break
    lost = [n for n in sent if got and n < max(got) and n not in got]
    after = [n for n in got if lost and n > max(lost)]
    try:
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError as e:
        print("close: %s" % errno.errorcode.get(e.errno, e), file=sys.stderr)
    s.close()
    print("lost=%d after=%d echoed=%d" % (len(lost), len(after), len(got)))


def main():
    role = sys.argv[1]
    if role == "tcp-server":
        return tcp_server(sys.argv[2])
    if role == "udp-server":
        return udp_server(sys.argv[2])
    globals()["case_" + role.replace("-", "_")](*sys.argv[2:])


if __name__ == "__main__":
    main()
