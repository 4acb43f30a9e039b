"""Streams that end when the server stops.

A Server-Sent Events stream never ends by itself, and a server shutting down gracefully waits for
every response in progress: one browser left open on the live page would hold up a controller's
stop. :func:`until_stopping` wraps a stream so that it ends as soon as the app's
``state.stopping`` event is set; the server that embeds the app sets it when it begins to shut
down (:class:`controller.app.http.ApiServer`), and the client reconnects to whatever serves next.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request


def stopping_event(app: FastAPI) -> asyncio.Event:
    """The app's ``stopping`` event (made on first use)."""
    event: asyncio.Event | None = getattr(app.state, "stopping", None)
    if event is None:
        event = app.state.stopping = asyncio.Event()
    return event


async def until_stopping(request: Request, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` until they end or the server begins to stop."""
    stopping = stopping_event(request.app)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        while True:
            step = asyncio.ensure_future(anext(chunks))
            await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                return
            try:
                chunk = step.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        stop.cancel()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
