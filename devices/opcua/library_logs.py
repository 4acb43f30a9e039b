"""asyncua's own log records of a lost connection, turned into one DEBUG line each.

When a server goes away, asyncua's client logs the exceptions of its background loops (the
publish loop, the connection supervisor, the session renewal) with a full traceback at ERROR.
linectl's adapters already report the same event once, as an outage (see
:mod:`devices.outage`), so those records only repeat it at length. :class:`LinkLossFilter`,
installed on the service's log handler by :func:`kernel.logs.setup`, rewrites a record of an
``asyncua`` logger whose exception is a link loss (:func:`~devices.opcua.translate.link_lost`)
into a DEBUG record of one line (the error named in ``error``, no traceback), and lets it through
only when the service logs at DEBUG. Every other asyncua record passes unchanged, so a real fault
(a malformed message, a callback that raised) is still seen.
"""

from __future__ import annotations

import logging

from devices.opcua.translate import link_lost

LIBRARY = "asyncua"


def _from_library(record: logging.LogRecord) -> bool:
    return record.name == LIBRARY or record.name.startswith(LIBRARY + ".")


class LinkLossFilter(logging.Filter):
    """Demote asyncua's connection-loss tracebacks to one DEBUG line (see the module)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level  # the service's log level: demoted records pass only at DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not _from_library(record) or not record.exc_info:
            return True
        exc = record.exc_info[1]
        if exc is None or not link_lost(exc):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.error = f"{type(exc).__name__}: {exc}"
        record.link_lost = True
        return self.level <= logging.DEBUG
