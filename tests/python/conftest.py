"""Fixtures of the Python client tests (the agent comes from the
sockagent pytest plugin: -p sockagent.pytest_plugin)."""

import socket

import pytest

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

