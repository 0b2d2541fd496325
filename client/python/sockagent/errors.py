"""Errors raised by the sockagent client.

A failure of the remote socket itself is raised as Python's own exception, so
code written for the ``socket`` module catches it unchanged:

- an errno from the agent's kernel: the ``OSError`` subclass Python picks for
  that errno (``ConnectionRefusedError``, ``ConnectionResetError``,
  ``BrokenPipeError``, ``BlockingIOError``, ...) with ``errno`` and
  ``strerror`` set as Python sets them;
- the socket's timeout expiring: ``TimeoutError`` (``socket.timeout``) with
  the message ``timed out``;
- a failed name lookup: ``socket.gaierror`` with the ``EAI_*`` number.

The raised class is a subclass of that exception whose ``str()`` also names
the agent and the call, e.g. ``agent 127.0.0.1:7700: connect(('127.0.0.1',
1)): [Errno 111] Connection refused``; ``args``, ``errno`` and ``strerror``
are exactly Python's. ``builtin_type(exc)`` gives the plain Python class.

Failures that are not the socket's are ``AgentError`` subclasses that say what
happened: the agent unreachable, a policy denial (also a ``PermissionError``),
a quota, bad credentials, a handle the agent no longer knows.
"""

import ctypes
import errno as _errno
import functools
import os
import socket as _socket

import grpc

__all__ = [
    "AgentError", "AgentUnavailableError", "AuthenticationError",
    "PolicyDeniedError", "QuotaExceededError", "HandleNotFoundError",
    "InvalidRequestError", "builtin_type",
]


class AgentError(Exception):
    """A failure of the agent or of the call, not of the remote socket.

    Attributes: ``agent`` (the target), ``call`` (e.g. ``"connect"``),
    ``code`` (the ``grpc.StatusCode``, or None) and ``details`` (the agent's
    message).
    """

    def __init__(self, message, *, agent=None, call=None, code=None,
                 details=None):
        super().__init__(message)
        self.agent = agent
        self.call = call
        self.code = code
        self.details = details


class AgentUnavailableError(AgentError):
    """The agent cannot be reached, is shutting down, or did not answer."""


class AuthenticationError(AgentError):
    """The agent refused the credentials (TLS client certificate, token)."""


class PolicyDeniedError(AgentError, PermissionError):
    """The agent's policy refused the operation. Also a PermissionError
    (errno EACCES), so ``except PermissionError`` catches it."""

    def __init__(self, message, **kwargs):
        AgentError.__init__(self, message, **kwargs)
        PermissionError.__init__(self, _errno.EACCES, message)

    def __str__(self):
        return self.args[1] if len(self.args) > 1 else str(self.args[0])


class QuotaExceededError(AgentError):
    """A quota of the agent or its policy is exhausted (sessions, sockets,
    streams)."""


class HandleNotFoundError(AgentError):
    """The agent does not know the socket's handle: its session ended (lease
    lapsed, agent restarted) or it was closed from elsewhere."""


class InvalidRequestError(AgentError, ValueError):
    """The agent rejected an argument (the message names the field)."""


# Python's exception classes, each with a subclass whose str() names the agent
# and the call. Built on first use.
_remote_classes = {}


def _remote_class(base):
    cls = _remote_classes.get(base)
    if cls is None:
        def __str__(self):
            return f"{self.sockagent_context}: {base.__str__(self)}"
        cls = type(base.__name__, (base,), {
            "__str__": __str__,
            "__module__": __name__,
            "__qualname__": base.__qualname__,
            "sockagent_context": "",
            "sockagent_builtin": base,
        })
        _remote_classes[base] = cls
    return cls


def builtin_type(exc):
    """The Python class behind a sockagent exception
    (``ConnectionRefusedError`` for a remote ECONNREFUSED); ``type(exc)``
    for any other exception."""
    return getattr(type(exc), "sockagent_builtin", type(exc))


def _oserror_class(number):
    # OSError(errno, ...) picks its subclass from the errno.
    return type(OSError(number, ""))


def remote_oserror(number, strerror, context):
    """An OSError subclass instance for ``number`` whose str() starts with
    ``context``."""
    exc = _remote_class(_oserror_class(number))(number, strerror)
    exc.sockagent_context = context
    return exc


def remote_timeout(context):
    exc = _remote_class(_socket.timeout)("timed out")
    exc.sockagent_context = context
    return exc


@functools.lru_cache(maxsize=None)
def _gai_strerror(number):
    try:
        libc = ctypes.CDLL(None)
        libc.gai_strerror.restype = ctypes.c_char_p
        return libc.gai_strerror(ctypes.c_int(number)).decode()
    except (OSError, AttributeError):
        return None


def remote_gaierror(number, fallback, context):
    exc = _remote_class(_socket.gaierror)(
        number, _gai_strerror(number) or fallback)
    exc.sockagent_context = context
    return exc


def closed_error(context):
    """What Python raises for a call on a closed socket."""
    return remote_oserror(_errno.EBADF, os.strerror(_errno.EBADF), context)


# --- decoding the agent's status -------------------------------------------

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_DETAIL_TYPE = "type.googleapis.com/sockagent.v1.ErrorDetail"


def errno_detail(rpc_error):
    """The sockagent.v1.ErrorDetail carried by a failed call, or None."""
    from . import _stubs
    try:
        trailers = rpc_error.trailing_metadata() or ()
    except Exception:  # a non-call RpcError has no trailers
        return None
    for key, value in trailers:
        if key != _STATUS_DETAILS_KEY:
            continue
        status = _stubs.status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:
            return None
        for any_detail in status.details:
            if any_detail.type_url == _ERROR_DETAIL_TYPE:
                detail = _stubs.error_detail_pb2.ErrorDetail()
                detail.ParseFromString(any_detail.value)
                return detail
    return None


def from_rpc_error(rpc_error, agent, call, *, waiting=False):
    """The exception to raise for a failed call.

    ``call`` is the text naming the call (``"connect(('127.0.0.1', 1))"``);
    ``waiting`` says the call waited for the socket, so DEADLINE_EXCEEDED is
    the socket's timeout rather than an unanswered call.
    """
    code = rpc_error.code() if hasattr(rpc_error, "code") else None
    details = rpc_error.details() if hasattr(rpc_error, "details") else ""
    context = f"agent {agent}: {call}"
    detail = errno_detail(rpc_error)
    if detail is not None and detail.errno_number != 0:
        if detail.syscall == "getaddrinfo" or detail.errno_number < 0:
            return remote_gaierror(detail.errno_number, details, context)
        number = detail.errno_number
        try:
            strerror = os.strerror(number)
        except ValueError:
            strerror = details
        return remote_oserror(number, strerror, context)
    kwargs = {"agent": agent, "call": call, "code": code, "details": details}
    message = f"{context}: {details}" if details else context
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        if waiting:
            return remote_timeout(context)
        return AgentUnavailableError(
            f"{context}: the agent did not answer in time", **kwargs)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PolicyDeniedError(message, **kwargs)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthenticationError(message, **kwargs)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return QuotaExceededError(message, **kwargs)
    if code == grpc.StatusCode.NOT_FOUND:
        return HandleNotFoundError(message, **kwargs)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidRequestError(message, **kwargs)
    if code == grpc.StatusCode.ABORTED:
        # The handle was closed while the call waited: Python's EBADF.
        return closed_error(context)
    if code == grpc.StatusCode.UNAVAILABLE:
        return AgentUnavailableError(message, **kwargs)
    return AgentError(message, **kwargs)
