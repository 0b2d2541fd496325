"""The install command's result: `cmake --install BUILD --component python`
(what deploy/install-python.sh runs) staged with DESTDIR, then used by a
clean interpreter that sees nothing but the staged site directory."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def build_dir():
    gen = os.environ.get("SOCKAGENT_PYTHON_GEN")
    return pathlib.Path(gen).parents[1] if gen else REPO / "build"


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    stage = tmp_path_factory.mktemp("stage")
    subprocess.run(["cmake", "--install", str(build_dir()), "--component",
                    "python"], check=True, capture_output=True,
                   env={**os.environ, "DESTDIR": str(stage)}, timeout=120)
    sites = list(stage.rglob("sockagent-*.dist-info"))
    assert len(sites) == 1, sites
    return sites[0].parent


def clean_run(site, args, cwd, timeout=120):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "SOCKAGENT_"))}
    env["PYTHONPATH"] = str(site)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_installed_package_imports_from_the_site_directory(staged, tmp_path):
    result = clean_run(staged, ["-c", textwrap.dedent("""
        import importlib.metadata, sockagent
        print(sockagent.__path__[0])
        print(sockagent.v1.sockagent_pb2.__file__)
        print([e.value for e in importlib.metadata.entry_points(
            group="pytest11") if e.name.startswith("sockagent")])
    """)], tmp_path)
    assert result.returncode == 0, result.stderr
    package, stubs, entry_points = result.stdout.splitlines()
    assert package == str(staged / "sockagent")
    assert stubs.startswith(str(staged / "sockagent" / "v1"))
    assert entry_points == "['sockagent.pytest_plugin']"


def test_installed_plugin_loads_by_entry_point(staged, tmp_path,
                                               sockagent_agent):
    (tmp_path / "test_user.py").write_text(textwrap.dedent("""
        def test_remote_hostname(sockagent_agent, sockagent_socket):
            s = sockagent_socket()
            s.bind(("127.0.0.1", 0))
            assert s.getsockname()[1] > 0
            assert sockagent_agent.gethostname()
    """))
    for extra in ([], ["-p", "sockagent.pytest_plugin"]):
        result = clean_run(staged, [
            "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra,
            "--sockagent", f"default={sockagent_agent.target}",
            "test_user.py"], tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout
