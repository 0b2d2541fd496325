"""Python socket addresses <-> sockagent.v1.Address, with Python's checks.

Python's rules (Modules/socketmodule.c, getsockaddrarg) are followed for what
is checked on the client: the tuple shape and the integer ranges (a port
outside 0..65535 and a flowinfo outside 0..2**20-1 are OverflowError). Host
names and literals go to the agent, which resolves them on its host.
"""

import os
import socket as _socket

from ._stubs import pb

# Whether UnixAddress.path is `bytes` (Linux paths are bytes) or UTF-8
# `string` in the proto this package was generated from; both are accepted.
_UNIX_PATH_IS_BYTES = (
    pb.UnixAddress.DESCRIPTOR.fields_by_name["path"].type ==
    pb.UnixAddress.DESCRIPTOR.fields_by_name["path"].TYPE_BYTES)

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
AF_UNIX = _socket.AF_UNIX


def _family_name(family):
    try:
        return _socket.AddressFamily(family).name
    except ValueError:
        return str(family)


def _host(host, call):
    if isinstance(host, str):
        return host
    if isinstance(host, (bytes, bytearray)):
        return bytes(host).decode("ascii")
    raise TypeError(
        f"str, bytes or bytearray expected, not {type(host).__name__}")


def _port(port, call):
    if not isinstance(port, int):
        raise TypeError(f"'{type(port).__name__}' object cannot be "
                        "interpreted as an integer")
    if not 0 <= port <= 0xFFFF:
        raise OverflowError(f"{call}(): port must be 0-65535.")
    return port


def to_proto(address, family, call):
    """The Address message for Python ``address`` on a ``family`` socket."""
    if family == AF_UNIX:
        if isinstance(address, str):
            raw = os.fsencode(address)
        elif isinstance(address, (bytes, bytearray, memoryview)):
            raw = bytes(address)
        else:
            raise TypeError(
                f"a bytes-like object is required, not "
                f"'{type(address).__name__}'")
        if raw.startswith(b"\0"):
            return pb.Address(unix=pb.UnixAddress(abstract=raw[1:]))
        if _UNIX_PATH_IS_BYTES:
            return pb.Address(unix=pb.UnixAddress(path=raw))
        # Linux paths are bytes; this proto carries them as UTF-8 text.
        try:
            path = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"{call}(): the AF_UNIX path {raw!r} is not UTF-8, which "
                f"the agent's protocol cannot carry") from None
        return pb.Address(unix=pb.UnixAddress(path=path))
    if family == AF_INET:
        if not isinstance(address, tuple):
            raise TypeError(f"AF_INET address must be tuple, not "
                            f"{type(address).__name__}")
        if len(address) != 2:
            raise TypeError("AF_INET address must be a pair (host, port)")
        host, port = address
        return pb.Address(inet=pb.InetAddress(host=_host(host, call),
                                              port=_port(port, call)))
    if family == AF_INET6:
        if not isinstance(address, tuple):
            raise TypeError(f"AF_INET6 address must be tuple, not "
                            f"{type(address).__name__}")
        if not 2 <= len(address) <= 4:
            raise TypeError("AF_INET6 address must be a tuple (host, port"
                            "[, flowinfo[, scopeid]])")
        host, port = address[0], address[1]
        flowinfo = address[2] if len(address) > 2 else 0
        scope_id = address[3] if len(address) > 3 else 0
        port = _port(port, call)
        if not isinstance(flowinfo, int) or not isinstance(scope_id, int):
            raise TypeError("an integer is required")
        if not 0 <= flowinfo <= 0xFFFFF:
            raise OverflowError(f"{call}(): flowinfo must be 0-1048575.")
        if not 0 <= scope_id <= 0xFFFFFFFF:
            raise OverflowError("Python int too large to convert to C "
                                "unsigned long")
        return pb.Address(inet=pb.InetAddress(
            host=_host(host, call), port=port, flowinfo=flowinfo,
            scope_id=scope_id))
    raise OSError(97, f"{call}(): bad family {_family_name(family)}")


def from_proto(address, family):
    """The Python address for an Address message from the agent, as Python
    returns it for a ``family`` socket; None for an unset address."""
    if family == AF_INET and address.HasField("inet"):  # the common case
        inet = address.inet
        return (inet.host, inet.port)
    kind = address.WhichOneof("kind")
    if kind == "inet":
        inet = address.inet
        host = inet.host
        if family == AF_INET6 or (family != AF_INET and ":" in host):
            return (host, inet.port, inet.flowinfo, inet.scope_id)
        return (host, inet.port)
    if kind == "unix":
        unix = address.unix
        if unix.WhichOneof("name") == "abstract":
            return b"\0" + unix.abstract
        if _UNIX_PATH_IS_BYTES:
            return os.fsdecode(unix.path)  # as Python: str, surrogateescape
        return unix.path
    if family == AF_UNIX:
        return ""
    return None
