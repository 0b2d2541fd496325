"""sockagent: the sockets of remote hosts, used like Python's socket module.

    import sockagent

    with sockagent.Agent("127.0.0.1:7700") as agent:
        server = agent.create_server(("127.0.0.1", 0))
        client = agent.create_connection(server.getsockname())
        conn, _ = server.accept()
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"

Every socket lives on the agent (sockagentd) and is closed there when the
Agent's session ends. Errors are Python's own (see sockagent.errors).
``agent.socket_module()`` stands in for the ``socket`` module;
``agent.proxy(listen, upstream, ...)`` is a proxy with faults on the agent
(sockagent.Proxy). The pytest
plugin is ``sockagent.pytest_plugin``; ``sockagent.aio`` is the asyncio
flavour (on grpc.aio).
"""

from . import _stubs  # noqa: F401  (finds the generated code first)
from ._agent import Agent, AgentInfo, TLS, SESSION_METADATA_KEY
from ._proxy import Proxy, ProxyConnection, ProxyDirection
from ._socket import RemoteSocket, TrafficResult
from .errors import (AgentError, AgentUnavailableError, AuthenticationError,
                     HandleNotFoundError, InvalidRequestError,
                     PolicyDeniedError, QuotaExceededError, builtin_type)

__version__ = "0.1.0"

__all__ = [
    "Agent", "AgentInfo", "TLS", "RemoteSocket", "TrafficResult",
    "Proxy", "ProxyConnection", "ProxyDirection",
    "AgentError", "AgentUnavailableError", "AuthenticationError",
    "HandleNotFoundError", "InvalidRequestError", "PolicyDeniedError",
    "QuotaExceededError", "builtin_type", "SESSION_METADATA_KEY",
]
