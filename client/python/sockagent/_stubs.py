"""The generated protobuf and gRPC modules, found wherever the build put them.

The build (CMake target ``python_stubs``) generates ``sockagent/v1/*_pb2*.py``
and ``sockagent/_gen/google/rpc/status_pb2.py`` from ``proto/``. An installed
package holds them beside its sources. From a source tree they are in the
build tree: ``$SOCKAGENT_PYTHON_GEN`` (the directory holding
``sockagent/v1``), else ``<repo>/build/client/python``.
"""

import importlib.util
import os
import pathlib
import sys

from . import __path__ as _package_path


def _find_generated():
    for entry in list(_package_path):
        if (pathlib.Path(entry) / "v1" / "sockagent_pb2.py").is_file():
            return
    candidates = []
    if os.environ.get("SOCKAGENT_PYTHON_GEN"):
        candidates.append(pathlib.Path(os.environ["SOCKAGENT_PYTHON_GEN"]))
    repo = pathlib.Path(__file__).resolve().parents[3]
    candidates.append(repo / "build" / "client" / "python")
    for root in candidates:
        package = root / "sockagent"
        if (package / "v1" / "sockagent_pb2.py").is_file():
            _package_path.append(str(package))
            return
    raise ImportError(
        "sockagent: the generated gRPC stubs are missing; build them with "
        "`ninja -C build python_stubs` (or install the package with "
        "deploy/install-python.sh), or point SOCKAGENT_PYTHON_GEN at the "
        "directory holding sockagent/v1/. Looked in: "
        + ", ".join(str(c) for c in candidates))


def _load_status_pb2():
    try:  # googleapis-common-protos, when present, already defines it
        from google.rpc import status_pb2
        return status_pb2
    except ImportError:
        pass
    for entry in _package_path:
        path = (pathlib.Path(entry) / "_gen" / "google" / "rpc" /
                "status_pb2.py")
        if path.is_file():
            name = "sockagent._gen_google_rpc_status_pb2"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
    raise ImportError("sockagent: generated google/rpc/status_pb2.py missing")


_find_generated()

from .v1 import error_detail_pb2  # noqa: E402
from .v1 import sockagent_pb2  # noqa: E402
from .v1 import sockagent_pb2_grpc  # noqa: E402

status_pb2 = _load_status_pb2()
pb = sockagent_pb2
