"""The store's connection and the one thread that uses it, whatever the engine.

Every statement of the store runs on that thread, in the order it was submitted, so the event
loop never waits on the database and no two store calls of one process interleave. A write is one
transaction (:func:`~controller.store.sql.db.transaction`), committed durably before the call
returns. Driver errors reach the caller as :class:`~controller.store.base.StoreError` or
:class:`~controller.store.base.StoreUnavailable`; nothing above the engine sees a driver's type.

New history events are announced through an in-process
:class:`~controller.store.event_signal.EventSignal`: the worker notes the newest event ``seq``
after every call that changed rows, and the event loop publishes it once the call has returned,
that is after its commit, so a reader woken by the signal always finds the event in the store.
"""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, Protocol, TypeVar

from controller.store.base import StoreError, StoreUnavailable
from controller.store.event_signal import EventSignal
from controller.store.sql import events
from controller.store.sql.db import Connection

P = ParamSpec("P")
T = TypeVar("T")


class Engine(Protocol):
    """A database as the worker uses it; every method runs on the worker thread."""

    @property
    def where(self) -> str:
        """The store as messages name it (``order store <file>``, say)."""
        ...

    def open(self) -> int:
        """Connect, create or migrate the schema; the schema version found before."""
        ...

    def connection(self) -> Connection:
        """The connection for the next call (connected again if it was lost);
        StoreUnavailable when the database cannot be reached."""
        ...

    def changes(self, conn: Connection) -> int:
        """Rows changed on ``conn`` since it was opened (grows with every write)."""
        ...

    def fence_writes(self, term: int) -> None:
        """Refuse every later write unless the line's lease is still of ``term``
        (:class:`~controller.store.base.Fenced`); StoreError where the engine has no lease."""
        ...

    def close(self) -> None: ...


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class StoreWorker:
    """The engine, its worker thread and the event signal that every part of the store shares.

    A part hands the worker a plain function ``fn(conn, *args)``; :meth:`run` executes it on the
    worker thread and returns its result on the event loop. The worker is opened once; closing it
    waits for the calls already queued.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._state = _State.NEW
        self._executor: ThreadPoolExecutor | None = None
        self._signal = EventSignal()
        self._noted_head: int | None = None  # written on the worker thread, read on the loop

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def where(self) -> str:
        return self._engine.where

    @property
    def is_open(self) -> bool:
        return self._state is _State.OPEN

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> int:
        """Start the worker thread, open the database and migrate its schema; the schema
        version it had before."""
        if self._state is not _State.NEW:
            raise StoreError(f"{self.where} is {self._state.value}; open it only once")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linectl-store")
        try:
            version = await self._submit(self._engine.open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._state = _State.CLOSED
            raise
        self._state = _State.OPEN
        return version

    async def close(self) -> None:
        """Close the database after the calls already queued, and stop the worker thread."""
        if self._state is not _State.OPEN:
            self._state = _State.CLOSED
            return
        self._state = _State.CLOSED
        assert self._executor is not None
        try:
            await self._submit(self._engine.close)
        finally:
            self._executor.shutdown(wait=False)

    # --- running calls on the worker thread -----------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on the worker thread; once it has returned (a write: committed),
        readers waiting for newer events are woken."""
        if self._state is not _State.OPEN:
            raise StoreError(f"{self.where} is {self._state.value}, not open")
        result = await self._submit(self._with_conn, fn, *args)
        await self.publish_changes()
        return result

    def submit_nowait(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(conn, *args)`` queued on the worker thread; its future on the running loop. The
        caller calls :meth:`publish_changes` once it has the result."""
        if self._state is not _State.OPEN or self._executor is None:
            raise StoreError(f"{self.where} is {self._state.value}, not open")
        call = functools.partial(self._guarded, self._with_conn, fn, *args)
        return asyncio.wrap_future(self._executor.submit(call))

    async def _submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        call = functools.partial(self._guarded, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    def _guarded(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:  # the file system or the network: may pass later
            raise StoreUnavailable(f"{self.where}: {exc}") from exc

    def _with_conn(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._engine.connection()
        before = self._engine.changes(conn)
        result = fn(conn, *args)
        self._note_changes(conn, before)
        return result

    # --- new events -----------------------------------------------------------------------

    def _note_changes(self, conn: Connection, changes_before: int) -> None:
        """Worker thread, after a call: remember the newest event if rows were changed."""
        if self._noted_head is None or self._engine.changes(conn) != changes_before:
            self._noted_head = events.last_event_seq(conn)

    async def publish_changes(self) -> None:
        """Event loop, after a call returned: wake readers waiting for newer events."""
        head = self._noted_head
        if head is not None:
            await self._signal.advance(head)

    async def wait_for_event(self, after_seq: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` wall seconds for an event newer than ``after_seq`` to be
        committed by this process; True if there is one."""
        if self._noted_head is None:
            await self.run(events.last_event_seq)  # learns the head of a freshly opened store
        return await self._signal.wait_beyond(after_seq, timeout)
