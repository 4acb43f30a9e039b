"""Serve the API with uvicorn inside the controller's own task group.

The listening sockets are bound by linectl, not by uvicorn (which logs a failed bind and exits
the process): a port in use is :class:`~kernel.ports.PortInUse`, raised before anything is
served, and ``linectl run`` binds them before it starts the line (:class:`ApiListener`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import Generator
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from api import stopping_event
from kernel.ports import listen_error

API = "the API"  # what cannot listen, as errors name it
BACKLOG = 2048  # uvicorn's default
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


class ApiListener:
    """The API's listening sockets on ``host``:``port`` (every address the host name stands
    for; port 0: one the system picks, then in :attr:`port`), bound by :meth:`open` or on
    entering. Raises :class:`~kernel.ports.PortInUse` when another process listens there, or
    :class:`~kernel.ports.CannotListen` with the system's reason."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sockets: list[socket.socket] = []

    def open(self) -> None:
        if self.sockets:
            return
        try:
            found = socket.getaddrinfo(
                self.host or None, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:  # a host name that does not resolve
            raise listen_error(exc, API, self.host, self.port) or exc from None
        port = self.port
        try:
            for family, kind, proto, _, address in dict.fromkeys(found):
                sock = socket.socket(family, kind, proto)
                self.sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:  # as asyncio: one socket per address family
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((address[0], port, *address[2:]))
                sock.listen(BACKLOG)
                port = port or int(sock.getsockname()[1])
        except OSError as exc:
            self.close()
            error = listen_error(exc, API, self.host, self.port)
            if error is None:
                raise
            raise error from None
        self.port = port

    def close(self) -> None:
        sockets, self.sockets = self.sockets, []
        for sock in sockets:
            sock.close()

    async def __aenter__(self) -> ApiListener:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ApiServer:
    """``freeze_heap`` (the default) settles the heap once the server listens (see
    :func:`settle_heap`); a process that starts many short-lived lines, such as a test run, can
    turn it off, since each full collection there walks everything the process holds.

    ``listener``: sockets bound already for ``host``:``port``, served and left to their owner to
    close; without it :meth:`serve` binds its own."""

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        *,
        freeze_heap: bool = True,
        listener: ApiListener | None = None,
    ) -> None:
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
        self._listener = listener

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def started(self) -> bool:
        return self._server.started

    async def serve(self, started: asyncio.Event | None = None) -> None:
        """Serve until cancelled, then shut down gracefully. With port 0 the system picks a
        free port, and :attr:`url` names it once started. Raises
        :class:`~kernel.ports.PortInUse` (or :class:`~kernel.ports.CannotListen`) at once when
        it cannot listen."""
        listener = self._listener or ApiListener(self.host, self.port)
        listener.open()
        self.port = listener.port
        task = asyncio.create_task(self._server.serve(listener.sockets), name="api.uvicorn")
        frozen = False
        try:
            while not self._server.started:
                if task.done():
                    try:
                        await task  # raises the start-up error
                    except SystemExit as exc:  # uvicorn's way of saying it could not start
                        raise RuntimeError(f"API server on {self.url} could not start") from exc
                    raise RuntimeError(f"API server on {self.url} stopped during start-up")
                await asyncio.sleep(0.01)
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
            if listener is not self._listener:
                listener.close()
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
