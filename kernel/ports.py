"""A listener that cannot take its port: one error every listening part of linectl raises the
same way (the API, the simulators' OPC UA servers, the embedded MQTT broker).

:class:`PortInUse` when another process listens there already, :class:`CannotListen` for any
other reason the system gives (an address not on this machine, a port below 1024 without the
right to it, a host name that does not resolve). The command line reports either in one line.
The libraries under those listeners log their own traceback of the failed bind before raising;
:class:`BindFailureFilter` on their loggers drops that record, which the error replaces.
"""

from __future__ import annotations

import errno
import logging
import socket

# the errors of bind() that say the address cannot be listened on, rather than a fault
_UNUSABLE = frozenset({errno.EADDRNOTAVAIL, errno.EACCES, errno.EPERM})


class CannotListen(OSError):
    """``what`` (for example "the API") cannot listen on ``host``:``port``: ``reason``."""

    def __init__(self, what: str, host: str, port: int, reason: str, code: int | None) -> None:
        super().__init__(code, reason)
        self.what = what
        self.host = host
        self.port = port
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.what} cannot listen on {self.host}:{self.port}: {self.reason}"


class PortInUse(CannotListen):
    """Another process listens on ``host``:``port`` already."""

    def __init__(self, what: str, host: str, port: int) -> None:
        super().__init__(what, host, port, "address already in use", errno.EADDRINUSE)

    def __str__(self) -> str:
        return f"port {self.port} on {self.host} is in use: {self.what} cannot listen there"


def _bind_error(exc: BaseException) -> OSError | None:
    """The bind error ``exc`` is or was raised from, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror) or (
            isinstance(current, OSError)
            and (current.errno == errno.EADDRINUSE or current.errno in _UNUSABLE)
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def listen_error(exc: BaseException, what: str, host: str, port: int) -> CannotListen | None:
    """``exc`` as :class:`PortInUse` or :class:`CannotListen` when it (or its cause) is a
    failed bind of ``host``:``port``; None when it is something else."""
    if isinstance(exc, CannotListen):
        return exc
    found = _bind_error(exc)
    if found is None:
        return None
    if found.errno == errno.EADDRINUSE:
        return PortInUse(what, host, port)
    reason = found.strerror or str(found)
    return CannotListen(what, host, port, reason[:1].lower() + reason[1:], found.errno)


class BindFailureFilter(logging.Filter):
    """Drops a library's traceback of a listener that could not bind (the caller raises
    :class:`CannotListen` instead, reported in one line); every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or _bind_error(exc) is None


def quiet_bind_failures(logger: str) -> None:
    """Put a :class:`BindFailureFilter` on ``logger`` (once, however often this is called)."""
    named = logging.getLogger(logger)
    if not any(isinstance(f, BindFailureFilter) for f in named.filters):
        named.addFilter(BindFailureFilter())
