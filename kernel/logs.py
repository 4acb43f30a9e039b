"""Structured logs: one line per event, ``key=value`` pairs (or JSON with ``--log-format json``)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from kernel.redact import RedactingFilter

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={json.dumps(record.getMessage())}",
        ]
        parts += [f"{k}={json.dumps(v, default=str)}" for k, v in _extras(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not to the stream it was
    when logging was set up: a command run inside another program (a test runner's CLI
    invocation, which swaps stderr for a buffer and closes it afterwards) leaves no handler
    behind that writes to a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup(level: str = "info", fmt: str = "text", filters: Iterable[logging.Filter] = ()) -> None:
    """Log to stderr at ``level`` as ``fmt``; ``filters`` (for example the OPC UA adapters'
    :class:`~devices.opcua.library_logs.LinkLossFilter`) go on the handler too."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    # a token in a request line or URL (uvicorn's access log, httpx at debug) is never written
    handler.addFilter(RedactingFilter(frozenset(_STANDARD)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for extra in filters:
        handler.addFilter(extra)
    # libraries whose own warnings repeat what linectl's adapters already report once
    for noisy in ("asyncua", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(max(logging.ERROR, root.level))
    for chatty in ("uvicorn.error", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
