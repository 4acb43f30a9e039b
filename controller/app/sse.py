"""Reading a Server-Sent Events stream (``text/event-stream``), as the HTML standard's event
stream interpretation says: lines end in CR LF, LF or CR; a line starting with a colon is a
comment; ``event``, ``data``, ``id`` and ``retry`` fields; a blank line dispatches the event.

:class:`SseDecoder` is fed the stream's text as it arrives, in pieces of any size (a line, or a
CR LF pair, may be split between two pieces), and gives back what each piece completed: the
events, and the comments (a server's heartbeats), so that a client knows the stream is alive
even when no event comes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOM = "\ufeff"


@dataclass(frozen=True)
class ServerEvent:
    """One dispatched event: its type (``message`` unless the stream named one), its data
    (the ``data`` lines joined by LF), and the last event id the stream set."""

    event: str
    data: str
    id: str | None = None


@dataclass(frozen=True)
class Comment:
    """A comment line (``: text``): servers send them to keep a quiet stream alive."""

    text: str


_LINE_END = re.compile(r"\r\n|\r|\n")


class SseDecoder:
    """An event stream, decoded piece by piece (see the module's description)."""

    def __init__(self) -> None:
        self._pending = ""  # an unfinished line
        self._after_cr = False  # the last piece ended in CR: an LF starting the next is its pair
        self._started = False  # the first character was looked at (a BOM is dropped)
        self._event = ""
        self._data: list[str] = []
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None  # the reconnection time the server asked for

    def feed(self, text: str) -> list[ServerEvent | Comment]:
        """The events and comments that ``text`` completes, in stream order."""
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix(BOM)
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = False
        out: list[ServerEvent | Comment] = []
        buffer = self._pending + text
        start = 0
        # the unfinished line holds no line end: look only at the new text for one
        for end in _LINE_END.finditer(buffer, len(self._pending)):
            item = self._line(buffer[start : end.start()])
            if item is not None:
                out.append(item)
            start = end.end()
            if end.group() == "\r" and start == len(buffer):
                self._after_cr = True  # a CR LF split between two pieces
        self._pending = buffer[start:]
        return out

    def _line(self, line: str) -> ServerEvent | Comment | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return Comment(line[1:].removeprefix(" "))
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None  # other fields are ignored

    def _dispatch(self) -> ServerEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:  # no data field: nothing to dispatch
            return None
        return ServerEvent(event, "\n".join(data), self.last_event_id)
