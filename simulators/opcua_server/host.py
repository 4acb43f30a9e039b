"""Serving a simulated device over OPC UA: the secured server, the motion task, an orderly stop.

:class:`ServerHost` creates the server with the line's security
(:mod:`simulators.opcua_security`), lets the simulator build its address space and bind its
model to it, starts listening, and runs one background task that advances the model every few
milliseconds of wall time. Stopping cancels the task, lets go of the address space and stops
the server, continuing past a step that fails. An endpoint whose port is in use is
:class:`~kernel.ports.PortInUse` (asyncua's own traceback of the failed bind is not logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from asyncua import Server

from kernel.clock import Clock
from kernel.config.model import OpcUaEndpoint
from kernel.ports import listen_error, quiet_bind_failures
from simulators.opcua_security import ServerIdentity, ServerKeys, secured_server

OPCUA_PORT = 4840  # an endpoint without a port


class Bound(Protocol):
    """A model bound to an address space."""

    async def tick(self) -> None:
        """Advance the model to now and publish what happened."""

    def detach(self) -> None:
        """Stop listening to the server (it is about to stop)."""


B = TypeVar("B", bound=Bound)


class ServerHost(Generic[B]):
    """Serves one simulated device; ``name`` ("conveyor", "AS/RS") names it in log entries and
    errors, ``extra`` goes into its log entries."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        tick_wall_seconds: float,
        task_name: str,
        log: logging.Logger,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self._name = name
        self._clock = clock
        self._tick_wall = tick_wall_seconds
        self._task_name = task_name
        self._log = log
        self._extra = dict(extra or {})
        self._server: Server | None = None
        self._bound: B | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def bound(self) -> B:
        """The model served; RuntimeError when the device is not running."""
        if self._bound is None:
            raise RuntimeError(f"{self._name} simulator is not running")
        return self._bound

    @property
    def running(self) -> bool:
        return self._bound is not None

    async def start(
        self,
        opcua: OpcUaEndpoint,
        endpoint: str,
        identity: ServerIdentity,
        keys: ServerKeys | None,
        bind: Callable[[Server], Awaitable[B]],
    ) -> B:
        """Create the server, ``bind(server)`` the model to it (building the address space),
        start listening and start the motion task; raises what ``bind`` raises, and
        :class:`~kernel.ports.PortInUse` or :class:`~kernel.ports.CannotListen` when the
        endpoint cannot be listened on."""
        if self._server is not None:
            raise RuntimeError(f"{self._name} simulator already started")
        server = await secured_server(opcua, endpoint, identity, keys)
        # the standard clock task holds stop() for up to a second; line time is ours anyway
        server.disable_clock(True)
        bound = await bind(server)
        quiet_bind_failures("asyncua.server.server")  # a port in use is raised as PortInUse
        try:
            await server.start()
        except OSError as exc:
            bound.detach()
            where = urlsplit(endpoint)
            what = f"the {self._name} simulator"
            error = listen_error(exc, what, where.hostname or "", where.port or OPCUA_PORT)
            if error is None:
                raise
            raise error from None
        self._server, self._bound = server, bound
        self._task = asyncio.create_task(self._motion(bound), name=self._task_name)
        return bound

    async def stop(self) -> None:
        """Stop the motion task and the server; continues past a failing step."""
        task, self._task = self._task, None
        server, self._server = self._server, None
        bound, self._bound = self._bound, None
        try:
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
                if not task.cancelled() and task.exception() is not None:
                    self._log.error(
                        f"{self._name} motion task had failed",
                        exc_info=task.exception(),
                        extra=self._extra,
                    )
        finally:
            if bound is not None:
                bound.detach()
            if server is not None:
                await server.stop()
                self._log.info(f"{self._name} simulator stopped", extra=self._extra)

    async def _motion(self, bound: B) -> None:
        line_tick = self._tick_wall * self._clock.time_scale
        while True:
            await self._clock.sleep(line_tick)
            await bound.tick()
