"""The pytest plugin, run as a user runs it: pytest in a subprocess on a
small test file, with -p sockagent.pytest_plugin."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import sockagent

PLUGIN_ROOT = str(pathlib.Path(sockagent.__file__).resolve().parents[1])


def run_pytest(tmp_path, source, *args, env=None):
    test_file = tmp_path / "test_user.py"
    test_file.write_text(textwrap.dedent(source))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [PLUGIN_ROOT, environment.get("PYTHONPATH")]))
    environment.pop("SOCKAGENT_AGENTS", None)
    if environment.get("SOCKAGENTD"):
        environment["SOCKAGENTD"] = os.path.abspath(environment["SOCKAGENTD"])
    environment.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "sockagent.pytest_plugin",
         "-p", "no:cacheprovider", "-q", "-rA", str(test_file), *args],
        cwd=tmp_path, env=environment, capture_output=True, text=True,
        timeout=240)
    return result.returncode, result.stdout + result.stderr


def test_local_agent_is_started_and_stopped_by_pid(tmp_path):
    code, out = run_pytest(tmp_path, f"""
        import socket

        def test_exchange(sockagent_socket, sockagent_daemons):
            server = sockagent_socket()
            server.bind(("127.0.0.1", 0))
            server.listen()
            client = sockagent_socket()
            client.connect(server.getsockname())
            conn, _ = server.accept()
            client.sendall(b"hi")
            assert conn.recv(2) == b"hi"
            with open({str(tmp_path / "pid")!r}, "w") as f:
                f.write(str(sockagent_daemons["default"].pid))
    """)
    assert code == 0, out
    assert "1 passed" in out
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped (and reaped) at the end of the session


def test_failure_names_agent_call_errno_and_sockets_are_closed(
        tmp_path, sockagent_agent):
    with socket_bound_not_listening() as port:
        code, out = run_pytest(tmp_path, f"""
            def test_refused(sockagent_socket):
                listener = sockagent_socket()
                listener.bind(("127.0.0.1", 0))
                listener.listen()
                s = sockagent_socket()
                s.connect(("127.0.0.1", {port}))
        """, "--sockagent", f"default={sockagent_agent.target}")
    assert code == 1, out
    assert (f"ConnectionRefusedError: agent {sockagent_agent.target}: "
            f"connect(('127.0.0.1', {port})): [Errno 111] Connection refused"
            ) in out, out
    assert "sockagent agents" in out and sockagent_agent.target in out
    stats = sockagent_agent.info().stats
    # Only this test's own session is left, and it holds no socket.
    assert (stats["sessions"], stats["open_sockets"]) == (1, 0)


def test_named_agents_from_options_and_environment(tmp_path,
                                                   sockagent_agent):
    target = sockagent_agent.target
    source = """
        def test_names(sockagent_agents, sockagent_agent):
            assert sorted(sockagent_agents) == ["a", "b"]
            assert sockagent_agents["a"].target == sockagent_agents["b"].target
            assert sockagent_agents["a"].session_id != \\
                sockagent_agents["b"].session_id
    """
    code, out = run_pytest(tmp_path, source.replace(
        "def test_names(sockagent_agents, sockagent_agent)",
        "def test_names(sockagent_agents)"),
        "--sockagent", f"a={target}", "--sockagent", f"b={target}")
    assert code == 0, out
    code, out = run_pytest(tmp_path, source.replace(
        "def test_names(sockagent_agents, sockagent_agent)",
        "def test_names(sockagent_agents)"),
        env={"SOCKAGENT_AGENTS": f"a={target},b={target}"})
    assert code == 0, out
    # Two agents and no "default": the default agent is ambiguous.
    code, out = run_pytest(tmp_path, source, "--sockagent", f"a={target}",
                           "--sockagent", f"b={target}")
    assert code != 0 and "none is named 'default'" in out, out


def test_unknown_name_and_bad_option(tmp_path, sockagent_agent):
    code, out = run_pytest(tmp_path, """
        def test_missing(sockagent_agents):
            sockagent_agents["c"]
    """, "--sockagent", f"a={sockagent_agent.target}")
    assert code == 1 and "no agent named 'c'; given: a" in out, out
    code, out = run_pytest(tmp_path, "def test_x(): pass\n",
                           "--sockagent", "a=nocolon")
    assert code != 0 and "expected NAME=HOST:PORT" in out, out


class socket_bound_not_listening:
    """A loopback port that refuses connections while the block runs."""

    def __enter__(self):
        import socket
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return self._sock.getsockname()[1]

    def __exit__(self, *exc):
        self._sock.close()


def test_tls_and_token_options(tmp_path, secured_agent):
    source = """
        def test_bind(sockagent_socket):
            s = sockagent_socket()
            s.bind(("127.0.0.1", 0))
            assert s.getsockname()[0] == "127.0.0.1"
    """
    target = ["--sockagent", f"default={secured_agent.target}"]
    code, out = run_pytest(tmp_path, source, *target,
                           "--sockagent-tls-ca", secured_agent.ca,
                           "--sockagent-tls-server-name", "localhost",
                           "--sockagent-token", secured_agent.token)
    assert code == 0, out
    code, out = run_pytest(tmp_path, source, *target, env={
        "SOCKAGENT_TLS_CA": secured_agent.ca,
        "SOCKAGENT_TLS_CERT": secured_agent.cert,
        "SOCKAGENT_TLS_KEY": secured_agent.key,
        "SOCKAGENT_TLS_SERVER_NAME": "localhost"})
    assert code == 0, out
    # TLS but neither token nor certificate: the agent wants credentials.
    code, out = run_pytest(tmp_path, source, *target,
                           "--sockagent-tls-ca", secured_agent.ca,
                           "--sockagent-tls-server-name", "localhost")
    assert code == 1 and "AuthenticationError" in out, out


def test_proxy_fixture_stops_its_proxies_at_teardown(tmp_path,
                                                     sockagent_agent):
    # The first test leaves its proxy running (and fails); the second,
    # after the first's teardown, finds it stopped with its threads joined.
    code, out = run_pytest(tmp_path, """
        import socket
        import threading

        left = []

        def test_leaves_a_running_proxy(sockagent_proxy):
            upstream = socket.create_server(("127.0.0.1", 0))
            proxy = sockagent_proxy(("127.0.0.1", 0), upstream.getsockname(),
                                    to_upstream={"send_delay": 0.01})
            left.append((proxy, upstream))
            client = socket.create_connection(proxy.address, timeout=30)
            conn, _ = upstream.accept()  # relayed: a live connection
            left.append(client)
            assert not proxy.stopped
            assert False, "fails with the proxy running"

        def test_the_proxy_was_stopped():
            (proxy, upstream), client = left
            assert proxy.stopped
            assert [c.end for c in proxy.connections] == ["stopped"]
            assert not [t for t in threading.enumerate()
                        if t.name.startswith("sockagent-proxy-")]
    """, "--sockagent", f"default={sockagent_agent.target}")
    assert code == 1, out
    assert "1 failed, 1 passed" in out, out
    assert "fails with the proxy running" in out, out
