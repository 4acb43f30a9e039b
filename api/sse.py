"""Server-Sent Event streams: their messages, their answer and their OpenAPI declaration.

A route that streams events answers with :class:`EventStreamResponse`, writes its messages with
:func:`message` and :func:`comment`, and declares its ``200`` answer with
:func:`event_stream_responses`, so that every stream is described the same way.

OpenAPI 3.1 has no keyword for the items of a stream (3.2 adds ``itemSchema``). The declaration
follows what OpenAPI 3.2 specifies for ``text/event-stream`` and what tools such as Schemathesis
read from a 3.1 document: the ``schema`` of the media type describes one event as a client parses
it, an object with ``event``, ``data``, ``id`` and ``retry``; ``data`` is a string holding JSON
(``contentMediaType``), whose schema (``contentSchema``) is the model the route names. Comments
(heartbeats) and a ``retry``-only block carry no data and are not events. In an OpenAPI 3.2
document ``schema`` describes the whole stream; there this schema belongs in ``itemSchema``.

For example, a stream of ``Tick`` documents::

    @router.get(
        "/ticks",
        response_class=EventStreamResponse,
        responses=event_stream_responses(
            Tick, description="...", examples={"tick": StreamExample("tick", {"n": 1})},
            events=["tick"],
        ),
    )
    async def ticks() -> EventStreamResponse:
        return EventStreamResponse(message("tick", t.model_dump(mode="json")) async for t in ...)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.responses import StreamingResponse

MEDIA_TYPE = "text/event-stream"
# no cache may keep the stream, and a buffering proxy (nginx) must pass each message at once
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_REF_TEMPLATE = "#/components/schemas/{model}"


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` answer of ``content`` (messages as bytes)."""

    media_type = MEDIA_TYPE

    def __init__(
        self,
        content: AsyncIterable[bytes],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            content, status_code, headers={**HEADERS, **(headers or {})}, media_type=MEDIA_TYPE
        )


def _line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def message(event: str, data: Any, *, id: str | int | None = None) -> bytes:
    """One event: ``id`` (optional), ``event`` and ``data`` as compact JSON on one line."""
    text = _json(data)
    head = f"id: {_line(str(id))}\n" if id is not None else ""
    return f"{head}event: {_line(event)}\ndata: {text}\n\n".encode()


def comment(text: str, *, retry_ms: int | None = None) -> bytes:
    """A comment block (a heartbeat, or a stream's opening line), with the reconnection delay
    a client should use when ``retry_ms`` is given; clients ignore comments."""
    head = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    return f"{head}: {_line(text)}\n\n".encode()


@dataclass(frozen=True)
class StreamExample:
    """One example event of a stream: its ``event`` name, its ``data`` document, its ``id``."""

    event: str
    data: Mapping[str, Any]
    id: str | None = None
    summary: str = ""

    def parsed(self) -> dict[str, Any]:
        """The event as a client parses it (the shape the schema describes)."""
        event: dict[str, Any] = {"event": self.event, "data": _json(dict(self.data))}
        if self.id is not None:
            event["id"] = self.id
        return event


def event_schema(
    data: type[BaseModel],
    *,
    events: Sequence[str] | None = None,
    event_pattern: str | None = None,
    id_pattern: str | None = None,
) -> dict[str, Any]:
    """The schema of one event of a stream whose ``data`` is a ``data`` document: ``event`` one
    of ``events`` or matching ``event_pattern``; ``id`` present and matching ``id_pattern`` if
    given (else absent). The ``data`` model's schema comes along in ``$defs``, which
    :mod:`api.openapi` moves to the document's components."""
    model = data.model_json_schema(ref_template=_REF_TEMPLATE, mode="serialization")
    defs = model.pop("$defs", {})
    defs[data.__name__] = model
    event: dict[str, Any] = {"type": "string", "description": "The event's type."}
    if events is not None:
        event["enum"] = list(events)
    elif event_pattern is not None:
        event["pattern"] = event_pattern
    properties: dict[str, Any] = {
        "event": event,
        "data": {
            "type": "string",
            "description": f"JSON: {data.__name__}.",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": _REF_TEMPLATE.format(model=data.__name__), "$defs": defs},
        },
        "retry": {
            "type": "integer",
            "minimum": 0,
            "description": "The reconnection delay a client should use, in milliseconds.",
        },
    }
    required = ["event", "data"]
    if id_pattern is not None:
        properties["id"] = {
            "type": "string",
            "pattern": id_pattern,
            "description": "The event's id: send it as `Last-Event-ID` to resume after it.",
        }
        required.append("id")
    return {
        "type": "object",
        "description": "One event of the stream, as a client's `EventSource` parses it.",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def event_stream_responses(
    data: type[BaseModel],
    *,
    description: str,
    examples: Mapping[str, StreamExample],
    events: Sequence[str] | None = None,
    event_pattern: str | None = None,
    id_pattern: str | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route answering a stream of ``data`` events (see
    :func:`event_schema`), with ``examples`` (each checked against the model) shown one by one
    and as the stream they make."""
    for example in examples.values():
        data.model_validate(example.data)  # an example that does not fit fails at import
    stream = b"".join(message(e.event, dict(e.data), id=e.id) for e in examples.values()).decode()
    return {
        200: {
            "description": (
                f"{description}\n\nThe schema describes each event of the stream (as OpenAPI "
                "3.2's `itemSchema` does); comment lines and a block with only `retry` are not "
                f"events. For example:\n\n```\n{stream}```"
            ),
            "content": {
                MEDIA_TYPE: {
                    "schema": event_schema(
                        data, events=events, event_pattern=event_pattern, id_pattern=id_pattern
                    ),
                    "examples": {
                        name: {"summary": e.summary or f"A `{e.event}` event", "value": e.parsed()}
                        for name, e in examples.items()
                    },
                }
            },
        }
    }
