"""Serve the API with uvicorn inside the controller's own task group."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from api import stopping_event

GRACEFUL_SHUTDOWN_SECONDS = 5
_serving = 0  # API servers of this process that froze the heap and still serve


def settle_heap() -> None:
    """Collect what start-up left behind, then exempt the surviving objects (modules, models,
    configuration, the app) from garbage collection. Full collections then walk only objects
    made since, so they pause the event loop for milliseconds instead of tens of them."""
    gc.collect()
    gc.freeze()


def release_heap() -> None:
    """Give the frozen objects back to the garbage collector: what a stopped service held can
    be freed (a process that starts services again and again, such as a test run, would keep
    every one of them otherwise)."""
    gc.unfreeze()


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiServer:
    """``freeze_heap`` (the default) settles the heap once the server listens (see
    :func:`settle_heap`); a process that starts many short-lived lines, such as a test run, can
    turn it off, since each full collection there walks everything the process holds."""

    def __init__(self, app: FastAPI, host: str, port: int, *, freeze_heap: bool = True) -> None:
        # log_config=None: uvicorn's records go through linectl's structured, redacting handler
        self._server = _EmbeddedServer(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level="warning",
                log_config=None,
                lifespan="on",
                access_log=False,
                # a response still going this long after the stop began is cut off
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )
        )
        self._app = app
        self.host = host
        self.port = port
        self.freeze_heap = freeze_heap

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def started(self) -> bool:
        return self._server.started

    async def serve(self, started: asyncio.Event | None = None) -> None:
        """Serve until cancelled, then shut down gracefully. With port 0 the system picks a
        free port, and :attr:`url` names it once started."""
        task = asyncio.create_task(self._server.serve(), name="api.uvicorn")
        frozen = False
        try:
            while not self._server.started:
                if task.done():
                    try:
                        await task  # raises the start-up error
                    except SystemExit as exc:  # uvicorn's way of saying it could not listen
                        raise OSError(f"API server could not listen on {self.url}") from exc
                    raise RuntimeError(f"API server on {self.url} stopped during start-up")
                await asyncio.sleep(0.01)
            if self.port == 0:
                self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
            if self.freeze_heap:
                _hold_heap()
                frozen = True
            if started is not None:
                started.set()
            await asyncio.shield(task)
        finally:
            # streams (Server-Sent Events) end now rather than hold up the stop
            stopping_event(self._app).set()
            self._server.should_exit = True
            with contextlib.suppress(Exception, SystemExit):
                await task
            if frozen:
                _let_heap_go()


def _hold_heap() -> None:
    global _serving
    _serving += 1
    settle_heap()


def _let_heap_go() -> None:
    global _serving
    _serving -= 1
    if _serving == 0:
        release_heap()
