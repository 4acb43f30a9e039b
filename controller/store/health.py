"""Whether the order store takes writes, as the controller sees it, and trying again when not.

A write that fails because the store cannot write (:class:`~controller.store.base.StoreUnavailable`:
a full disk, an I/O error, a locked or damaged file) starts a store outage; the next write that
succeeds ends it. The outage is logged once when it starts and once when it ends (the shape of
:class:`devices.outage.Outage`), counted per operation in ``linectl_store_write_failures_total``
and shown by ``linectl_store_available``. While it lasts:

- every call is tried again after a jittered, doubling wait in wall seconds (a disk recovers on
  wall time, not line time), from ``store.retry_initial`` up to ``store.retry_max``
  (:meth:`StoreHealth.retry`); the caller waits, so its own writes keep their order;
- calls made for an HTTP request are tried once (:data:`~controller.store.base.FAIL_FAST`):
  the client gets a 503 and tries again itself, no request hangs on a full disk;
- :meth:`StoreHealth.watch` commits a probe write after each wait, so an outage ends even when
  nothing else writes;
- :attr:`StoreHealth.hold_reason` says why the line must not start new work; the line hold
  (:mod:`controller.service.hold`) follows it.

Order events that could not be written wait in :mod:`controller.line.journal`, device events
wait in their queues behind a task that waits for the store; together they are
:attr:`StoreHealth.backlog` (``linectl_store_backlog``), and above ``store.backlog_limit`` they
hold the line as well.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from controller.store.base import FAIL_FAST, StoreUnavailable
from devices.outage import Outage
from kernel.backoff import Backoff
from kernel.clock import Clock
from kernel.config.model import StoreConfig
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class StoreHealth:
    """The store's availability for one controller (see the module docstring)."""

    def __init__(
        self,
        config: StoreConfig,
        clock: Clock,
        metrics: Metrics,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self._sleep = sleep
        self._rng = rng
        self._outage = Outage(clock, log, "order store", {"path": config.path})
        self._error: str | None = None
        self._since: datetime | None = None
        self._down = asyncio.Event()
        self._backlog = 0
        self._held = False
        # called whenever hold_reason may have changed
        self.listeners: list[Callable[[], None]] = []
        # what waits in memory because of the store (each a count of events)
        self.backlog_sources: list[Callable[[], int]] = []

    # --- state -----------------------------------------------------------------------------

    @property
    def failing(self) -> str | None:
        """Why the store does not take writes now (None while it does)."""
        if self._error is None or self._since is None:
            return None
        return f"writes failing since {self._since.isoformat()}: {self._error}"

    @property
    def backlog(self) -> int:
        """Events waiting in memory: order events not written (the journal) and whatever the
        other :attr:`backlog_sources` count, as of the last :meth:`backlog_changed`."""
        return self._backlog

    def backlog_changed(self) -> None:
        """Count the backlog again (a source changed, or time to look)."""
        self._backlog = sum(count() for count in self.backlog_sources)
        self.metrics.store_backlog.set(self._backlog)
        self._changed()

    @property
    def hold_reason(self) -> str | None:
        """Why the line must start no new work because of the store (None: it may)."""
        if self.failing is not None:
            return f"store: {self.failing}"
        if self._backlog > self.config.backlog_limit:
            return (
                f"store: {self._backlog} events waiting to be recorded "
                f"(limit {self.config.backlog_limit})"
            )
        return None

    def backoff(self) -> Backoff:
        return Backoff(self.config.retry_initial, self.config.retry_max, self._rng)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of wall time (the injected sleep: tests pass their own)."""
        await self._sleep(seconds)

    # --- what calls report -----------------------------------------------------------------

    def failed(self, operation: str, exc: StoreUnavailable) -> None:
        """A call could not be done because the store is unavailable."""
        self.metrics.store_write_failures.labels(operation).inc()
        self._outage.down(f"{operation}: {exc}")
        if self._error is None:
            self._since = self.clock.utcnow()
            self.metrics.store_available.set(0)
            self._down.set()
        self._error = str(exc)
        self._changed()

    def succeeded(self) -> None:
        """A write was committed: the store takes writes (again)."""
        if self._error is None:
            return
        self._outage.up()
        self._error = self._since = None
        self.metrics.store_available.set(1)
        self._down.clear()
        self._changed()

    # --- trying again ----------------------------------------------------------------------

    async def retry(self, operation: str, call: Callable[[], Awaitable[T]], *, write: bool) -> T:
        """``await call()`` until the store is available for it. A ``write`` that succeeds
        ends an outage (a read does not: reads work on a full disk). Under ``FAIL_FAST``,
        one attempt. Errors other than unavailability pass at once."""
        backoff: Backoff | None = None
        while True:
            try:
                result = await call()
            except StoreUnavailable as exc:
                self.failed(operation, exc)
                if FAIL_FAST.get():
                    raise
                backoff = backoff or self.backoff()
                await self._sleep(backoff.next_delay())
                continue
            if write:
                self.succeeded()
            return result

    async def watch(self, probe: Callable[[], Awaitable[None]]) -> None:
        """While writes fail, commit ``probe`` after each wait: the outage ends when it passes,
        whether or not anything else writes meanwhile. Runs until cancelled."""
        while True:
            await self._down.wait()
            backoff = self.backoff()
            while self._error is not None:
                await self._sleep(backoff.next_delay())
                self.backlog_changed()
                if self._error is None:
                    break
                try:
                    await probe()
                except StoreUnavailable as exc:
                    self.failed("probe_write", exc)
                else:
                    self.succeeded()

    def _changed(self) -> None:
        held = self.hold_reason is not None
        if held == self._held and not held:
            return
        self._held = held
        for listener in self.listeners:
            listener()
