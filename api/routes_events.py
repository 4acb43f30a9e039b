"""``GET /v1/events``: order history events as Server-Sent Events.

Each event is ``id: <seq>``, ``event: <type>`` and ``data: <json>``, where ``seq`` is the store's
monotonic event id. Because the ids come from the store, a client that reconnects with
``Last-Event-ID`` (browsers do this themselves) resumes exactly after the last event it saw, across
controller restarts too. The stream pages through the store (bounded memory), waits on the
store's in-process signal for new events, and sends a comment line as a heartbeat when nothing
happened for :data:`HEARTBEAT_SECONDS`, so proxies keep the connection and dead clients are found.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request

from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.examples import ORDER_EVENT_EXAMPLES
from api.problems import problem_responses
from api.schemas import EVENT_TYPE_PATTERN, OrderEventOut
from api.sse import EventStreamResponse, comment, event_stream_responses, message
from api.streams import until_stopping
from controller.orders.model import ORDER_ID_PATTERN
from controller.store.base import OrderStore, StoredEvent, StoreError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["events"])

HEARTBEAT_SECONDS = 15.0  # wall seconds without an event before a heartbeat comment
PAGE = 200  # events read from the store at a time
RETRY_MS = 2000  # reconnection delay suggested to clients

Backend = Annotated[ApiBackend, Depends(get_backend)]
Reader = Annotated[Principal, Depends(require_scope("orders:read"))]
SEQ_PATTERN = r"^[0-9]{1,18}$"


def format_event(event: StoredEvent) -> bytes:
    """One SSE message for ``event``."""
    return message(event.type, event.document(), id=event.seq)


async def event_stream(
    store: OrderStore,
    after: int,
    *,
    order_id: str | None = None,
    heartbeat: float | None = None,
) -> AsyncIterator[bytes]:
    """Events with ``seq > after`` (of one order if ``order_id``), then new ones as they come."""
    heartbeat = HEARTBEAT_SECONDS if heartbeat is None else heartbeat
    yield comment(f"linectl order events after {after}", retry_ms=RETRY_MS)
    scanned = after  # every event up to here has been considered (sent or filtered out)
    while True:
        try:
            head = await store.last_event_seq()
            page = await store.events_after(scanned, PAGE, order_id=order_id)
        except StoreError as exc:
            log.warning("event stream ended: store unavailable", extra={"error": str(exc)})
            return
        for event in page:
            yield format_event(event)
            scanned = event.seq
        if len(page) == PAGE:
            continue
        scanned = max(scanned, head)
        if not await store.wait_for_event(scanned, heartbeat):
            yield comment("heartbeat")


@router.get(
    "/events",
    summary="Order events (Server-Sent Events)",
    description=(
        "A `text/event-stream` of every order's history events, oldest first. Each message has "
        "`id` (the event's monotonic sequence number), `event` (its type) and `data` (JSON: "
        "`seq`, `order_id`, `type`, `status`, `at`, `data`). Reconnect with `Last-Event-ID` (or "
        "`?after=`) to resume right after the last event seen, without loss or duplicates; "
        "without either the stream starts with the next new event (`?after=0` replays the whole "
        "history). A comment line is sent every 15 s when nothing happens. Needs scope "
        "`orders:read` unless reads are open. Webhooks deliver the same JSON documents."
    ),
    response_class=EventStreamResponse,
    responses={
        **event_stream_responses(
            OrderEventOut,
            description="The order events, oldest first, then each new one as it happens.",
            examples=ORDER_EVENT_EXAMPLES,
            event_pattern=EVENT_TYPE_PATTERN,
            id_pattern=SEQ_PATTERN,
        ),
        **problem_responses(401, 403, 422, 503),
    },
)
async def events(
    request: Request,
    backend: Backend,
    _reader: Reader,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=SEQ_PATTERN,
            description="The `id` of the last event received; the stream resumes after it.",
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=10**18,
            description="Start after this event id (`Last-Event-ID` wins); `0`: from the start.",
            examples=[0],
        ),
    ] = None,
    order_id: Annotated[
        str | None,
        Query(pattern=ORDER_ID_PATTERN, description="Only the events of this order."),
    ] = None,
) -> EventStreamResponse:
    store = backend.store
    if last_event_id is not None:
        start = int(last_event_id)
    elif after is not None:
        start = after
    else:
        start = await store.last_event_seq()
    return EventStreamResponse(
        until_stopping(request, event_stream(store, start, order_id=order_id))
    )
