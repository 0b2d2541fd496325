"""Fixtures of the Python client tests (the agent comes from the
sockagent pytest plugin: -p sockagent.pytest_plugin)."""

import socket

import pytest

import sockagent
from sockagent import pytest_plugin
from sockcompare import Env


@pytest.fixture
def compare(sockagent_agent):
    """compare(scenario): runs scenario(env) on the local socket module and on
    the agent's, asserts both returned the same, and returns it."""
    remote_module = sockagent_agent.socket_module()

    def run(scenario):
        results = {}
        for kind, mod in (("local", socket), ("remote", remote_module)):
            env = Env(mod, kind)
            try:
                results[kind] = scenario(env)
            finally:
                env.close()
        assert results["remote"] == results["local"]
        assert results["local"] is not None
        return results["local"]

    return run



POLICY = """
rules {
  name: "tester"
  identities: [ "tester", "spiffe://sockagent.test/py" ]
  allow_rpcs: "*"
  families: [ FAMILY_INET ]
  types: [ SOCKET_TYPE_STREAM ]
  connect_allow { cidr: "127.0.0.0/8" port_min: 20000 port_max: 65535 }
  bind_allow { cidr: "127.0.0.0/8" }
}
"""


class SecuredAgent:
    """A sockagentd with TLS (client certificates verified when offered), a
    bearer token and a deny-by-default policy; stopped by pid."""

    def __init__(self, directory, binary):
        import subprocess
        d = directory

        def run(*args):
            subprocess.run(args, cwd=d, check=True, capture_output=True,
                           timeout=60)

        def key(name):
            run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out", name)

        def leaf(name, san):
            key(f"{name}.key")
            run("openssl", "req", "-new", "-key", f"{name}.key", "-subj",
                f"/CN={name}", "-out", f"{name}.csr")
            (d / f"{name}.ext").write_text(
                f"subjectAltName={san}\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
            run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA",
                "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
                "-extfile", f"{name}.ext", "-out", f"{name}.pem")

        key("ca.key")
        run("openssl", "req", "-x509", "-new", "-key", "ca.key", "-subj",
            "/CN=test-ca", "-days", "1", "-out", "ca.pem")
        leaf("server", "DNS:localhost")
        leaf("client", "URI:spiffe://sockagent.test/py")
        (d / "policy.textproto").write_text(POLICY)
        self.token = "s3cret-token-for-tests"
        (d / "tokens").write_text(f"{self.token} tester\n")
        self.ca = str(d / "ca.pem")
        self.cert = str(d / "client.pem")
        self.key = str(d / "client.key")
        self.tls = sockagent.TLS(ca_file=self.ca, server_name="localhost")
        self._local = pytest_plugin._LocalAgent(binary, "secured", [
            "--tls-cert", str(d / "server.pem"),
            "--tls-key", str(d / "server.key"),
            "--tls-client-ca", self.ca,
            "--policy", str(d / "policy.textproto"),
            "--token-file", str(d / "tokens")])
        self.target = self._local.target

    def stop(self):
        self._local.stop()


@pytest.fixture(scope="session")
def secured_agent(tmp_path_factory, request):
    agent = SecuredAgent(tmp_path_factory.mktemp("secured"),
                         pytest_plugin._find_sockagentd(request.config))
    yield agent
    agent.stop()
